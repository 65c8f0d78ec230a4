// SPDX-License-Identifier: Apache-2.0
// One endpoint in front of three real stdio servers (server-everything,
// server-filesystem, the C echo fixture): the aggregated, namespaced
// catalogue of tools, prompts and resources, and calls routed to each.
import assert from 'node:assert/strict';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { cleanup, connect, listAll, makeTempDir, servers, startGateway, textOf } from './lib.mjs';

describe('aggregation over one endpoint', () => {
  let gw;
  let client;
  let fsDir;

  before(async () => {
    fsDir = await makeTempDir('tumiki-fs-');
    await fsp.writeFile(path.join(fsDir, 'hello.txt'), 'hello from the filesystem server\n');
    gw = await startGateway({
      config: {
        mcpServers: {
          everything: servers.everything(),
          fs: servers.filesystem(fsDir),
          echo: servers.echo('echo'),
        },
      },
    });
    client = await connect(gw);
  });
  after(async () => {
    await client?.close().catch(() => {});
    await cleanup();
  });

  test('healthz answers without auth', async () => {
    const r = await fetch(`${gw.url}/healthz`);
    assert.equal(r.status, 200);
    assert.equal((await r.text()).trim(), 'ok');
  });

  test('tools/list is the namespaced union of all servers', async () => {
    const names = (await listAll(client, 'tools')).map((t) => t.name);
    for (const n of ['everything__echo', 'everything__get-sum', 'everything__trigger-long-running-operation',
      'fs__read_text_file', 'fs__list_directory', 'echo__echo', 'echo__add', 'echo__sleep']) {
      assert.ok(names.includes(n), `${n} missing from ${names.join(', ')}`);
    }
    assert.equal(new Set(names).size, names.length, 'duplicate tool names');
    for (const n of names) {
      assert.match(n, /^(everything|fs|echo)__/, `tool ${n} is not namespaced`);
      assert.ok(n.length <= 60, `tool name ${n} longer than 60 characters`);
    }
  });

  test('tools/call reaches server-everything', async () => {
    const r = await client.callTool({ name: 'everything__echo', arguments: { message: 'hi there' } });
    assert.equal(r.isError ?? false, false);
    assert.equal(textOf(r), 'Echo: hi there');
    const s = await client.callTool({ name: 'everything__get-sum', arguments: { a: 2, b: 40 } });
    assert.match(textOf(s), /\b42\b/);
  });

  test('tools/call reaches server-filesystem', async () => {
    const r = await client.callTool({ name: 'fs__read_text_file', arguments: { path: path.join(fsDir, 'hello.txt') } });
    assert.equal(r.isError ?? false, false, JSON.stringify(r));
    assert.equal(textOf(r).trim(), 'hello from the filesystem server');
    const l = await client.callTool({ name: 'fs__list_directory', arguments: { path: fsDir } });
    assert.match(textOf(l), /hello\.txt/);
  });

  test('tools/call reaches the echo fixture', async () => {
    const r = await client.callTool({ name: 'echo__echo', arguments: { text: 'round trip ✓' } });
    assert.equal(textOf(r), 'round trip ✓');
    const s = await client.callTool({ name: 'echo__add', arguments: { a: 19, b: 23 } });
    assert.match(textOf(s), /\b42\b/);
  });

  test('a tool error result passes through as isError', async () => {
    const r = await client.callTool({ name: 'echo__fail', arguments: {} });
    assert.equal(r.isError, true);
  });

  test('prompts/list and prompts/get on two servers', async () => {
    const names = (await listAll(client, 'prompts')).map((p) => p.name);
    assert.ok(names.includes('everything__simple-prompt'), names.join(', '));
    assert.ok(names.includes('echo__greet'), names.join(', '));
    assert.ok(!names.some((n) => n.startsWith('fs__')), 'filesystem server has no prompts');

    const simple = await client.getPrompt({ name: 'everything__simple-prompt' });
    assert.equal(simple.messages[0].content.text, 'This is a simple prompt without arguments.');
    const args = await client.getPrompt({ name: 'everything__args-prompt', arguments: { city: 'Kyoto' } });
    assert.match(args.messages[0].content.text, /Kyoto/);
    const greet = await client.getPrompt({ name: 'echo__greet', arguments: { name: 'Ada' } });
    assert.match(JSON.stringify(greet.messages), /Ada/);
  });

  test('resources/list, resources/read and templates keep their URIs', async () => {
    const uris = (await listAll(client, 'resources')).map((r) => r.uri);
    assert.ok(uris.includes('demo://resource/static/document/architecture.md'), uris.join(', '));
    assert.ok(uris.includes('echo://static/hello'), uris.join(', '));

    const doc = await client.readResource({ uri: 'demo://resource/static/document/architecture.md' });
    assert.equal(doc.contents[0].uri, 'demo://resource/static/document/architecture.md');
    assert.ok(doc.contents[0].text.length > 100);

    const hello = await client.readResource({ uri: 'echo://static/hello' });
    assert.equal(hello.contents[0].uri, 'echo://static/hello');
    assert.ok(typeof hello.contents[0].text === 'string' && hello.contents[0].text.length > 0);

    const templates = (await listAll(client, 'resourceTemplates')).map((t) => t.uriTemplate);
    assert.ok(templates.includes('echo://items/{id}'), templates.join(', '));
    assert.ok(templates.includes('demo://resource/dynamic/text/{resourceId}'), templates.join(', '));

    const item = await client.readResource({ uri: 'echo://items/42' });
    assert.equal(item.contents[0].uri, 'echo://items/42');
    assert.match(item.contents[0].text, /42/);
    const dyn = await client.readResource({ uri: 'demo://resource/dynamic/text/7' });
    assert.match(dyn.contents[0].text, /^Resource 7:/);
  });

  test('reading an unknown resource is an error, and the gateway keeps serving', async () => {
    await assert.rejects(client.readResource({ uri: 'nowhere://nothing' }));
    const r = await client.callTool({ name: 'echo__echo', arguments: { text: 'still here' } });
    assert.equal(textOf(r), 'still here');
  });
});
