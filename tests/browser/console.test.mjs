// The owner's console in Debian's chromium, driven by playwright-core, every
// step found by its visible label or role as an owner would find it, against
// the real lockgate and Redis that tests/integration/test_console_browser.c
// started (their addresses and the accounts it made are in $LG_CONSOLE_INFO).
// axe-core checks every page; screenshots of every page at 1280 and 375 px
// go to the build's console-screenshots/.
import { test as nodeTest, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';

const require = createRequire(import.meta.url);
const AXE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const info = JSON.parse(readFileSync(process.env.LG_CONSOLE_INFO, 'utf8'));
const A = info.alpha, B = info.beta;
const [north, east, river] = A.facilities;
const CONSOLE = info.admin_url + '/console/';

let browser, ctx, page;
// one step at a time, each bounded
const test = (name, fn) => nodeTest(name, { timeout: 60000 }, fn);
const keys = {}; // name -> {key_id, secret}

before(async () => {
  mkdirSync(info.screenshots, { recursive: true });
  // launch() gives every run a fresh temporary profile (user-data dir).
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--no-first-run'],
  });
  ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  ctx.setDefaultTimeout(10000);
  page = await ctx.newPage();
  page.on('pageerror', (e) => console.error('page error:', e.message));
});

after(async () => { if (browser) await browser.close(); });

// ---- helpers ----

async function axe(what) {
  // evaluated over the DevTools protocol: the page's CSP (no inline script) stays as served
  if (!(await page.evaluate(() => !!window.axe))) await page.evaluate(AXE);
  const r = await page.evaluate(async () => await window.axe.run(document, { resultTypes: ['violations'] }));
  const bad = r.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(bad.map((v) => v.id + ': ' + v.nodes.map((n) => n.target.join(' ')).join(', ')), [],
    'axe on ' + what);
}

async function shots(name) {
  for (const width of [1280, 375]) {
    await page.setViewportSize({ width, height: width === 375 ? 812 : 800 });
    await page.waitForTimeout(50); // one frame for the layout
    await page.screenshot({ path: `${info.screenshots}/${name}-${width}.png`, fullPage: true });
    // responsive: nothing wider than the screen
    const wide = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(wide <= width, `${name} is ${wide} px wide at ${width}`);
  }
  await page.setViewportSize({ width: 1280, height: 800 });
}

async function check(name) { await axe(name); await shots(name); }

// The dialog's close event (which returns focus) comes a task after close().
async function focusOn(text) {
  await page.waitForFunction((t) => document.activeElement && document.activeElement.textContent === t, text, { timeout: 2000 })
    .catch(async () => assert.fail(`focus is on "${await page.evaluate(() => document.activeElement.textContent.slice(0, 40))}", not "${text}"`));
}

function basic(k) { return 'Basic ' + Buffer.from(k.key_id + ':' + k.secret).toString('base64'); }

async function pub(k, path) {
  const r = await fetch(info.public_url + path, { headers: { Authorization: basic(k) } });
  let body = null;
  try { body = await r.json(); } catch (e) { body = null; }
  return { status: r.status, body };
}

// Polls the public API until WANT(answer) holds, for at most MS (times the
// harness's $ITEST_SLOW_FACTOR, for a lockgate under a slow wrapper).
const SLOW = Number(process.env.ITEST_SLOW_FACTOR || 1);
async function within(ms, k, path, want) {
  const end = Date.now() + ms * SLOW;
  let last;
  do {
    last = await pub(k, path);
    if (want(last)) return last;
    await new Promise((res) => setTimeout(res, 20));
  } while (Date.now() < end);
  assert.fail(`${path}: still ${last.status} ${JSON.stringify(last.body)} after ${ms} ms`);
}

async function adminToken(method, path) {
  const r = await fetch(info.admin_url + path, { method, headers: { Authorization: 'Bearer ' + info.token } });
  return r.json();
}

async function signIn(p, email, password) {
  await p.getByLabel('Email').fill(email);
  await p.getByLabel('Password').fill(password);
  await p.getByRole('button', { name: 'Sign in' }).click();
}

const dialog = (name) => page.getByRole('dialog', { name });

