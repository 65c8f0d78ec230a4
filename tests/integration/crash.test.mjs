// SPDX-License-Identifier: Apache-2.0
// A stdio upstream that dies mid-call: every call in flight gets a JSON-RPC
// error naming the server (no hang), the child is reaped and restarted with
// backoff, and the next call works against the new process.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { McpError } from '@modelcontextprotocol/sdk/types.js';

import { cleanup, connect, pidOf, procState, servers, sleep, startGateway, textOf, waitFor } from './lib.mjs';

async function settle(p) {
  try {
    return { ok: true, value: await p };
  } catch (e) {
    return { ok: false, error: e };
  }
}

function assertUpstreamError(outcome, what) {
  assert.equal(outcome.ok, false, `${what} should fail, got ${JSON.stringify(outcome.value)}`);
  const e = outcome.error;
  assert.ok(e instanceof McpError, `${what}: expected a JSON-RPC error, got ${e}`);
  assert.equal(e.code, -32603, `${what}: code ${e.code} (${e.message})`);
  assert.match(e.message, /echo/, `${what}: message should name the server: ${e.message}`);
}

describe('upstream crash mid-call', () => {
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

  test('in-flight calls fail, the child restarts, the next call works', async () => {
    const pid1 = pidOf(await client.callTool({ name: 'echo__pid', arguments: {} }));
    assert.ok(pid1 > 0);

    const t0 = Date.now();
    const slow = settle(client.callTool({ name: 'echo__sleep', arguments: { ms: 3000 } }, undefined, { timeout: 20000 }));
    await sleep(100);
    const crash = settle(client.callTool({ name: 'echo__crash', arguments: {} }, undefined, { timeout: 20000 }));
    const [s, c] = await Promise.all([slow, crash]);
    const elapsed = Date.now() - t0;
    assertUpstreamError(s, 'echo__sleep in flight during the crash');
    assertUpstreamError(c, 'echo__crash');
    assert.ok(elapsed < 2500, `errors took ${elapsed} ms (the sleep would have ended at 3000)`);

    // bounded retry window: restart backoff starts at ~100 ms
    const pid2 = await waitFor(async () => pidOf(await client.callTool({ name: 'echo__pid', arguments: {} },
      undefined, { timeout: 2000 })), { timeoutMs: 5000, intervalMs: 100, what: 'echo__pid after the crash' });
    assert.notEqual(pid2, pid1, 'a new process answers');

    const r = await client.callTool({ name: 'echo__echo', arguments: { text: 'back again' } });
    assert.equal(textOf(r), 'back again');

    // the dead child was reaped, not left as a zombie
    await waitFor(() => procState(pid1) !== 'Z', { timeoutMs: 3000, what: `pid ${pid1} to be reaped` });
  });

  test('repeated crashes are survived too', async () => {
    for (let i = 0; i < 3; i++) {
      const c = await settle(client.callTool({ name: 'echo__crash', arguments: {} }, undefined, { timeout: 10000 }));
      assertUpstreamError(c, `crash #${i + 1}`);
      await waitFor(async () => textOf(await client.callTool({ name: 'echo__echo', arguments: { text: `r${i}` } },
        undefined, { timeout: 2000 })) === `r${i}`, { timeoutMs: 10000, intervalMs: 100, what: `recovery #${i + 1}` });
    }
  });
});
