// SPDX-License-Identifier: Apache-2.0
// Server-initiated messages through the gateway, with the official SDK
// client (which opens the GET SSE stream after initialize): list_changed
// fan-out to every session of every endpoint that includes the server (and
// to no other), log messages filtered by each session's logging/setLevel,
// resources/updated only to subscribed sessions; and idle reaping of a stdio
// server, which is restarted on the next call.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import {
  LoggingMessageNotificationSchema,
  ResourceUpdatedNotificationSchema,
  ToolListChangedNotificationSchema,
} from '@modelcontextprotocol/sdk/types.js';

import {
  cleanup, connect, mcpHeaders, pidOf, procState, rawInitialize, rawRequest, servers, sleep, startGateway,
  textOf, waitFor,
} from './lib.mjs';

function collect(client, schema) {
  const seen = [];
  client.setNotificationHandler(schema, (n) => { seen.push(n.params ?? {}); });
  return seen;
}

describe('server-initiated notifications', () => {
  let gw;
  let a; // endpoint "both" (echo + other)
  let b; // endpoint "both", second session
  let c; // endpoint "other" (other only)
  const got = {};

  before(async () => {
    gw = await startGateway({
      config: {
        mcpServers: { echo: servers.echo('echo'), other: servers.echo('other') },
        endpoints: { both: { servers: ['echo', 'other'] }, other: { servers: ['other'] } },
      },
    });
    a = await connect(gw, { slug: 'both' });
    b = await connect(gw, { slug: 'both' });
    c = await connect(gw, { slug: 'other' });
    for (const [k, cl] of Object.entries({ a, b, c })) {
      got[k] = {
        tools: collect(cl, ToolListChangedNotificationSchema),
        logs: collect(cl, LoggingMessageNotificationSchema),
        updates: collect(cl, ResourceUpdatedNotificationSchema),
      };
    }
    await sleep(300); // let the SDK open its GET streams
  });

  after(async () => {
    for (const cl of [a, b, c]) await cl?.close().catch(() => {});
    await cleanup();
  });

  test('tools/list_changed reaches every session whose endpoint includes the server', async () => {
    const r = await a.callTool({ name: 'echo__notify', arguments: { method: 'notifications/tools/list_changed' } });
    assert.equal(textOf(r), 'sent');
    await waitFor(() => got.a.tools.length >= 1 && got.b.tools.length >= 1, { what: 'list_changed on a and b' });
    await sleep(200);
    assert.equal(got.c.tools.length, 0, 'endpoint "other" does not include echo');
    // the catalogue is fetched again and still complete
    const names = (await a.listTools()).tools.map((t) => t.name);
    assert.ok(names.includes('echo__echo') && names.includes('other__echo'), names.join(','));
  });

  test('log messages honour each session\'s level and name their server', async () => {
    await a.setLoggingLevel('error');
    await b.setLoggingLevel('debug');
    await a.callTool({ name: 'echo__notify', arguments: {
      method: 'notifications/message', params: { level: 'info', logger: 'x', data: 'info-line' } } });
    await a.callTool({ name: 'echo__notify', arguments: {
      method: 'notifications/message', params: { level: 'error', data: 'error-line' } } });
    await waitFor(() => got.b.logs.length >= 2, { what: 'two log lines on b' });
    await waitFor(() => got.a.logs.length >= 1, { what: 'the error line on a' });
    await sleep(200);
    assert.deepEqual(got.a.logs.map((l) => l.data), ['error-line']);
    assert.deepEqual(got.b.logs.map((l) => l.data), ['info-line', 'error-line']);
    assert.equal(got.b.logs[0].logger, 'echo/x');
    assert.equal(got.b.logs[1].logger, 'echo');
  });

  test('resources/updated goes only to sessions subscribed to that uri', async () => {
    await a.subscribeResource({ uri: 'echo://static/hello' });
    await a.callTool({ name: 'echo__notify', arguments: {
      method: 'notifications/resources/updated', params: { uri: 'echo://static/hello' } } });
    await waitFor(() => got.a.updates.length >= 1, { what: 'resource update on a' });
    await sleep(200);
    assert.equal(got.a.updates[0].uri, 'echo://static/hello');
    assert.equal(got.b.updates.length, 0);
    await a.unsubscribeResource({ uri: 'echo://static/hello' });
    await a.callTool({ name: 'echo__notify', arguments: {
      method: 'notifications/resources/updated', params: { uri: 'echo://static/hello' } } });
    await sleep(300);
    assert.equal(got.a.updates.length, 1, 'no update after unsubscribe');
  });
});

describe('log messages without a GET stream', () => {
  let gw;

  before(async () => {
    gw = await startGateway({ config: { mcpServers: { echo: servers.echo('echo') } } });
  });
  after(cleanup);

  test('a message logged during a call arrives on that call\'s SSE response', async () => {
    const session = await rawInitialize(gw);
    const post = (body, untilId) => rawRequest(gw.mcpUrl(), {
      headers: mcpHeaders(gw, { session }), body, untilId });
    const lvl = await post({ jsonrpc: '2.0', id: 2, method: 'logging/setLevel', params: { level: 'debug' } }, 2);
    assert.equal(lvl.status, 200);
    const r = await post({ jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'echo__notify',
      arguments: { method: 'notifications/message', params: { level: 'warning', data: 'during the call' } } } }, 3);
    assert.equal(r.status, 200);
    assert.match(r.headers['content-type'], /text\/event-stream/);
    assert.equal(r.messages.length, 2, JSON.stringify(r.messages));
    assert.equal(r.messages[0].method, 'notifications/message');
    assert.equal(r.messages[0].params.data, 'during the call');
    assert.equal(r.messages[1].id, 3);
    assert.equal(r.messages[1].result.content[0].text, 'sent');
    // below the session's level: not sent, and the reply stays plain JSON
    await post({ jsonrpc: '2.0', id: 4, method: 'logging/setLevel', params: { level: 'error' } }, 4);
    const q = await post({ jsonrpc: '2.0', id: 5, method: 'tools/call', params: { name: 'echo__notify',
      arguments: { method: 'notifications/message', params: { level: 'info', data: 'quiet' } } } }, 5);
    assert.match(q.headers['content-type'], /application\/json/);
    assert.equal(q.messages.length, 1);
  });
});

describe('idle reaping', () => {
  let gw;
  let client;

  before(async () => {
    gw = await startGateway({
      config: { mcpServers: { lazy: { ...servers.echo('lazy'), idle_timeout_s: 1 } } },
    });
    client = await connect(gw);
  });

  after(async () => {
    await client?.close().catch(() => {});
    await cleanup();
  });

  test('an idle stdio server is stopped, and started again by the next call', async () => {
    const pid1 = pidOf(await client.callTool({ name: 'lazy__pid', arguments: {} }));
    assert.ok(procState(pid1), 'server runs');
    await waitFor(() => procState(pid1) === null, { timeoutMs: 8000, what: `pid ${pid1} to be reaped` });
    const pid2 = pidOf(await client.callTool({ name: 'lazy__pid', arguments: {} }));
    assert.notEqual(pid2, pid1);
    assert.ok(procState(pid2));
    assert.equal(textOf(await client.callTool({ name: 'lazy__echo', arguments: { text: 'again' } })), 'again');
  });
});
