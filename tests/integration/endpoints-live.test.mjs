// SPDX-License-Identifier: Apache-2.0
// Endpoints made through the admin API are first-class on the HTTP side
// (src/state/epreg.c, read by every HTTP thread): their RFC 9728
// protected-resource document exists while they do and names their URL, a
// 401 on them points at it, the HTTP metrics label them by slug, and their
// own rate_limit applies (also after a PATCH changes it). A server made
// with "disabled": true is stored but not started and adds no tools to the
// endpoints that list it; enabling it starts it and its tools appear there,
// disabling it again stops its process and its tools vanish. `tumiki
// endpoint list|show` show API-made endpoints beside the config's, with
// their source. Servers and endpoints added or removed with the command
// line (which writes the store) reach the running gateway within 2 s, and
// the gateway's poll of the store leaves what the API applied alone (no
// restart of its process). Run with
// TUMIKI_TEST_THREADS=2 as well (ctest integration_threads2).
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

import { cleanup, connect, listAll, mcpHeaders, pidOf, procState, rawInitialize, rawRequest, runTumiki, servers, startGateway,
  TK_ECHO_BIN, waitFor } from './lib.mjs';

const ping = (id) => ({ jsonrpc: '2.0', id, method: 'ping' });
const PRM = '/.well-known/oauth-protected-resource/mcp/';

