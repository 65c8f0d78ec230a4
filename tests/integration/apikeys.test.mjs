// SPDX-License-Identifier: Apache-2.0
// API keys end to end, against the real binary and its real SQLite store:
// `tumiki key create` prints a key once and stores only a bcrypt hash; the
// key works with the official SDK client on its own endpoint only; a wrong
// secret, a malformed key or an expired key is refused; `tumiki key revoke`
// makes the running gateway refuse the key within a second; no secret ever
// appears in the gateway's log, the CLI's listing or the database file.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { cleanup, connect, mcpHeaders, rawRequest, runTumiki, servers, sleep, startGateway, textOf } from './lib.mjs';

const initBody = { jsonrpc: '2.0', id: 1, method: 'initialize',
  params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'k', version: '1' } } };

describe('API keys', () => {
  let gw;
  let key;
  let keyId;

  async function keyCmd(...args) {
    const r = await runTumiki(['key', ...args, '--config', gw.configPath], { cwd: gw.dir });
    return r;
  }
  const tryKey = (k, slug = 'a') => rawRequest(gw.mcpUrl(slug), {
    headers: { ...mcpHeaders(gw), Authorization: `Bearer ${k}` }, body: initBody, untilId: 1 });

  before(async () => {
    gw = await startGateway({ config: {
      mcpServers: { echo: servers.echo('echo') },
      endpoints: { a: { servers: ['echo'] }, b: { servers: ['echo'] } },
    } });
    const r = await keyCmd('create', '--endpoint', 'a', '--name', 'laptop');
    assert.equal(r.code, 0, r.stderr);
    key = r.stdout.trim();
    assert.match(key, /^tk_[0-9a-f]{16}_[0-9a-f]{64}$/);
    keyId = key.slice(3, 19);
  });
  after(cleanup);

  test('the key works with the SDK client on its endpoint', async () => {
    const client = await connect(gw, { slug: 'a', token: key });
    const r = await client.callTool({ name: 'echo__echo', arguments: { text: 'by key' } });
    assert.equal(textOf(r), 'by key');
    for (let i = 0; i < 20; i++) // cached: no bcrypt per request
      assert.equal(textOf(await client.callTool({ name: 'echo__echo', arguments: { text: `n${i}` } })), `n${i}`);
    await client.close();
  });

  test('401 points to RFC 9728 protected-resource metadata, which is served', async () => {
    const r = await tryKey('not-a-key', 'b');
    assert.equal(r.status, 401);
    const m = /resource_metadata="([^"]+)"/.exec(r.headers['www-authenticate']);
    assert.ok(m, r.headers['www-authenticate']);
    assert.equal(m[1], `${gw.url}/.well-known/oauth-protected-resource/mcp/b`);
    const prm = await fetch(m[1]);
    assert.equal(prm.status, 200);
    const doc = await prm.json();
    assert.equal(doc.resource, `${gw.url}/mcp/b`);
    assert.deepEqual(doc.bearer_methods_supported, ['header']);
    assert.equal((await fetch(`${gw.url}/.well-known/oauth-protected-resource/mcp/nope`)).status, 404);
    // the bare path describes the "default" endpoint, which this config does not have
    assert.equal((await fetch(`${gw.url}/.well-known/oauth-protected-resource`)).status, 404);
  });

  test('the key is refused on another endpoint, and wrong or malformed keys are refused', async () => {
    assert.equal((await tryKey(key, 'b')).status, 403);
    const wrong = `${key.slice(0, 20)}${key.slice(20).replace(/./g, (c) => (c === 'a' ? 'b' : 'a'))}`;
    assert.equal((await tryKey(wrong)).status, 401);
    assert.equal((await tryKey(`tk_${'0'.repeat(16)}_${'1'.repeat(64)}`)).status, 401);
    assert.equal((await tryKey(key.slice(0, -1))).status, 401);
    assert.equal((await tryKey(`${key}0`)).status, 401);
    assert.equal((await tryKey(key.toUpperCase())).status, 401);
  });

  test('only a bcrypt hash is stored; listing and log show no secret', async () => {
    const secret = key.slice(20);
    const db = path.join(gw.dir, 'data', 'tumiki.db');
    const st = fs.statSync(db);
    assert.equal(st.mode & 0o777, 0o600, 'database file mode');
    for (const f of [db, `${db}-wal`]) {
      if (!fs.existsSync(f)) continue;
      assert.ok(!fs.readFileSync(f).includes(secret), `${path.basename(f)} holds the secret`);
    }
    const hash = execFileSync('sqlite3', [db, 'SELECT hash FROM api_keys WHERE id = ?1;'.replace('?1', `'${keyId}'`)], { encoding: 'utf8' }).trim();
    assert.match(hash, /^\$2b\$\d\d\$/);
    const list = await keyCmd('list');
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, new RegExp(keyId));
    assert.match(list.stdout, /laptop/);
    assert.ok(!list.stdout.includes(secret) && !list.stdout.includes('$2b$'));
    assert.ok(!gw.stderr().includes(secret), 'the gateway log holds the secret');
  });

  test('an expired key is refused', async () => {
    const r = await keyCmd('create', '--endpoint', '*', '--expires-days', '1');
    const k2 = r.stdout.trim();
    assert.equal((await tryKey(k2, 'b')).status, 200);
    const db = path.join(gw.dir, 'data', 'tumiki.db');
    execFileSync('sqlite3', [db, `UPDATE api_keys SET expires_at = 1000 WHERE id = '${k2.slice(3, 19)}';`]);
    // the cached entry still holds the old expiry for up to its TTL; a fresh gateway sees it at once
    await gw.stop();
    gw = await startGateway({ config: JSON.parse(fs.readFileSync(gw.configPath, 'utf8')) });
    assert.equal((await tryKey(k2, 'b')).status, 401);
    assert.equal((await tryKey(key, 'a')).status, 200, 'the first key survived the restart');
  });

  test('a revoked key is refused within a second, by the running gateway', async () => {
    assert.equal((await tryKey(key)).status, 200); // cached now
    const r = await keyCmd('revoke', keyId);
    assert.equal(r.code, 0, r.stderr);
    const t0 = Date.now();
    let status = 200;
    while (status === 200 && Date.now() - t0 < 3000) {
      status = (await tryKey(key)).status;
      if (status === 200) await sleep(50);
    }
    const ms = Date.now() - t0;
    assert.equal(status, 401);
    assert.ok(ms <= 1000, `still accepted ${ms} ms after revocation`);
    const again = await keyCmd('revoke', 'ffffffffffffffff');
    assert.equal(again.code, 1);
    assert.match(again.stderr, /no such key/);
  });
});
