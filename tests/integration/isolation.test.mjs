// SPDX-License-Identifier: Apache-2.0
// Isolation and hygiene checks against the real binary: an upstream child
// gets its configured environment but none of the gateway's (not even
// TUMIKI_TOKEN); an upstream message over limits.max_message_bytes ends that
// process with a clear error and the next call works; the generated
// bootstrap token file is mode 0600 and never logged; an initialize inside a
// session is refused; an idle session expires; every response carries the
// security headers; failed authentication is logged without the credential.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import {
  cleanup, connect, mcpHeaders, pidOf, rawInitialize, rawRequest, servers, sleep, startGateway, textOf, waitFor,
} from './lib.mjs';

describe('isolation and hygiene', () => {
  let gw;
  let client;

  before(async () => {
    gw = await startGateway({
      env: { GATEWAY_ONLY_SECRET: 'do-not-leak-0123456789' },
      config: {
        limits: { max_message_bytes: 4096, session_idle_timeout_s: 1 },
        mcpServers: { echo: { ...servers.echo('echo'), env: { API_KEY: 'configured-value' } } },
      },
    });
    client = await connect(gw);
  });
  after(async () => {
    await client?.close().catch(() => {});
    await cleanup();
  });

  const env = async (name) => textOf(await client.callTool({ name: 'echo__env', arguments: { name } }));

  test('a child sees its configured env and nothing of the gateway\'s', async () => {
    assert.equal(await env('API_KEY'), 'configured-value');
    assert.equal(await env('TUMIKI_TOKEN'), '(unset)');
    assert.equal(await env('GATEWAY_ONLY_SECRET'), '(unset)');
    assert.notEqual(await env('PATH'), '(unset)', 'PATH is passed so interpreters can run');
  });

  test('an oversized upstream message ends that process; the next call works', async () => {
    const pid1 = pidOf(await client.callTool({ name: 'echo__pid', arguments: {} }));
    await assert.rejects(client.callTool({ name: 'echo__echo', arguments: { text: 'x'.repeat(8000) } }),
      /upstream server 'echo' failed/);
    const r = await waitFor(async () => {
      try { return await client.callTool({ name: 'echo__pid', arguments: {} }); } catch { return null; }
    }, { timeoutMs: 10000, what: 'the restarted server' });
    assert.notEqual(pidOf(r), pid1);
    assert.match(gw.stderr(), /message exceeds 4096 bytes/);
  });

  test('initialize inside a session is refused; an idle session expires', async () => {
    const session = await rawInitialize(gw);
    const init = await rawRequest(gw.mcpUrl(), { headers: mcpHeaders(gw, { session }), body: {
      jsonrpc: '2.0', id: 7, method: 'initialize',
      params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'x', version: '1' } } } });
    assert.equal(init.status, 400);
    assert.equal(init.messages[0].error.code, -32600);
    await sleep(3500);
    const gone = await rawRequest(gw.mcpUrl(), { headers: mcpHeaders(gw, { session }),
      body: { jsonrpc: '2.0', id: 8, method: 'ping' } });
    assert.equal(gone.status, 404, 'the session outlived session_idle_timeout_s');
  });

  test('security headers on success, error and health responses', async () => {
    const ok = await rawRequest(`${gw.url}/healthz`, { method: 'GET' });
    const denied = await rawRequest(gw.mcpUrl(), { headers: { 'Content-Type': 'application/json' }, body: {} });
    const missing = await rawRequest(`${gw.url}/nope`, { method: 'GET' });
    // made by libevent itself, before any handler: body over the limit, headers over 16 KiB
    const tooBig = await rawRequest(gw.mcpUrl(), { headers: { ...mcpHeaders(gw), 'Content-Type': 'application/json' },
      body: `{"x":"${'y'.repeat(5 << 20)}"}` });
    assert.equal(tooBig.status, 413);
    const hugeHeader = await rawRequest(`${gw.url}/healthz`, { method: 'GET', headers: { 'X-Big': 'b'.repeat(20000) } });
    assert.equal(hugeHeader.status, 400);
    for (const r of [ok, denied, missing, tooBig, hugeHeader]) {
      assert.equal(r.headers['x-content-type-options'], 'nosniff');
      assert.equal(r.headers['x-frame-options'], 'DENY');
      assert.match(r.headers['content-security-policy'], /default-src 'none'.*frame-ancestors 'none'/);
      assert.equal(r.headers['referrer-policy'], 'no-referrer');
      assert.equal(r.headers.server, undefined, 'no server banner');
    }
    assert.equal(denied.status, 401);
    // CORS: an allowed (loopback) origin is echoed, a foreign one refused
    const cors = await rawRequest(gw.mcpUrl(), { method: 'OPTIONS', headers: { Origin: 'http://localhost:6274',
      'Access-Control-Request-Method': 'POST' } });
    assert.equal(cors.headers['access-control-allow-origin'], 'http://localhost:6274');
    assert.notEqual(cors.headers['access-control-allow-origin'], '*');
    const evil = await rawRequest(gw.mcpUrl(), { method: 'OPTIONS', headers: { Origin: 'https://evil.example' } });
    assert.equal(evil.status, 403);
    assert.equal(evil.headers['access-control-allow-origin'], undefined);
  });

  test('security headers once on every response of a keep-alive connection, libevent\'s own included', async () => {
    const sock = net.connect(Number(new URL(gw.url).port), '127.0.0.1');
    let got = '';
    let closed = false;
    sock.on('data', (d) => { got += d; });
    sock.on('close', () => { closed = true; });
    sock.on('error', () => {});
    await new Promise((r, j) => { sock.once('connect', r); sock.once('error', j); });
    const count = (re) => (got.match(re) || []).length;
    const get = 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n';
    try {
      sock.write(get);
      await waitFor(() => count(/HTTP\/1\.1 200 /gm) === 1, { what: 'first response' });
      sock.write(get); // the output buffer has been written once now
      await waitFor(() => count(/HTTP\/1\.1 200 /gm) === 2, { what: 'second response' });
      // 100 Continue (one piece, made by libevent), then its final answer
      const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' });
      sock.write(`POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n` +
        `Expect: 100-continue\r\nContent-Length: ${body.length}\r\n\r\n`);
      await waitFor(() => count(/HTTP\/1\.1 100 /gm) === 1, { what: '100 Continue' });
      sock.write(body);
      await waitFor(() => count(/HTTP\/1\.1 401 /gm) === 1, { what: '401' });
      // libevent's own 400 (headers over 16 KiB) on the same connection
      sock.write(`GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ${'b'.repeat(20000)}\r\n\r\n`);
      await waitFor(() => count(/HTTP\/1\.1 400 /gm) === 1 && /\r\n\r\n/.test(got.slice(got.lastIndexOf('HTTP/1.1 400'))),
        { what: '400' });
    } finally {
      sock.destroy();
    }
    assert.ok(closed || sock.destroyed);
    const heads = got.split(/(?=HTTP\/1\.1 \d{3} )/).map((r) => r.slice(0, r.indexOf('\r\n\r\n')));
    assert.deepEqual(heads.map((h) => h.slice(9, 12)), ['200', '200', '100', '401', '400']);
    for (const h of heads) {
      for (const line of ['X-Content-Type-Options: nosniff', 'X-Frame-Options: DENY', 'Referrer-Policy: no-referrer',
        "Content-Security-Policy: default-src 'none'; frame-ancestors 'none'", 'Cache-Control: no-store']) {
        assert.equal(h.split('\r\n').filter((l) => l === line).length, 1, `${line} once in:\n${h}`);
      }
      assert.ok(h.split('\r\n')[1].startsWith('X-Content-Type-Options'), 'right after the status line');
    }
  });

  test('failed authentication is logged without the credential', async () => {
    const guess = `Bearer wrong-credential-${'z'.repeat(40)}`;
    await rawRequest(gw.mcpUrl(), { headers: { 'Content-Type': 'application/json',
      Accept: 'application/json, text/event-stream', Authorization: guess }, body: {} });
    await waitFor(() => gw.stderr().includes('authentication failed from 127.0.0.1'), { what: 'the log line' });
    assert.ok(!gw.stderr().includes('wrong-credential'), 'the presented credential was logged');
  });
});

describe('bootstrap token file', () => {
  after(cleanup);

  test('generated with mode 0600 and never written to the log', async () => {
    const gw = await startGateway({ token: null, config: {} });
    const file = path.join(gw.dir, 'data', 'bootstrap-token');
    const st = fs.statSync(file);
    assert.equal(st.mode & 0o777, 0o600);
    const tok = fs.readFileSync(file, 'utf8').trim();
    assert.ok(tok.length >= 32);
    assert.ok(!gw.stderr().includes(tok));
    const r = await rawRequest(`${gw.url}/mcp/default`, { headers: { ...mcpHeaders(gw), Authorization: `Bearer ${tok}` },
      body: { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {},
        clientInfo: { name: 'x', version: '1' } } }, untilId: 1 });
    assert.equal(r.status, 200);
    await gw.stop();
  });
});
