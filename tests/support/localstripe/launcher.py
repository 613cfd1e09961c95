"""Start localstripe 1.15.10 with a thin compatibility layer for async-stripe 1.0.0-rc.10.

    python launcher.py [--host 127.0.0.1] [--port 8420]

localstripe is a Stripe emulator (PyPI). Unpatched, async-stripe cannot parse its
PaymentIntents or events, and a few behaviours differ from Stripe in ways the payments tests
exercise. Each patch below is numbered ("LAYER n"); README.md beside this file lists them and
the tests name the layer whenever a behaviour they check comes from it rather than from the
emulator. Everything else is localstripe's own behaviour.

The resources module is patched *before* the server module is imported: the server binds some
routes to the resource methods at import time.
"""

import argparse
import hashlib
import json
import logging

from aiohttp import web

from localstripe import resources as R
from localstripe.errors import UserError

PI = R.PaymentIntent


# LAYER 0: state only in memory, no pickle file in the shared temp folder (runs stay isolated
# and fast); the launcher always starts from scratch.
R.Store.dump_to_disk = lambda self: None


# LAYER 1: the real error shape. Stripe answers declines with HTTP 402 and type `card_error`,
# a `decline_code`, and the PaymentIntent the attempt left behind.
_user_error_init = UserError.__init__


def _user_error(self, code, message=None, contents=None):
    _user_error_init(self, code, message, contents)
    if code == 402:
        self.body['error']['type'] = 'card_error'
        self.body['error'].setdefault('decline_code', 'generic_decline')


UserError.__init__ = _user_error

_DECLINE_CODES = {
    '4000000000009995': 'insufficient_funds',
    '4000000000000069': 'expired_card',
    '4000000000000127': 'incorrect_cvc',
}


def _decline_code(payment_method_id):
    pm = R.PaymentMethod._api_retrieve(payment_method_id)
    return _DECLINE_CODES.get(getattr(pm, '_card_number', ''), 'generic_decline')


def _report_failure(self):
    R.schedule_webhook(R.Event('payment_intent.payment_failed', self))
    charge = self.latest_charge
    raise UserError(402, charge.failure_message, {
        'code': charge.failure_code,
        'decline_code': _decline_code(charge.payment_method),
        'charge': charge.id,
        'payment_intent': self._export(),
    })


PI._report_failure = _report_failure


# LAYER 2: Stripe declines 4000 0000 0000 0002 (and the other "declined" test cards) whenever
# they are charged or authorised; localstripe only when they are attached to a customer.
_charging_is_declined = R.PaymentMethod._charging_is_declined
R.PaymentMethod._charging_is_declined = (
    lambda self: _charging_is_declined(self) or self._attaching_is_declined())


# LAYER 3: fields Stripe always sends and async-stripe requires.
def _amount_captured(charge):
    if charge is None or charge.status != 'succeeded' or not charge.captured:
        return 0
    captured = getattr(charge, '_amount_captured', None)
    return charge.amount if captured is None else captured


PI.amount_capturable = property(
    lambda self: self.amount if self.status == 'requires_capture' else 0)
PI.amount_received = property(
    lambda self: _amount_captured(self.latest_charge) if self.status == 'succeeded' else 0)
PI.confirmation_method = 'automatic'
PI.payment_method_types = ['card']
R.Charge.amount_captured = property(_amount_captured)
R.Charge.disputed = False
R.Charge.billing_details = {
    'address': None, 'email': None, 'name': None, 'phone': None}

_last_payment_error = PI.last_payment_error


def _last_payment_error_with_type(self):
    error = _last_payment_error.fget(self)
    if error is not None:
        error = dict(error, type='card_error')
        if self.latest_charge is not None and self.latest_charge.status == 'failed':
            error['decline_code'] = _decline_code(self.latest_charge.payment_method)
    return error


PI.last_payment_error = property(_last_payment_error_with_type)

_pi_export = PI._export


def _pi_export_like_stripe(self, expand=None):
    # Stripe sends `latest_charge` as an id unless expanded.
    obj = _pi_export(self, expand=expand)
    if isinstance(obj.get('latest_charge'), dict) and 'latest_charge' not in (expand or []):
        obj['latest_charge'] = obj['latest_charge']['id']
    obj.pop('charges', None)
    return obj


PI._export = _pi_export_like_stripe

