// SPDX-License-Identifier: Apache-2.0
// Dashboard login against the real binary and a real SQLite file: the
// password policy (`tumiki account add` refuses short, common and
// e-mail-containing passwords); login sets exactly the specified cookie;
// unknown e-mails, wrong passwords and locked accounts get one identical
// answer; five failures lock the account, which unlocks after the
// (shortened) window or by `tumiki account unlock`; a session id brought to
// the login is never the one after it and stops working (no fixation);
// state-changing requests with the cookie need the CSRF token and this
// server's Origin; logout ends the session; idle timeout and absolute
// lifetime; per-address login throttling; static files with a strict CSP,
// no traversal and no symlinks; and no password, hash, session id or CSRF
// token in the gateway's log.
import assert from 'node:assert/strict';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { account, addUser, login, session, tumiki, withCookie } from './accounts.mjs';
import { auditRecords, cleanup, makeTempDir, rawRequest, runTumiki, sleep, startGateway } from './lib.mjs';

const EMAIL = 'alice@example.com';
const PASSWORD = 'amber-violin-301!';

async function webDir() {
  const dir = await makeTempDir('tumiki-web-');
  await fsp.writeFile(path.join(dir, 'index.html'), '<!doctype html><title>t</title>\n');
  await fsp.writeFile(path.join(dir, 'app.js'), 'console.log(1);\n');
  await fsp.writeFile(path.join(dir, 'notes.txt'), 'not served\n');
  await fsp.symlink('/etc/passwd', path.join(dir, 'passwd.html'));
  return dir;
}

