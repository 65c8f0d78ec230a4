// SPDX-License-Identifier: Apache-2.0
// Helpers for dashboard-login tests: users and passwords through the CLI
// (`tumiki user add`, `tumiki account password`), logins and sessions over
// HTTP against a gateway from lib.mjs's startGateway.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';

import { TUMIKI_BIN, rawRequest } from './lib.mjs';

/** The exact Set-Cookie of a login; group 1 is the session id. */
export const COOKIE_RE = /^__Host-tumiki_session=([0-9a-f]{64}); Path=\/; Secure; HttpOnly; SameSite=Strict$/;

export function tumiki(gw, args, input) {
  const r = spawnSync(TUMIKI_BIN, [...args, '--config', gw.configPath],
    { input, timeout: 20000, encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
export const account = (gw, args, input) => tumiki(gw, ['account', ...args], input);

/** A user with role in the default organization and a dashboard password. */
export function addUser(gw, email, password, role = 'member') {
  const u = tumiki(gw, ['user', 'add', '--email', email, '--role', role]);
  assert.equal(u.code, 0, u.stderr);
  const p = account(gw, ['password', email, '--password-stdin'], `${password}\n`);
  assert.equal(p.code, 0, p.stderr);
  assert.match(p.stdout, /^password of user \S+ set\n$/);
}

export async function login(gw, email, password, headers = {}) {
  const r = await rawRequest(`${gw.url}/auth/login`, {
    headers: { 'Content-Type': 'application/json', ...headers }, body: { email, password } });
  const set = r.headers['set-cookie'];
  const m = set && set.length === 1 ? COOKIE_RE.exec(set[0]) : null;
  return { ...r, cookie: m ? m[1] : null, json: safeJson(r.text) };
}

function safeJson(t) {
  try { return JSON.parse(t); } catch { return null; }
}

export const withCookie = (id, extra = {}) => ({ Cookie: `__Host-tumiki_session=${id}`, ...extra });
export const session = (gw, id) => rawRequest(`${gw.url}/auth/session`, { method: 'GET', headers: withCookie(id) });

