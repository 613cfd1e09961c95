// Surclass traveller pages: the forms work without this; it only links the slider and the
// number field, shows the party's total as you type, moves focus to a message, and runs
// Stripe's Payment Element when the page has one.
(function () {
  'use strict';

  // Read as the server reads it (`view::normalize_amount`): `1 234,50`, `€1,234.50`, `250`; a
  // lone comma is the decimal point in French, and in English before at most two digits.
  function minorUnits(text, exponent, lang) {
    var clean = String(text).replace(/[^0-9,.\-]/g, '');
    var commas = clean.split(',').length - 1;
    if (commas && clean.indexOf('.') >= 0) clean = clean.replace(/,/g, '');
    else if (commas === 1 && (lang === 'fr' || clean.split(',')[1].length <= 2)) clean = clean.replace(',', '.');
    else clean = clean.replace(/,/g, '');
    if (!/^\d+(\.\d+)?$/.test(clean)) return null;
    var parts = clean.split('.');
    var frac = (parts[1] || '').padEnd(exponent, '0');
    if (frac.length > exponent) return null;
    return parseInt(parts[0] + frac, 10);
  }

  function formatMoney(minor, currency, exponent, lang) {
    var locale = lang === 'fr' ? 'fr-FR' : 'en-GB';
    var fmt = new Intl.NumberFormat(locale, { style: 'currency', currency: currency,
      minimumFractionDigits: exponent, maximumFractionDigits: exponent });
    return fmt.format(minor / Math.pow(10, exponent));
  }

  function wireAmount(group) {
    var input = group.querySelector('[data-amount]');
    var slider = group.querySelector('[data-slider]');
    var total = group.querySelector('[data-total]');
    var row = group.querySelector('[data-slider-row]');
    var d = group.dataset;
    var exponent = parseInt(d.exponent, 10) || 0;
    var party = parseInt(d.party, 10) || 1;
    var lang = d.lang;
    if (row) row.hidden = false;

    function showTotal() {
      var minor = minorUnits(input.value, exponent, lang);
      total.textContent = minor === null ? '—' : formatMoney(minor * party, d.currency, exponent, lang);
    }
    input.addEventListener('input', function () {
      var minor = minorUnits(input.value, exponent, lang);
      if (minor !== null && slider) slider.value = Math.round(minor / Math.pow(10, exponent));
      showTotal();
    });
    if (slider) {
      slider.addEventListener('input', function () {
        input.value = slider.value;
        showTotal();
      });
    }
    showTotal();
  }

  function wireStripe(form) {
    var box = form.querySelector('[data-stripe-element]');
    if (!box || typeof window.Stripe !== 'function') return;
    var group = form.querySelector('[data-amount-group]');
    var exponent = parseInt(box.dataset.exponent, 10) || 0;
    var stripe = window.Stripe(box.dataset.stripeKey);
    // The amount per person in minor units, or null when there is none or it cannot be read.
    function perPerson() {
      if (!group) return null;
      return minorUnits(group.querySelector('[data-amount]').value, exponent, group.dataset.lang);
    }
    // The party's total in minor units, or null.
    function total() {
      var minor = perPerson();
      return minor === null ? null : minor * (parseInt(group.dataset.party, 10) || 1);
    }
    // Above the maximum the server refuses the amount itself: no card is worth asking for.
    function aboveMaximum() {
      var minor = perPerson();
      return minor !== null && minor > parseInt(group.dataset.maxMinor, 10);
    }
    // What Stripe's element is told (it wants a positive amount, even for a card alone).
    function amount() { return group ? Math.max(1, total() || 0) : 100; }
    var elements = stripe.elements({ mode: 'payment', amount: amount(),
      currency: box.dataset.currency.toLowerCase(), captureMethod: 'manual',
      paymentMethodCreation: 'manual', locale: document.documentElement.lang });
    elements.create('payment').mount(box);
    var pm = form.querySelector('[data-payment-method]');
    // A changed offer needs a new hold, so the card again, only above what the card holds
    // (`bids::card_holds`); up to it, the change goes without Stripe, whose element would
    // refuse to be submitted empty.
    var held = box.dataset.held ? parseInt(box.dataset.held, 10) : null;
    var details = box.closest('details');
    form.addEventListener('submit', function (event) {
      var t = total();
      if (pm.value || (held !== null && t !== null && (t <= held || aboveMaximum()))) return;
      event.preventDefault();
      // The element shows what is missing: open the card section it sits in.
      if (details) details.open = true;
      elements.update({ amount: amount() });
      elements.submit().then(function (r) {
        if (r.error) return null;
        return stripe.createPaymentMethod({ elements: elements });
      }).then(function (r) {
        if (r && r.paymentMethod) { pm.value = r.paymentMethod.id; form.submit(); }
      });
    });
  }

  document.addEventListener('DOMContentLoaded', function () {
    Array.prototype.forEach.call(document.querySelectorAll('[data-amount-group]'), wireAmount);
    Array.prototype.forEach.call(document.querySelectorAll('form'), wireStripe);
    var focus = document.querySelector('[data-focus]');
    if (focus) focus.focus();
  });
})();
