// The operator console in Chromium, desktop size: sign in, create a lot (a field error first),
// open it, read a lot's bids, preview the policies, review an award (a winner taken out, then
// approved), import bookings with a bad row, cancel
// with the confirmation, see the dashboard's SVG charts; axe-core on every page.
// Run by tests/console_e2e.rs, which starts the server and seeds the lot with bids.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { baseUrl, openBrowser, screenshotter, seriousViolations } from './lib/browser.mjs';

const base = baseUrl();
const seededLot = process.env.SURCLASS_E2E_LOT_ID;
const reviewLot = process.env.SURCLASS_E2E_REVIEW_LOT_ID;
const shot = screenshotter('console');
let browser;
let page;

async function accessible(name) {
  await shot(page, name);
  const violations = await seriousViolations(page);
  assert.deepEqual(violations, [], `axe-core on ${name}`);
}

before(async () => {
  ({ browser, page } = await openBrowser({ width: 1280, height: 800 }));
});

after(async () => {
  await browser?.close();
});

test('sign in (a wrong password first)', async () => {
  await page.goto(`${base}/console/lots`);
  assert.match(page.url(), /\/console\/sign-in$/);
  await accessible('sign-in');
  await page.fill('#email', process.env.SURCLASS_E2E_EMAIL);
  await page.fill('#password', 'not the password');
  await page.click('button[type=submit]');
  await page.waitForSelector('#sign-in-error');
  assert.match(await page.textContent('#sign-in-error'), /not right.*After 5 wrong passwords in a row the account is locked for 15 minutes/s);
  await accessible('sign-in-wrong');
  await page.fill('#password', process.env.SURCLASS_E2E_PASSWORD);
  await page.click('button[type=submit]');
  await page.waitForURL(/\/console\/lots$/);
  assert.equal(await page.locator('h1').textContent(), 'Lots');
  await accessible('lots');
});

test('a page link the console did not make is refused, with a way back to the first page', async () => {
  await page.goto(`${base}/console/lots?after=not-a-cursor`);
  assert.match(await page.textContent('[role=alert]'), /not one this list made/);
  assert.equal(await page.locator('nav.pages a', { hasText: 'First page' }).count(), 1);
  await accessible('lots-bad-page-link');
  await page.goto(`${base}/console/audit?after=not-a-cursor`);
  assert.match(await page.textContent('[role=alert]'), /not one this log made/);
  assert.equal(await page.locator('nav.pages a', { hasText: 'Newest changes' }).count(), 1);
  await accessible('audit-bad-page-link');
  await page.goto(`${base}/console/bookings?after=not-a-cursor`);
  assert.match(await page.textContent('[role=alert]'), /not one this list made/);
  await accessible('bookings-bad-page-link');
  await page.goto(`${base}/console/lots`);
});

test('create a lot: a field error shown beside the field, then created and opened', async () => {
  await page.click('text=New lot');
  await page.waitForURL(/\/console\/lots\/new$/);
  await accessible('lot-new');
  await page.fill('#f-resource', 'AU205');
  // A travel day ahead of the close: bidding must close by the end of the service date.
  const travelDay = new Date(Date.now() + 40 * 86400 * 1000).toISOString().slice(0, 10);
  await page.fill('#f-service_date', travelDay);
  await page.fill('#f-from_class', 'economy');
  await page.fill('#f-to_class', 'business');
  await page.fill('#f-capacity', '3');
  await page.fill('#f-currency', 'EUR');
  await page.fill('#f-reserve', '950.00');
  await page.fill('#f-maximum', '900.00');
  const closes = new Date(Date.now() + 3 * 3600 * 1000).toISOString().slice(0, 16);
  await page.fill('#f-closes_at', closes);
  await page.click('button:has-text("Create lot")');
  await page.waitForSelector('#reserve-error');
  assert.match(await page.textContent('#reserve-error'), /950\.00 is above the maximum 900\.00/);
  assert.equal(await page.getAttribute('#f-reserve', 'aria-invalid'), 'true');
  await accessible('lot-new-error');
  await page.fill('#f-reserve', '150.00');
  await page.click('button:has-text("Create lot")');
  await page.waitForURL(/\/console\/lots\/lot_[a-z0-9]+\?done=created$/);
  assert.equal(await page.textContent('#lot-status'), 'draft');
  await page.click('button:has-text("Open for bidding")');
  await page.waitForURL(/done=opened$/);
  assert.equal(await page.textContent('#lot-status'), 'open');
  await accessible('lot-opened');
});

