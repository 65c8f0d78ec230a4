// SPDX-License-Identifier: Apache-2.0
// Servers and endpoints made through the admin API (/api/v1/servers,
// /api/v1/endpoints), against the real binary, its SQLite store and the C
// echo fixture: a stdio server created with a secret env value is started
// with the decrypted value (the fixture's env tool reports it through the
// real MCP SDK client), an endpoint created beside it serves /mcp/<slug> at
// once; PATCH changes the server live (keeping or replacing its secrets);
// DELETE stops its process and takes it out of the endpoint's catalogue; a
// deleted endpoint answers 404; a restart on the same data directory brings
// them back; roles are enforced (viewer refused, member only on what it
// made); bad input gets 4xx with the one error shape; config-file servers and
// endpoints are read-only; and the secret value appears in no response, log
// line, audit record or database file.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { auditRecords, cleanup, connect, listAll, pidOf, procState, rawInitialize, runTumiki, servers,
  startGateway, TK_ECHO_BIN, textOf, waitFor } from './lib.mjs';

const SECRET = `sv-${randomBytes(16).toString('hex')}`;
const SECRET2 = `sv2-${randomBytes(16).toString('hex')}`;
const SECRET3 = `sv3-${randomBytes(16).toString('hex')}`;
const HEADER_SECRET = `hs-${randomBytes(16).toString('hex')}`;
const CLI_FILE_SECRET = `cf-${randomBytes(16).toString('hex')}`;
const CLI_ENV_SECRET = `ce-${randomBytes(16).toString('hex')}`;
const ALL_SECRETS = [SECRET, SECRET2, SECRET3, HEADER_SECRET, CLI_FILE_SECRET, CLI_ENV_SECRET];
const CONFIG = {
  mcpServers: { cfgsrv: servers.echo('cfgsrv') },
  endpoints: { default: { servers: ['cfgsrv'] } },
};
const echoServer = (name, env) => ({ name, command: TK_ECHO_BIN, args: ['--name', name], env });

