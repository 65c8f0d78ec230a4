// SPDX-License-Identifier: Apache-2.0
// Rate limiting against the real binary: the default of 100 requests a
// minute per key, a per-endpoint limit, and the per-address limit on
// unauthenticated requests (failed auth), which spoofed forwarding headers
// do not escape. 429 carries Retry-After and a JSON-RPC error body. (The
// exact refill arithmetic is unit-tested with a controllable clock in
// tests/unit/test_ratelimit.c.)
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { cleanup, mcpHeaders, rawInitialize, rawRequest, servers, startGateway } from './lib.mjs';

const ping = (id) => ({ jsonrpc: '2.0', id, method: 'ping' });

describe('rate limits', () => {
  after(cleanup);

  test('default: 100 requests a minute per key, then 429 with Retry-After', async () => {
    const gw = await startGateway({ config: { rate_limits: {}, mcpServers: { echo: servers.echo('echo') } } });
    const session = await rawInitialize(gw); // 2 requests
    let ok = 2;
    let first429 = null;
    for (let i = 0; i < 110 && !first429; i++) {
      const r = await rawRequest(gw.mcpUrl(), { headers: mcpHeaders(gw, { session }), body: ping(i + 10) });
      if (r.status === 200) ok++;
      else first429 = r;
    }
    assert.equal(ok, 100, 'exactly the configured number of requests passed');
    assert.equal(first429.status, 429);
    const retry = Number(first429.headers['retry-after']);
    assert.ok(retry >= 1 && retry <= 60, `Retry-After ${retry}`);
    assert.equal(first429.headers['ratelimit-limit'], '100');
    assert.equal(first429.messages[0].jsonrpc, '2.0');
    assert.equal(first429.messages[0].error.code, -32000);
    assert.match(first429.messages[0].error.message, /Rate limit exceeded/);
    await gw.stop();
  });

  test('a per-endpoint limit applies across keys and endpoints are independent', async () => {
    const gw = await startGateway({ config: {
      mcpServers: { echo: servers.echo('echo') },
      endpoints: { small: { servers: ['echo'], rate_limit: '5/min' }, big: { servers: ['echo'] } },
    } });
    const s = await rawInitialize(gw, 'small'); // 2 of 5
    const codes = [];
    for (let i = 0; i < 5; i++)
      codes.push((await rawRequest(gw.mcpUrl('small'), { headers: mcpHeaders(gw, { session: s }), body: ping(i) })).status);
    assert.deepEqual(codes, [200, 200, 200, 429, 429]);
    const b = await rawInitialize(gw, 'big');
    const r = await rawRequest(gw.mcpUrl('big'), { headers: mcpHeaders(gw, { session: b }), body: ping(1) });
    assert.equal(r.status, 200);
    await gw.stop();
  });

  test('several limits: the headers describe the most restrictive, not the last checked', async () => {
    // per key 5/min (checked first), endpoint 100/min (checked last)
    const gw = await startGateway({ config: {
      rate_limits: { per_key: '5/min' },
      mcpServers: { echo: servers.echo('echo') },
      endpoints: { default: { servers: ['echo'], rate_limit: '100/min' } },
    } });
    const s = await rawInitialize(gw); // 2 tokens from each bucket
    const r = await rawRequest(gw.mcpUrl(), { headers: mcpHeaders(gw, { session: s }), body: ping(1) });
    assert.equal(r.status, 200);
    // each header once (node would join duplicates as "5, 100")
    assert.equal(r.headers['ratelimit-limit'], '5');
    assert.equal(r.headers['ratelimit-remaining'], '2');
    assert.match(r.headers['ratelimit-reset'], /^[0-9]+$/);
    const reset = Number(r.headers['ratelimit-reset']);
    assert.ok(reset >= 1 && reset <= 60, `RateLimit-Reset ${reset}`);
    // the key's bucket runs out first: its limit and Retry-After on the 429
    const codes = [];
    let last;
    for (let i = 0; i < 4; i++) {
      last = await rawRequest(gw.mcpUrl(), { headers: mcpHeaders(gw, { session: s }), body: ping(i + 2) });
      codes.push(last.status);
    }
    assert.deepEqual(codes, [200, 200, 429, 429]);
    assert.equal(last.headers['ratelimit-limit'], '5');
    assert.equal(last.headers['ratelimit-remaining'], '0');
    assert.ok(Number(last.headers['retry-after']) >= 1);
    await gw.stop();
  });

  test('failed authentication is limited per address; forwarding headers do not reset it', async () => {
    const gw = await startGateway({ config: { rate_limits: { per_key: '1000/min', per_ip_unauthenticated: '10/min' } } });
    const codes = [];
    for (let i = 0; i < 14; i++) {
      const r = await rawRequest(gw.mcpUrl(), { body: ping(i), headers: {
        'Content-Type': 'application/json', Accept: 'application/json, text/event-stream',
        Authorization: `Bearer guess-${i}-${'x'.repeat(40)}`,
        'X-Forwarded-For': `203.0.113.${i}`, 'X-Real-IP': `198.51.100.${i}`, Forwarded: `for=192.0.2.${i}` } });
      codes.push(r.status);
    }
    assert.deepEqual(codes, [...Array(10).fill(401), ...Array(4).fill(429)]);
    // the real key still works from the same address
    const s = await rawInitialize(gw);
    const ok = await rawRequest(gw.mcpUrl(), { headers: mcpHeaders(gw, { session: s }), body: ping(1) });
    assert.equal(ok.status, 200);
    await gw.stop();
  });
});
