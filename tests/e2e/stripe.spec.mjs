// The card steps of the traveller pages with the Stripe gateway, in Debian's Chromium, driven
// by tests/traveller_e2e.rs (the server on the Stripe emulator, a hold lot, a party of two).
// js.stripe.com is served by lib/fake-stripe.js, a stand-in with the part of Stripe.js the
// pages use; what is checked is our script (static/app.js) with the server behind it: a
// changed offer asks for the card only above what the card is authorised for.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { baseUrl, openBrowser } from './lib/browser.mjs';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run this through cargo test --test traveller_e2e`);
  return value;
};
const lot = env('SURCLASS_E2E_LOT');
const traveller = { reference: env('SURCLASS_E2E_WINNER_REF'), lastName: env('SURCLASS_E2E_WINNER_NAME') };
const FAKE_STRIPE = readFileSync(new URL('./lib/fake-stripe.js', import.meta.url), 'utf8');

/** The stand-in's calls since the last `forget`, across page loads. */
const stripeCalls = (page) => page.evaluate(() => JSON.parse(sessionStorage.getItem('fakeStripeCalls') || '[]'));
const forgetCalls = (page) => page.evaluate(() => sessionStorage.removeItem('fakeStripeCalls'));
/** The page is ready once our script has mounted the (stand-in) Payment Element. */
const cardMounted = (page) => page.locator('#fake-stripe-card').waitFor({ state: 'attached' });
/** Waits for the page a change leads to (its address may be the one already shown). */
async function changedTo(page, text) {
  await page.locator('#notice', { hasText: text }).waitFor();
  await cardMounted(page);
}
const facts = async (page) => (await page.locator('.facts').first().textContent()).replace(/\s+/g, ' ');

test('with Stripe, a change up to what the card holds needs no card, a raise above it does', async () => {
  const { browser, page } = await openBrowser();
  await page.route('https://js.stripe.com/v3/', (route) =>
    route.fulfill({ status: 200, contentType: 'application/javascript', body: FAKE_STRIPE }));
  try {
    await page.goto(`${baseUrl()}/`);
    await page.getByLabel('Booking reference').fill(traveller.reference);
    await page.getByLabel('Last name').fill(traveller.lastName);
    await page.getByRole('button', { name: 'See my upgrade offers' }).click();
    await page.waitForURL('**/offers');
    await page.goto(`${baseUrl()}/offers/${lot}`);
    await cardMounted(page);

    // The bid: the card comes from the Payment Element, and the hold is taken for the party.
    await page.getByLabel('Amount per person (EUR)').fill('300');
    await page.getByLabel('Card (Stripe test double)').fill('pm_card_visa');
    await page.getByRole('button', { name: 'Place my bid' }).click();
    await page.waitForURL('**done=placed');
    assert.match(await page.locator('#notice').textContent(), /authorised for €600\.00/);
    await cardMounted(page);
    const status = page.url().split('?')[0];

    // The amount says up to where no card is needed.
    const hint = page.locator('#card-hint');
    assert.equal(await hint.textContent(),
      'Your card is authorised for €600.00 (€300.00 per person): to offer more per person, enter your card again below.');
    assert.match(await page.getByLabel('Amount per person (EUR)').getAttribute('aria-describedby'), /card-hint/);

    // Lower, then raise back up to the hold: sent without asking Stripe for a card.
    await forgetCalls(page);
    await page.getByLabel('Amount per person (EUR)').fill('200');
    await page.getByRole('button', { name: 'Change my bid' }).click();
    await changedTo(page, 'New offer: €200.00 per person, €400.00 in all');
    await page.getByLabel('Amount per person (EUR)').fill('300');
    await page.getByRole('button', { name: 'Change my bid' }).click();
    await changedTo(page, 'New offer: €300.00 per person, €600.00 in all');
    // Typed as a person types it, the amount is read as the server reads it.
    await page.getByLabel('Amount per person (EUR)').fill('250 EUR');
    await page.getByRole('button', { name: 'Change my bid' }).click();
    await changedTo(page, 'New offer: €250.00 per person, €500.00 in all');
    assert.ok(!(await stripeCalls(page)).includes('submit'), 'Stripe was not asked for a card');

    // Above the maximum: the server's answer about the amount, no card asked for first.
    await forgetCalls(page);
    await page.getByLabel('Amount per person (EUR)').fill('1200');
    await page.getByRole('button', { name: 'Change my bid' }).click();
    await page.getByText(/between €100\.00 and €1,000\.00 per person\. Nothing was changed/).waitFor();
    await cardMounted(page);
    assert.ok(!(await stripeCalls(page)).includes('submit'), 'Stripe was not asked for a card');

    // Above the hold with no card (1,000 per person, as the server reads it too): the card
    // section opens, the element says what is missing, and nothing is sent.
    await page.goto(status);
    await cardMounted(page);
    await forgetCalls(page);
    await page.getByLabel('Amount per person (EUR)').fill('1,000');
    await page.getByRole('button', { name: 'Change my bid' }).click();
    await page.getByText('Your card number is incomplete.').waitFor();
    assert.deepEqual(await stripeCalls(page), ['update', 'submit']);
    await page.goto(status);
    await cardMounted(page);
    assert.match(await facts(page), /€250\.00/, 'the offer is unchanged');

    // With the card: a new hold for the new total, and the hint follows it.
    await forgetCalls(page);
    await page.getByLabel('Amount per person (EUR)').fill('350');
    await page.locator('details summary').click();
    await page.getByLabel('Card (Stripe test double)').fill('pm_card_visa');
    await page.getByRole('button', { name: 'Change my bid' }).click();
    await changedTo(page, 'New offer: €350.00 per person, €700.00 in all');
    assert.deepEqual((await stripeCalls(page)).slice(0, 3), ['update', 'submit', 'createPaymentMethod']);
    assert.match(await hint.textContent(), /authorised for €700\.00 \(€350\.00 per person\)/);
  } finally {
    await browser.close();
  }
});
