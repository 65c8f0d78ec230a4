// SPDX-License-Identifier: Apache-2.0
// Server-to-client requests through the gateway: server-everything's
// sampling and elicitation tools send their request back during a tool
// call; the gateway must deliver it to the client whose call is in flight
// (not to another session), carry the client's answer back, and complete
// the call. Also completion/complete routed by a namespaced prompt.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { CreateMessageRequestSchema, ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';

import { cleanup, connect, servers, startGateway } from './lib.mjs';

describe('server-to-client requests and completion', () => {
  let gw;
  let alice;
  let bob;
  const sampled = { alice: [], bob: [] };
  const elicited = { alice: [], bob: [] };

  before(async () => {
    gw = await startGateway({ config: { mcpServers: { everything: servers.everything() } } });
    const caps = { sampling: {}, elicitation: {} };
    alice = await connect(gw, { capabilities: caps, name: 'alice' });
    bob = await connect(gw, { capabilities: caps, name: 'bob' });
    for (const [who, cl] of [['alice', alice], ['bob', bob]]) {
      cl.setRequestHandler(CreateMessageRequestSchema, (req) => {
        sampled[who].push(req.params);
        return { role: 'assistant', model: `${who}-model`, content: { type: 'text', text: `answer from ${who}` } };
      });
      cl.setRequestHandler(ElicitRequestSchema, (req) => {
        elicited[who].push(req.params);
        return { action: 'accept', content: { name: who, check: true, email: `${who}@example.com` } };
      });
    }
  });

  after(async () => {
    await alice?.close().catch(() => {});
    await bob?.close().catch(() => {});
    await cleanup();
  });

  test('sampling goes to the calling client and its answer completes the call', async () => {
    const r = await alice.callTool({ name: 'everything__trigger-sampling-request',
      arguments: { prompt: 'hello there', maxTokens: 20 } }, undefined, { timeout: 20000 });
    assert.equal(sampled.alice.length, 1);
    assert.equal(sampled.bob.length, 0, 'bob must not see alice\'s sampling request');
    assert.match(JSON.stringify(sampled.alice[0].messages), /hello there/);
    assert.match(JSON.stringify(r.content), /answer from alice/);
    const r2 = await bob.callTool({ name: 'everything__trigger-sampling-request',
      arguments: { prompt: 'second', maxTokens: 20 } }, undefined, { timeout: 20000 });
    assert.equal(sampled.bob.length, 1);
    assert.match(JSON.stringify(r2.content), /answer from bob/);
  });

  test('elicitation goes to the calling client and its answer comes back', async () => {
    const r = await bob.callTool({ name: 'everything__trigger-elicitation-request', arguments: {} },
      undefined, { timeout: 20000 });
    assert.equal(elicited.bob.length, 1);
    assert.equal(elicited.alice.length, 0);
    assert.match(JSON.stringify(r.content), /bob@example\.com/);
  });

  test('completion/complete reaches the prompt\'s server', async () => {
    const r = await alice.complete({ ref: { type: 'ref/prompt', name: 'everything__completable-prompt' },
      argument: { name: 'department', value: 'Eng' } });
    assert.deepEqual(r.completion.values, ['Engineering']);
    await assert.rejects(alice.complete({ ref: { type: 'ref/prompt', name: 'everything__nope' },
      argument: { name: 'x', value: '' } }), /-32602|Unknown prompt/);
  });

  test('a prompt with arguments, namespaced', async () => {
    const p = await alice.getPrompt({ name: 'everything__args-prompt', arguments: { city: 'Kyoto' } });
    assert.match(JSON.stringify(p.messages), /Kyoto/);
  });
});