test("a lot's bids, sortable, and the policy preview", async () => {
  await page.goto(`${base}/console/lots/${seededLot}/bids`);
  const references = async () => page.locator('table.bids tbody tr td:first-child').allTextContents();
  assert.deepEqual(await references(), ['AB1234', 'CD5678', 'EF9012']);
  await page.click('th[data-sort=amount] a'); // flips to low → high
  assert.deepEqual(await references(), ['EF9012', 'CD5678', 'AB1234']);
  await accessible('bids');
  await page.click('text=What would each policy earn now');
  await page.waitForURL(/\/policies$/);
  assert.match(await page.textContent('tr[data-policy=priority] .revenue'), /600\.00 EUR/);
  assert.match(await page.textContent('tr[data-policy=uniform_price] .revenue'), /500\.00 EUR/);
  await accessible('policies');
});

test('an award waiting for review: a winner taken out with a reason, then approved', async () => {
  await page.goto(`${base}/console/lots/${reviewLot}`);
  await page.click('#awaiting-review a');
  await page.waitForSelector('#review-h');
  await accessible('award-review');
  await page.click('button:has-text("Take the ticked winners out")');
  await page.waitForSelector('#take-error');
  await accessible('award-review-refused');
  await page.check('fieldset input[name=take]');
  await page.fill('#take-reason', 'Travel document check failed');
  await page.click('button:has-text("Take the ticked winners out")');
  await page.waitForURL(/done=taken_out$/);
  assert.match(await page.textContent('.notice'), /Taken out of the award/);
  await page.click('button:has-text("Approve the award and charge 1 winner")');
  await page.waitForURL(/done=approved$/);
  assert.match(await page.textContent('#award-h'), /approved/);
  assert.equal(await page.locator('#review-h').count(), 0);
  await accessible('award-approved');
});

test('import bookings: a preview with the bad row, nothing imported until skipped', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'surclass-e2e-'));
  const file = path.join(dir, 'bookings.csv');
  writeFileSync(file, [
    'reference,last_name,party_size,email,eligible_lots',
    `GH3456,Dubois,2,dubois@example.com,${seededLot}`,
    `JK7890,Lee,12,lee@example.com,${seededLot}`,
  ].join('\n'));
  await page.goto(`${base}/console/bookings`);
  await accessible('bookings');
  await page.setInputFiles('#file', file);
  await page.click('button:has-text("Preview")');
  await page.waitForSelector('#preview-summary');
  assert.match(await page.textContent('#preview-summary'), /1 good row, 1 with errors/);
  assert.match(await page.textContent('tr[data-row="2"]'), /party_size: must be between 1 and 9/);
  await accessible('import-preview');
  await page.click('button:has-text("Import")');
  await page.waitForSelector('#import-error');
  assert.match(await page.textContent('#import-error'), /Nothing was imported/);
  await page.check('#skip_bad');
  await page.click('button:has-text("Import")');
  await page.waitForSelector('#import-result');
  assert.match(await page.textContent('#import-result'), /1 created.*1 bad rows skipped/);
  await accessible('bookings-imported');
  rmSync(dir, { recursive: true, force: true });
});

test('cancel a lot after a confirmation that counts the holds', async () => {
  await page.goto(`${base}/console/lots/${seededLot}`);
  await page.click('text=Cancel lot…');
  await page.waitForURL(/\/cancel$/);
  assert.match(await page.textContent('#cancel-impact'), /releases 3 card holds and refunds 0 charges/);
  await accessible('cancel-confirm');
  await page.fill('#reason', 'Aircraft change: no business cabin');
  await page.click('button.danger');
  await page.waitForURL(/done=cancelled$/);
  assert.equal(await page.textContent('#lot-status'), 'cancelled');
  await accessible('lot-cancelled');
});

test('the dashboard draws SVG charts, and the audit log lists the changes', async () => {
  await page.goto(`${base}/console/dashboard`);
  assert.ok(await page.locator('svg#bids-per-lot rect.bar').count() >= 1);
  assert.equal(await page.locator('svg#bid-position rect.bar').count(), 10);
  await accessible('dashboard');
  await page.goto(`${base}/console/audit`);
  for (const action of ['lot.created', 'lot.opened', 'bookings.imported', 'lot.cancelled']) {
    assert.ok(await page.locator(`tr[data-action="${action}"]`).count() >= 1, action);
  }
  await accessible('audit');
  await page.goto(`${base}/console/users`);
  await accessible('users');
});
