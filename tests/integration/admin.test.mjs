// SPDX-License-Identifier: Apache-2.0
// The admin REST API (/api/v1) and RBAC end to end, against the real binary
// and its real SQLite store: a role matrix asserting the exact status of
// every route x method for owner, admin, member, viewer, a user without
// membership, a key without the "admin" scope and no credential; owner-only
// grants; strict input validation with one error shape that leaks nothing
// internal; SQL metacharacters and CRLF stored and returned verbatim; the key
// lifecycle through the API (create -> use on /mcp -> revoke -> refused
// within a second); scopes on /mcp; a tool selection applied live to
// tools/list and tools/call; the CLI over the same store; and no secret in
// any later response or in the gateway's log.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { auditRecords, cleanup, connect, mcpHeaders, rawRequest, runTumiki, servers, sleep, startGateway, textOf,
  TK_ECHO_BIN, waitFor } from './lib.mjs';

const initBody = { jsonrpc: '2.0', id: 1, method: 'initialize',
  params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'a', version: '1' } } };
const ROLES = ['owner', 'admin', 'member', 'viewer'];
const CALLERS = [...ROLES, 'nomember', 'mcpkey', 'none'];
const EVIL = "x'); DROP TABLE users;-- \r\nX-Injected: 1 \"q\" \\ <b>";

