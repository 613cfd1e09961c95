// The traveller's journey in Debian's Chromium at 390x844, driven by tests/traveller_e2e.rs,
// which starts the server, creates the lot and bookings, and runs the award between the two
// phases (SURCLASS_E2E_PHASE = bidding, then outcome). Every page is checked with axe-core
// (no serious or critical violation) and must transfer under 60 KB.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { baseUrl, openBrowser, screenshotter, seriousViolations, transferredBytes } from './lib/browser.mjs';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run this through cargo test --test traveller_e2e`);
  return value;
};
const phase = env('SURCLASS_E2E_PHASE');
const lot = env('SURCLASS_E2E_LOT');
const winner = { reference: env('SURCLASS_E2E_WINNER_REF'), lastName: env('SURCLASS_E2E_WINNER_NAME') };
const loser = { reference: env('SURCLASS_E2E_LOSER_REF'), lastName: env('SURCLASS_E2E_LOSER_NAME') };
const MAX_BYTES = 60 * 1000;
const shot = screenshotter(phase === 'bidding' ? 'traveller' : 'traveller-outcome');

/** axe finds nothing serious, and the page loaded under 60 KB. */
async function check(page, name, { url } = {}) {
  if (url) {
    const bytes = await transferredBytes(page, url);
    console.log(`${name}: ${bytes} bytes transferred`);
    assert.ok(bytes < MAX_BYTES, `${name}: ${bytes} bytes transferred`);
  }
  const violations = await seriousViolations(page);
  assert.deepEqual(violations, [], `${name}: accessibility`);
  // Usable at 360 px: nothing wider than the screen.
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `${name}: ${overflow}px wider than the screen`);
  await shot(page, name);
}

async function signIn(page, who) {
  await page.getByLabel('Booking reference').fill(who.reference);
  await page.getByLabel('Last name').fill(who.lastName);
  await page.getByRole('button', { name: 'See my upgrade offers' }).click();
  await page.waitForURL('**/offers');
}

async function fillCard(page, number = '4242 4242 4242 4242') {
  await page.getByLabel('Card number').fill(number);
  await page.getByLabel('Expiry date').fill('12/30');
  await page.getByLabel('Security code').fill('123');
}

const moneyText = async (page, selector) => (await page.locator(selector).first().textContent()).trim();

