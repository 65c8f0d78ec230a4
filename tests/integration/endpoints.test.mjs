// SPDX-License-Identifier: Apache-2.0
// Endpoints: each slug exposes only its servers and the tools its allow/deny
// globs let through, for listing and for calling; and the README's demo
// config (examples/demo.json) starts and serves both reference servers.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { McpError } from '@modelcontextprotocol/sdk/types.js';

import { ROOT, cleanup, connect, listAll, mcpHeaders, pidOf, rawRequest, runTumiki, servers, startGateway,
  textOf } from './lib.mjs';

async function assertRefused(promise, what) {
  try {
    const r = await promise;
    assert.equal(r.isError, true, `${what}: expected an error, got ${JSON.stringify(r)}`);
  } catch (e) {
    if (e instanceof assert.AssertionError) throw e;
    assert.ok(e instanceof McpError, `${what}: ${e}`);
    assert.equal(e.code, -32602, `${what}: ${e.message}`);
  }
}

describe('endpoints with tool allow/deny lists', () => {
  let gw;
  let full;
  let limited;

  before(async () => {
    gw = await startGateway({
      config: {
        mcpServers: { echo: servers.echo('echo'), everything: servers.everything() },
        endpoints: {
          full: { servers: ['echo', 'everything'] },
          limited: { servers: ['echo'], tools: { allow: ['echo__*'], deny: ['echo__crash', 'echo__e*v'] } },
        },
      },
    });
    [full, limited] = await Promise.all([connect(gw, { slug: 'full' }), connect(gw, { slug: 'limited' })]);
  });
  after(async () => {
    await Promise.all([full, limited].map((c) => c?.close().catch(() => {})));
    await cleanup();
  });

  test('each endpoint lists only what it exposes', async () => {
    const f = (await listAll(full, 'tools')).map((t) => t.name);
    assert.ok(f.includes('echo__crash') && f.includes('everything__echo'), f.join(', '));
    const l = (await listAll(limited, 'tools')).map((t) => t.name);
    assert.ok(l.includes('echo__echo') && l.includes('echo__add'), l.join(', '));
    for (const n of ['echo__crash', 'echo__env', 'everything__echo']) assert.ok(!l.includes(n), `${n} listed on limited`);
    assert.ok(l.every((n) => n.startsWith('echo__')), l.join(', '));
    const prompts = (await listAll(limited, 'prompts')).map((p) => p.name);
    assert.ok(!prompts.some((n) => n.startsWith('everything__')), prompts.join(', '));
  });

  test('denied and foreign tools cannot be called, and nothing reaches the server', async () => {
    const pid = pidOf(await limited.callTool({ name: 'echo__pid', arguments: {} }));
    await assertRefused(limited.callTool({ name: 'echo__crash', arguments: {} }), 'echo__crash on limited');
    await assertRefused(limited.callTool({ name: 'echo__env', arguments: { name: 'PATH' } }), 'echo__env on limited');
    await assertRefused(limited.callTool({ name: 'everything__echo', arguments: { message: 'x' } }),
      'everything__echo on limited');
    // had echo__crash got through, the child would have a new pid now
    assert.equal(pidOf(await limited.callTool({ name: 'echo__pid', arguments: {} })), pid);
    assert.equal(textOf(await full.callTool({ name: 'everything__echo', arguments: { message: 'ok' } })), 'Echo: ok');
  });

  test('with endpoints configured there is no implicit "default" endpoint', async () => {
    const r = await rawRequest(gw.mcpUrl('default'), { headers: mcpHeaders(gw), body: { jsonrpc: '2.0', id: 1,
      method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'x', version: '1' } } } });
    assert.equal(r.status, 404, r.text);
  });

  test('a session belongs to its endpoint', async () => {
    const sid = limited.transport.sessionId;
    assert.ok(sid);
    const r = await rawRequest(gw.mcpUrl('full'), { headers: mcpHeaders(gw, { session: sid }),
      body: { jsonrpc: '2.0', id: 2, method: 'tools/list', params: {} } });
    assert.ok(r.status === 404 || r.status === 400, `limited's session used on /mcp/full: ${r.status} ${r.text.slice(0, 300)}`);
  });
});

describe('examples/demo.json (the README demo)', () => {
  const demo = path.join(ROOT, 'examples', 'demo.json');
  after(cleanup);

  test('check-config accepts it', async () => {
    const r = await runTumiki(['check-config', demo], { env: { ...process.env, TUMIKI_TOKEN: 'd'.repeat(48) } });
    assert.equal(r.code, 0, r.stderr);
  });

  test('it serves server-everything and server-filesystem from the repo root', async () => {
    const cfg = JSON.parse(fs.readFileSync(demo, 'utf8'));
    delete cfg.listen; // an ephemeral port instead of 8080
    delete cfg.data_dir;
    const gw = await startGateway({ config: cfg, cwd: ROOT });
    const client = await connect(gw);
    try {
      const names = (await listAll(client, 'tools')).map((t) => t.name);
      assert.ok(names.includes('everything__echo') && names.includes('filesystem__list_directory'), names.join(', '));
      const r = await client.callTool({ name: 'filesystem__list_directory', arguments: { path: path.join(ROOT, 'examples') } });
      assert.match(textOf(r), /demo\.json/);
    } finally {
      await client.close().catch(() => {});
    }
  });
});