describe('API-made endpoints on the HTTP side', () => {
  let gw;

  async function api(method, p, body) {
    const h = { Authorization: `Bearer ${gw.token}` };
    if (body !== undefined) h['Content-Type'] = 'application/json';
    const r = await fetch(`${gw.url}/api/v1${p}`, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await r.text();
    return { status: r.status, json: text ? JSON.parse(text) : null, text };
  }
  const metric = async (key) => {
    const r = await rawRequest(`${gw.url}/metrics`, { method: 'GET', headers: { Authorization: `Bearer ${gw.token}` } });
    assert.equal(r.status, 200, r.text);
    const line = r.text.split('\n').find((l) => l.startsWith(`${key} `));
    return line ? Number(line.split(' ')[1]) : 0;
  };
  // fresh connections, so that with several HTTP threads each request may
  // land on another thread
  const prm = (slug) => rawRequest(`${gw.url}${PRM}${slug}`, { method: 'GET' });

  before(async () => {
    gw = await startGateway({ config: {
      mcpServers: { echo: servers.echo('echo') },
      endpoints: { default: { servers: ['echo'] } },
    } });
  });
  after(cleanup);

  test('the protected-resource document exists while the endpoint does', async () => {
    assert.equal((await prm('live')).status, 404, 'no document before the endpoint exists');
    const c = await api('POST', '/endpoints', { slug: 'live', servers: ['echo'] });
    assert.equal(c.status, 201, c.text);
    for (let i = 0; i < 8; i++) {
      const r = await prm('live');
      assert.equal(r.status, 200, r.text);
      assert.equal(JSON.parse(r.text).resource, `${gw.url}/mcp/live`);
    }
    // a 401 on it points at that document
    const u = await rawRequest(gw.mcpUrl('live'), { headers: mcpHeaders({ token: 'wrong' }), body: ping(1) });
    assert.equal(u.status, 401);
    const m = /resource_metadata="([^"]+)"/.exec(u.headers['www-authenticate']);
    assert.ok(m, u.headers['www-authenticate']);
    assert.equal(m[1], `${gw.url}${PRM}live`);
    assert.equal((await rawRequest(m[1], { method: 'GET' })).status, 200);

    assert.equal((await api('DELETE', '/endpoints/live')).status, 204);
    for (let i = 0; i < 8; i++)
      assert.equal((await prm('live')).status, 404, 'the document goes with the endpoint');
    assert.equal((await prm('default')).status, 200, 'the config endpoint keeps its document');
  });

  test('HTTP metrics label an API-made endpoint by its slug', async () => {
    assert.equal((await api('POST', '/endpoints', { slug: 'counted', servers: ['echo'] })).status, 201);
    const key = 'tumiki_http_requests_total{endpoint="counted",code="401"}';
    const other = 'tumiki_http_requests_total{endpoint="_other",code="401"}';
    const before0 = await metric(key);
    const otherBefore = await metric(other);
    for (let i = 0; i < 3; i++)
      assert.equal((await rawRequest(gw.mcpUrl('counted'), { headers: mcpHeaders({ token: 'wrong' }), body: ping(i) })).status, 401);
    assert.equal(await metric(key) - before0, 3);
    assert.equal(await metric(other) - otherBefore, 0, 'not counted under _other');
  });

  test('an API-made endpoint\'s rate_limit applies, and a PATCH changes it', async () => {
    const c = await api('POST', '/endpoints', { slug: 'small', servers: ['echo'], rate_limit: '5/min' });
    assert.equal(c.status, 201, c.text);
    assert.equal(c.json.rate_limit, '5/min');
    const s = await rawInitialize(gw, 'small'); // 2 of 5
    const codes = [];
    for (let i = 0; i < 5; i++)
      codes.push((await rawRequest(gw.mcpUrl('small'), { headers: mcpHeaders(gw, { session: s }), body: ping(i) })).status);
    assert.deepEqual(codes, [200, 200, 200, 429, 429]);
    // other endpoints are not limited by it
    const d = await rawInitialize(gw, 'default');
    assert.equal((await rawRequest(gw.mcpUrl('default'), { headers: mcpHeaders(gw, { session: d }), body: ping(9) })).status, 200);

    // a bad limit is refused with the config file's rule
    const bad = await api('PATCH', '/endpoints/small', { rate_limit: '5/fortnight' });
    assert.equal(bad.status, 400, bad.text);
    assert.equal(bad.json.error.code, 'invalid_field');
    assert.match(bad.json.error.message, /^body: /);

    // removing it lifts the limit at once
    const p = await api('PATCH', '/endpoints/small', { rate_limit: null });
    assert.equal(p.status, 200, p.text);
    for (let i = 0; i < 5; i++)
      assert.equal((await rawRequest(gw.mcpUrl('small'), { headers: mcpHeaders(gw, { session: s }), body: ping(20 + i) })).status, 200);
    // and setting one again applies
    assert.equal((await api('PATCH', '/endpoints/small', { rate_limit: '1/min' })).status, 200);
    const after1 = [];
    for (let i = 0; i < 3; i++)
      after1.push((await rawRequest(gw.mcpUrl('small'), { headers: mcpHeaders(gw, { session: s }), body: ping(30 + i) })).status);
    assert.ok(after1.includes(429), after1.join(','));
  });

  test('a disabled API-made server is not started; enabling and disabling apply live', async () => {
    const srv = { name: 'sleepy', command: TK_ECHO_BIN, args: ['--name', 'sleepy'], disabled: true };
    const c = await api('POST', '/servers', srv);
    assert.equal(c.status, 201, c.text);
    assert.equal(c.json.disabled, true);
    const e = await api('POST', '/endpoints', { slug: 'mixed', servers: ['echo', 'sleepy'] });
    assert.equal(e.status, 201, e.text);
    const g = await api('GET', '/servers/sleepy');
    assert.equal(g.json.disabled, true);
    const listed = (await api('GET', '/servers')).json.servers.find((x) => x.name === 'sleepy');
    assert.equal(listed.status, 'disabled');

    const client = await connect(gw, { slug: 'mixed' });
    try {
      const names = async () => (await listAll(client, 'tools')).map((t) => t.name);
      assert.ok((await names()).includes('echo__echo'));
      assert.ok(!(await names()).some((n) => n.startsWith('sleepy__')), 'no tools of a disabled server');

      const on = await api('PATCH', '/servers/sleepy', { disabled: false });
      assert.equal(on.status, 200, on.text);
      assert.equal(on.json.disabled, false);
      await waitFor(async () => (await names()).includes('sleepy__pid'), { what: 'tools of the enabled server', timeoutMs: 5000 });
      const pid = pidOf(await client.callTool({ name: 'sleepy__pid', arguments: {} }));
      assert.ok(procState(pid) !== null, 'the child runs');

      const off = await api('PATCH', '/servers/sleepy', { disabled: true });
      assert.equal(off.status, 200, off.text);
      assert.ok(!(await names()).some((n) => n.startsWith('sleepy__')), 'its tools vanish');
      await waitFor(() => procState(pid) === null || procState(pid) === 'Z', { what: 'child gone', timeoutMs: 5000 });
      const r = await client.callTool({ name: 'sleepy__pid', arguments: {} }).catch((err) => ({ isError: true, err }));
      assert.ok(r.isError, 'a disabled server\'s tool cannot be called');
    } finally {
      await client.close();
    }
    assert.equal((await api('DELETE', '/servers/sleepy')).status, 204, 'a disabled server can be deleted');
    assert.equal((await api('GET', '/servers/sleepy')).status, 404);
  });

  test('tumiki endpoint list|show include API-made endpoints, with their source', async () => {
    const c = await api('POST', '/endpoints', { slug: 'shown', servers: ['echo'], rate_limit: '7/min', tools: { deny: ['echo__pid'] } });
    assert.equal(c.status, 201, c.text);
    const tumiki = (...args) => runTumiki([...args, '--config', gw.configPath], { cwd: gw.dir });
    let r = await tumiki('endpoint', 'list');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^default \(config\)\n {2}servers: echo\n/m);
    assert.match(r.stdout, /^shown \(api\)\n {2}servers: echo\n/m);
    r = await tumiki('endpoint', 'show', 'shown');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^shown \(api\)\n/);
    assert.match(r.stdout, /deny: \["echo__pid"\]/);
    assert.match(r.stdout, /rate_limit: 7\/min/);
    assert.ok(!r.stdout.includes('default'), 'show prints one endpoint');
    r = await tumiki('endpoint', 'show', 'nosuch');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /no such endpoint/);
    // a tool selection can be stored for an API-made endpoint too
    r = await tumiki('endpoint', 'tools', 'shown', '--deny', 'echo__echo');
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual((await api('GET', '/endpoints/shown')).json.tools, { allow: [], deny: ['echo__echo'], source: 'api' });
  });

  test('command-line changes reach the running gateway within 2 s', async () => {
    const tumiki = (...args) => runTumiki([...args, '--config', gw.configPath], { cwd: gw.dir });
    let r = await tumiki('server', 'add', 'clisrv', '--command', TK_ECHO_BIN, '--arg', '--name', '--arg', 'clisrv');
    assert.equal(r.code, 0, r.stderr);
    r = await tumiki('endpoint', 'create', 'cliep', '--servers', 'clisrv,echo');
    assert.equal(r.code, 0, r.stderr);
    const t0 = Date.now();
    let client = null;
    let pid = 0;
    await waitFor(async () => {
      try {
        client = await connect(gw, { slug: 'cliep' });
        pid = pidOf(await client.callTool({ name: 'clisrv__pid', arguments: {} }));
        return true;
      } catch {
        await client?.close().catch(() => {});
        client = null;
        return false;
      }
    }, { what: 'a tool of the CLI-made server on the CLI-made endpoint', timeoutMs: 2000, intervalMs: 100 });
    const took = Date.now() - t0;
    try {
      assert.ok(took < 2000, `took ${took} ms`);
      assert.equal((await prm('cliep')).status, 200, 'first-class on the HTTP side too');
      // a change made by the API is not applied a second time by the poll
      assert.equal((await api('PATCH', '/endpoints/cliep', { namespace: true })).status, 200);
      await sleep(1200);
      assert.equal(pidOf(await client.callTool({ name: 'clisrv__pid', arguments: {} })), pid, 'not restarted');
    } finally {
      await client.close();
    }
    r = await tumiki('endpoint', 'delete', 'cliep');
    assert.equal(r.code, 0, r.stderr);
    const status = async () => (await rawRequest(gw.mcpUrl('cliep'), { headers: mcpHeaders(gw), body: ping(1) })).status;
    await waitFor(async () => (await status()) === 404, { what: '404 after endpoint delete', timeoutMs: 2000, intervalMs: 100 });
    r = await tumiki('server', 'remove', 'clisrv');
    assert.equal(r.code, 0, r.stderr);
    await waitFor(() => procState(pid) === null || procState(pid) === 'Z', { what: 'the removed server stops', timeoutMs: 2000, intervalMs: 100 });
    const listed = (await api('GET', '/servers')).json.servers.map((x) => x.name);
    assert.ok(!listed.includes('clisrv'), listed.join(','));
  });

  test('an API-made server is not restarted by the store poll', async () => {
    assert.equal((await api('POST', '/servers', { name: 'steady', command: TK_ECHO_BIN, args: ['--name', 'steady'] })).status, 201);
    assert.equal((await api('POST', '/endpoints', { slug: 'steady', servers: ['steady'] })).status, 201);
    const client = await connect(gw, { slug: 'steady' });
    try {
      const pid = pidOf(await client.callTool({ name: 'steady__pid', arguments: {} }));
      assert.equal((await api('PATCH', '/servers/steady', { args: ['--name', 'steady'] })).status, 200);
      await waitFor(async () => {
        try { return pidOf(await client.callTool({ name: 'steady__pid', arguments: {} })) !== pid; } catch { return false; }
      }, { what: 'the PATCHed server restarted once', timeoutMs: 5000 });
      const pid2 = pidOf(await client.callTool({ name: 'steady__pid', arguments: {} }));
      await sleep(1200); // more than two polls
      assert.equal(pidOf(await client.callTool({ name: 'steady__pid', arguments: {} })), pid2);
    } finally {
      await client.close();
    }
  });

  // last: it stops the gateway
  test('after a restart a disabled server stays stopped and its endpoint serves without it', async () => {
    assert.equal((await api('POST', '/servers', { name: 'dormant', command: TK_ECHO_BIN, args: ['--name', 'dormant'], disabled: true })).status, 201);
    assert.equal((await api('POST', '/endpoints', { slug: 'after', servers: ['dormant', 'echo'], rate_limit: '1000/min' })).status, 201);
    await gw.stop();
    gw = await startGateway({ config: {
      mcpServers: { echo: servers.echo('echo') },
      endpoints: { default: { servers: ['echo'] } },
      data_dir: path.join(gw.dir, 'data'),
    } });
    assert.equal((await api('GET', '/servers/dormant')).json.disabled, true);
    const listed = (await api('GET', '/servers')).json.servers.find((x) => x.name === 'dormant');
    assert.equal(listed.status, 'disabled');
    assert.equal((await prm('after')).status, 200, 'a stored endpoint has its document after a restart');
    const client = await connect(gw, { slug: 'after' });
    try {
      const names = async () => (await listAll(client, 'tools')).map((t) => t.name);
      assert.ok((await names()).includes('echo__echo'));
      assert.ok(!(await names()).some((n) => n.startsWith('dormant__')));
      assert.equal((await api('PATCH', '/servers/dormant', { disabled: false })).status, 200);
      await waitFor(async () => (await names()).includes('dormant__pid'), { what: 'tools after enabling', timeoutMs: 5000 });
    } finally {
      await client.close();
    }
  });
});
