// SPDX-License-Identifier: Apache-2.0
// Remote upstreams: server-everything served over Streamable HTTP and over
// the legacy HTTP+SSE transport (both real npm servers on 127.0.0.1), reached
// through one gateway endpoint with the official SDK client. Also: a remote
// server that goes away gives a clear error, and is used again once it is back.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { ROOT, cleanup, connect, listAll, sleep, startGateway, textOf, waitExit, waitFor } from './lib.mjs';

const LOOPBACK_FIXTURE = path.join(ROOT, 'tests', 'fixtures', 'everything-loopback.mjs');
const children = new Set();

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function startRemote(transport, port) {
  const proc = spawn(process.execPath, [LOOPBACK_FIXTURE, transport], {
    cwd: ROOT, env: { ...process.env, PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(proc);
  let log = '';
  proc.stdout.on('data', (d) => { log += d; });
  proc.stderr.on('data', (d) => { log += d; });
  await waitFor(() => new Promise((resolve) => {
    const c = net.connect(port, '127.0.0.1', () => { c.destroy(); resolve(true); });
    c.on('error', () => resolve(false));
  }), { timeoutMs: 20000, what: `server-everything ${transport} on port ${port}` });
  return { proc, log: () => log };
}

async function stopRemote(r) {
  r.proc.kill('SIGTERM');
  if (!(await waitExit(r.proc, 5000))) r.proc.kill('SIGKILL');
  children.delete(r.proc);
}

// A loopback reverse proxy that records the request headers it forwards.
function recordingProxy(targetPort) {
  const seen = [];
  const server = http.createServer((req, res) => {
    seen.push({ method: req.method, headers: req.headers, conn: req.socket.remotePort });
    const up = http.request({ host: '127.0.0.1', port: targetPort, path: req.url, method: req.method,
      headers: req.headers }, (r) => { res.writeHead(r.statusCode, r.headers); r.pipe(res); });
    up.on('error', () => { res.writeHead(502); res.end(); });
    req.pipe(up);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () =>
    resolve({ server, seen, port: server.address().port })));
}

const API_KEY = 'sk-remote-secret-0123456789abcdef';

describe('remote upstreams (Streamable HTTP and legacy SSE)', () => {
  let gw;
  let client;
  let httpPort;
  let httpServer;
  let sseServer;
  let proxy;

  before(async () => {
    httpPort = await freePort();
    const ssePort = await freePort();
    httpServer = await startRemote('streamableHttp', httpPort);
    sseServer = await startRemote('sse', ssePort);
    proxy = await recordingProxy(httpPort);
    gw = await startGateway({
      config: {
        outbound: { allow_cidrs: ['127.0.0.0/8', '::1/128'] }, // the test servers are on loopback
        mcpServers: {
          web: { url: `http://127.0.0.1:${httpPort}/mcp`, connect_timeout_ms: 2000, timeout_ms: 10000 },
          // a name: resolved at connect without blocking the loop (hosts file), then pinned
          named: { url: `http://localhost:${httpPort}/mcp`, connect_timeout_ms: 5000 },
          old: { type: 'sse', url: `http://127.0.0.1:${ssePort}/sse` },
          keyed: { type: 'http', url: `http://127.0.0.1:${proxy.port}/mcp`, headers: { 'X-Api-Key': API_KEY } },
        },
      },
    });
    client = await connect(gw);
  });

  after(async () => {
    await client?.close().catch(() => {});
    await cleanup();
    proxy?.server.close();
    for (const p of children) p.kill('SIGKILL');
  });

  test('configured headers reach the remote server on every request, and never the log', async () => {
    const r = await client.callTool({ name: 'keyed__echo', arguments: { message: 'with key' } });
    assert.equal(textOf(r), 'Echo: with key');
    const posts = proxy.seen.filter((s) => s.method === 'POST');
    assert.ok(posts.length >= 3, `initialize, initialized and the call went through (${posts.length})`);
    for (const p of posts) assert.equal(p.headers['x-api-key'], API_KEY);
    assert.ok(posts.slice(1).every((p) => p.headers['mcp-session-id']), 'session id after initialize');
    assert.ok(!gw.stderr().includes(API_KEY), 'the header value must not be logged');
  });

  test('sequential calls reuse a kept-alive connection; every request carries the headers', async () => {
    const before = proxy.seen.length;
    const n = 12;
    for (let i = 0; i < n; i++) {
      const r = await client.callTool({ name: 'keyed__echo', arguments: { message: `again ${i}` } });
      assert.equal(textOf(r), `Echo: again ${i}`);
    }
    const posts = proxy.seen.slice(before).filter((s) => s.method === 'POST');
    assert.ok(posts.length >= n, `${posts.length} POSTs`); // the calls, and any notification sent meanwhile
    for (const p of posts) {
      assert.equal(p.headers['x-api-key'], API_KEY);
      assert.ok(p.headers['mcp-session-id']);
    }
    const conns = new Set(posts.map((p) => p.conn));
    assert.ok(conns.size <= 2, `${posts.length} sequential POSTs over ${conns.size} connections`);
    // a server reached by name: still pinned and answered on every call
    for (let i = 0; i < 3; i++)
      assert.equal(textOf(await client.callTool({ name: 'named__echo', arguments: { message: `n${i}` } })), `Echo: n${i}`);
  });

  test('tools of both remote servers are listed, namespaced', async () => {
    const names = (await listAll(client, 'tools')).map((t) => t.name);
    assert.ok(names.includes('web__echo'), names.join(','));
    assert.ok(names.includes('old__echo'), names.join(','));
  });

  test('a server named by host name is resolved asynchronously and used', async () => {
    const r = await client.callTool({ name: 'named__echo', arguments: { message: 'by name' } });
    assert.equal(textOf(r), 'Echo: by name');
  });

  test('tools/call over Streamable HTTP and over SSE', async () => {
    const a = await client.callTool({ name: 'web__echo', arguments: { message: 'via http' } });
    assert.equal(textOf(a), 'Echo: via http');
    const b = await client.callTool({ name: 'old__echo', arguments: { message: 'via sse' } });
    assert.equal(textOf(b), 'Echo: via sse');
  });

  test('progress notifications from a remote server reach the client', async () => {
    const seen = [];
    const r = await client.callTool(
      { name: 'web__trigger-long-running-operation', arguments: { duration: 1, steps: 3 } },
      undefined, { onprogress: (p) => seen.push(p.progress), timeout: 20000 });
    assert.match(textOf(r), /completed/i);
    assert.deepEqual(seen, [1, 2, 3]);
  });

  test('concurrent calls over HTTP each get their own answer', async () => {
    const n = 40;
    const results = await Promise.all(Array.from({ length: n }, (_, i) =>
      client.callTool({ name: i % 2 ? 'web__echo' : 'old__echo', arguments: { message: `m${i}` } })));
    results.forEach((r, i) => assert.equal(textOf(r), `Echo: m${i}`));
  });

  test('a remote server that goes away gives an error; it is used again when back', async () => {
    await stopRemote(httpServer);
    await assert.rejects(
      client.callTool({ name: 'web__echo', arguments: { message: 'nobody home' } }, undefined, { timeout: 15000 }),
      (e) => /web/.test(e.message) || /upstream/.test(e.message));
    // the other server is unaffected
    const ok = await client.callTool({ name: 'old__echo', arguments: { message: 'still here' } });
    assert.equal(textOf(ok), 'Echo: still here');
    httpServer = await startRemote('streamableHttp', httpPort);
    const back = await waitFor(async () => {
      try {
        return await client.callTool({ name: 'web__echo', arguments: { message: 'back' } }, undefined,
          { timeout: 5000 });
      } catch {
        await sleep(200);
        return null;
      }
    }, { timeoutMs: 40000, what: 'the remote server to be used again' });
    assert.equal(textOf(back), 'Echo: back');
  });
});
