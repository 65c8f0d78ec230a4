// SPDX-License-Identifier: Apache-2.0
// Many concurrent calls multiplexed onto one stdio child: the upstream answers
// out of order and every response still reaches the request that asked.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { cleanup, connect, pidOf, servers, startGateway, textOf } from './lib.mjs';

describe('concurrency on one stdio child', () => {
  let gw;
  let client;

  before(async () => {
    gw = await startGateway({ config: { mcpServers: { echo: servers.echo('echo') } } });
    client = await connect(gw);
  });
  after(async () => {
    await client?.close().catch(() => {});
    await cleanup();
  });

  test('200 sleeps with random delays interleaved with distinct echoes', async () => {
    const pidBefore = pidOf(await client.callTool({ name: 'echo__pid', arguments: {} }));
    const calls = [];
    for (let i = 0; i < 200; i++) {
      const ms = Math.floor(Math.random() * 201);
      calls.push(client.callTool({ name: 'echo__sleep', arguments: { ms } }, undefined, { timeout: 30000 })
        .then((r) => ({ kind: 'sleep', ms, r })));
      const text = `msg-${i}-${Math.random().toString(36).slice(2)}`;
      calls.push(client.callTool({ name: 'echo__echo', arguments: { text } }, undefined, { timeout: 30000 })
        .then((r) => ({ kind: 'echo', text, r })));
    }
    const t0 = Date.now();
    const results = await Promise.all(calls);
    const elapsed = Date.now() - t0;
    for (const x of results) {
      assert.equal(x.r.isError ?? false, false, JSON.stringify(x));
      if (x.kind === 'echo') assert.equal(textOf(x.r), x.text);
      else assert.match(textOf(x.r), new RegExp(`\\b${x.ms}\\b`), `sleep(${x.ms}) answered ${textOf(x.r)}`);
    }
    // the sleeps overlap (the fixture is non-blocking); serialised they would take ~20 s
    assert.ok(elapsed < 10000, `400 calls took ${elapsed} ms`);
    const pidAfter = pidOf(await client.callTool({ name: 'echo__pid', arguments: {} }));
    assert.equal(pidAfter, pidBefore, 'all calls went to one child');
  });

  test('several sessions share the child concurrently', async () => {
    const others = await Promise.all([connect(gw), connect(gw), connect(gw)]);
    try {
      const all = [];
      for (const [k, c] of [client, ...others].entries()) {
        for (let i = 0; i < 25; i++) {
          const text = `s${k}-${i}`;
          all.push(c.callTool({ name: 'echo__echo', arguments: { text } }, undefined, { timeout: 30000 })
            .then((r) => assert.equal(textOf(r), text)));
        }
      }
      await Promise.all(all);
      const pids = await Promise.all([client, ...others].map(async (c) =>
        pidOf(await c.callTool({ name: 'echo__pid', arguments: {} }))));
      assert.equal(new Set(pids).size, 1, `pids ${pids}`);
    } finally {
      await Promise.all(others.map((c) => c.close().catch(() => {})));
    }
  });
});