async function createKey(name, facilities) {
  await page.getByRole('button', { name: 'Create API Key' }).click();
  const d = dialog('Create API Key');
  await d.getByLabel('Name').fill(name);
  if (facilities) {
    await d.getByRole('switch', { name: 'All Facilities' }).click();
    for (const f of facilities) await d.getByLabel(f.name).check();
  }
  await d.getByRole('button', { name: 'Save & Submit' }).click();
  await d.getByRole('heading', { name: 'Your new API key' }).waitFor();
  const key_id = await d.locator('#created-key').textContent();
  const secret = await d.locator('#created-secret').textContent();
  return { d, key: { key_id, secret } };
}

// ---- the owner's steps ----

test('sign in', async () => {
  await page.goto(CONSOLE);
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  await check('sign-in');
  await signIn(page, A.email, A.password);
  await page.getByRole('heading', { name: 'Integrations' }).waitFor();
  assert.equal(await page.getByRole('tab', { name: 'API Settings' }).getAttribute('aria-selected'), 'true');
  await page.getByText('No API keys yet').waitFor();
  await check('api-settings-empty');
});

test('create a key on All Facilities and one on two facilities', async () => {
  await page.getByRole('button', { name: 'Create API Key' }).click();
  const d = dialog('Create API Key');
  await d.getByLabel('Name').fill('Call Center');
  assert.equal(await d.getByRole('switch', { name: 'All Facilities' }).getAttribute('aria-checked'), 'true');
  await check('create-key');
  await d.getByRole('button', { name: 'Save & Submit' }).click();
  await d.getByRole('heading', { name: 'Your new API key' }).waitFor();
  await d.getByText('send them to one party only').waitFor();
  await check('key-created');
  keys.cc = { key_id: await d.locator('#created-key').textContent(), secret: await d.locator('#created-secret').textContent() };
  assert.match(keys.cc.key_id, /^lk_/);
  assert.match(keys.cc.secret, /^ls_/);
  await d.getByRole('button', { name: 'Done' }).click();
  // focus is back on the button that opened the dialog
  await focusOn('Create API Key');

  const two = await createKey('Night Desk', [north, east]);
  keys.nd = two.key;
  await two.d.getByRole('button', { name: 'Done' }).click();
  const rows = page.getByRole('table', { name: 'API keys' }).getByRole('row');
  await page.getByRole('button', { name: 'Night Desk' }).waitFor();
  assert.equal(await rows.count(), 3); // header + 2
  const scope = await page.getByRole('row', { name: /Night Desk/ }).getByRole('cell').nth(3).textContent();
  assert.deepEqual(scope.split(', ').sort(), [east.name, north.name]);
  await check('api-settings');
});

test('All Facilities off and no facility is refused next to the field; nothing is created', async () => {
  const before = (await adminToken('GET', `/admin/v1/accounts/${A.account_id}/keys`)).keys.length;
  await page.getByRole('button', { name: 'Create API Key' }).click();
  const d = dialog('Create API Key');
  await d.getByLabel('Name').fill('Nowhere');
  await d.getByRole('switch', { name: 'All Facilities' }).click();
  assert.equal(await d.getByRole('switch', { name: 'All Facilities' }).getAttribute('aria-checked'), 'false');
  await d.getByRole('button', { name: 'Save & Submit' }).click();
  const err = d.getByRole('group', { name: 'Facilities' }).getByText(/at least one facility/);
  await err.waitFor();
  await check('create-key-error');
  // and an empty name is refused next to the Name field
  await d.getByLabel('Name').fill('');
  await d.getByLabel(north.name).check();
  await d.getByRole('button', { name: 'Save & Submit' }).click();
  await d.locator('#create-name-error').getByText(/^Name:/).waitFor();
  assert.equal(await d.getByLabel('Name').getAttribute('aria-invalid'), 'true');
  await d.getByRole('button', { name: 'Cancel' }).click();
  const after = (await adminToken('GET', `/admin/v1/accounts/${A.account_id}/keys`)).keys.length;
  assert.equal(after, before);
});

