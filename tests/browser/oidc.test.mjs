// SPDX-License-Identifier: Apache-2.0
// OpenID Connect sign-in against a local provider (npm oidc-provider, run
// with the Node 22 in node_modules by tests/fixtures/oidc-provider.mjs on
// 127.0.0.1), driven through its real login and consent pages by chromium:
// a user known by verified e-mail signs in and is linked by subject (RS256
// and ES256 providers); an identity with no user is refused (automatic
// accounts are off) and gets no session; a callback without the pre-login
// cookie or with a wrong state is refused; the client secret and the code
// never reach the log. Skipped, saying so, when /usr/bin/chromium is missing.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import readline from 'node:readline';
import { after, before, describe, test } from 'node:test';

import { session, tumiki } from '../integration/accounts.mjs';
import { ROOT, cleanup, rawRequest, startGateway } from '../integration/lib.mjs';

const CHROMIUM = '/usr/bin/chromium';
const NODE22 = path.join(ROOT, 'node_modules', '.bin', 'node');
const skip = fs.existsSync(CHROMIUM) ? false : `${CHROMIUM} is missing: browser tests skipped`;

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

async function startProvider(clientId, secret, redirect, alg, issuerPath = '') {
  const proc = spawn(NODE22, [path.join(ROOT, 'tests', 'fixtures', 'oidc-provider.mjs'), '0', clientId, secret,
    redirect, alg, issuerPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  proc.stderr.on('data', (d) => { err += d; });
  const line = await Promise.race([
    new Promise((resolve) => readline.createInterface({ input: proc.stdout }).once('line', resolve)),
    new Promise((_, reject) => setTimeout(() => reject(new Error(`provider did not start: ${err}`)), 15000)),
  ]);
  return { proc, issuer: line.trim() };
}

/** From the dashboard's sign-in page, through the provider's login and
 * consent pages as `login` (bounded). */
async function signInAt(page, gwUrl, login) {
  await page.goto(`${gwUrl}/`);
  await page.waitForSelector('#sso:not([hidden])');
  await Promise.all([page.waitForNavigation(), page.click('#sso-link')]);
  for (let i = 0; i < 6 && !page.url().startsWith(gwUrl); i++) {
    if (await page.$('input[name="login"]')) {
      await page.fill('input[name="login"]', login);
      await page.fill('input[name="password"]', 'anything');
    }
    await Promise.all([page.waitForNavigation(), page.click('button[type="submit"]')]);
  }
  await page.waitForLoadState('load');
}

// Issuers as real providers spell them: a bare origin (Google), one ending
// in '/' (Auth0: discovery drops the slash, ID tokens keep it), one with a
// path (Keycloak realms). The full set of cases runs on the first two.
const variants = [
  { alg: 'RS256', issuerPath: '', full: true },
  { alg: 'ES256', issuerPath: '', full: true },
  { alg: 'RS256', issuerPath: '/', full: false },
  { alg: 'ES256', issuerPath: '/realms/tumiki', full: false },
];

for (const { alg, issuerPath, full } of variants) {
  describe(`OpenID Connect sign-in (${alg}, issuer "<origin>${issuerPath}")`, { skip }, () => {
    let gw;
    let provider;
    let browser;
    const secret = crypto.randomBytes(24).toString('hex');

    before(async () => {
      const { chromium } = await import('playwright-core');
      const port = await freePort();
      const redirect = `http://127.0.0.1:${port}/auth/oidc/callback`;
      provider = await startProvider('tumiki-dashboard', secret, redirect, alg, issuerPath);
      assert.ok(provider.issuer.endsWith(issuerPath));
      process.env.TK_OIDC_SECRET = secret; // for the CLI below, which reads the same config
      gw = await startGateway({
        env: { TK_OIDC_SECRET: secret },
        config: {
          listen: `127.0.0.1:${port}`,
          outbound: { allow_cidrs: ['127.0.0.1/32'] },
          dashboard: { bcrypt_cost: 4, web_dir: path.join(ROOT, 'web') },
          oidc: { issuer: provider.issuer, client_id: 'tumiki-dashboard', client_secret_env: 'TK_OIDC_SECRET',
            redirect_uri: redirect },
        },
      });
      assert.equal(tumiki(gw, ['user', 'add', '--email', 'carol@example.com']).code, 0);
      browser = await chromium.launch({ executablePath: CHROMIUM, headless: true,
        args: ['--no-sandbox', '--disable-dev-shm-usage'] });
    });
    after(async () => {
      if (browser) await browser.close();
      provider?.proc.kill();
      await cleanup();
    });

    test('a user known by verified e-mail signs in, and again by subject', async () => {
      for (let round = 0; round < 2; round++) {
        const context = await browser.newContext();
        const page = await context.newPage();
        page.setDefaultTimeout(15000);
        await signInAt(page, gw.url, 'carol');
        await page.waitForSelector('#app-view:not([hidden])');
        assert.equal(await page.textContent('#who'), 'carol@example.com');
        const cookie = (await context.cookies()).find((c) => c.name === '__Host-tumiki_session');
        assert.ok(cookie && cookie.httpOnly && cookie.secure && cookie.sameSite === 'Strict');
        assert.equal((await session(gw, cookie.value)).status, 200);
        assert.ok(!(await context.cookies()).some((c) => c.name === '__Host-tumiki_sso'), 'pre-login cookie cleared');
        await context.close();
      }
      assert.ok(gw.logs().some((l) => /linked to its single sign-on identity/.test(l.msg)));
    });

    test('an identity with no user is refused and gets no session', { skip: !full }, async () => {
      const context = await browser.newContext();
      const page = await context.newPage();
      page.setDefaultTimeout(15000);
      await signInAt(page, gw.url, 'mallory');
      assert.match(page.url(), /\/\?sso=failed$/);
      await page.waitForFunction(() => document.getElementById('login-error').textContent !== '');
      assert.equal(await page.textContent('#login-error'), 'single sign-on failed');
      assert.ok(!(await context.cookies()).some((c) => c.name === '__Host-tumiki_session'));
      await context.close();
    });

    test('a callback without the pre-login cookie, or with a wrong state, is refused', { skip: !full }, async () => {
      const r1 = await rawRequest(`${gw.url}/auth/oidc/callback?code=abc&state=xyz`, { method: 'GET' });
      assert.equal(r1.status, 303);
      assert.equal(r1.headers.location, '/?sso=failed');
      const start = await rawRequest(`${gw.url}/auth/oidc/start`, { method: 'GET' });
      assert.equal(start.status, 302);
      const loc = new URL(start.headers.location);
      assert.equal(loc.origin, provider.issuer);
      assert.equal(loc.searchParams.get('code_challenge_method'), 'S256');
      assert.match(loc.searchParams.get('code_challenge'), /^[A-Za-z0-9_-]{43}$/);
      assert.ok(loc.searchParams.get('nonce') && loc.searchParams.get('state'));
      const pre = /^__Host-tumiki_sso=([0-9a-f]{64}); Path=\/; Secure; HttpOnly; SameSite=Lax; Max-Age=600$/
        .exec(start.headers['set-cookie'][0]);
      assert.ok(pre, start.headers['set-cookie'][0]);
      const wrong = await rawRequest(`${gw.url}/auth/oidc/callback?code=abc&state=${'A'.repeat(43)}`,
        { method: 'GET', headers: { Cookie: `__Host-tumiki_sso=${pre[1]}` } });
      assert.equal(wrong.headers.location, '/?sso=failed');
      const replay = await rawRequest(`${gw.url}/auth/oidc/callback?code=abc&state=${loc.searchParams.get('state')}`,
        { method: 'GET', headers: { Cookie: `__Host-tumiki_sso=${pre[1]}` } });
      assert.equal(replay.headers.location, '/?sso=failed', 'a pre-login is used once, even after a wrong state');
    });

    test('the client secret never reaches the log', () => {
      if (full) assert.ok(gw.stderr().includes('single sign-on refused'), 'the log was captured');
      assert.ok(gw.stderr().length > 0, 'the log was captured');
      assert.ok(!gw.stderr().includes(secret));
    });
  });
}