if (phase === 'bidding') {
  test('a traveller signs in, bids, changes, withdraws and bids again on a phone', async () => {
    const { browser, page } = await openBrowser();
    // No CDN, font or script from elsewhere (the simulated gateway needs none).
    const origins = new Set();
    page.on('request', (request) => origins.add(new URL(request.url()).origin));
    try {
      await check(page, 'sign-in', { url: `${baseUrl()}/` });

      // A wrong pair: a clear message on the same screen, nothing else.
      await page.getByLabel('Booking reference').fill(winner.reference);
      await page.getByLabel('Last name').fill('Smith');
      await page.getByRole('button', { name: 'See my upgrade offers' }).click();
      await page.getByRole('alert').waitFor();
      assert.match(await page.getByRole('alert').textContent(), /No booking matches this reference and last name/);
      assert.equal(await page.evaluate(() => document.activeElement.id), 'problem', 'focus moves to the message');
      await check(page, 'sign-in-wrong-pair');

      await signIn(page, winner);
      await check(page, 'offers', { url: `${baseUrl()}/offers` });
      const card = page.locator('li.card', { hasText: 'Business instead of Economy' });
      assert.match(await card.textContent(), /€100\.00 – €1,000\.00/);
      assert.match(await card.textContent(), /Bidding closes/);

      // The bid screen: slider and number field in step, the party's total live.
      await card.getByRole('link', { name: 'Make an offer' }).click();
      await page.waitForURL(`**/offers/${lot}`);
      const amount = page.getByLabel('Amount per person (EUR)');
      const slider = page.getByLabel('Choose with the slider');
      await slider.focus();
      await page.keyboard.press('ArrowRight');
      await page.keyboard.press('ArrowRight');
      assert.equal(await amount.inputValue(), '102');
      assert.equal(await moneyText(page, '#total'), '€204.00');
      await amount.fill('300');
      assert.equal(await slider.inputValue(), '300');
      assert.equal(await moneyText(page, '#total'), '€600.00');
      await fillCard(page);
      // Keyboard order follows the screen: amount, slider, card number, expiry, code, button.
      await amount.focus();
      const order = [];
      for (let i = 0; i < 5; i += 1) {
        await page.keyboard.press('Tab');
        order.push(await page.evaluate(() => document.activeElement.id || document.activeElement.textContent.trim()));
      }
      assert.deepEqual(order, ['slider', 'card_number', 'card_expiry', 'card_cvc', 'Place my bid']);
      await check(page, 'bid-screen', {});
      const bidScreenBytes = await transferredBytes(page, page.url());
      console.log(`bid-screen: ${bidScreenBytes} bytes transferred`);
      assert.ok(bidScreenBytes < MAX_BYTES, `bid screen: ${bidScreenBytes} bytes`);
      await page.getByLabel('Amount per person (EUR)').fill('300');
      await fillCard(page);
      await page.getByRole('button', { name: 'Place my bid' }).click();

      // The confirmation says what happens next.
      await page.waitForURL('**/bids/**');
      const notice = page.locator('#notice');
      assert.match(await notice.textContent(), /Your bid is in/);
      assert.match(await notice.textContent(), /Bidding closes on .* CET/);
      assert.match(await notice.textContent(), /authorised for €600\.00 .* charged only if the upgrade is confirmed/);
      assert.match(await notice.textContent(), /change or withdraw your bid here/);
      const statusUrl = page.url().split('?')[0];
      await check(page, 'bid-placed');
      assert.ok((await transferredBytes(page, statusUrl)) < MAX_BYTES);

      // Change (lower needs no card again).
      await page.getByLabel('Amount per person (EUR)').fill('250');
      await page.getByRole('button', { name: 'Change my bid' }).click();
      await page.waitForURL('**done=changed');
      assert.match(await page.locator('#notice').textContent(), /New offer: €250\.00 per person, €500\.00 in all/);
      assert.match(await page.locator('.timeline').textContent(), /Bid changed/);
      await check(page, 'bid-changed');

      // Withdraw, then bid again.
      await page.getByRole('button', { name: 'Withdraw my bid' }).click();
      await page.waitForURL('**done=withdrawn');
      assert.match(await page.locator('#notice').textContent(), /Nothing will be charged/);
      await check(page, 'bid-withdrawn');
      await page.getByRole('link', { name: 'Bid again' }).click();
      await page.waitForURL(`**/offers/${lot}`);
      await page.getByLabel('Amount per person (EUR)').fill('450');
      await fillCard(page);
      await page.getByRole('button', { name: 'Place my bid' }).click();
      await page.waitForURL('**done=placed');
      assert.match(await page.locator('[data-status]').textContent(), /In the running/);

      // Out of the range: told on the same screen, nothing changed.
      await page.getByLabel('Amount per person (EUR)').fill('5000');
      await page.getByRole('button', { name: 'Change my bid' }).click();
      await page.getByRole('alert').waitFor();
      assert.match(await page.getByRole('alert').textContent(), /between €100\.00 and €1,000\.00 per person\. Nothing was changed/);
      assert.equal(await page.getByLabel('Amount per person (EUR)').getAttribute('aria-invalid'), 'true');
      await check(page, 'out-of-range');
      await page.goto(statusUrl);
      assert.match(await page.locator('.facts').first().textContent(), /€450\.00/);

      // French through the switch: words, dates and money.
      await page.getByRole('link', { name: 'Français' }).click();
      await page.waitForURL(statusUrl);
      assert.equal(await page.getAttribute('html', 'lang'), 'fr');
      assert.match(await page.locator('h1').textContent(), /Affaires au lieu de Économie/);
      assert.match(await page.locator('.facts').first().textContent(), /450,00\u00a0€/);
      assert.match(await page.locator('.facts').first().textContent(), /900,00\u00a0€/);
      await check(page, 'status-french');
      await page.goto(`${baseUrl()}/offers`);
      assert.match(await page.locator('h1').textContent(), /Vos offres de surclassement/);
      await check(page, 'offers-french');
      await page.getByRole('link', { name: 'English' }).click();
      await page.waitForURL('**/offers');
      assert.equal(await page.getAttribute('html', 'lang'), 'en');
      assert.deepEqual([...origins], [new URL(baseUrl()).origin], 'every request stays on this server');
    } finally {
      await browser.close();
    }
  });

  test('every page fits a 360 px wide phone', async () => {
    const { browser, page } = await openBrowser({ width: 360, height: 740 });
    try {
      await page.goto(`${baseUrl()}/`);
      await check(page, 'narrow-sign-in');
      await signIn(page, winner);
      await check(page, 'narrow-offers');
      await page.getByRole('link', { name: 'See or change my bid' }).first().click();
      await page.waitForURL('**/bids/**');
      await check(page, 'narrow-status');
    } finally {
      await browser.close();
    }
  });
} else if (phase === 'outcome') {
  test('after the award the winner sees the charge and the other traveller the released hold', async () => {
    const { browser, page } = await openBrowser();
    try {
      await page.goto(`${baseUrl()}/`);
      await signIn(page, winner);
      await page.getByRole('link', { name: 'See or change my bid' }).click();
      await page.waitForURL('**/bids/**');
      const outcome = await page.locator('[data-outcome]').textContent();
      assert.match(outcome, /Upgrade confirmed for 2 people and charged €900\.00 \(€450\.00 per person\)/);
      const timeline = await page.locator('.timeline').textContent();
      for (const step of ['Bid received', 'Bid changed', 'Bid withdrawn', 'Bidding closed', 'Won', 'Charged']) {
        assert.ok(timeline.includes(step), `winner's timeline has "${step}": ${timeline}`);
      }
      assert.equal(await page.getByRole('button', { name: 'Change my bid' }).count(), 0, 'no change after the close');
      await check(page, 'winner-charged', { url: page.url() });
    } finally {
      await browser.close();
    }

    const other = await openBrowser();
    try {
      await other.page.goto(`${baseUrl()}/`);
      await signIn(other.page, loser);
      await other.page.getByRole('link', { name: 'See or change my bid' }).click();
      await other.page.waitForURL('**/bids/**');
      assert.match(await other.page.locator('[data-outcome]').textContent(), /Not successful: the hold on your card is released and nothing was charged/);
      assert.ok((await other.page.locator('[data-reason]').textContent()).length > 10, 'a reason in plain words');
      assert.match(await other.page.locator('.timeline').textContent(), /Hold released/);
      await check(other.page, 'other-not-successful', { url: other.page.url() });
    } finally {
      await other.browser.close();
    }
  });
} else {
  throw new Error(`unknown SURCLASS_E2E_PHASE ${phase}`);
}
