// SPDX-License-Identifier: Apache-2.0
// Graceful shutdown: SIGTERM ends the gateway promptly with status 0 and takes
// every upstream child with it (no orphans, no zombies left behind).
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';

import { cleanup, connect, descendants, pidOf, procState, servers, sleep, startGateway, waitExit } from './lib.mjs';

describe('shutdown', () => {
  after(cleanup);

  test('SIGTERM stops the gateway and all upstream children', async () => {
    const gw = await startGateway({
      config: { mcpServers: { a: servers.echo('a'), b: servers.echo('b'), everything: servers.everything() } },
    });
    const client = await connect(gw);
    const pids = [];
    pids.push(pidOf(await client.callTool({ name: 'a__pid', arguments: {} })));
    pids.push(pidOf(await client.callTool({ name: 'b__pid', arguments: {} })));
    await client.callTool({ name: 'everything__echo', arguments: { message: 'up' } });
    const tree = descendants(gw.proc.pid);
    for (const p of pids) assert.ok(tree.includes(p), `echo pid ${p} is a descendant of the gateway (${tree})`);
    assert.ok(tree.length >= 3, `expected >= 3 upstream processes, saw ${tree}`);

    // a call in flight while the signal arrives must not keep the gateway alive
    const inflight = client.callTool({ name: 'a__sleep', arguments: { ms: 20000 } }, undefined, { timeout: 30000 })
      .then(() => 'ok', () => 'rejected');
    await sleep(100);
    const t0 = Date.now();
    gw.proc.kill('SIGTERM');
    const res = await waitExit(gw.proc, 10000);
    if (!res) {
      await gw.stop();
      assert.fail('gateway still running 10 s after SIGTERM');
    }
    assert.equal(res.code, 0, `exit ${JSON.stringify(res)}; stderr tail: ${gw.stderr().slice(-2000)}`);
    assert.ok(Date.now() - t0 < 6000, `shutdown took ${Date.now() - t0} ms`);
    assert.equal(await Promise.race([inflight, sleep(5000).then(() => 'hung')]), 'rejected');
    await client.close().catch(() => {});

    // children are gone (allow them a moment to exit after their stdin closes)
    const deadline = Date.now() + 3000;
    let left = tree;
    while (Date.now() < deadline) {
      left = tree.filter((p) => procState(p) !== null);
      if (!left.length) break;
      await sleep(50);
    }
    assert.deepEqual(left.map((p) => `${p}:${procState(p)}`), [], 'upstream processes outlived the gateway');
  });

  test('SIGINT works the same way', async () => {
    const gw = await startGateway({ config: { mcpServers: { a: servers.echo('a') } } });
    const client = await connect(gw);
    const pid = pidOf(await client.callTool({ name: 'a__pid', arguments: {} }));
    await client.close().catch(() => {});
    gw.proc.kill('SIGINT');
    const res = await waitExit(gw.proc, 10000);
    if (!res) { await gw.stop(); assert.fail('still running 10 s after SIGINT'); }
    assert.equal(res.code, 0);
    const deadline = Date.now() + 3000;
    while (procState(pid) !== null && Date.now() < deadline) await sleep(50);
    assert.equal(procState(pid), null, `echo child ${pid} still exists`);
  });
});
