// A stand-in for https://js.stripe.com/v3/ (which CI cannot reach), served in its place by
// tests/e2e/stripe.spec.mjs. It has only the part of Stripe.js's documented interface that
// static/app.js uses, and behaves as Stripe.js does there:
// - Stripe(key).elements({ mode, amount, currency, ... }) and elements.update({ amount });
// - elements.create('payment').mount(box): the Payment Element, here one text field that
//   takes a payment method id (`pm_card_visa`), which the server sends on to the emulator;
// - elements.submit(): `{ error }` while the element is empty, and the element shows the
//   error, as Stripe's own does;
// - stripe.createPaymentMethod({ elements }): `{ paymentMethod: { id } }`.
// Every call is logged in sessionStorage `fakeStripeCalls` (kept across the page loads of one
// tab), so a test can tell whether Stripe was asked.
(function () {
  'use strict';
  function log(name) {
    var calls = JSON.parse(sessionStorage.getItem('fakeStripeCalls') || '[]');
    calls.push(name);
    sessionStorage.setItem('fakeStripeCalls', JSON.stringify(calls));
  }
  window.Stripe = function (key) {
    var field = null;
    var message = null;
    var elements = {
      create: function (type) {
        log('create:' + type);
        return {
          mount: function (box) {
            field = document.createElement('input');
            field.id = 'fake-stripe-card';
            field.setAttribute('aria-label', 'Card (Stripe test double)');
            message = document.createElement('p');
            message.setAttribute('role', 'alert');
            message.hidden = true;
            box.appendChild(field);
            box.appendChild(message);
          },
        };
      },
      update: function () { log('update'); },
      submit: function () {
        log('submit');
        if (!field.value) {
          message.textContent = 'Your card number is incomplete.';
          message.hidden = false;
          return Promise.resolve({ error: { type: 'validation_error', message: message.textContent } });
        }
        return Promise.resolve({});
      },
    };
    return {
      key: key,
      elements: function () { log('elements'); return elements; },
      createPaymentMethod: function () {
        log('createPaymentMethod');
        return Promise.resolve({ paymentMethod: { id: field.value.trim() } });
      },
    };
  };
})();
