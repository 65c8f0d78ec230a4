// SPDX-License-Identifier: Apache-2.0
// Progress notifications relayed from upstream servers to the client (over
// the POST's SSE stream), and client-side cancellation of an in-flight call.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { cleanup, connect, servers, startGateway, textOf } from './lib.mjs';

describe('progress and cancellation', () => {
  let gw;
  let client;

  before(async () => {
    gw = await startGateway({
      config: { mcpServers: { everything: servers.everything(), echo: servers.echo('echo') } },
    });
    client = await connect(gw);
  });
  after(async () => {
    await client?.close().catch(() => {});
    await cleanup();
  });

  test('echo__progress: every step arrives before the result', async () => {
    const seen = [];
    const r = await client.callTool({ name: 'echo__progress', arguments: { steps: 4, interval_ms: 30 } },
      undefined, { onprogress: (p) => seen.push(p), timeout: 15000 });
    assert.equal(r.isError ?? false, false, JSON.stringify(r));
    assert.equal(seen.length, 4, JSON.stringify(seen));
    for (let i = 1; i < seen.length; i++) assert.ok(seen[i].progress > seen[i - 1].progress, JSON.stringify(seen));
  });

  test('server-everything trigger-long-running-operation sends progress', async () => {
    const seen = [];
    const r = await client.callTool({ name: 'everything__trigger-long-running-operation',
      arguments: { duration: 0.6, steps: 3 } }, undefined, { onprogress: (p) => seen.push(p), timeout: 15000 });
    assert.match(textOf(r), /Long running operation completed/);
    assert.deepEqual(seen.map((p) => p.progress), [1, 2, 3]);
    assert.ok(seen.every((p) => p.total === 3), JSON.stringify(seen));
  });

  test('a call without a progress token gets no progress, just the result', async () => {
    const r = await client.callTool({ name: 'echo__progress', arguments: { steps: 2, interval_ms: 10 } });
    assert.equal(r.isError ?? false, false);
  });

  test('aborting echo__sleep(5000) rejects quickly and the gateway keeps serving', async () => {
    const ac = new AbortController();
    const t0 = Date.now();
    setTimeout(() => ac.abort(new Error('client gave up')), 200);
    await assert.rejects(client.callTool({ name: 'echo__sleep', arguments: { ms: 5000 } }, undefined,
      { signal: ac.signal, timeout: 15000 }));
    const elapsed = Date.now() - t0;
    assert.ok(elapsed < 2000, `abort took ${elapsed} ms`);

    const r = await client.callTool({ name: 'echo__echo', arguments: { text: 'after cancel' } }, undefined,
      { timeout: 5000 });
    assert.equal(textOf(r), 'after cancel');
    // the same child is still there and answers promptly
    const t1 = Date.now();
    await client.callTool({ name: 'echo__sleep', arguments: { ms: 10 } }, undefined, { timeout: 5000 });
    assert.ok(Date.now() - t1 < 2000);
  });

  test('a request timeout on the client side does not wedge the session', async () => {
    await assert.rejects(client.callTool({ name: 'echo__sleep', arguments: { ms: 3000 } }, undefined,
      { timeout: 300 }));
    const r = await client.callTool({ name: 'echo__add', arguments: { a: 1, b: 2 } }, undefined, { timeout: 5000 });
    assert.match(textOf(r), /\b3\b/);
  });
});
