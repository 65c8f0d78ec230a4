// SPDX-License-Identifier: Apache-2.0
// The gateway with four HTTP threads (server.threads: 4): an MCP session is
// created by a request on one connection and used by requests on others,
// which the kernel spreads over the threads. Checks that sessions, calls,
// GET streams (opened, fed by notifications, ended by DELETE from another
// connection), cancellation sent on another connection, and clients that
// disconnect while their call streams progress all behave as with one thread; that many SDK clients
// at once get their own answers; and that the gateway stops cleanly.
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';

import { cleanup, connect, mcpHeaders, rawInitialize, rawRequest, servers, sleep, startGateway,
  textOf, waitFor } from './lib.mjs';

const THREADS = 4;

function call(id, name, args) {
  return { jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } };
}

/** A GET SSE stream kept open; text() is what arrived so far. */
function openStream(gw, session) {
  let text = '';
  let ended = false;
  let status = 0;
  const req = http.request(gw.mcpUrl(), { method: 'GET', agent: false,
    headers: { ...mcpHeaders(gw, { session }), Accept: 'text/event-stream' } }, (res) => {
    status = res.statusCode;
    res.setEncoding('utf8');
    res.on('data', (d) => { text += d; });
    res.on('end', () => { ended = true; });
    res.on('close', () => { ended = true; });
  });
  req.on('error', () => { ended = true; });
  req.end();
  return { text: () => text, ended: () => ended, status: () => status, close: () => req.destroy() };
}