_event_init = R.Event.__init__


def _event_with_pending_webhooks(self, type, data):
    _event_init(self, type, data)
    self.pending_webhooks = 1
    self.request = {'id': None, 'idempotency_key': None}


R.Event.__init__ = _event_with_pending_webhooks


# LAYER 4: accept parameters Stripe accepts and localstripe refuses. `description` and
# `receipt_email` are kept on the PaymentIntent; the others change nothing here.
_pi_init = PI.__init__


def _pi_init_accepting(self, description=None, receipt_email=None,
                       automatic_payment_methods=None, statement_descriptor=None,
                       statement_descriptor_suffix=None, **kwargs):
    _pi_init(self, **kwargs)
    self.description = description
    self.receipt_email = receipt_email


PI.__init__ = _pi_init_accepting

_seti_init = R.SetupIntent.__init__


def _seti_init_accepting(self, description=None, automatic_payment_methods=None, **kwargs):
    _seti_init(self, **kwargs)
    self.description = description


R.SetupIntent.__init__ = _seti_init_accepting

_refund_init = R.Refund.__init__


# LAYER 5 (with 4): refunds as Stripe checks them: only captured money, at most what is left.
def _refund_init_checked(self, charge=None, payment_intent=None, amount=None,
                         metadata=None, reason=None, **kwargs):
    if payment_intent is not None:
        pi = PI._api_retrieve(payment_intent)
        if pi.status != 'succeeded':
            raise UserError(400, 'This PaymentIntent has no captured charge to refund.',
                            {'code': 'charge_not_captured'})
        charge_obj = pi.latest_charge
        left = _amount_captured(charge_obj) - charge_obj.amount_refunded
        amount_int = R.try_convert_to_int(amount) if amount is not None else left
        if type(amount_int) is int and amount_int > left:
            raise UserError(
                400, 'Refund amount is greater than unrefunded amount on charge.',
                {'code': 'amount_too_large', 'param': 'amount'})
        amount = amount_int
    _refund_init(self, charge=charge, payment_intent=payment_intent, amount=amount,
                 metadata=metadata, **kwargs)
    self.reason = reason


R.Refund.__init__ = _refund_init_checked

_pi_cancel = PI._api_cancel.__func__


def _pi_cancel_accepting(cls, id, cancellation_reason=None, **kwargs):
    return _pi_cancel(cls, id, **kwargs)


PI._api_cancel = classmethod(_pi_cancel_accepting)


# LAYER 5: capture as Stripe does it. Capturing less than the hold takes that amount and
# releases the rest (localstripe refunds the difference instead); capturing a PaymentIntent
# that is not `requires_capture` (released, captured, failed) is refused.
def _charge_capture(self, amount, on_success=None):
    amount = self.amount if amount is None else R.try_convert_to_int(amount)
    if not (type(amount) is int and 0 < amount <= self.amount):
        raise UserError(400, 'The amount to capture must be positive and at most the '
                        'amount capturable.', {'code': 'amount_too_large',
                                               'param': 'amount_to_capture'})
    if self.captured or self.status != 'succeeded':
        raise UserError(400, 'Bad request', {'code': 'charge_already_captured'})

    def on_success_capture():
        self.captured = True
        self._amount_captured = amount
        if on_success:
            on_success()

    self._trigger_payment(on_success=on_success_capture)


R.Charge._capture = _charge_capture


def _pi_capture(cls, id, amount_to_capture=None, **kwargs):
    if kwargs:
        raise UserError(400, 'Unexpected ' + ', '.join(kwargs.keys()))
    obj = cls._api_retrieve(id)
    if obj.status != 'requires_capture':
        raise UserError(400, 'This PaymentIntent could not be captured because it has a '
                        'status of %s.' % obj.status,
                        {'code': 'payment_intent_unexpected_state'})
    obj.latest_charge._capture(amount=amount_to_capture, on_success=obj._on_success)
    return obj


PI._api_capture = classmethod(_pi_capture)


# LAYER 6: off-session charges of a card saved through a SetupIntent skip 3-D Secure, as at
# Stripe for 4000 0025 0000 3155 (localstripe asks for authentication again).
def _pi_create(cls, confirm=None, off_session=None, **data):
    confirm = R.try_convert_to_bool(confirm)
    off_session = R.try_convert_to_bool(off_session)
    if off_session is not None and (type(off_session) is not bool or confirm is not True):
        raise UserError(400, 'Bad request')
    obj = cls(**data)
    obj._off_session = bool(off_session)
    if confirm:
        obj._confirm(on_failure_now=obj._report_failure)
    return obj


