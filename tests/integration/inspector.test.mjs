// SPDX-License-Identifier: Apache-2.0
// A third-party client: the MCP Inspector's CLI mode (npm
// @modelcontextprotocol/inspector-cli) lists and calls tools through the
// gateway over Streamable HTTP with a bearer header.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { INSPECTOR_DIR, cleanup, servers, startGateway, waitExit } from './lib.mjs';

// inspector-cli 1.0.3 locates its own package.json relative to the *cwd*
// ("../package.json"), so it has to run from its build/ folder.
async function inspector(args, timeoutMs = 30000) {
  const proc = spawn(process.execPath, [path.join(INSPECTOR_DIR, 'cli.js'), '--cli', ...args],
    { cwd: INSPECTOR_DIR, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  proc.stdout.on('data', (d) => { stdout += d; });
  proc.stderr.on('data', (d) => { stderr += d; });
  let res = await waitExit(proc, timeoutMs);
  if (!res) {
    proc.kill('SIGKILL');
    await waitExit(proc, 5000);
    assert.fail(`inspector timed out; stderr: ${stderr}`);
  }
  assert.equal(res.code, 0, `inspector exited ${res.code}; stderr: ${stderr}`);
  return JSON.parse(stdout);
}

describe('MCP Inspector CLI through the gateway', () => {
  let gw;
  let common;

  before(async () => {
    gw = await startGateway({ config: { mcpServers: { echo: servers.echo('echo'), everything: servers.everything() } } });
    common = [gw.mcpUrl('default'), '--transport', 'http', '--header', `Authorization: Bearer ${gw.token}`];
  });
  after(cleanup);

  test('tools/list', async () => {
    const out = await inspector([...common, '--method', 'tools/list']);
    const names = out.tools.map((t) => t.name);
    assert.ok(names.includes('echo__add'), names.join(', '));
    assert.ok(names.includes('everything__get-sum'), names.join(', '));
  });

  test('tools/call', async () => {
    const out = await inspector([...common, '--method', 'tools/call', '--tool-name', 'everything__get-sum',
      '--tool-arg', 'a=2', 'b=3']);
    assert.equal(out.isError ?? false, false, JSON.stringify(out));
    assert.equal(out.content[0].text, 'The sum of 2 and 3 is 5.');
    const echo = await inspector([...common, '--method', 'tools/call', '--tool-name', 'echo__echo',
      '--tool-arg', 'text=from the inspector']);
    assert.equal(echo.content[0].text, 'from the inspector');
  });

  test('prompts/get and resources/read', async () => {
    const p = await inspector([...common, '--method', 'prompts/get', '--prompt-name', 'echo__greet',
      '--prompt-args', 'name=Grace']);
    assert.match(JSON.stringify(p.messages), /Grace/);
    const r = await inspector([...common, '--method', 'resources/read', '--uri', 'echo://items/7']);
    assert.equal(r.contents[0].uri, 'echo://items/7');
  });

  test('without the header the inspector is refused', async () => {
    const proc = spawn(process.execPath, [path.join(INSPECTOR_DIR, 'cli.js'), '--cli', gw.mcpUrl('default'),
      '--transport', 'http', '--method', 'tools/list'], { cwd: INSPECTOR_DIR, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    proc.stderr.on('data', (d) => { stderr += d; });
    proc.stdout.resume();
    let res = await waitExit(proc, 30000);
    if (!res) { proc.kill('SIGKILL'); await waitExit(proc, 5000); assert.fail('inspector hung'); }
    assert.notEqual(res.code, 0);
    assert.match(stderr, /401|nauthori[sz]ed/i);
  });
});
