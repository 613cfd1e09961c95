"""An SMTP sink for the email tests: accepts every message on HOST:PORT (aiosmtpd) and writes
it, exactly as received, to DIR/<recipient>/<time>-<n>.eml, one file per recipient, so that a
test reads what a real mail server was handed (headers included). Nothing is relayed.

    python sink.py --host 127.0.0.1 --port 8425 --dir /tmp/surclass-mail
"""

import argparse
import itertools
import os
import signal
import threading
import time

from aiosmtpd.controller import Controller

counter = itertools.count()


class Sink:
    def __init__(self, folder):
        self.folder = folder

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8")
        for rcpt in envelope.rcpt_tos:
            # Recipients are test-made addresses; keep the name safe as a folder anyway.
            safe = "".join(c for c in rcpt.lower() if c.isalnum() or c in "@.-_+")
            box = os.path.join(self.folder, safe)
            os.makedirs(box, exist_ok=True)
            name = f"{time.time_ns()}-{next(counter)}.eml"
            tmp = os.path.join(box, "." + name)
            with open(tmp, "wb") as f:
                f.write(raw)
            # Renamed into place so a reader never sees half a message.
            os.rename(tmp, os.path.join(box, name))
        return "250 2.0.0 stored"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8425)
    parser.add_argument("--dir", required=True)
    args = parser.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    controller = Controller(Sink(args.dir), hostname=args.host, port=args.port)
    controller.start()
    print(f"smtp sink on {args.host}:{args.port} writing to {args.dir}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    main()