PI._api_create = classmethod(_pi_create)

_pi_confirm = PI._confirm


def _pi_confirm_off_session(self, on_failure_now):
    pm = R.PaymentMethod._api_retrieve(self.payment_method)
    if (getattr(self, '_off_session', False) and getattr(pm, '_set_up', False)
            and getattr(pm, '_card_number', None) == '4000002500003155'):
        self._authentication_failed = False
        self._create_charge(on_failure_now=on_failure_now)
    else:
        _pi_confirm(self, on_failure_now)


PI._confirm = _pi_confirm_off_session

_seti_confirm = R.SetupIntent._api_confirm.__func__


def _seti_confirm_marking(cls, id, **kwargs):
    obj = _seti_confirm(cls, id, **kwargs)
    if obj.status == 'succeeded' and obj.payment_method:
        R.PaymentMethod._api_retrieve(obj.payment_method)._set_up = True
    return obj


R.SetupIntent._api_confirm = classmethod(_seti_confirm_marking)


# LAYER 7: Idempotency-Key replay. The first answer (below 500) to a key is kept and sent
# again for the same method, path and body (header `Idempotent-Replayed: true`); the same key
# with another request gets Stripe's 400 `idempotency_error`. `DELETE /_config/data` forgets.
_answers = {}


@web.middleware
async def idempotency(request, handler):
    if request.method == 'DELETE' and request.path == '/_config/data':
        _answers.clear()
        return await handler(request)
    key = request.headers.get('Idempotency-Key')
    if request.method != 'POST' or not key:
        return await handler(request)
    # Stripe compares parameters, not bytes: the order of form fields does not matter.
    params = sorted((await request.post()).items())
    digest = hashlib.sha256(json.dumps(
        [request.method, request.path, params]).encode()).hexdigest()
    if key in _answers:
        first_digest, status, text = _answers[key]
        if first_digest != digest:
            return web.json_response({'error': {
                'type': 'idempotency_error',
                'message': 'Keys for idempotent requests can only be used with the same '
                           'parameters they were first used with.'}}, status=400)
        return web.Response(status=status, body=text, content_type='application/json',
                            headers={'Idempotent-Replayed': 'true'})
    response = await handler(request)
    if response.status < 500 and getattr(response, 'body', None) is not None:
        _answers[key] = (digest, response.status, bytes(response.body))
    return response


# LAYER 8: PaymentIntents listed newest first, as at Stripe (localstripe lists them in the order
# they were made); reconcile pages through them until they are older than it asks for.
_pi_list_all = PI._api_list_all.__func__


def _pi_list_newest_first(cls, url, limit=None, starting_after=None, **kwargs):
    li = _pi_list_all(cls, url, limit=limit, starting_after=starting_after, **kwargs)
    # Stable: among intents of the same second, the one made last comes first.
    li._list = sorted(reversed(li._list), key=lambda pi: pi.created, reverse=True)
    return li


PI._api_list_all = classmethod(_pi_list_newest_first)


# The resources module listed its extra routes (`/confirm`, `/capture`, …) with the methods of
# the time: point them at the patched ones before the server module reads that list.
_PATCHED_ROUTES = {
    '/v1/payment_intents/{id}/cancel': PI._api_cancel,
    '/v1/payment_intents/{id}/capture': PI._api_capture,
    '/v1/setup_intents/{id}/confirm': R.SetupIntent._api_confirm,
}
R.extra_apis[:] = [(method, url, _PATCHED_ROUTES.get(url, func))
                   for method, url, func in R.extra_apis]

# Only now: the server module binds the (patched) resource methods.
from localstripe import server  # noqa: E402

server.app.middlewares.insert(0, idempotency)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--host', default='127.0.0.1')
    parser.add_argument('--port', type=int, default=8420)
    args = parser.parse_args()
    logger = logging.getLogger('aiohttp.access')
    logger.setLevel(logging.INFO)
    logger.addHandler(logging.StreamHandler())
    web.run_app(server.app, host=args.host, port=args.port, access_log=logger,
                print=lambda message: print(message, flush=True))


if __name__ == '__main__':
    main()