describe('dashboard login', () => {
  let gw;
  const secrets = [PASSWORD];

  before(async () => {
    gw = await startGateway({
      config: { dashboard: { bcrypt_cost: 4, lockout_s: 2,
        login_rate: '1000/min', web_dir: await webDir() } },
    });
    addUser(gw, EMAIL, PASSWORD);
  });
  after(cleanup);

  test('the password policy refuses short, common and e-mail-containing passwords', () => {
    assert.equal(tumiki(gw, ['user', 'add', '--email', 'bob@example.com']).code, 0);
    const cases = [['short-pw1', /at least 12/], ['Password1234', /common or breached/],
      ['summer2024!!', /common or breached/], ['xxbob-and-friends', /name part of the e-mail/],
      ['x'.repeat(257), /at most 256/], ['bbbbbbbbbbbbbbbb', /one character repeated/]];
    for (const [pw, why] of cases) {
      const r = account(gw, ['password', 'bob@example.com', '--password-stdin'], `${pw}\n`);
      assert.equal(r.code, 1, pw);
      assert.match(r.stderr, why);
      assert.ok(!r.stderr.includes(pw) && !r.stdout.includes(pw), 'the password is never echoed');
    }
    assert.equal(account(gw, ['password', 'bob@example.com', '--password-stdin'], 'quiet-lantern-77\n').code, 0);
    assert.equal(account(gw, ['password', 'nobody@example.com', '--password-stdin'], 'quiet-lantern-77\n').code, 1);
    assert.equal(tumiki(gw, ['user', 'add', '--email', 'Alice@Example.COM']).code, 1,
      'e-mails are unique without regard to case');
  });

  test('tumiki user add --password-stdin applies the policy before creating the user', async () => {
    const weak = tumiki(gw, ['user', 'add', '--email', 'erin@example.com', '--password-stdin'], 'erin-1234567890\n');
    assert.equal(weak.code, 1);
    assert.match(weak.stderr, /password refused: .*name part of the e-mail/);
    assert.ok(!/erin@example.com/.test(tumiki(gw, ['user', 'list']).stdout), 'no user was created');
    const ok = tumiki(gw, ['user', 'add', '--email', 'erin@example.com', '--password-stdin'], 'copper-lantern-88\n');
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /with a dashboard password/);
    assert.equal((await login(gw, 'erin@example.com', 'copper-lantern-88')).status, 200);
  });

  test('login sets exactly the specified cookie; the session names the user', async () => {
    const r = await login(gw, 'ALICE@example.com', PASSWORD);
    assert.equal(r.status, 200, r.text);
    assert.ok(r.cookie, `Set-Cookie was ${JSON.stringify(r.headers['set-cookie'])}`);
    assert.equal(r.json.user.email, EMAIL);
    assert.match(r.json.csrf_token, /^[0-9a-f]{64}$/);
    secrets.push(r.cookie, r.json.csrf_token);
    const s = await session(gw, r.cookie);
    assert.equal(s.status, 200);
    assert.deepEqual(JSON.parse(s.text).user, r.json.user);
    assert.equal(JSON.parse(s.text).csrf_token, r.json.csrf_token);
    assert.equal((await session(gw, 'f'.repeat(64))).status, 401);
    assert.equal((await rawRequest(`${gw.url}/auth/session`, { method: 'GET' })).status, 401);
  });

  test('bad requests: not JSON, wrong types, form posts, wrong method', async () => {
    const form = await rawRequest(`${gw.url}/auth/login`, {
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: `email=${EMAIL}&password=x` });
    assert.equal(form.status, 415);
    const bad = await rawRequest(`${gw.url}/auth/login`, {
      headers: { 'Content-Type': 'application/json' }, body: '{"email": 1}' });
    assert.equal(bad.status, 400);
    const get = await rawRequest(`${gw.url}/auth/login`, { method: 'GET' });
    assert.equal(get.status, 405);
  });

  test('unknown e-mail, wrong password and locked account get one answer; lock, timed unlock, admin unlock', async () => {
    const unknown = await login(gw, 'nobody@example.com', PASSWORD);
    assert.equal(unknown.status, 401);
    assert.equal(unknown.cookie, null);
    for (let i = 0; i < 5; i++) {
      const w = await login(gw, EMAIL, `wrong-password-${i}`);
      assert.equal(w.status, 401);
      assert.equal(w.text, unknown.text, 'same body as for an unknown e-mail');
    }
    const locked = await login(gw, EMAIL, PASSWORD);
    assert.equal(locked.status, 401, 'the right password is refused while locked');
    assert.equal(locked.text, unknown.text);
    assert.equal(locked.cookie, null);
    await sleep(2300); // lockout_s: 2
    const after = await login(gw, EMAIL, PASSWORD);
    assert.equal(after.status, 200, 'unlocked once the window has passed');

    for (let i = 0; i < 5; i++) assert.equal((await login(gw, EMAIL, 'wrong-again-123')).status, 401);
    assert.equal((await login(gw, EMAIL, PASSWORD)).status, 401);
    const u = account(gw, ['unlock', EMAIL]);
    assert.equal(u.code, 0, u.stderr);
    assert.ok(auditRecords(gw).some((r) => r.action === 'account.unlock' && r.result === 'ok'
      && r.actor.startsWith('cli:')), 'the unlock is in the audit trail');
    assert.equal((await login(gw, EMAIL, PASSWORD)).status, 200, 'an administrator unlocked it');
    const logs = gw.logs().map((l) => l.msg);
    assert.ok(logs.some((m) => /locked for 2 s after 5 failed logins/.test(m)), 'the lock is logged');
    // every attempt is in the audit trail; the unknown e-mail is not
    const recs = auditRecords(gw).filter((r) => r.action.startsWith('auth.'));
    const unk = recs.find((r) => r.action === 'auth.login' && r.actor === 'anonymous');
    assert.equal(unk?.result, 'error');
    assert.equal(unk?.detail?.reason, 'unknown account');
    assert.ok(!JSON.stringify(recs).includes('nobody@example.com'), 'typed e-mail not recorded');
    const mine = recs.filter((r) => r.actor.startsWith('user:'));
    assert.ok(mine.filter((r) => r.action === 'auth.login' && r.detail?.reason === 'wrong password').length >= 10);
    assert.equal(mine.filter((r) => r.action === 'auth.lockout').length, 2, 'both locks recorded');
    assert.ok(mine.some((r) => r.action === 'auth.login' && r.result === 'denied' && r.detail?.reason === 'account locked'));
    assert.ok(mine.filter((r) => r.action === 'auth.login' && r.result === 'ok').length >= 2, 'sign-ins recorded');
    assert.ok(mine.every((r) => typeof r.ip === 'string' && r.ip.length > 0), 'with the address');
    assert.ok(!JSON.stringify(recs).includes('wrong-password-'), 'no typed password recorded');
    const v = await runTumiki(['audit', 'verify', '--config', gw.configPath]);
    assert.equal(v.code, 0, v.stderr + v.stdout);
  });

  test('session fixation: the id brought to the login is discarded, never adopted', async () => {
    const planted = 'a'.repeat(64);
    const r1 = await login(gw, EMAIL, PASSWORD, withCookie(planted));
    assert.equal(r1.status, 200);
    assert.notEqual(r1.cookie, planted);
    assert.equal((await session(gw, planted)).status, 401);
    // an attacker's own live session planted in the victim's browser
    const attacker = await login(gw, EMAIL, PASSWORD);
    const victim = await login(gw, EMAIL, PASSWORD, withCookie(attacker.cookie));
    assert.equal(victim.status, 200);
    assert.notEqual(victim.cookie, attacker.cookie);
    assert.equal((await session(gw, attacker.cookie)).status, 401, 'the planted id no longer works');
    assert.equal((await session(gw, victim.cookie)).status, 200);
    secrets.push(r1.cookie, attacker.cookie, victim.cookie, victim.json.csrf_token);
  });

  test('CSRF: cookie-authenticated state changes need the token and this server\'s Origin', async () => {
    const s = await login(gw, EMAIL, PASSWORD);
    const tok = s.json.csrf_token;
    secrets.push(s.cookie, tok);
    const logout = (headers) => rawRequest(`${gw.url}/auth/logout`, { headers: withCookie(s.cookie, headers) });
    assert.equal((await logout({ Origin: gw.url })).status, 403, 'no token');
    assert.equal((await logout({ Origin: gw.url, 'X-CSRF-Token': 'f'.repeat(64) })).status, 403, 'wrong token');
    assert.equal((await logout({ Origin: gw.url, 'X-CSRF-Token': tok.slice(0, 63) })).status, 403, 'prefix');
    assert.equal((await logout({ 'X-CSRF-Token': tok })).status, 403, 'no Origin');
    const port = Number(new URL(gw.url).port);
    assert.equal((await logout({ Origin: `http://127.0.0.1:${port === 65535 ? 1 : port + 1}`,
      'X-CSRF-Token': tok })).status, 403, 'another local origin (same site, other port)');
    assert.equal((await logout({ Origin: 'http://evil.example', 'X-CSRF-Token': tok })).status, 403);
    assert.equal((await session(gw, s.cookie)).status, 200, 'none of those logged out');
    const before = auditRecords(gw).filter((r) => r.action === 'auth.logout').length;
    const ok = await logout({ Origin: gw.url, 'X-CSRF-Token': tok });
    assert.equal(ok.status, 204);
    const outs = auditRecords(gw).filter((r) => r.action === 'auth.logout');
    assert.equal(outs.length, before + 1, 'only the accepted logout is recorded');
    assert.match(outs.at(-1).actor, /^user:/);
    assert.match(ok.headers['set-cookie'][0], /^__Host-tumiki_session=; .*Max-Age=0/);
    assert.equal((await session(gw, s.cookie)).status, 401, 'logout ended the session');
    assert.equal((await logout({ Origin: gw.url, 'X-CSRF-Token': tok })).status, 401);
  });

  test('CSRF on the admin API: the session is a caller; state changes need the token and Origin', async () => {
    const s = await login(gw, EMAIL, PASSWORD);
    const tok = s.json.csrf_token;
    secrets.push(s.cookie, tok);
    const api = (method, p, headers = {}, body) => rawRequest(`${gw.url}/api/v1${p}`, { method,
      headers: { 'Content-Type': 'application/json', ...headers }, body });
    const me = await api('GET', '/me', withCookie(s.cookie));
    assert.equal(me.status, 200, me.text);
    assert.equal(JSON.parse(me.text).kind, 'session');
    assert.equal((await api('GET', '/me', withCookie('0'.repeat(64)))).status, 401);
    const create = (headers) => api('POST', '/keys', withCookie(s.cookie, headers), { endpoint: '*', name: 'k' });
    for (const [what, h] of [['no token', { Origin: gw.url }], ['wrong token', { Origin: gw.url, 'X-CSRF-Token': '0'.repeat(64) }],
      ['no Origin', { 'X-CSRF-Token': tok }], ['foreign Origin', { Origin: 'http://localhost:1', 'X-CSRF-Token': tok }]]) {
      const r = await create(h);
      assert.equal(r.status, 403, what);
      assert.equal(JSON.parse(r.text).error.code, 'forbidden', what);
    }
    const keysBefore = JSON.parse((await api('GET', '/keys', withCookie(s.cookie))).text).keys;
    assert.equal(keysBefore.length, 0, 'the refused requests created nothing');
    const ok = await create({ Origin: gw.url, 'X-CSRF-Token': tok });
    assert.equal(ok.status, 201, ok.text);
    const key = JSON.parse(ok.text);
    secrets.push(key.key);
    const del = (headers) => api('DELETE', `/keys/${key.id}`, withCookie(s.cookie, headers));
    assert.equal((await del({ Origin: gw.url })).status, 403);
    assert.equal((await del({ Origin: gw.url, 'X-CSRF-Token': tok })).status, 204);
    // bearer credentials are not cookies: no CSRF token needed
    const boot = await api('POST', '/keys', { Authorization: `Bearer ${gw.token}` }, { endpoint: '*' });
    assert.equal(boot.status, 201, boot.text);
    secrets.push(JSON.parse(boot.text).key);
  });

  test('static files: CSP, content types, no traversal, no symlinks, nothing unlisted', async () => {
    const idx = await rawRequest(`${gw.url}/`, { method: 'GET' });
    assert.equal(idx.status, 200);
    assert.match(idx.headers['content-type'], /^text\/html/);
    assert.match(idx.headers['content-security-policy'], /^default-src 'self'; /);
    assert.ok(!/unsafe-inline/.test(idx.headers['content-security-policy']));
    const js = await rawRequest(`${gw.url}/app.js`, { method: 'GET' });
    assert.equal(js.status, 200);
    assert.match(js.headers['content-type'], /^text\/javascript/);
    for (const p of ['/passwd.html', '/notes.txt', '/../tumiki.json', '/%2e%2e/tumiki.json', '/.htaccess',
      '/sub/app.js', '/app.js%00.html']) {
      const r = await rawRequest(`${gw.url}${p}`, { method: 'GET' });
      assert.equal(r.status, 404, p);
      assert.ok(!r.text.includes('root:'), p);
    }
    assert.equal((await rawRequest(`${gw.url}/app.js`, { body: 'x' })).status, 405);
  });

  test('no password, hash, session id or CSRF token in the log', () => {
    const log = gw.stderr();
    assert.ok(log.includes('signed in'), 'the log was captured');
    for (const s of secrets) assert.ok(!log.includes(s), `a secret reached the log (${s.slice(0, 4)}...)`);
    assert.ok(!log.includes('$2b$'), 'no bcrypt hash in the log');
    assert.ok(!log.includes('wrong-password-'), 'no wrong password in the log');
    assert.ok(!log.includes('nobody@example.com'), 'no submitted unknown e-mail in the log');
  });
});