test('Show Key shows a secret that authenticates a real request', async () => {
  await page.getByRole('button', { name: 'Call Center' }).click();
  const d = dialog('Call Center');
  await d.getByText(keys.cc.key_id).waitFor();
  await check('key-window');
  // the keyboard stays inside the window: Tab past the last control comes back to the first
  for (let i = 0; i < 20; i++) {
    await page.keyboard.press('Tab');
    assert.ok(await d.evaluate((el) => el.contains(document.activeElement)), 'focus left the key window');
  }
  await page.keyboard.press('Shift+Tab');
  assert.ok(await d.evaluate((el) => el.contains(document.activeElement)), 'focus left the key window');
  assert.match(await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle), /solid/); // visible focus
  await d.getByRole('button', { name: 'Show Key' }).click();
  await d.getByRole('button', { name: 'Copy API Secret' }).waitFor();
  const secret = (await d.locator('#key-secret').textContent()).trim();
  assert.equal(secret, keys.cc.secret);
  await shots('key-window-shown');
  const r = await pub({ key_id: keys.cc.key_id, secret }, '/v1/facilities');
  assert.equal(r.status, 200);
  assert.equal(r.body.facilities.length, 3);
  const audit = await adminToken('GET', `/admin/v1/audit?key=${keys.cc.key_id}&limit=5`);
  const rev = audit.entries.find((e) => e.action === 'key.revealed');
  assert.equal(rev.actor, A.email);
});

test('Lock: the public API refuses the key within a second; Unlock: served again', async () => {
  const d = dialog('Call Center');
  await d.getByRole('button', { name: 'Lock', exact: true }).click();
  await d.getByRole('button', { name: 'Unlock', exact: true }).waitFor();
  const r = await within(1000, keys.cc, '/v1/facilities', (x) => x.status === 403);
  assert.equal(r.body.error.code, 'key_disabled');
  await shots('key-window-locked');
  await d.getByRole('button', { name: 'Unlock', exact: true }).click();
  await d.getByRole('button', { name: 'Lock', exact: true }).waitFor();
  await within(1000, keys.cc, '/v1/facilities', (x) => x.status === 200);
  await d.getByRole('button', { name: 'Close' }).click();
  await focusOn('Call Center');
});

test("changing a key's facilities: the removed facility answers 404 to that key", async () => {
  const ok = await pub(keys.nd, '/v1/facilities');
  assert.deepEqual(ok.body.facilities.map((f) => f.facility_id).sort(), [north.facility_id, east.facility_id].sort());
  await page.getByRole('button', { name: 'Night Desk' }).click();
  const d = dialog('Night Desk');
  assert.equal(await d.getByRole('switch', { name: 'All Facilities' }).getAttribute('aria-checked'), 'false');
  await d.getByLabel(east.name).uncheck();
  await d.getByRole('button', { name: 'Save', exact: true }).click();
  await page.getByRole('status').getByText('Facilities of Night Desk saved.').waitFor();
  const r = await within(1000, keys.nd, `/v1/facilities/${east.facility_id}`, (x) => x.status === 404);
  assert.equal(r.body.error.code, 'not_found');
  const list = await pub(keys.nd, '/v1/facilities');
  assert.deepEqual(list.body.facilities.map((f) => f.facility_id), [north.facility_id]);
  // unticking the last one is refused next to the list
  await d.getByLabel(north.name).uncheck();
  await d.getByRole('button', { name: 'Save', exact: true }).click();
  await d.getByRole('group', { name: 'Facilities' }).getByText(/at least one facility/).waitFor();
  await d.getByRole('button', { name: 'Close' }).click();
});