describe('servers and endpoints through the admin API', () => {
  let gw;
  const gateways = [];
  const bodies = []; // every response text

  async function api(method, p, { token = gw.token, body, raw, on = gw } = {}) {
    const h = {};
    if (token) h.Authorization = `Bearer ${token}`;
    let payload;
    if (raw !== undefined) payload = raw;
    else if (body !== undefined) payload = JSON.stringify(body);
    if (payload !== undefined) h['Content-Type'] = 'application/json';
    const r = await fetch(`${on.url}/api/v1${p}`, { method, headers: h, body: payload });
    const text = await r.text();
    bodies.push(text);
    let json = null;
    try { json = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
    return { status: r.status, json, text };
  }
  const callText = async (client, name, args = {}) => textOf(await client.callTool({ name, arguments: args }));

  before(async () => {
    gw = await startGateway({ config: CONFIG });
    gateways.push(gw);
  });
  after(cleanup);

  test('a stdio server made with a secret env value serves through a new endpoint', async () => {
    const r = await api('POST', '/servers', { body: echoServer('vault-echo', { API_TOKEN: SECRET, MODE: 'plain-mode' }) });
    assert.equal(r.status, 201, r.text);
    assert.equal(r.json.name, 'vault-echo');
    assert.equal(r.json.source, 'api');
    assert.equal(r.json.transport, 'stdio');
    assert.deepEqual([...r.json.env_names].sort(), ['API_TOKEN', 'MODE']);
    assert.ok(!r.text.includes(SECRET) && !r.text.includes('plain-mode'), 'no value in the response');

    const e = await api('POST', '/endpoints', { body: { slug: 'team', servers: ['vault-echo', 'cfgsrv'] } });
    assert.equal(e.status, 201, e.text);
    assert.equal(e.json.source, 'api');
    assert.deepEqual(e.json.servers, ['vault-echo', 'cfgsrv']);

    const client = await connect(gw, { slug: 'team' });
    try {
      const names = (await listAll(client, 'tools')).map((t) => t.name);
      assert.ok(names.includes('vault-echo__env'), names.join(','));
      assert.ok(names.includes('cfgsrv__echo'), names.join(','));
      assert.equal(await callText(client, 'vault-echo__env', { name: 'API_TOKEN' }), SECRET,
        'the child got the decrypted value');
      assert.equal(await callText(client, 'vault-echo__env', { name: 'MODE' }), 'plain-mode');
    } finally {
      await client.close();
    }

    const list = await api('GET', '/servers');
    assert.equal(list.status, 200);
    const byName = Object.fromEntries(list.json.servers.map((s) => [s.name, s]));
    assert.equal(byName['vault-echo'].source, 'api');
    assert.equal(byName.cfgsrv.source, 'config');
    assert.equal(typeof byName['vault-echo'].status, 'string');
    const one = await api('GET', '/servers/vault-echo');
    assert.equal(one.status, 200);
    assert.deepEqual([...one.json.env_names].sort(), ['API_TOKEN', 'MODE']);
    const eps = await api('GET', '/endpoints');
    assert.ok(eps.json.endpoints.some((x) => x.slug === 'team' && x.source === 'api'));
    assert.equal((await api('GET', '/endpoints/team')).json.slug, 'team');
  });

  test('PATCH changes a server live: secrets kept unless given, replaced when given', async () => {
    let r = await api('PATCH', '/servers/vault-echo', { body: { timeout_ms: 30000 } });
    assert.equal(r.status, 200, r.text);
    let client = await connect(gw, { slug: 'team' });
    try {
      assert.equal(await callText(client, 'vault-echo__env', { name: 'API_TOKEN' }), SECRET, 'kept');
    } finally {
      await client.close();
    }
    r = await api('PATCH', '/servers/vault-echo', { body: { env: { API_TOKEN: SECRET2 } } });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json.env_names, ['API_TOKEN']);
    client = await connect(gw, { slug: 'team' });
    try {
      assert.equal(await callText(client, 'vault-echo__env', { name: 'API_TOKEN' }), SECRET2, 'replaced');
      assert.equal(await callText(client, 'vault-echo__env', { name: 'MODE' }), '(unset)');
    } finally {
      await client.close();
    }
    r = await api('PATCH', '/servers/vault-echo', { body: { name: 'renamed' } });
    assert.equal(r.status, 400, r.text);
    r = await api('PATCH', '/endpoints/team', { body: { tools: { allow: ['cfgsrv__*'] } } });
    assert.equal(r.status, 200, r.text);
    client = await connect(gw, { slug: 'team' });
    try {
      const names = (await listAll(client, 'tools')).map((t) => t.name);
      assert.ok(names.length > 0 && names.every((n) => n.startsWith('cfgsrv__')), names.join(','));
    } finally {
      await client.close();
    }
    r = await api('PATCH', '/endpoints/team', { body: { tools: null } });
    assert.equal(r.status, 200, r.text);
    assert.equal((await api('PUT', '/endpoints/team/tools', { body: { allow: [], deny: [] } })).status, 200);
  });

  test('DELETE stops the server\'s process and takes it off the endpoint; a deleted endpoint is 404', async () => {
    const client = await connect(gw, { slug: 'team' });
    let pid;
    try {
      pid = pidOf(await client.callTool({ name: 'vault-echo__pid', arguments: {} }));
      assert.ok(procState(pid) !== null, 'the child runs');
      assert.equal((await api('DELETE', '/servers/vault-echo')).status, 204);
      await waitFor(() => procState(pid) === null || procState(pid) === 'Z', { what: 'child gone', timeoutMs: 5000 });
      const names = (await listAll(client, 'tools')).map((t) => t.name);
      assert.ok(!names.some((n) => n.startsWith('vault-echo__')), names.join(','));
      assert.ok(names.includes('cfgsrv__echo'));
    } finally {
      await client.close();
    }
    assert.equal((await api('GET', '/servers/vault-echo')).status, 404);
    assert.deepEqual((await api('GET', '/endpoints/team')).json.servers, ['cfgsrv'], 'the stored endpoint lost it too');
    await rawInitialize(gw, 'team');
    assert.equal((await api('DELETE', '/endpoints/team')).status, 204);
    await assert.rejects(rawInitialize(gw, 'team'), /HTTP 404/);
    assert.equal((await api('DELETE', '/endpoints/team')).status, 404);
  });

  test('config-file servers and endpoints are read-only through the API', async () => {
    for (const [m, p, body] of [['DELETE', '/servers/cfgsrv'], ['PATCH', '/servers/cfgsrv', { timeout_ms: 5 }],
      ['POST', '/servers', echoServer('cfgsrv', {})], ['DELETE', '/endpoints/default'],
      ['PATCH', '/endpoints/default', { servers: [] }], ['POST', '/endpoints', { slug: 'default', servers: [] }]]) {
      const r = await api(m, p, { body });
      assert.equal(r.status, 409, `${m} ${p}: ${r.text}`);
      assert.equal(r.json.error.code, 'defined_in_config');
      assert.match(r.json.error.message, /config file/);
    }
    assert.equal((await api('GET', '/servers/cfgsrv')).json.source, 'config');
  });

  test('bad input gets a 4xx with the standard error shape', async () => {
    const cases = [
      [400, { ...echoServer('bad name!', {}) }],
      [400, { ...echoServer('a__b', {}) }],
      [400, { ...echoServer('x'.repeat(33), {}) }],
      [400, { name: 'nourl', url: 'ftp://example.com/mcp' }],
      [400, { name: 'ssrf', url: 'http://169.254.169.254/latest/meta-data' }],
      [400, { name: 'loop', url: 'http://127.0.0.1:1/mcp' }],
      [400, { ...echoServer('unknownfield', {}), bogus: 1 }],
      [400, { ...echoServer('badenv', { 'A=B': SECRET }) }],
      [400, { name: 'both', command: TK_ECHO_BIN, url: 'https://example.com/mcp' }],
      [400, { ...echoServer('dis', {}), disabled: 'yes' }],
      [400, { command: TK_ECHO_BIN }],
      [400, { ...echoServer('hdr', {}), headers: { Authorization: HEADER_SECRET } }],
    ];
    for (const [want, body] of cases) {
      const r = await api('POST', '/servers', { body });
      assert.equal(r.status, want, `${JSON.stringify(body).slice(0, 80)}: ${r.text}`);
      assert.equal(typeof r.json.error.code, 'string');
      assert.equal(typeof r.json.error.message, 'string');
      assert.doesNotMatch(r.text, /sqlite|SELECT|INSERT|\/tmp\//i);
      assert.ok(!r.text.includes(SECRET) && !r.text.includes(HEADER_SECRET), r.text);
    }
    const ssrf = await api('POST', '/servers', { body: { name: 'ssrf2', url: 'http://169.254.169.254/x' } });
    assert.match(ssrf.json.error.message, /url/);
    const big = await api('POST', '/servers', { raw: JSON.stringify({ ...echoServer('big', { V: 'x'.repeat(70000) }) }) });
    assert.equal(big.status, 413);
    assert.equal((await api('POST', '/servers', { raw: '{"name": ' })).status, 400);
    for (const [body, code] of [[{ slug: 'Bad_Slug', servers: [] }, 400], [{ slug: 'nosrv', servers: ['ghost'] }, 400],
      [{ slug: 'rl', servers: [], rate_limit: 'lots' }, 400], [{ slug: 'noservers' }, 400],
      [{ servers: [] }, 400], [{ slug: 'extra', servers: [], what: 1 }, 400]]) {
      const r = await api('POST', '/endpoints', { body });
      assert.equal(r.status, code, `${JSON.stringify(body)}: ${r.text}`);
      assert.equal(typeof r.json.error.message, 'string');
    }
    assert.equal((await api('GET', '/servers/nope')).status, 404);
    assert.equal((await api('PATCH', '/servers/nope', { body: {} })).status, 404);
    // nothing half-made
    const names = (await api('GET', '/servers')).json.servers.map((s) => s.name);
    assert.deepEqual(names, ['cfgsrv']);
  });

  test('roles: a viewer is refused, a member changes only what it made', async () => {
    const tumiki = (...args) => runTumiki([...args, '--config', gw.configPath], { cwd: gw.dir });
    const keys = {};
    for (const role of ['member', 'viewer']) {
      const u = await api('POST', '/users', { body: { email: `${role}-${process.pid}@example.com`, role } });
      assert.equal(u.status, 201, u.text);
      const k = await tumiki('key', 'create', '--endpoint', '*', '--scopes', 'mcp admin', '--owner', u.json.id);
      assert.equal(k.code, 0, k.stderr);
      keys[role] = k.stdout.trim();
    }
    assert.equal((await api('POST', '/servers', { token: keys.viewer, body: echoServer('byviewer', {}) })).status, 403);
    assert.equal((await api('GET', '/servers', { token: keys.viewer })).status, 200);
    assert.equal((await api('POST', '/servers', { token: keys.member, body: echoServer('bymember', {}) })).status, 201);
    assert.equal((await api('POST', '/servers', { body: echoServer('byowner', {}) })).status, 201);
    assert.equal((await api('PATCH', '/servers/bymember', { token: keys.member, body: { timeout_ms: 9000 } })).status, 200);
    assert.equal((await api('PATCH', '/servers/byowner', { token: keys.member, body: { timeout_ms: 9000 } })).status, 403);
    assert.equal((await api('DELETE', '/servers/byowner', { token: keys.member })).status, 403);
    assert.equal((await api('DELETE', '/servers/bymember', { token: keys.viewer })).status, 403);
    assert.equal((await api('POST', '/endpoints', { token: keys.member, body: { slug: 'mine', servers: ['byowner'] } })).status, 201);
    assert.equal((await api('DELETE', '/endpoints/mine', { token: keys.viewer })).status, 403);
    assert.equal((await api('DELETE', '/endpoints/mine', { token: keys.member })).status, 204);
    assert.equal((await api('DELETE', '/servers/bymember', { token: keys.member })).status, 204);
    assert.equal((await api('DELETE', '/servers/byowner')).status, 204);
    assert.equal((await api('POST', '/servers', { token: null, body: echoServer('anon', {}) })).status, 401);
  });

  test('a restart on the same data directory brings API- and CLI-made servers and endpoints back', async () => {
    assert.equal((await api('POST', '/servers', { body: echoServer('keep', { API_TOKEN: SECRET3 }) })).status, 201);
    assert.equal((await api('POST', '/endpoints', { body: { slug: 'kept', servers: ['keep'] } })).status, 201);
    const key = await api('POST', '/keys', { body: { endpoint: 'kept', name: 'for kept' } });
    assert.equal(key.status, 201, 'a key can be bound to an API-made endpoint');
    // the command line, over the same handlers: values from a file and from its environment
    const tumiki = (args, env = {}) => runTumiki([...args, '--config', gw.configPath],
      { cwd: gw.dir, env: { ...process.env, ...env } });
    const tokFile = path.join(gw.dir, 'cli-token.txt');
    fs.writeFileSync(tokFile, `${CLI_FILE_SECRET}\n`, { mode: 0o600 });
    let r = await tumiki(['server', 'add', 'clisrv', '--command', TK_ECHO_BIN, '--arg', '--name', '--arg', 'clisrv',
      '--env', `FROM_FILE=@${tokFile}`, '--env-from-env', 'FROM_ENV=TK_IT_CLI_VALUE'], { TK_IT_CLI_VALUE: CLI_ENV_SECRET });
    assert.equal(r.code, 0, r.stderr);
    r = await tumiki(['endpoint', 'create', 'clied', '--servers', 'clisrv,keep']);
    assert.equal(r.code, 0, r.stderr);
    r = await tumiki(['server', 'show', 'clisrv']);
    assert.equal(r.code, 0, r.stderr);
    const shown = JSON.parse(r.stdout);
    assert.deepEqual([...shown.env_names].sort(), ['FROM_ENV', 'FROM_FILE']);
    assert.equal(shown.created_by, 'cli');
    r = await tumiki(['server', 'add', 'cliurl', '--url', 'http://169.254.169.254/x']);
    assert.equal(r.code, 2, 'bad input: usage status');
    assert.match(r.stderr, /url/);
    r = await tumiki(['server', 'add', 'clihdr', '--url', 'https://example.com/mcp', '--header', `Authorization=${HEADER_SECRET}`]);
    assert.notEqual(r.code, 0, 'a header value in argv is refused');
    r = await tumiki(['server', 'remove', 'cfgsrv']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /config file/);
    await gw.stop();
    const gw2 = await startGateway({ config: { ...CONFIG, data_dir: path.join(gw.dir, 'data') } });
    gateways.push(gw2);
    const client = await connect(gw2, { slug: 'kept', token: key.json.key });
    try {
      assert.equal(await callText(client, 'keep__env', { name: 'API_TOKEN' }), SECRET3);
    } finally {
      await client.close();
    }
    const c2 = await connect(gw2, { slug: 'clied' });
    try {
      assert.equal(await callText(c2, 'clisrv__env', { name: 'FROM_FILE' }), CLI_FILE_SECRET);
      assert.equal(await callText(c2, 'clisrv__env', { name: 'FROM_ENV' }), CLI_ENV_SECRET);
    } finally {
      await c2.close();
    }
    r = await api('GET', '/servers/keep', { on: gw2, token: gw2.token });
    assert.equal(r.status, 200);
    assert.equal(r.json.source, 'api');
    await gw2.stop();
  });

  test('a stored secret that no longer decrypts: the server is skipped with a clear error, the gateway starts', async () => {
    const data = path.join(gw.dir, 'data');
    fs.copyFileSync(path.join(data, 'vault.key'), path.join(gw.dir, 'vault.key.orig'));
    fs.writeFileSync(path.join(data, 'vault.key'), randomBytes(32), { mode: 0o600 });
    const gw3 = await startGateway({ config: { ...CONFIG, data_dir: data } });
    gateways.push(gw3);
    const logs = gw3.logs().map((l) => l.msg).join('\n');
    assert.match(logs, /server keep: a stored secret cannot be decrypted/);
    assert.match(logs, /server clisrv: a stored secret cannot be decrypted/);
    // the config's servers still serve
    const c = await connect(gw3);
    try {
      assert.ok((await listAll(c, 'tools')).some((t) => t.name === 'cfgsrv__echo'));
    } finally {
      await c.close();
    }
    await gw3.stop();
    fs.copyFileSync(path.join(gw.dir, 'vault.key.orig'), path.join(data, 'vault.key'));
  });

  test('no secret value in any response, log line, audit record or database file', async () => {
    for (const s of ALL_SECRETS) {
      for (const b of bodies) assert.ok(!b.includes(s), `a response carries a secret: ${b.slice(0, 200)}`);
      for (const g of gateways) assert.ok(!g.stderr().includes(s), 'the log carries a secret');
      // (both gateways write the trail under the first one's data directory)
      assert.ok(!JSON.stringify(auditRecords(gw)).includes(s), 'the audit trail carries a secret');
      const dir = path.join(gw.dir, 'data');
      for (const f of fs.readdirSync(dir).filter((n) => n.startsWith('tumiki.db'))) {
        assert.ok(!fs.readFileSync(path.join(dir, f)).includes(s), `${f} holds a secret in clear`);
      }
    }
    const recs = auditRecords(gw).filter((r) => /^admin\.(servers?|endpoints?)\./.test(r.action));
    assert.ok(recs.some((r) => r.action === 'admin.servers.post' && r.target === 'server:vault-echo'));
    assert.ok(recs.some((r) => r.action === 'admin.server.delete' && r.target === 'server:vault-echo'));
    assert.ok(recs.some((r) => r.action === 'admin.endpoint.delete' && r.target === 'endpoint:team'));
    const st = fs.statSync(path.join(gw.dir, 'data', 'vault.key'));
    assert.equal(st.mode & 0o777, 0o600);
  });
});