describe('dashboard sessions: timeouts and throttling', () => {
  after(cleanup);

  test('idle timeout and absolute lifetime', async () => {
    const gw = await startGateway({ config: { dashboard: { bcrypt_cost: 4, session_idle_s: 1,
      session_lifetime_s: 3, login_rate: '1000/min' } } });
    addUser(gw, EMAIL, PASSWORD);
    const idle = await login(gw, EMAIL, PASSWORD);
    await sleep(1300);
    assert.equal((await session(gw, idle.cookie)).status, 401, 'idle for longer than session_idle_s');

    const busy = await login(gw, EMAIL, PASSWORD);
    const t0 = Date.now();
    while (Date.now() - t0 < 2500) { // used every 0.5 s: never idle
      assert.equal((await session(gw, busy.cookie)).status, 200);
      await sleep(500);
    }
    await sleep(Math.max(0, 3300 - (Date.now() - t0)));
    assert.equal((await session(gw, busy.cookie)).status, 401, 'older than session_lifetime_s');
  });

  test('login attempts are limited per client address', async () => {
    const gw = await startGateway({ config: { dashboard: { bcrypt_cost: 4, login_rate: '3/min' } } });
    const codes = [];
    for (let i = 0; i < 5; i++) codes.push((await login(gw, 'x@example.com', 'whatever-password')).status);
    assert.deepEqual(codes, [401, 401, 401, 429, 429]);
  });
});
