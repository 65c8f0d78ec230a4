// SPDX-License-Identifier: Apache-2.0
// Streamable HTTP transport rules (MCP 2025-11-25) and JSON-RPC error
// handling, checked with raw HTTP requests: sessions, protocol version header,
// bearer auth, Host/Origin checks (DNS rebinding), status codes, error codes,
// body limits. After every bad request the gateway must keep serving.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { cleanup, mcpHeaders, rawInitialize, rawRequest, servers, startGateway } from './lib.mjs';

const LIST = { jsonrpc: '2.0', id: 2, method: 'tools/list', params: {} };

describe('Streamable HTTP protocol rules', () => {
  let gw;
  let session;
  let url;
  const hostPort = () => new URL(gw.url).host; // 127.0.0.1:PORT
  const port = () => new URL(gw.url).port;

  const post = (body, opts = {}) => rawRequest(url, {
    headers: mcpHeaders(gw, { session: opts.session === undefined ? session : opts.session,
      protocolVersion: opts.protocolVersion, extra: opts.headers || {} }),
    body, untilId: typeof body === 'object' ? body.id : undefined,
  });
  const errorOf = (r) => r.messages.find((m) => m.error)?.error;

  async function stillServes() {
    const r = await post({ jsonrpc: '2.0', id: 99, method: 'tools/list', params: {} });
    assert.equal(r.status, 200, r.text);
    const res = r.messages.find((m) => m.id === 99);
    assert.ok(res?.result?.tools?.some((t) => t.name === 'echo__echo'), r.text);
  }

  before(async () => {
    gw = await startGateway({
      config: {
        mcpServers: { echo: servers.echo('echo') },
        allowed_origins: ['http://app.example.test'],
        allowed_hosts: ['gw.example.test'],
        limits: { max_body_bytes: 65536 },
      },
    });
    url = gw.mcpUrl('default');
    session = await rawInitialize(gw);
  });
  after(cleanup);

  test('initialize returned a session; tools/list with it works', async () => {
    assert.match(session, /^[\x21-\x7e]+$/, 'session id is visible ASCII');
    await stillServes();
  });

  test('missing Mcp-Session-Id -> 400', async () => {
    const r = await post(LIST, { session: null });
    assert.equal(r.status, 400, r.text);
    await stillServes();
  });

  test('unknown Mcp-Session-Id -> 404', async () => {
    const r = await post(LIST, { session: 'no-such-session-0123456789abcdef' });
    assert.equal(r.status, 404, r.text);
  });

  test('unsupported MCP-Protocol-Version -> 400', async () => {
    const r = await post(LIST, { protocolVersion: '1999-01-01' });
    assert.equal(r.status, 400, r.text);
    await stillServes();
  });

  test('older supported protocol version header is accepted', async () => {
    const r = await post(LIST, { protocolVersion: '2025-06-18' });
    assert.equal(r.status, 200, r.text);
  });

  test('no Authorization -> 401 with WWW-Authenticate: Bearer', async () => {
    const h = mcpHeaders(gw, { session });
    delete h.Authorization;
    const r = await rawRequest(url, { headers: h, body: LIST });
    assert.equal(r.status, 401, r.text);
    assert.match(String(r.headers['www-authenticate'] || ''), /^Bearer\b/i);
  });

  test('wrong token -> 401', async () => {
    const r = await rawRequest(url, { headers: mcpHeaders(gw, { session, extra: { Authorization: `Bearer ${'0'.repeat(48)}` } }), body: LIST });
    assert.equal(r.status, 401, r.text);
    assert.match(String(r.headers['www-authenticate'] || ''), /^Bearer\b/i);
    const r2 = await rawRequest(url, { headers: mcpHeaders(gw, { session, extra: { Authorization: `Basic ${Buffer.from(`x:${gw.token}`).toString('base64')}` } }), body: LIST });
    assert.equal(r2.status, 401, r2.text);
  });

  test('initialize without a token is refused too', async () => {
    const h = mcpHeaders(gw);
    delete h.Authorization;
    const r = await rawRequest(url, { headers: h, body: { jsonrpc: '2.0', id: 1, method: 'initialize',
      params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'x', version: '1' } } } });
    assert.equal(r.status, 401, r.text);
    assert.equal(r.headers['mcp-session-id'], undefined);
  });

  test('Host must be a loopback name or in allowed_hosts', async () => {
    for (const host of ['evil.example.com', `evil.example.com:${port()}`, `192.0.2.1:${port()}`]) {
      const r = await post(LIST, { headers: { Host: host } });
      assert.equal(r.status, 403, `Host ${host}: ${r.status} ${r.text}`);
    }
    for (const host of [hostPort(), `localhost:${port()}`, 'gw.example.test']) {
      const r = await post(LIST, { headers: { Host: host } });
      assert.equal(r.status, 200, `Host ${host}: ${r.status} ${r.text}`);
    }
  });

  test('Origin must be localhost or in allowed_origins', async () => {
    for (const origin of ['http://evil.example.com', 'null', `http://evil.example.com:${port()}`, 'http://localhost.evil.example.com']) {
      const r = await post(LIST, { headers: { Origin: origin } });
      assert.equal(r.status, 403, `Origin ${origin}: ${r.status} ${r.text}`);
    }
    for (const origin of ['http://app.example.test', `http://localhost:${port()}`, `http://127.0.0.1:${port()}`, 'http://localhost']) {
      const r = await post(LIST, { headers: { Origin: origin } });
      assert.equal(r.status, 200, `Origin ${origin}: ${r.status} ${r.text}`);
    }
    await stillServes();
  });

  test('notifications and responses -> 202 Accepted', async () => {
    const n = await post({ jsonrpc: '2.0', method: 'notifications/roots/list_changed' });
    assert.equal(n.status, 202, n.text);
    const resp = await post({ jsonrpc: '2.0', id: 'client-answer-1', result: {} });
    assert.equal(resp.status, 202, resp.text);
  });

  test('GET opens an SSE stream for server-initiated messages', async () => {
    const h = mcpHeaders(gw, { session });
    h.Accept = 'text/event-stream';
    delete h['Content-Type'];
    const r = await rawRequest(url, { method: 'GET', headers: h, headOnly: true });
    assert.equal(r.status, 200);
    assert.match(String(r.headers['content-type']), /^text\/event-stream/);
  });

  test('healthz needs no token', async () => {
    const r = await rawRequest(`${gw.url}/healthz`, { method: 'GET', headers: {} });
    assert.equal(r.status, 200);
    assert.equal(r.text.trim(), 'ok');
  });

  test('malformed JSON -> 400 with -32700', async () => {
    const r = await post('{"jsonrpc": "2.0", "id": 3, "method": ');
    assert.equal(r.status, 400, r.text);
    assert.equal(errorOf(r)?.code, -32700, r.text);
    await stillServes();
  });

  test('a request without method -> -32600', async () => {
    const r = await post('{"jsonrpc":"2.0","id":1}');
    assert.ok([200, 400].includes(r.status), r.text);
    assert.equal(errorOf(r)?.code, -32600, r.text);
    const r2 = await post({ jsonrpc: '1.0', id: 4, method: 'tools/list' });
    assert.equal(errorOf(r2)?.code, -32600, r2.text);
    const r3 = await post('[]');
    assert.ok(r3.status >= 400 || errorOf(r3)?.code === -32600, r3.text);
    await stillServes();
  });

  test('unknown method -> -32601', async () => {
    const r = await post({ jsonrpc: '2.0', id: 5, method: 'no/such/method', params: {} });
    assert.equal(errorOf(r)?.code, -32601, r.text);
    assert.equal(r.messages.find((m) => m.error).id, 5);
  });

  test('unknown tool -> -32602 (or an isError result)', async () => {
    const r = await post({ jsonrpc: '2.0', id: 6, method: 'tools/call', params: { name: 'echo__no_such_tool', arguments: {} } });
    const m = r.messages.find((x) => x.id === 6);
    assert.ok(m, r.text);
    if (m.error) assert.equal(m.error.code, -32602, r.text);
    else assert.equal(m.result.isError, true, r.text);
    const r2 = await post({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'nosuchserver__echo', arguments: {} } });
    const m2 = r2.messages.find((x) => x.id === 7);
    assert.ok(m2?.error?.code === -32602 || m2?.result?.isError === true, r2.text);
  });

  test('body over limits.max_body_bytes -> 413', async () => {
    const big = JSON.stringify({ jsonrpc: '2.0', id: 8, method: 'tools/call',
      params: { name: 'echo__echo', arguments: { text: 'x'.repeat(200 * 1024) } } });
    let r;
    try {
      r = await post(big);
    } catch (e) {
      assert.fail(`no 413 response (${e.code || e.message})`);
    }
    assert.equal(r.status, 413, r.text.slice(0, 200));
    await stillServes();
  });

  test('a body just under the limit is fine', async () => {
    const text = 'y'.repeat(60 * 1024);
    const r = await post({ jsonrpc: '2.0', id: 9, method: 'tools/call', params: { name: 'echo__echo', arguments: { text } } });
    assert.equal(r.status, 200);
    assert.equal(r.messages.find((m) => m.id === 9)?.result?.content?.[0]?.text, text);
  });

  test('unknown endpoint slug -> 404', async () => {
    const r = await rawRequest(gw.mcpUrl('nope'), { headers: mcpHeaders(gw), body: { jsonrpc: '2.0', id: 1, method: 'initialize',
      params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'x', version: '1' } } } });
    assert.equal(r.status, 404, r.text);
  });

  test('DELETE ends the session; it is then unknown (404)', async () => {
    const s2 = await rawInitialize(gw);
    const h = mcpHeaders(gw, { session: s2 });
    const d = await rawRequest(url, { method: 'DELETE', headers: h });
    assert.ok(d.status >= 200 && d.status < 300, `DELETE: ${d.status} ${d.text}`);
    const r = await post(LIST, { session: s2 });
    assert.equal(r.status, 404, r.text);
    await stillServes();
  });
});
