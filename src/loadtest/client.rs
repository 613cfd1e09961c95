//! A minimal HTTP/1.1 client for loopback load: one keep-alive connection, one request at a
//! time, bodies sized by `Content-Length` (all the server writes). Lean on purpose, so the
//! load generator, on the same cores as the server, costs as little as it can.

use std::io;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

pub struct Connection {
    address: String,
    io: Option<(BufReader<OwnedReadHalf>, OwnedWriteHalf)>,
}

impl Connection {
    pub fn new(address: String) -> Self {
        Self { address, io: None }
    }

    /// POSTs a JSON body; answers the status and the body. Reconnects once if the
    /// server closed the kept-alive connection.
    pub async fn post(
        &mut self,
        path: &str,
        token: &str,
        body: &[u8],
    ) -> io::Result<(u16, Vec<u8>)> {
        match self.try_post(path, token, body).await {
            Ok(answer) => Ok(answer),
            Err(_) => {
                self.io = None;
                self.try_post(path, token, body).await
            }
        }
    }

    async fn try_post(
        &mut self,
        path: &str,
        token: &str,
        body: &[u8],
    ) -> io::Result<(u16, Vec<u8>)> {
        if self.io.is_none() {
            let stream = TcpStream::connect(&self.address).await?;
            stream.set_nodelay(true)?;
            let (read, write) = stream.into_split();
            self.io = Some((BufReader::new(read), write));
        }
        let (reader, writer) = self.io.as_mut().expect("connected above");
        let mut request = format!(
            "POST {path} HTTP/1.1\r\nHost: loadtest\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        request.extend_from_slice(body);
        writer.write_all(&request).await?;

        let mut line = String::new();
        reader.read_line(&mut line).await?;
        let status = line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse::<u16>().ok())
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("bad status line {line:?}"),
                )
            })?;
        let (mut length, mut close) = (0usize, false);
        loop {
            line.clear();
            if reader.read_line(&mut line).await? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                let value = value.trim();
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.parse().unwrap_or(0);
                } else if name.eq_ignore_ascii_case("connection") {
                    close = value.eq_ignore_ascii_case("close");
                }
            }
        }
        let mut answer = vec![0; length];
        reader.read_exact(&mut answer).await?;
        if close {
            self.io = None;
        }
        Ok((status, answer))
    }
}