test('exclude a facility: it vanishes from the public API and the feed says facility.excluded; include it again', async () => {
  // the OverlockRelease feed, open before the change
  const ac = new AbortController();
  const feed = await fetch(info.public_url + '/v1/feed/facilities/stream', {
    headers: { Authorization: basic(info.feed_key) }, signal: ac.signal,
  });
  assert.equal(feed.status, 200);
  const reader = feed.body.getReader();
  let seen = '';
  const excluded = (async () => {
    const dec = new TextDecoder();
    while (!seen.includes('event: facility.excluded')) {
      const { value, done } = await reader.read();
      if (done) break;
      seen += dec.decode(value);
    }
    return seen;
  })();

  await page.getByRole('tab', { name: 'Facilities' }).click();
  const table = page.getByRole('table', { name: 'Facilities' });
  await table.getByText(river.facility_id).waitFor();
  await table.getByRole('button', { name: `Copy Facility ID of ${river.name}` }).waitFor();
  await check('facilities');
  const sw = table.getByRole('switch', { name: `Include in API: ${river.name}` });
  assert.equal(await sw.getAttribute('aria-checked'), 'true');
  await sw.click();
  const c = page.getByRole('dialog', { name: `Exclude ${river.name} from the API?` });
  await c.getByText('also removes it from OverlockRelease').waitFor();
  await check('facilities-confirm');
  await c.getByRole('button', { name: 'Exclude' }).click();
  await page.waitForFunction((id) => document.querySelector(`[aria-label="Include in API: ${id}"]`).getAttribute('aria-checked') === 'false', river.name);
  await within(1000, keys.cc, '/v1/facilities', (x) => x.status === 200 && !x.body.facilities.some((f) => f.facility_id === river.facility_id));
  const text = await Promise.race([excluded, new Promise((res) => setTimeout(() => res(seen), 2000))]);
  ac.abort();
  excluded.catch(() => {});
  assert.match(text, new RegExp(`event: facility.excluded\\ndata: .*"facility_id":"${river.facility_id}"`));

  await sw.click(); // including needs no confirmation
  await page.waitForFunction((id) => document.querySelector(`[aria-label="Include in API: ${id}"]`).getAttribute('aria-checked') === 'true', river.name);
  await within(1000, keys.cc, '/v1/facilities', (x) => x.status === 200 && x.body.facilities.some((f) => f.facility_id === river.facility_id));
});

test('Rotate (grace: at once) gives a new secret and stops the old key; Delete asks first', async () => {
  await page.getByRole('tab', { name: 'API Settings' }).click();
  const t = await createKey('Temporary', null);
  await t.d.getByRole('button', { name: 'Done' }).click();
  await page.getByRole('button', { name: 'Temporary' }).click();
  const d = dialog('Temporary');
  await d.getByLabel('Old key stops').selectOption({ label: 'at once' });
  await d.getByRole('button', { name: 'Rotate' }).click();
  await page.getByRole('dialog', { name: 'Rotate Temporary?' }).getByRole('button', { name: 'Rotate' }).click();
  const c = dialog('Create API Key');
  await c.getByRole('heading', { name: 'Your new API key' }).waitFor();
  const fresh = { key_id: await c.locator('#created-key').textContent(), secret: await c.locator('#created-secret').textContent() };
  await c.getByRole('button', { name: 'Done' }).click();
  await within(1000, t.key, '/v1/facilities', (x) => x.status === 403);
  await within(1000, fresh, '/v1/facilities', (x) => x.status === 200);
  await page.getByRole('row', { name: new RegExp(fresh.key_id) }).getByRole('button', { name: 'Temporary' }).click();
  await dialog('Temporary').getByRole('button', { name: 'Delete' }).click();
  const confirm = page.getByRole('dialog', { name: 'Delete Temporary?' });
  await confirm.getByRole('button', { name: 'Cancel' }).click();
  await dialog('Temporary').getByRole('button', { name: 'Delete' }).click();
  await check('key-delete-confirm');
  await confirm.getByRole('button', { name: 'Delete' }).click();
  await page.getByRole('status').getByText('The key was deleted.').waitFor();
  await within(1000, fresh, '/v1/facilities', (x) => x.status === 401);
});

test('Activity: the account audit, newest first, filterable by key', async () => {
  await page.getByRole('tab', { name: 'Activity' }).click();
  const table = page.getByRole('table', { name: /Recent activity/ });
  await table.getByText('Secret shown').first().waitFor();
  await check('activity');
  const first = table.getByRole('row').nth(1);
  assert.match(await first.textContent(), /Key deleted/); // the last step before
  await page.getByLabel('Key', { exact: true }).selectOption({ label: `Night Desk (${keys.nd.key_id})` });
  await page.waitForFunction(() => ![...document.querySelectorAll('#activity tr')].some((r) => r.textContent.includes('Secret shown')));
  const rows = await table.getByRole('row').allTextContents();
  assert.ok(rows.slice(1).every((r) => r.includes(keys.nd.key_id)), rows.join('\n'));
  assert.ok(rows.some((r) => r.includes('Key changed') && r.includes(A.email)));
  await page.getByRole('tab', { name: 'API Settings' }).click();
});

