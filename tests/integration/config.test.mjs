// SPDX-License-Identifier: Apache-2.0
// Start-up checks of the real binary: bad configs fail fast and name the file
// and key; an imported Claude Desktop config is accepted by serve; listening
// beyond loopback without a token is refused.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { after, describe, test } from 'node:test';

import { TK_ECHO_BIN, cleanup, connect, listAll, makeTempDir, runTumiki, startGateway, textOf } from './lib.mjs';

function envWithout(...names) {
  const env = { ...process.env };
  for (const n of names) delete env[n];
  return env;
}

async function serveExpectingFailure(config, { raw = false, env } = {}) {
  const dir = await makeTempDir('tumiki-cfg-');
  const file = path.join(dir, 'bad.json');
  await fsp.writeFile(file, raw ? config : JSON.stringify(config));
  const ready = path.join(dir, 'ready');
  const r = await runTumiki(['serve', '--config', file, '--ready-file', ready],
    { env: env || { ...process.env, TUMIKI_TOKEN: 'a'.repeat(48) }, timeoutMs: 10000, cwd: dir });
  assert.equal(r.timedOut, false, `serve kept running on a bad config; stderr: ${r.stderr}`);
  assert.notEqual(r.code, 0, `exit code ${r.code}; stderr: ${r.stderr}`);
  assert.ok(r.ms < 5000, `took ${r.ms} ms to fail`);
  assert.equal(fs.existsSync(ready), false, 'wrote a ready file');
  return { ...r, file };
}

describe('configuration errors', () => {
  after(cleanup);

  test('wrong type for a key: non-zero exit naming the file and the key', async () => {
    const r = await serveExpectingFailure({ listen: '127.0.0.1:0', mcpServers: { srv: { command: 42 } } });
    assert.ok(r.stderr.includes(r.file), `stderr should name ${r.file}: ${r.stderr}`);
    assert.match(r.stderr, /mcpServers\.srv\.command/, r.stderr);
  });

  test('endpoint naming an unknown server is named', async () => {
    const r = await serveExpectingFailure({ listen: '127.0.0.1:0',
      mcpServers: { a: { command: TK_ECHO_BIN } }, endpoints: { main: { servers: ['a', 'b'] } } });
    assert.ok(r.stderr.includes(r.file), r.stderr);
    assert.match(r.stderr, /endpoints\.main\.servers/, r.stderr);
  });

  test('invalid JSON names the file', async () => {
    const r = await serveExpectingFailure('{"listen": "127.0.0.1:0", "mcpServers": {', { raw: true });
    assert.ok(r.stderr.includes(r.file), r.stderr);
  });

  test('missing config file names the file', async () => {
    const dir = await makeTempDir('tumiki-cfg-');
    const file = path.join(dir, 'does-not-exist.json');
    const r = await runTumiki(['serve', '--config', file], { timeoutMs: 10000, cwd: dir });
    assert.notEqual(r.code, 0);
    assert.ok(r.stderr.includes(file), r.stderr);
  });

  test('listen beyond loopback without a token refuses to start', async () => {
    await serveExpectingFailure({ listen: '0.0.0.0:0', mcpServers: { a: { command: TK_ECHO_BIN } } },
      { env: envWithout('TUMIKI_TOKEN') });
  });

  test('a token shorter than 32 characters is refused', async () => {
    await serveExpectingFailure({ listen: '127.0.0.1:0', mcpServers: {} },
      { env: { ...process.env, TUMIKI_TOKEN: 'short' } });
  });

  test('import-claude-config prints a config that serve accepts', async () => {
    const dir = await makeTempDir('tumiki-claude-');
    const claude = path.join(dir, 'claude_desktop_config.json');
    await fsp.writeFile(claude, JSON.stringify({
      globalShortcut: 'Ctrl+Space',
      mcpServers: {
        echo: { command: TK_ECHO_BIN, args: ['--name', 'echo'], env: { ECHO_MODE: 'test' } },
        'my server!': { command: TK_ECHO_BIN, args: ['--name', 'second'] },
      },
    }));
    const r = await runTumiki(['import-claude-config', claude], { timeoutMs: 10000, cwd: dir });
    assert.equal(r.code, 0, r.stderr);
    const cfg = JSON.parse(r.stdout);
    assert.ok(cfg.mcpServers?.echo, r.stdout);
    assert.equal(Object.keys(cfg.mcpServers).length, 2, r.stdout);
    for (const name of Object.keys(cfg.mcpServers)) assert.match(name, /^[A-Za-z0-9][A-Za-z0-9_-]*$/);
    assert.match(r.stderr, /my server!/, 'the rename is reported');

    delete cfg.listen;
    delete cfg.data_dir;
    const gw = await startGateway({ config: cfg });
    const client = await connect(gw);
    try {
      const names = (await listAll(client, 'tools')).map((t) => t.name);
      assert.ok(names.includes('echo__echo'), names.join(', '));
      assert.equal(names.filter((n) => n.endsWith('__echo')).length, 2, names.join(', '));
      const e = await client.callTool({ name: 'echo__env', arguments: { name: 'ECHO_MODE' } });
      assert.match(textOf(e), /test/);
    } finally {
      await client.close().catch(() => {});
      await gw.stop();
    }
  });
});
