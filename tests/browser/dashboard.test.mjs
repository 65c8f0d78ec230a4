// SPDX-License-Identifier: Apache-2.0
// The dashboard in a real browser: playwright-core drives Debian's chromium
// (headless) against the real binary serving web/. Sign in through the form
// (the session cookie is stored HttpOnly, Secure, SameSite=Strict over
// http://127.0.0.1), create an API key (shown once), use it with a real MCP
// SDK client, revoke it in the page (the client is refused afterwards), sign
// out (the old session no longer works). Also: a wrong password shows the
// generic error, and the page's CSP blocks inline script. Skipped, saying
// so, when /usr/bin/chromium is missing.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { addUser, session } from '../integration/accounts.mjs';
import { ROOT, cleanup, connect, rawRequest, servers, sleep, startGateway, textOf } from '../integration/lib.mjs';

const CHROMIUM = '/usr/bin/chromium';
const EMAIL = 'dana@example.com';
const PASSWORD = 'granite-koala-5150';
const skip = fs.existsSync(CHROMIUM) ? false : `${CHROMIUM} is missing: browser tests skipped`;

describe('dashboard in chromium', { skip }, () => {
  let gw;
  let browser;
  let page;
  let context;

  before(async () => {
    const { chromium } = await import('playwright-core');
    gw = await startGateway({ config: {
      dashboard: { bcrypt_cost: 4, web_dir: path.join(ROOT, 'web') },
      mcpServers: { echo: servers.echo('echo') },
      endpoints: { team: { servers: ['echo'] } },
    } });
    addUser(gw, EMAIL, PASSWORD);
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true,
      args: ['--no-sandbox', '--disable-dev-shm-usage'] });
    context = await browser.newContext();
    page = await context.newPage();
    page.setDefaultTimeout(15000);
  });
  after(async () => {
    if (browser) await browser.close();
    await cleanup();
  });

  test('a wrong password shows the generic error and sets no cookie', async () => {
    await page.goto(`${gw.url}/`);
    await page.fill('#email', EMAIL);
    await page.fill('#password', 'not-the-password-1');
    await page.click('#login-button');
    await page.waitForFunction(() => document.getElementById('login-error').textContent !== '');
    assert.equal(await page.textContent('#login-error'), 'invalid e-mail or password');
    assert.equal(await page.isHidden('#sso'), true, 'no single sign-on offered when none is configured');
    assert.equal((await context.cookies()).length, 0);
  });

  test('sign in, create a key, use it over MCP, revoke it, sign out', async () => {
    await page.fill('#email', EMAIL);
    await page.fill('#password', PASSWORD);
    await page.click('#login-button');
    await page.waitForSelector('#app-view:not([hidden])');
    assert.equal(await page.textContent('#who'), EMAIL);

    const [cookie] = await context.cookies();
    assert.equal(cookie.name, '__Host-tumiki_session');
    assert.equal(cookie.httpOnly, true);
    assert.equal(cookie.secure, true);
    assert.equal(cookie.sameSite, 'Strict');
    assert.equal(cookie.path, '/');
    assert.equal(await page.evaluate(() => document.cookie), '', 'scripts cannot read the session cookie');

    assert.equal(await page.textContent('#endpoints tbody tr td'), 'team');
    await page.fill('#key-name', 'from the browser');
    await page.selectOption('#key-endpoint', 'team');
    await page.click('#key-create');
    await page.waitForSelector('#new-key:not([hidden])');
    const key = (await page.textContent('#new-key-value')).trim();
    assert.match(key, /^tk_[0-9a-f]{16}_[0-9a-f]{64}$/);
    const keyId = key.slice(3, 19);
    await page.waitForSelector(`#keys tr[data-key-id="${keyId}"]`);

    const client = await connect(gw, { slug: 'team', token: key });
    const r = await client.callTool({ name: 'echo__echo', arguments: { text: 'via the dashboard key' } });
    assert.equal(textOf(r), 'via the dashboard key');
    await client.close();

    await page.click(`#keys tr[data-key-id="${keyId}"] button.revoke`);
    await page.waitForSelector(`#keys tr[data-key-id="${keyId}"].revoked`);
    let refused = false;
    for (let i = 0; i < 30 && !refused; i++) { // revocation reaches the key cache within a second
      await sleep(100);
      refused = await connect(gw, { slug: 'team', token: key }).then((c) => c.close().then(() => false), () => true);
    }
    assert.ok(refused, 'the revoked key is refused');

    await page.click('#logout');
    await page.waitForSelector('#login-view:not([hidden])');
    assert.equal((await session(gw, cookie.value)).status, 401, 'the old session is over');
    const after = await context.cookies();
    assert.equal(after.length, 0, 'the browser dropped the cookie');
    assert.ok(!gw.stderr().includes(key.slice(20)), 'the key secret is not in the log');
    assert.ok(!gw.stderr().includes(cookie.value), 'the session id is not in the log');
  });

  test('the page runs under a CSP that blocks inline script', async () => {
    const r = await rawRequest(`${gw.url}/`, { method: 'GET' });
    assert.match(r.headers['content-security-policy'], /default-src 'self'/);
    const ran = await page.evaluate(() => new Promise((resolve) => {
      window.__inline = false;
      document.addEventListener('securitypolicyviolation', () => resolve(window.__inline), { once: true });
      const s = document.createElement('script');
      s.textContent = 'window.__inline = true';
      document.body.append(s);
      setTimeout(() => resolve(window.__inline), 1000);
    }));
    assert.equal(ran, false);
  });
});