describe('admin API and RBAC', () => {
  let gw;
  const keys = {};          // caller -> bearer credential
  const secrets = [];       // every API key made, to look for later
  const laterBodies = [];   // response bodies other than a key's creation
  let seq = 0;

  async function api(method, path, { token = gw.token, body, raw, headers = {}, created = false } = {}) {
    const h = { ...headers };
    if (token) h.Authorization = `Bearer ${token}`;
    let payload;
    if (raw !== undefined) payload = raw;
    else if (body !== undefined) { payload = JSON.stringify(body); h['Content-Type'] ??= 'application/json'; }
    const r = await fetch(`${gw.url}/api/v1${path}`, { method, headers: h, body: payload });
    const text = await r.text();
    if (!created) laterBodies.push(text);
    let json = null;
    try { json = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
    return { status: r.status, json, text, headers: r.headers };
  }
  const tumiki = (...args) => runTumiki([...args, '--config', gw.configPath], { cwd: gw.dir });
  const uniq = (p) => `${p}${process.pid}x${++seq}`;

  /** A user with a role in "default" (or none), made by the bootstrap token. */
  async function makeUser(role = 'member') {
    const id = uniq('u');
    const r = await api('POST', '/users', { body: { id, email: `${id}@example.com`, role: role === 'none' ? 'viewer' : role } });
    assert.equal(r.status, 201, r.text);
    if (role === 'none')
      assert.equal((await api('DELETE', `/orgs/default/members/${id}`)).status, 204);
    return id;
  }
  /** An API key made by the CLI for owner with scopes. */
  async function cliKey(owner, scopes = 'mcp admin', endpoint = '*') {
    const args = ['key', 'create', '--endpoint', endpoint, '--scopes', scopes];
    if (owner) args.push('--owner', owner);
    const r = await tumiki(...args);
    assert.equal(r.code, 0, r.stderr);
    const k = r.stdout.trim();
    assert.match(k, /^tk_[0-9a-f]{16}_[0-9a-f]{64}$/);
    secrets.push(k);
    return k;
  }
  /** A server / endpoint made through the API by the bootstrap token. */
  async function makeServer() {
    const name = uniq('s');
    const r = await api('POST', '/servers', { body: { name, command: TK_ECHO_BIN, args: ['--name', name] } });
    assert.equal(r.status, 201, r.text);
    return name;
  }
  async function makeEndpoint() {
    const slug = uniq('e');
    const r = await api('POST', '/endpoints', { body: { slug, servers: ['echo'] } });
    assert.equal(r.status, 201, r.text);
    return slug;
  }
  const tryMcp = (k, slug = 'default') => rawRequest(gw.mcpUrl(slug), {
    headers: { ...mcpHeaders(gw), Authorization: `Bearer ${k}` }, body: initBody, untilId: 1 });

  const users = {};
  before(async () => {
    gw = await startGateway({ config: {
      mcpServers: { echo: servers.echo('echo') },
      endpoints: { default: { servers: ['echo'] }, other: { servers: ['echo'] } },
    } });
    for (const role of ROLES) {
      users[role] = await makeUser(role);
      keys[role] = await cliKey(users[role]);
    }
    users.nomember = await makeUser('none');
    keys.nomember = await cliKey(users.nomember);
    keys.mcpkey = await cliKey(users.admin, 'mcp');
    keys.none = null;
  });
  after(cleanup);

  // Each case: method, path, optional setup(caller) -> {path, body}, and the
  // expected status per caller in CALLERS order.
  const OK4 = (s) => [s, s, s, s, 403, 403, 401];
  const ADMINS = (s) => [s, s, 403, 403, 403, 403, 401];
  const cases = [
    { m: 'GET', p: '/me', want: [200, 200, 200, 200, 200, 403, 401] },
    { m: 'GET', p: '/users', want: OK4(200) },
    { m: 'POST', p: '/users', setup: async () => ({ body: { email: `${uniq('n')}@example.com` } }), want: ADMINS(201) },
    { m: 'GET', setup: async () => ({ p: `/users/${users.viewer}` }), want: OK4(200) },
    { m: 'PATCH', setup: async () => ({ p: `/users/${await makeUser()}`, body: { disabled: false } }), want: ADMINS(200) },
    { m: 'DELETE', setup: async () => ({ p: `/users/${await makeUser()}` }), want: ADMINS(204) },
    { m: 'GET', p: '/orgs/default/members', want: OK4(200) },
    { m: 'POST', p: '/orgs/default/members', setup: async () => ({ body: { user_id: await makeUser('none'), role: 'viewer' } }), want: ADMINS(201) },
    { m: 'DELETE', setup: async () => ({ p: `/orgs/default/members/${await makeUser()}` }), want: ADMINS(204) },
    { m: 'GET', p: '/keys', want: OK4(200) },
    { m: 'POST', p: '/keys', body: { endpoint: 'default', name: 'matrix' }, created: true, want: [201, 201, 201, 403, 403, 403, 401] },
    { m: 'DELETE', name: 'DELETE /keys/{own key}', setup: async (c) => {
      const owner = c === 'mcpkey' ? users.admin : users[c];
      const k = await cliKey(owner || users.member);
      return { p: `/keys/${k.slice(3, 19)}` };
    }, want: [204, 204, 204, 403, 403, 403, 401] },
    { m: 'DELETE', name: 'DELETE /keys/{another user\'s key}', setup: async () => {
      const k = await cliKey(await makeUser());
      return { p: `/keys/${k.slice(3, 19)}` };
    }, want: ADMINS(204) },
    { m: 'GET', p: '/endpoints', want: OK4(200) },
    { m: 'GET', p: '/endpoints/default', want: OK4(200) },
    { m: 'PUT', p: '/endpoints/other/tools', body: { allow: [], deny: [] }, want: ADMINS(200) },
    { m: 'GET', p: '/servers', want: OK4(200) },
    { m: 'GET', p: '/servers/echo', want: OK4(200) },
    { m: 'POST', p: '/servers', setup: async () => ({ body: { name: uniq('s'), command: TK_ECHO_BIN } }),
      want: [201, 201, 201, 403, 403, 403, 401] },
    { m: 'PATCH', name: 'PATCH /servers/{another user\'s}', setup: async () => ({ p: `/servers/${await makeServer()}`,
      body: { timeout_ms: 5000 } }), want: ADMINS(200) },
    { m: 'DELETE', name: 'DELETE /servers/{another user\'s}', setup: async () => ({ p: `/servers/${await makeServer()}` }),
      want: ADMINS(204) },
    { m: 'POST', p: '/endpoints', setup: async () => ({ body: { slug: uniq('e'), servers: ['echo'] } }),
      want: [201, 201, 201, 403, 403, 403, 401] },
    { m: 'PATCH', name: 'PATCH /endpoints/{another user\'s}', setup: async () => ({ p: `/endpoints/${await makeEndpoint()}`,
      body: { servers: ['echo'] } }), want: ADMINS(200) },
    { m: 'DELETE', name: 'DELETE /endpoints/{another user\'s}', setup: async () => ({ p: `/endpoints/${await makeEndpoint()}` }),
      want: ADMINS(204) },
  ];

  test('role matrix: every route x method x caller gets the exact status', async () => {
    const failures = [];
    let checked = 0;
    for (const c of cases) {
      for (let i = 0; i < CALLERS.length; i++) {
        const caller = CALLERS[i];
        const s = c.setup ? await c.setup(caller) : {};
        const path = s.p || c.p;
        const r = await api(c.m, path, { token: keys[caller], body: s.body || c.body, created: c.created });
        checked++;
        if (r.status !== c.want[i])
          failures.push(`${c.name || `${c.m} ${c.p || path}`} as ${caller}: ${r.status}, want ${c.want[i]} ${r.text}`);
        if (r.status >= 400) {
          assert.equal(typeof r.json?.error?.code, 'string', r.text);
          assert.equal(typeof r.json?.error?.message, 'string', r.text);
        }
        if (r.status === 201 && r.json?.key) secrets.push(r.json.key);
      }
    }
    assert.equal(checked, cases.length * CALLERS.length);
    assert.deepEqual(failures, []);
  });

  test('only owners grant or touch the owner role', async () => {
    const asAdmin = { token: keys.admin };
    assert.equal((await api('POST', '/users', { ...asAdmin, body: { email: `${uniq('o')}@x.io`, role: 'owner' } })).status, 403);
    assert.equal((await api('POST', '/users', { token: keys.owner, body: { email: `${uniq('o')}@x.io`, role: 'owner' } })).status, 201);
    const owner2 = await makeUser('owner');
    assert.equal((await api('DELETE', `/users/${owner2}`, asAdmin)).status, 403);
    assert.equal((await api('PATCH', `/users/${owner2}`, { ...asAdmin, body: { disabled: true } })).status, 403);
    assert.equal((await api('DELETE', `/orgs/default/members/${owner2}`, asAdmin)).status, 403);
    assert.equal((await api('DELETE', `/orgs/default/members/${owner2}`, { token: keys.owner })).status, 204);
    // another organization: roles there do not come from "default"
    assert.equal((await api('GET', '/orgs/elsewhere/members', asAdmin)).status, 403);
  });

  test('an organization keeps at least one owner', async () => {
    const db = path.join(gw.dir, 'data', 'tumiki.db');
    execFileSync('sqlite3', [db, "INSERT INTO organizations (id, name, created_at) VALUES ('solo', 'Solo', 1);"]);
    const a = await makeUser('member');
    const b = await makeUser('member');
    assert.equal((await api('POST', '/orgs/solo/members', { body: { user_id: a, role: 'owner' } })).status, 201);
    for (const [m, p, body] of [['DELETE', `/orgs/solo/members/${a}`], ['DELETE', `/users/${a}`],
      ['PATCH', `/users/${a}`, { disabled: true }]]) {
      const r = await api(m, p, { body });
      assert.equal(r.status, 409, `${m} ${p}: ${r.text}`);
      assert.equal(r.json.error.code, 'last_owner');
    }
    assert.equal((await api('POST', '/orgs/solo/members', { body: { user_id: b, role: 'owner' } })).status, 201);
    assert.equal((await api('DELETE', `/orgs/solo/members/${a}`)).status, 204);
    assert.equal((await api('DELETE', `/users/${b}`)).status, 409, 'b is now the only owner');
  });

  test('a disabled user is refused on /api/v1 and /mcp; a member sees only their own keys', async () => {
    const u = await makeUser('admin');
    const k = await cliKey(u);
    assert.equal((await api('GET', '/me', { token: k })).status, 200);
    assert.equal((await tryMcp(k)).status, 200); // verified and cached
    assert.equal((await api('PATCH', `/users/${u}`, { body: { disabled: true } })).status, 200);
    // a disabled user's keys stop authenticating at once, cached or not
    assert.equal((await api('GET', '/me', { token: k })).status, 401);
    assert.equal((await tryMcp(k)).status, 401, 'a disabled user\'s key is refused on /mcp at once');
    assert.equal((await api('PATCH', `/users/${u}`, { body: { disabled: false } })).status, 200);
    assert.equal((await tryMcp(k)).status, 200, 'and works again once re-enabled');
    const mine = await api('GET', '/keys', { token: keys.member });
    assert.equal(mine.status, 200);
    assert.ok(mine.json.keys.length >= 1);
    for (const key of mine.json.keys) assert.equal(key.owner, users.member);
    const all = await api('GET', '/keys', { token: keys.admin });
    assert.ok(all.json.keys.some((key) => key.owner !== users.admin));
  });

  test('deleting a user refuses its keys at once, cached or not', async () => {
    const u = await makeUser('member');
    const k = await cliKey(u);
    assert.equal((await tryMcp(k)).status, 200); // verified and cached now
    assert.equal((await api('DELETE', `/users/${u}`, { token: keys.admin })).status, 204);
    assert.equal((await tryMcp(k)).status, 401);
    assert.equal((await api('GET', `/users/${u}`)).status, 404);
  });

  test('input validation: 400/404/405/409/413/415 with one error shape', async () => {
    const cases2 = [
      [await api('POST', '/users', { raw: '{"email":', headers: { 'Content-Type': 'application/json' } }), 400, 'invalid_json'],
      [await api('POST', '/users', { raw: '[1]', headers: { 'Content-Type': 'application/json' } }), 400, 'invalid_json'],
      [await api('POST', '/users', { raw: '{"email":"a@b.c","email":"d@e.f"}', headers: { 'Content-Type': 'application/json' } }), 400, 'invalid_json'],
      [await api('POST', '/users', { body: { email: 'z@x.io', admin: true } }), 400, 'unknown_field'],
      [await api('POST', '/users', { body: { email: 42 } }), 400, 'invalid_field'],
      [await api('POST', '/users', { body: {} }), 400, 'missing_field'],
      [await api('POST', '/users', { body: { email: 'no-at-sign' } }), 400, 'invalid_field'],
      [await api('POST', '/users', { body: { email: 'a\r\nb@x.io' } }), 400, 'invalid_field'],
      [await api('POST', '/users', { body: { email: 'q@x.io', id: "a'; DROP TABLE users;--" } }), 400, 'invalid_field'],
      [await api('POST', '/users', { body: { email: 'q@x.io', role: 'root' } }), 400, 'invalid_field'],
      [await api('POST', '/users', { body: { email: `${users.owner}@example.com` } }), 409, 'conflict'],
      [await api('POST', '/users', { raw: JSON.stringify({ email: 'x'.repeat(70000) }), headers: { 'Content-Type': 'application/json' } }), 413, 'too_large'],
      [await api('POST', '/users', { raw: '{"email":"t@x.io"}', headers: { 'Content-Type': 'text/plain' } }), 415, 'unsupported_media_type'],
      [await api('POST', '/keys', { body: { endpoint: 'nope' } }), 400, 'invalid_field'],
      [await api('POST', '/keys', { body: { endpoint: 'default', scopes: 'root' } }), 400, 'invalid_field'],
      [await api('POST', '/keys', { body: { endpoint: 'default', expires_days: 0 } }), 400, 'invalid_field'],
      [await api('POST', '/keys', { body: { endpoint: 'default', name: 'n'.repeat(201) } }), 400, 'invalid_field'],
      [await api('PUT', '/endpoints/default/tools', { body: { allow: 'echo__*' } }), 400, 'invalid_field'],
      [await api('PUT', '/endpoints/default/tools', { body: { allow: [1] } }), 400, 'invalid_field'],
      [await api('PUT', '/endpoints/default/tools', { body: { deny: Array(65).fill('a') } }), 400, 'invalid_field'],
      [await api('PUT', '/endpoints/nope/tools', { body: { deny: [] } }), 404, 'not_found'],
      [await api('GET', '/users/nobody'), 404, 'not_found'],
      [await api('GET', "/users/a'%20OR%201=1"), 404, 'not_found'],
      [await api('DELETE', '/keys/ffffffffffffffff'), 404, 'not_found'],
      [await api('DELETE', '/keys/zz'), 404, 'not_found'],
      [await api('GET', '/nothing'), 404, 'not_found'],
      [await api('DELETE', '/me'), 405, 'method_not_allowed'],
      [await api('PATCH', `/users/${users.viewer}`, { body: { email: `${users.member}@example.com` } }), 409, 'conflict'],
    ];
    for (const [r, status, code] of cases2) {
      assert.equal(r.status, status, r.text);
      assert.deepEqual(Object.keys(r.json), ['error'], r.text);
      assert.equal(r.json.error.code, code, r.text);
      assert.doesNotMatch(r.text, /sqlite|SQL|constraint|\/tmp\/|\$2b\$|tumiki\.db/i);
    }
    assert.equal(cases2[26][0].headers.get('allow'), 'GET');
  });

  test('SQL metacharacters and CRLF are stored and returned verbatim, as data', async () => {
    const email = "o'brien;--\"<x>@example.com";
    const u = await api('POST', '/users', { body: { email } });
    assert.equal(u.status, 201, u.text);
    assert.equal((await api('GET', `/users/${u.json.id}`)).json.email, email);
    const k = await api('POST', '/keys', { token: keys.member, body: { endpoint: 'default', name: EVIL }, created: true });
    assert.equal(k.status, 201, k.text);
    secrets.push(k.json.key);
    const listed = (await api('GET', '/keys', { token: keys.member })).json.keys.find((x) => x.id === k.json.id);
    assert.equal(listed.name, EVIL);
    const t = await api('PUT', '/endpoints/other/tools', { body: { allow: [EVIL.replace(/[\r\n]/g, '')], deny: ["'; --"] } });
    assert.equal(t.status, 200, t.text);
    const ep = (await api('GET', '/endpoints/other')).json;
    assert.deepEqual(ep.tools.deny, ["'; --"]);
    // the tables are all still there
    assert.equal((await api('GET', '/users')).status, 200);
    assert.equal((await api('PUT', '/endpoints/other/tools', { body: {} })).status, 200);
  });

  test('key lifecycle through the API: create -> use on /mcp -> revoke -> refused within 1 s', async () => {
    const c = await api('POST', '/keys', { token: keys.member, body: { endpoint: 'default', name: 'ci', scopes: 'mcp' }, created: true });
    assert.equal(c.status, 201, c.text);
    const key = c.json.key;
    secrets.push(key);
    assert.match(key, /^tk_[0-9a-f]{16}_[0-9a-f]{64}$/);
    assert.equal(c.json.owner, users.member);
    assert.equal(c.json.scopes, 'mcp');
    assert.equal(c.json.hash, undefined);
    assert.equal((await tryMcp(key)).status, 200);
    assert.equal((await tryMcp(key, 'other')).status, 403, 'endpoint-scoped');
    assert.equal((await api('GET', '/me', { token: key })).status, 403, 'no admin scope');
    const listed = await api('GET', '/keys', { token: keys.member });
    const row = listed.json.keys.find((x) => x.id === c.json.id);
    assert.ok(row && row.key === undefined && row.hash === undefined);
    assert.ok(!listed.text.includes(key.slice(20)));
    assert.equal((await api('DELETE', `/keys/${c.json.id}`, { token: keys.member })).status, 204);
    const t0 = Date.now();
    let status = 200;
    while (status === 200 && Date.now() - t0 < 3000) {
      status = (await tryMcp(key)).status;
      if (status === 200) await sleep(50);
    }
    const ms = Date.now() - t0;
    assert.equal(status, 401);
    assert.ok(ms <= 1000, `still accepted ${ms} ms after revocation`);
    const after = (await api('GET', '/keys', { token: keys.member })).json.keys.find((x) => x.id === c.json.id);
    assert.equal(typeof after.revoked_at, 'number');
  });

  test('scopes on /mcp: a key without "mcp" is refused there with 403; old keys keep working', async () => {
    const adminOnly = await cliKey(users.admin, 'admin');
    assert.equal((await tryMcp(adminOnly)).status, 403);
    assert.equal((await api('GET', '/me', { token: adminOnly })).status, 200);
    const r = await tumiki('key', 'create', '--endpoint', 'default'); // no scopes: "mcp"
    const plain = r.stdout.trim();
    secrets.push(plain);
    assert.equal((await tryMcp(plain)).status, 200);
    assert.equal((await api('GET', '/me', { token: plain })).status, 403);
  });

  test('a tool selection is applied live to tools/list and tools/call, and stored', async () => {
    const client = await connect(gw, { slug: 'default' });
    const names = async () => (await client.listTools()).tools.map((t) => t.name);
    assert.ok((await names()).includes('echo__echo'));
    const put = await api('PUT', '/endpoints/default/tools', { token: keys.admin, body: { deny: ['echo__echo'] } });
    assert.equal(put.status, 200, put.text);
    const now = await names();
    assert.ok(!now.includes('echo__echo'), now.join(','));
    assert.ok(now.length > 0);
    const call = await client.callTool({ name: 'echo__echo', arguments: { text: 'x' } }).catch((e) => e);
    assert.ok(call instanceof Error || call.isError, 'a hidden tool cannot be called');
    const ep = (await api('GET', '/endpoints/default')).json;
    assert.deepEqual(ep.tools, { allow: [], deny: ['echo__echo'], source: 'api' });
    const cli = await tumiki('endpoint', 'show', 'default');
    assert.match(cli.stdout, /echo__echo/);
    assert.equal((await api('PUT', '/endpoints/default/tools', { token: keys.owner, body: { allow: ['echo__*'] } })).status, 200);
    assert.ok((await names()).includes('echo__echo'));
    assert.equal(textOf(await client.callTool({ name: 'echo__echo', arguments: { text: 'back' } })), 'back');
    await client.close();
  });

  test('servers list names and status, never env or header values', async () => {
    const r = await api('GET', '/servers', { token: keys.viewer });
    assert.equal(r.status, 200);
    assert.equal(r.json.servers[0].name, 'echo');
    assert.equal(r.json.servers[0].transport, 'stdio');
    assert.match(r.json.servers[0].status, /^(idle|starting|ready|backoff)$/);
    assert.ok(!('command' in r.json.servers[0]) && !('env' in r.json.servers[0]));
  });

  test('the CLI: user add/list over the same store', async () => {
    const id = uniq('cli');
    const add = await tumiki('user', 'add', '--email', `${id}@example.com`, '--id', id, '--role', 'viewer');
    assert.equal(add.code, 0, add.stderr);
    const got = await api('GET', `/users/${id}`);
    assert.equal(got.status, 200);
    assert.deepEqual(got.json.memberships, [{ org: 'default', role: 'viewer' }]);
    const rec = auditRecords(gw).find((r) => r.action === 'user.add' && r.target === `user:${id}`);
    assert.ok(rec, 'the CLI change is in the audit trail');
    assert.match(rec.actor, /^cli:/);
    assert.deepEqual(rec.detail, { org: 'default', role: 'viewer', dashboard_login: false });
    const dup = await tumiki('user', 'add', '--email', `${id}@example.com`);
    assert.equal(dup.code, 1);
    const bad = await tumiki('user', 'add', '--email', 'x', '--role', 'god');
    assert.equal(bad.code, 2);
    const list = await tumiki('user', 'list');
    assert.match(list.stdout, new RegExp(`${id}\\s+active\\s+default:viewer`));
  });

  test('admin reads, changes and refusals are in the audit trail, without secrets', async () => {
    const c = await api('POST', '/keys', { token: keys.member, body: { endpoint: 'default', name: 'audited' }, created: true });
    assert.equal(c.status, 201);
    secrets.push(c.json.key);
    assert.equal((await api('POST', '/users', { token: keys.viewer, body: { email: 'no@x.io' } })).status, 403);
    assert.equal((await api('GET', '/users')).status, 200); // reads are recorded too
    const dir = path.join(gw.dir, 'data', 'audit');
    const text = () => fs.readdirSync(dir).map((n) => fs.readFileSync(path.join(dir, n), 'utf8')).join('\n');
    const recs = () => auditRecords(gw);
    const made = await waitFor(() => recs().find((r) => r.action === 'admin.keys.post' && r.target === `key:${c.json.id}`),
      { what: 'the key creation record' });
    assert.equal(made.actor, `key:${keys.member.slice(3, 19)}`);
    assert.equal(made.result, 'ok');
    assert.equal(made.status, 201);
    const denied = recs().find((r) => r.action === 'admin.users.post' && r.actor === `key:${keys.viewer.slice(3, 19)}`);
    assert.ok(denied, 'the refused user creation is recorded');
    assert.equal(denied.result, 'denied');
    const read = recs().find((r) => r.action === 'admin.users.get' && r.result === 'ok'
      && r.actor === 'key:bootstrap');
    assert.ok(read, 'the successful read is recorded');
    assert.equal(read.actor, 'key:bootstrap');
    assert.equal(read.status, 200);
    assert.ok(recs().some((r) => r.action === 'admin.users.get' && r.result === 'denied'), 'refused reads are');
    const all = text();
    for (const k of secrets) assert.ok(!all.includes(k.slice(20)), 'a key secret reached the audit trail');
    assert.ok(!all.includes('$2b$'));
    const v = await runTumiki(['audit', 'verify', '--config', gw.configPath]);
    assert.equal(v.code, 0, v.stderr + v.stdout);
  });

  test('no secret in any response after creation, nor in the log', async () => {
    assert.ok(secrets.length >= 8);
    const later = laterBodies.join('\n');
    const log = gw.stderr();
    for (const k of secrets) {
      assert.ok(!later.includes(k.slice(20)), 'a key secret appeared in a later response');
      assert.ok(!log.includes(k.slice(20)), 'a key secret appeared in the log');
    }
    assert.ok(!later.includes('$2b$') && !log.includes('$2b$'), 'a bcrypt hash leaked');
    assert.ok(!log.includes(gw.token), 'the bootstrap token appeared in the log');
    assert.match(log, /"module":"admin"/);
  });

  test('with server.threads = 4: roles, key lifecycle, tool selection and user deletion on every thread', async () => {
    const g4 = await startGateway({ config: {
      mcpServers: { echo: servers.echo('echo') },
      endpoints: { default: { servers: ['echo'] } }, server: { threads: 4 },
    } });
    // every request on a fresh connection, so the kernel spreads them over the threads
    const call = async (method, p, token, body) => {
      const headers = token ? { Authorization: `Bearer ${token}` } : {};
      if (body !== undefined) headers['Content-Type'] = 'application/json';
      const r = await rawRequest(`${g4.url}/api/v1${p}`, { method, headers, body });
      return { status: r.status, text: r.text, json: r.text ? JSON.parse(r.text) : null };
    };
    const mcp4 = (k) => rawRequest(g4.mcpUrl('default'), {
      headers: { ...mcpHeaders(g4), Authorization: `Bearer ${k}` }, body: initBody, untilId: 1 });
    const authLog = () => g4.logs().filter((l) => l.module === 'auth' || l.module === 'http')
      .slice(-12).map((l) => l.msg).join('\n');
    const many = async (k, n) => (await Promise.all(Array.from({ length: n }, () => mcp4(k)))).map((r) => r.status);
    const key4 = async (owner, scopes) => {
      const r = await runTumiki(['key', 'create', '--endpoint', '*', '--scopes', scopes, '--owner', owner,
        '--config', g4.configPath], { cwd: g4.dir });
      assert.equal(r.code, 0, r.stderr);
      secrets.push(r.stdout.trim());
      return r.stdout.trim();
    };
    const user4 = async (role) => {
      const id = uniq('t');
      const r = await call('POST', '/users', g4.token, { id, email: `${id}@example.com`, role });
      assert.equal(r.status, 201, r.text);
      return id;
    };
    try {
      assert.ok(g4.logs().some((l) => /serving HTTP on 4 threads/.test(l.msg)));
      // role checks, server-side, whichever thread takes the request
      const admin = await user4('admin');
      const viewer = await user4('viewer');
      const ka = await key4(admin, 'mcp admin');
      const kv = await key4(viewer, 'mcp admin');
      const kmcp = await key4(admin, 'mcp');
      for (let round = 0; round < 4; round++) {
        assert.equal((await call('GET', '/users', kv)).status, 200);
        assert.equal((await call('POST', '/users', kv, { email: `${uniq('v')}@x.io` })).status, 403);
        assert.equal((await call('POST', '/users', ka, { email: `${uniq('a')}@x.io` })).status, 201);
        assert.equal((await call('POST', '/users', ka, { email: `${uniq('o')}@x.io`, role: 'owner' })).status, 403);
        assert.equal((await call('GET', '/me', kmcp)).json.error.code, 'insufficient_scope');
        assert.equal((await call('GET', '/me')).status, 401);
      }
      const me = await call('GET', '/me', ka);
      assert.equal(me.status, 200, me.text);
      assert.equal(me.json.user.id, admin);
      const srv = await call('GET', '/servers', kv);
      assert.match(srv.json.servers[0].status, /^(idle|starting|ready|backoff)$/);
      assert.equal((await call('DELETE', '/me', ka)).status, 405);

      // key lifecycle: create -> use on many connections -> revoke -> refused within 1 s everywhere
      const c = await call('POST', '/keys', ka, { endpoint: 'default', name: 't4', scopes: 'mcp' });
      assert.equal(c.status, 201, c.text);
      secrets.push(c.json.key);
      assert.deepEqual(await many(c.json.key, 16), Array(16).fill(200), authLog());
      assert.equal((await call('DELETE', `/keys/${c.json.id}`, ka)).status, 204);
      // revoked through the API: every thread's cache drops it at once
      assert.deepEqual(await many(c.json.key, 24), Array(24).fill(401), authLog());
      // revoked by the CLI (the store only): each thread's poll drops it within 1 s
      const kc = await key4(admin, 'mcp');
      assert.deepEqual(await many(kc, 24), Array(24).fill(200), authLog());
      const rv = await runTumiki(['key', 'revoke', kc.slice(3, 19), '--config', g4.configPath], { cwd: g4.dir });
      assert.equal(rv.code, 0, rv.stderr);
      await sleep(1000);
      assert.deepEqual(await many(kc, 24), Array(24).fill(401), authLog());

      // a tool selection made on one connection applies to tools/list at once
      const client = await connect(g4, { slug: 'default' });
      const names = async () => (await client.listTools()).tools.map((t) => t.name);
      assert.ok((await names()).includes('echo__echo'));
      for (const [body, present] of [[{ deny: ['echo__echo'] }, false], [{ allow: ['echo__*'] }, true],
        [{ deny: ['echo__*'] }, false], [{}, true]]) {
        const put = await call('PUT', '/endpoints/default/tools', ka, body);
        assert.equal(put.status, 200, put.text);
        assert.equal((await names()).includes('echo__echo'), present, JSON.stringify(body));
      }
      await client.close();

      // deleting a user refuses its keys at once on every thread, cached or not
      const gone = await user4('member');
      const kg = await key4(gone, 'mcp');
      assert.deepEqual(await many(kg, 24), Array(24).fill(200)); // verified and cached on the threads
      assert.equal((await call('DELETE', `/users/${gone}`, ka)).status, 204);
      assert.deepEqual(await many(kg, 24), Array(24).fill(401));
      // and disabling one too
      const off = await user4('member');
      const ko = await key4(off, 'mcp');
      assert.deepEqual(await many(ko, 24), Array(24).fill(200));
      assert.equal((await call('PATCH', `/users/${off}`, ka, { disabled: true })).status, 200);
      assert.deepEqual(await many(ko, 24), Array(24).fill(401));

      const log = g4.stderr();
      for (const k of secrets) assert.ok(!log.includes(k.slice(20)), 'a key secret appeared in the log');
      // stopping with admin requests in flight: they are dropped, the exit stays clean
      const inflight = Array.from({ length: 64 }, (_, i) =>
        call(i % 2 ? 'GET' : 'POST', '/users', ka, i % 2 ? undefined : { email: `${uniq('s')}@x.io` }).catch(() => null));
      await sleep(30);
      await g4.stop();
      await Promise.all(inflight);
    } finally {
      await g4.stop();
    }
    const end = await g4.stop();
    assert.equal(end.code, 0, g4.stderr().slice(-2000));
    assert.ok(!end.forced);
  });
});
