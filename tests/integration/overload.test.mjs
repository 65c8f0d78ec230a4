// SPDX-License-Identifier: Apache-2.0
// Upstream overload protection: at most max_inflight calls are sent to a
// server at once, up to max_queue more wait, and past that a call gets HTTP
// 503 with Retry-After and a JSON-RPC error; consecutive transport failures
// open a circuit breaker (fail fast with 503) that closes again after a
// success once circuit_open_ms has passed.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { cleanup, mcpHeaders, rawInitialize, rawRequest, servers, sleep, startGateway } from './lib.mjs';

function caller(gw, session) {
  let id = 100;
  return (name, args) => {
    const myId = ++id;
    return rawRequest(gw.mcpUrl(), {
      headers: mcpHeaders(gw, { session }), untilId: myId, timeoutMs: 15000,
      body: { jsonrpc: '2.0', id: myId, method: 'tools/call', params: { name, arguments: args } },
    });
  };
}

describe('upstream queue and circuit breaker', () => {
  let gw;
  let call;

  before(async () => {
    gw = await startGateway({
      config: {
        mcpServers: {
          q: { ...servers.echo('q'), max_inflight: 2, max_queue: 3 },
          cb: { ...servers.echo('cb'), timeout_ms: 300, circuit_failures: 2, circuit_open_ms: 1500 },
        },
      },
    });
    call = caller(gw, await rawInitialize(gw));
    // make sure both children are up before timing anything
    assert.equal((await call('q__echo', { text: 'warm' })).status, 200);
    assert.equal((await call('cb__echo', { text: 'warm' })).status, 200);
  });
  after(cleanup);

  test('max_inflight + max_queue calls run, in waves; the rest get 503', async () => {
    const t0 = Date.now();
    const first = Array.from({ length: 5 }, (_, i) => call('q__sleep', { ms: 400 + i }).then((r) => ({ r, ms: Date.now() - t0 })));
    await sleep(100);
    const extra = await Promise.all([call('q__echo', { text: 'x' }), call('q__echo', { text: 'y' })]);
    for (const r of extra) {
      assert.equal(r.status, 503, r.text);
      assert.ok(Number(r.headers['retry-after']) >= 1);
      assert.equal(r.messages[0].error.code, -32603);
      assert.match(r.messages[0].error.message, /queue is full/);
    }
    const done = await Promise.all(first);
    done.forEach(({ r }, i) => {
      assert.equal(r.status, 200, r.text);
      assert.equal(r.messages.at(-1).result.content[0].text, `slept ${400 + i}`);
    });
    // two at a time: the fifth call can only finish in the third wave
    const slowest = Math.max(...done.map((d) => d.ms));
    assert.ok(slowest >= 1150, `all five finished in ${slowest} ms: more than 2 ran at once`);
    assert.equal((await call('q__echo', { text: 'after' })).status, 200);
  });

  test('consecutive timeouts open the circuit; it closes after a success', async () => {
    for (let i = 0; i < 2; i++) {
      const r = await call('cb__sleep', { ms: 2000 });
      assert.match(r.messages.at(-1).error.message, /did not answer/);
    }
    const t0 = Date.now();
    const open = await call('cb__echo', { text: 'fast fail' });
    assert.equal(open.status, 503, open.text);
    assert.match(open.messages[0].error.message, /circuit open/);
    assert.ok(Number(open.headers['retry-after']) >= 1);
    assert.ok(Date.now() - t0 < 1000, 'an open circuit answers at once');
    await sleep(1700);
    const ok = await call('cb__echo', { text: 'closed again' });
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.messages.at(-1).result.content[0].text, 'closed again');
    assert.equal((await call('cb__echo', { text: 'still fine' })).status, 200);
  });
});