describe(`HTTP threads (server.threads = ${THREADS})`, () => {
  let gw;

  before(async () => {
    gw = await startGateway({
      config: { server: { threads: THREADS }, log_level: 'debug',
        limits: { session_idle_timeout_s: 2 }, mcpServers: { echo: servers.echo('echo') } },
    });
  });
  after(async () => {
    const res = await gw?.stop();
    assert.equal(res?.forced, false, 'the gateway stopped on SIGTERM');
    assert.equal(res?.code, 0, gw?.stderr().slice(-2000));
    await cleanup();
  });

  test('the gateway runs the configured number of HTTP threads', () => {
    assert.ok(gw.logs().some((l) => /serving HTTP on 4 threads/.test(l.msg)), gw.stderr().slice(-2000));
  });

  test('sessions created on one connection serve calls arriving on many others', async () => {
    const sessions = await Promise.all(Array.from({ length: 8 }, () => rawInitialize(gw)));
    assert.equal(new Set(sessions).size, 8);
    const calls = [];
    for (let i = 0; i < 160; i++) {
      const session = sessions[i % sessions.length];
      calls.push(rawRequest(gw.mcpUrl(), { headers: mcpHeaders(gw, { session }), untilId: i + 10,
        body: call(i + 10, 'echo__echo', { text: `msg-${i}` }) }).then((r) => ({ i, r })));
    }
    for (const { i, r } of await Promise.all(calls)) {
      assert.equal(r.status, 200, r.text);
      const m = r.messages.find((x) => x.id === i + 10);
      assert.ok(m, r.text);
      assert.equal(m.result.content[0].text, `msg-${i}`);
    }
    // an unknown session is still refused, whichever thread takes it
    const bad = await rawRequest(gw.mcpUrl(), { headers: mcpHeaders(gw, { session: 'f'.repeat(64) }),
      body: call(1, 'echo__echo', { text: 'x' }) });
    assert.equal(bad.status, 404);
  });

  test('a GET stream gets notifications caused on other connections and ends on DELETE', async () => {
    const session = await rawInitialize(gw);
    const stream = openStream(gw, session);
    await waitFor(() => stream.text().includes(': stream open'), { what: 'stream open' });
    assert.equal(stream.status(), 200);
    const r = await rawRequest(gw.mcpUrl(), { headers: mcpHeaders(gw, { session }), untilId: 5,
      body: call(5, 'echo__notify', { method: 'notifications/tools/list_changed' }) });
    assert.equal(r.status, 200, r.text);
    await waitFor(() => stream.text().includes('notifications/tools/list_changed'),
      { what: 'list_changed on the GET stream' });
    // the sweep (every second with a 2 s idle timeout) writes keepalives to it
    await waitFor(() => stream.text().includes(': keepalive'), { what: 'keepalive', timeoutMs: 5000 });
    const del = await rawRequest(gw.mcpUrl(), { method: 'DELETE', headers: mcpHeaders(gw, { session }) });
    assert.equal(del.status, 200);
    await waitFor(() => stream.ended(), { what: 'the GET stream to end after DELETE' });
    const gone = await rawRequest(gw.mcpUrl(), { headers: mcpHeaders(gw, { session }),
      body: call(6, 'echo__echo', { text: 'x' }) });
    assert.equal(gone.status, 404);
  });

  test('notifications/cancelled on another connection ends a call in flight', async () => {
    const session = await rawInitialize(gw);
    const t0 = Date.now();
    const pending = rawRequest(gw.mcpUrl(), { headers: mcpHeaders(gw, { session }), timeoutMs: 8000,
      body: call(77, 'echo__sleep', { ms: 5000 }) });
    await sleep(200);
    const n = await rawRequest(gw.mcpUrl(), { headers: mcpHeaders(gw, { session }),
      body: { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 77, reason: 'test' } } });
    assert.equal(n.status, 202);
    const r = await pending;
    assert.ok(Date.now() - t0 < 3000, `cancel took ${Date.now() - t0} ms`);
    const m = r.messages.find((x) => x.id === 77);
    assert.ok(m && m.error, r.text);
    assert.match(m.error.message, /cancelled/);
  });

  test('clients that disconnect mid-call are cancelled and the rest keep working', async () => {
    const session = await rawInitialize(gw);
    const before = gw.logs().filter((l) => /client went away/.test(l.msg)).length;
    const reqs = [];
    for (let i = 0; i < 24; i++) {
      const req = http.request(gw.mcpUrl(), { method: 'POST', agent: false,
        headers: mcpHeaders(gw, { session }) });
      req.on('error', () => {});
      // a call that streams progress: evhttp notices a vanished client
      // when it writes to it
      const msg = call(100 + i, 'echo__progress', { steps: 50, interval_ms: 100 });
      msg.params._meta = { progressToken: `p${i}` };
      req.end(JSON.stringify(msg));
      reqs.push(req);
    }
    await sleep(300);
    for (const req of reqs) req.destroy();
    await waitFor(() => gw.logs().filter((l) => /client went away/.test(l.msg)).length - before >= 24,
      { what: '24 calls cancelled after their clients left', timeoutMs: 5000 });
    const r = await rawRequest(gw.mcpUrl(), { headers: mcpHeaders(gw, { session }), untilId: 200,
      body: call(200, 'echo__echo', { text: 'still here' }) });
    assert.equal(r.messages.find((x) => x.id === 200)?.result?.content?.[0]?.text, 'still here', r.text);
  });

  test('many SDK clients at once each get their own answers', async () => {
    const clients = await Promise.all(Array.from({ length: 6 }, () => connect(gw)));
    try {
      const work = clients.flatMap((c, ci) => Array.from({ length: 20 }, (_, j) =>
        c.callTool({ name: 'echo__echo', arguments: { text: `c${ci}-${j}` } }).then((r) => [ci, j, r])));
      for (const [ci, j, r] of await Promise.all(work)) assert.equal(textOf(r), `c${ci}-${j}`);
    } finally {
      await Promise.all(clients.map((c) => c.close().catch(() => {})));
    }
  });

  test('a stream and calls still open at shutdown do not stop a clean exit', async () => {
    const session = await rawInitialize(gw);
    const stream = openStream(gw, session);
    await waitFor(() => stream.text().includes(': stream open'), { what: 'stream open' });
    const pending = rawRequest(gw.mcpUrl(), { headers: mcpHeaders(gw, { session }), timeoutMs: 8000,
      body: call(300, 'echo__sleep', { ms: 5000 }) }).catch((e) => e);
    await sleep(200);
    const res = await gw.stop(); // after() checks the exit status too
    assert.equal(res.forced, false);
    assert.equal(res.code, 0, gw.stderr().slice(-2000));
    await pending;
    await waitFor(() => stream.ended(), { what: 'the stream to end with the gateway' });
  });
});