test("a second account's user cannot see or change the first account's keys", async () => {
  const ctx2 = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const p2 = await ctx2.newPage();
  await p2.goto(CONSOLE);
  await signIn(p2, B.email, B.password);
  await p2.getByRole('heading', { name: 'Integrations' }).waitFor();
  await p2.getByText('No API keys yet').waitFor();
  assert.equal(await p2.getByRole('button', { name: 'Call Center' }).count(), 0);
  await p2.getByRole('tab', { name: 'Facilities' }).click();
  await p2.getByText(B.facilities[0].name).waitFor();
  assert.equal(await p2.getByText(north.name).count(), 0);
  // the admin API itself, with this session (cookie + CSRF token)
  const csrf = (await ctx2.cookies()).find((c) => c.name === 'lg_csrf').value;
  const h = { 'X-CSRF-Token': csrf, 'Content-Type': 'application/json' };
  const api = p2.request;
  assert.equal((await api.get(info.admin_url + `/admin/v1/keys/${keys.cc.key_id}`)).status(), 404);
  assert.equal((await api.get(info.admin_url + `/admin/v1/accounts/${A.account_id}/keys`)).status(), 404);
  assert.equal((await api.post(info.admin_url + `/admin/v1/keys/${keys.cc.key_id}/disable`, { headers: h, data: {} })).status(), 404);
  assert.equal((await api.post(info.admin_url + `/admin/v1/keys/${keys.cc.key_id}/reveal`, { headers: h, data: {} })).status(), 404);
  assert.equal((await api.patch(info.admin_url + `/admin/v1/facilities/${north.facility_id}`, { headers: h, data: { included: false } })).status(), 404);
  assert.equal((await api.post(info.admin_url + `/admin/v1/accounts/${A.account_id}/keys`, { headers: h, data: { name: 'x', all_facilities: true } })).status(), 404);
  assert.equal((await api.get(info.admin_url + '/admin/v1/accounts')).status(), 403);
  assert.equal((await pub(keys.cc, '/v1/facilities')).status, 200); // untouched
  await ctx2.close();
});

test('a request without the CSRF token is refused', async () => {
  const api = page.request;
  const r = await api.post(info.admin_url + `/admin/v1/keys/${keys.cc.key_id}/disable`, { data: '' });
  assert.equal(r.status(), 403);
  assert.equal((await r.json()).error.code, 'csrf_invalid');
  assert.equal((await pub(keys.cc, '/v1/facilities')).status, 200);
});

test('sign-out ends the session', async () => {
  const cookies = await ctx.cookies();
  const session = cookies.find((c) => c.name === 'lg_session');
  assert.ok(session.httpOnly);
  assert.equal(session.sameSite, 'Strict');
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  // the old cookie is dead on the server, not just forgotten by the browser
  const r = await fetch(info.admin_url + `/admin/v1/accounts/${A.account_id}/keys`, {
    headers: { Cookie: `lg_session=${session.value}` },
  });
  assert.equal(r.status, 401);
  await page.reload();
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();
});

test('wrong passwords are throttled', async () => {
  for (let i = 0; i < 5; i++) {
    await signIn(page, A.email, 'not the password ' + i);
    await page.getByRole('alert').getByText('The email or password is wrong.').waitFor();
    await page.evaluate(() => { document.getElementById('signin-error').textContent = ''; });
  }
  await signIn(page, A.email, A.password); // even the right one now
  await page.getByRole('alert').getByText(/Too many failed sign-ins. Try again in \d+ (seconds|minutes)\./).waitFor();
  await check('sign-in-throttled');
  assert.equal(await page.getByRole('heading', { name: 'Integrations' }).isVisible(), false);
});
