// SPDX-License-Identifier: Apache-2.0
// The audit trail against the real binary: tool calls, sessions and
// authentication failures produce records with the right fields; `tumiki
// audit verify` passes and, after one byte of a record is edited, fails
// naming that record; a secret placed in every input field never reaches an
// audit file or the gateway's stderr (arguments and results recorded or
// not); kill -9 under concurrent tools/call load loses no record whose
// response the client received; export (JSONL, formula-safe CSV) and report
// work on that data; CLI key changes are recorded by id only; concurrent
// calls from several clients (records written in batches off the event
// loop) each get exactly one record on one unbroken chain, and a client that
// leaves mid-call still gets a "cancelled" record; a SIGTERM under load
// exits cleanly with every answered call recorded; and the gateway refuses to
// start when the trail cannot be written.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { after, describe, test } from 'node:test';

import {
  cleanup, connect, makeTempDir, mcpHeaders, randomToken, rawInitialize, rawRequest, runTumiki, servers,
  sleep, startGateway, textOf, TUMIKI_BIN, waitExit, waitFor, auditRecords,
} from './lib.mjs';

after(cleanup);

function auditDir(gw) {
  return path.join(gw.dir, 'data', 'audit');
}

const records = auditRecords;

function allAuditText(gw) {
  const dir = auditDir(gw);
  return fs.readdirSync(dir).map((n) => fs.readFileSync(path.join(dir, n), 'latin1')).join('\n');
}

const today = () => new Date().toISOString().slice(0, 10);

/** Each client calls echo__echo with tags `${prefix}-N` in a loop until
 * stop(); acked holds the tags of the calls answered without error;
 * done() waits for the loops to end. */
function callLoop(clients, prefix) {
  const acked = new Set();
  let stop = false;
  let n = 0;
  const workers = clients.map((c) => (async () => {
    while (!stop) {
      const tag = `${prefix}-${n++}`;
      try {
        const res = await c.callTool({ name: 'echo__echo', arguments: { text: tag } }, undefined, { timeout: 5000 });
        if (!res.isError) acked.add(tag);
      } catch { return; }
    }
  })());
  return { acked, stop: () => { stop = true; }, done: () => Promise.all(workers) };
}

describe('audit trail', () => {
  test('tool calls, prompts and resource reads are recorded; verify passes and then names an edited record', async () => {
    const gw = await startGateway({ config: {
      mcpServers: { echo: servers.echo('echo') },
      endpoints: { default: { servers: ['echo'], tools: { deny: ['echo__env'] } } },
    } });
    const client = await connect(gw);
    for (let i = 0; i < 3; i++)
      await client.callTool({ name: 'echo__echo', arguments: { text: `call ${i}` } });
    await assert.rejects(client.callTool({ name: 'echo__env', arguments: { name: 'HOME' } }));
    await assert.rejects(client.callTool({ name: "=cmd|' /C calc'!A0", arguments: {} }));
    await client.getPrompt({ name: 'echo__greet', arguments: { name: 'Ada' } });
    await client.readResource({ uri: 'echo://static/hello' });
    const bad = await rawRequest(gw.mcpUrl(), { headers: { ...mcpHeaders(gw), Authorization: 'Bearer nope-nope-nope' },
      body: { jsonrpc: '2.0', id: 1, method: 'ping' } });
    assert.equal(bad.status, 401);
    await client.transport.terminateSession();
    await client.close();
    await gw.stop();

    const recs = records(gw);
    assert.deepEqual(recs.map((r) => r.seq), recs.map((_, i) => i + 1), 'seq runs 1..N');
    const calls = recs.filter((r) => r.action === 'tool.call');
    const ok = calls.filter((r) => r.tool === 'echo__echo');
    assert.equal(ok.length, 3);
    for (const r of ok) {
      assert.equal(r.actor, 'key:bootstrap');
      assert.equal(r.endpoint, 'default');
      assert.equal(r.server, 'echo');
      assert.equal(r.result, 'ok');
      assert.equal(r.status, 200);
      assert.ok(Number.isInteger(r.latency_us) && r.latency_us > 0, `latency ${r.latency_us}`);
      assert.equal(r.ip, '127.0.0.1');
      assert.match(r.request_id, /^[0-9a-f]{8}-\d+$/);
      assert.ok(Number.isInteger(r.detail.rpc_id));
      assert.match(r.target, /^s-[0-9a-f]{16}$/);
      assert.equal(r.detail.arguments, undefined, 'arguments are off by default');
    }
    assert.equal(new Set(ok.map((r) => r.request_id)).size, 3, 'request ids are unique');
    assert.equal(calls.find((r) => r.tool === 'echo__env').result, 'denied');
    assert.equal(calls.find((r) => r.tool.startsWith('=cmd')).result, 'error');
    const prompt = recs.find((r) => r.action === 'prompt.get');
    assert.equal(prompt?.tool, 'echo__greet', 'the prompt name');
    assert.equal(prompt.result, 'ok');
    assert.equal(prompt.server, 'echo');
    const read = recs.find((r) => r.action === 'resource.read');
    assert.equal(read?.tool, 'echo://static/hello', 'the resource URI');
    assert.equal(read.result, 'ok');
    assert.equal(read.actor, 'key:bootstrap');
    const sess = recs.find((r) => r.action === 'session.create');
    assert.equal(sess.actor, 'key:bootstrap');
    assert.equal(sess.detail.client, 'tumiki-it');
    assert.ok(recs.some((r) => r.action === 'session.delete' && r.detail.reason === 'client'));
    const fail = recs.find((r) => r.action === 'auth.failure');
    assert.equal(fail.status, 401);
    assert.equal(fail.ip, '127.0.0.1');
    assert.equal(fail.actor, null);
    assert.deepEqual([recs[0].action, recs.at(-1).action], ['gateway.start', 'gateway.stop']);

    let v = await runTumiki(['audit', 'verify', '--config', gw.configPath]);
    assert.equal(v.code, 0, v.stdout + v.stderr);
    assert.match(v.stdout, new RegExp(`^ok: ${recs.length} records, seq 1\\.\\.${recs.length}`));

    // CSV export: quoted cells, the formula-looking tool name defused
    const csvPath = path.join(gw.dir, 'out.csv');
    const ex = await runTumiki(['audit', 'export', '--config', gw.configPath, '--format', 'csv',
      '--from', today(), '--to', today(), '-o', csvPath]);
    assert.equal(ex.code, 0, ex.stderr);
    const csv = fs.readFileSync(csvPath, 'utf8').trim().split('\n');
    assert.equal(csv.length, recs.length + 1);
    assert.match(csv[0], /^seq,ts,actor,action,/);
    assert.ok(csv.some((l) => l.includes(`"'=cmd|' /C calc'!A0"`)), 'formula cell prefixed with a quote');
    assert.ok(!csv.some((l) => l.includes(',"=cmd')));

    // one byte of the second echo__echo record edited
    const target = ok[1];
    const text = fs.readFileSync(target._file, 'utf8');
    const lines = text.split('\n');
    lines[target._line - 1] = lines[target._line - 1].replace('"result":"ok"', '"result":"ol"');
    fs.writeFileSync(target._file, lines.join('\n'));
    v = await runTumiki(['audit', 'verify', '--config', gw.configPath]);
    assert.equal(v.code, 1, v.stdout + v.stderr);
    assert.match(v.stdout, new RegExp(`FAILED: ${path.basename(target._file)} line ${target._line} \\(seq ${target.seq}\\): MAC mismatch`));
  });

  for (const logBodies of [false, true]) {
    test(`a secret in every input field never reaches the trail or the log (arguments/results ${logBodies ? 'on' : 'off'})`, async () => {
      const SECRET = `Sx${Math.random().toString(16).slice(2)}q7Zsecret`;
      const gw = await startGateway({ config: {
        mcpServers: { echo: { ...servers.echo('echo'), env: { LEAKED_VALUE: SECRET } } },
        audit: { log_arguments: logBodies, log_results: logBodies },
      } });
      const session = await rawInitialize(gw);
      const h = mcpHeaders(gw, { session, extra: { 'X-Secret': SECRET, 'User-Agent': SECRET } });
      const post = (body, extra = {}, url = gw.mcpUrl()) => rawRequest(url, { headers: { ...h, ...extra }, body,
        untilId: body.id });
      // tool arguments, JSON-RPC id, the upstream env value coming back in a result
      let r = await post({ jsonrpc: '2.0', id: SECRET, method: 'tools/call',
        params: { name: 'echo__echo', arguments: { text: `x ${SECRET} y`, [SECRET]: SECRET } } });
      assert.equal(r.status, 200);
      r = await post({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'echo__env', arguments: { name: 'LEAKED_VALUE' } } });
      assert.ok(r.text.includes(SECRET), 'the upstream really returns the secret');
      // the tool name
      r = await post({ jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: SECRET, arguments: {} } });
      // the query string
      r = await post({ jsonrpc: '2.0', id: 4, method: 'tools/call', params: { name: 'echo__echo', arguments: { text: 'q' } } },
        {}, `${gw.mcpUrl()}?token=${SECRET}&x=${SECRET}`);
      // a session id
      r = await rawRequest(gw.mcpUrl(), { headers: { ...h, 'Mcp-Session-Id': SECRET }, body: { jsonrpc: '2.0', id: 5, method: 'ping' } });
      assert.equal(r.status, 404);
      // Authorization with a wrong key, and an initialize with the secret as client name
      r = await rawRequest(gw.mcpUrl(), { headers: { ...mcpHeaders(gw), Authorization: `Bearer ${SECRET}` },
        body: { jsonrpc: '2.0', id: 6, method: 'ping' } });
      assert.equal(r.status, 401);
      r = await rawRequest(gw.mcpUrl(), { headers: mcpHeaders(gw), untilId: 7, body: { jsonrpc: '2.0', id: 7, method: 'initialize',
        params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: SECRET, version: SECRET } } } });
      assert.equal(r.status, 200);
      await gw.stop();

      const recs = records(gw);
      const calls = recs.filter((x) => x.action === 'tool.call');
      assert.equal(calls.length, 4, JSON.stringify(calls));
      assert.ok(recs.some((x) => x.action === 'auth.failure'));
      assert.equal(calls[0].detail.rpc_id, '****');
      if (logBodies) {
        assert.match(calls[0].detail.arguments.text, /^x \*\*\*\* y$/);
        assert.ok(JSON.stringify(calls[1].detail.result).includes('****'));
      } else {
        assert.equal(calls[0].detail.arguments, undefined);
      }
      assert.ok(!allAuditText(gw).includes(SECRET), 'secret in an audit file');
      assert.ok(!gw.stderr().includes(SECRET), 'secret in the gateway log');
      const v = await runTumiki(['audit', 'verify', '--config', gw.configPath]);
      assert.equal(v.code, 0, v.stdout);
    });
  }

  test('kill -9 under concurrent tools/call load loses no acknowledged record', async () => {
    const gw = await startGateway({ config: {
      mcpServers: { echo: servers.echo('echo') }, audit: { log_arguments: true },
    }, expectCleanExit: false });
    const clients = await Promise.all([0, 1, 2, 3].map(() => connect(gw)));
    const load = callLoop(clients, 'u');
    const acked = load.acked;
    await sleep(1500);
    gw.proc.kill('SIGKILL');
    load.stop();
    await waitExit(gw.proc, 5000);
    await load.done();
    await Promise.all(clients.map((c) => c.close().catch(() => {})));
    assert.ok(acked.size > 50, `only ${acked.size} calls answered before the kill`);

    const recorded = new Set(records(gw).filter((r) => r.action === 'tool.call').map((r) => r.detail.arguments.text));
    const missing = [...acked].filter((t) => !recorded.has(t));
    assert.deepEqual(missing, [], `${missing.length} of ${acked.size} acknowledged calls have no record`);
    const v = await runTumiki(['audit', 'verify', '--config', gw.configPath]);
    assert.equal(v.code, 0, v.stdout + v.stderr);
    assert.match(v.stdout, /^ok: \d+ records/);

    // export and report on that data
    const jl = await runTumiki(['audit', 'export', '--config', gw.configPath]);
    assert.equal(jl.code, 0, jl.stderr);
    const exported = jl.stdout.trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(exported.length, records(gw).length);
    const rep = await runTumiki(['audit', 'report', '--config', gw.configPath, '--from', today(), '--to', today(), '--json']);
    assert.equal(rep.code, 0, rep.stderr);
    const report = JSON.parse(rep.stdout);
    assert.equal(report.by_action['tool.call'], recorded.size);
    assert.equal(report.top_tools[0].tool, 'echo__echo');
    assert.ok(report.latency_by_tool.echo__echo.p50_us > 0);
    assert.ok(report.latency_by_tool.echo__echo.p99_us >= report.latency_by_tool.echo__echo.p50_us);
    const txt = await runTumiki(['audit', 'report', '--config', gw.configPath, '--from', today(), '--to', today()]);
    assert.match(txt.stdout, /top tools by calls:\n {2}echo__echo/);
  });

  test('concurrent calls get one record each on one chain; a client that leaves mid-call gets "cancelled"', async () => {
    const gw = await startGateway({ config: {
      mcpServers: { echo: servers.echo('echo') }, audit: { log_arguments: true }, log_level: 'debug',
    } });
    const clients = await Promise.all([0, 1, 2, 3].map(() => connect(gw)));
    const tags = clients.flatMap((_, k) => Array.from({ length: 25 }, (__, i) => `c${k}-${i}`));
    const answers = await Promise.all(tags.map((tag) => clients[Number(tag[1])].callTool(
      { name: 'echo__echo', arguments: { text: tag } })));
    assert.deepEqual(answers.map(textOf), tags, 'each call got its own answer');

    // a call whose client disconnects while it streams progress
    const session = await rawInitialize(gw);
    const req = http.request(gw.mcpUrl(), { method: 'POST', agent: false, headers: mcpHeaders(gw, { session }) });
    req.on('error', () => {});
    req.end(JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/call', params: {
      name: 'echo__progress', arguments: { steps: 50, interval_ms: 100 }, _meta: { progressToken: 'p9' } } }));
    await sleep(300);
    req.destroy();
    await waitFor(() => gw.logs().some((l) => /client went away/.test(l.msg)),
      { what: 'the call to be cancelled', timeoutMs: 5000 });
    await Promise.all(clients.map((c) => c.close()));
    await gw.stop();

    const recs = records(gw);
    assert.deepEqual(recs.map((r) => r.seq), recs.map((_, i) => i + 1), 'seq runs 1..N');
    const texts = recs.filter((r) => r.action === 'tool.call' && r.tool === 'echo__echo')
      .map((r) => r.detail.arguments.text);
    assert.deepEqual([...texts].sort(), [...tags].sort(), 'exactly one record per answered call');
    const cancelled = recs.filter((r) => r.tool === 'echo__progress');
    assert.equal(cancelled.length, 1);
    assert.equal(cancelled[0].result, 'cancelled');
    const v = await runTumiki(['audit', 'verify', '--config', gw.configPath]);
    assert.equal(v.code, 0, v.stdout + v.stderr);
  });

  test('SIGTERM under concurrent calls: clean exit, every answered call recorded, the chain holds', async () => {
    const gw = await startGateway({ config: {
      mcpServers: { echo: servers.echo('echo') }, audit: { log_arguments: true },
    } });
    const clients = await Promise.all([0, 1, 2, 3].map(() => connect(gw)));
    const load = callLoop(clients, 't');
    const acked = load.acked;
    await sleep(800);
    const exited = gw.stop(); // parked answers and queued records are settled at shutdown
    load.stop();
    const r = await exited;
    await load.done();
    await Promise.all(clients.map((c) => c.close().catch(() => {})));
    assert.equal(r.code, 0, gw.stderr().slice(-2000));
    assert.ok(acked.size > 20, `only ${acked.size} calls answered before the stop`);
    const recs = records(gw);
    assert.deepEqual(recs.map((x) => x.seq), recs.map((_, i) => i + 1), 'seq runs 1..N');
    const recorded = new Set(recs.filter((x) => x.action === 'tool.call').map((x) => x.detail.arguments.text));
    const missing = [...acked].filter((t) => !recorded.has(t));
    assert.deepEqual(missing, [], `${missing.length} of ${acked.size} acknowledged calls have no record`);
    assert.equal(recs.at(-1).action, 'gateway.stop');
    const v = await runTumiki(['audit', 'verify', '--config', gw.configPath]);
    assert.equal(v.code, 0, v.stdout + v.stderr);
  });

  test('auth-failure bursts are reported as anomalies; CLI key changes are recorded by id', async () => {
    const gw = await startGateway({ config: { mcpServers: { echo: servers.echo('echo') } } });
    for (let i = 0; i < 12; i++) {
      const r = await rawRequest(gw.mcpUrl(), { headers: { ...mcpHeaders(gw), Authorization: `Bearer wrong-${i}` },
        body: { jsonrpc: '2.0', id: 1, method: 'ping' } });
      assert.equal(r.status, 401);
    }
    const created = await runTumiki(['key', 'create', '--config', gw.configPath, '--endpoint', 'default', '--name', 'ci']);
    assert.equal(created.code, 0, created.stderr);
    const key = created.stdout.trim();
    const id = /key (\S+) created/.exec(created.stderr)[1];
    const revoked = await runTumiki(['key', 'revoke', '--config', gw.configPath, id]);
    assert.equal(revoked.code, 0, revoked.stderr);
    await gw.stop();

    const recs = records(gw);
    const kc = recs.find((r) => r.action === 'key.create');
    assert.equal(kc.target, `key:${id}`);
    assert.match(kc.actor, /^cli:/);
    assert.ok(recs.some((r) => r.action === 'key.revoke' && r.target === `key:${id}`));
    assert.ok(!allAuditText(gw).includes(key.slice(8)), 'the key itself is not recorded');
    const v = await runTumiki(['audit', 'verify', '--config', gw.configPath]);
    assert.equal(v.code, 0, v.stdout);
    const rep = await runTumiki(['audit', 'report', '--config', gw.configPath, '--from', today(), '--to', today(), '--json']);
    const report = JSON.parse(rep.stdout);
    assert.deepEqual(report.auth_failures_by_ip, [{ ip: '127.0.0.1', count: 12 }]);
    assert.ok(report.anomalies.some((a) => a.kind === 'auth_failure_burst' && a.ip === '127.0.0.1' && a.count === 12));
  });

  test('when audit writes fail at runtime, tools/call is refused with 503 "audit unavailable"', async () => {
    // The gateway runs with a 256 KiB file-size limit (SIGXFSZ ignored, so a
    // write past it fails with EFBIG): large recorded arguments fill the
    // segment after a few calls.
    const dir = await makeTempDir();
    const cfgPath = path.join(dir, 'tumiki.json');
    const readyPath = path.join(dir, 'ready');
    await fsp.writeFile(cfgPath, JSON.stringify({ listen: '127.0.0.1:0', data_dir: path.join(dir, 'data'),
      mcpServers: { echo: servers.echo('echo') }, audit: { log_arguments: true } }));
    const token = randomToken();
    const proc = spawn('sh', ['-c', 'ulimit -f 512; trap "" XFSZ; exec "$0" serve --config "$1" --ready-file "$2"',
      TUMIKI_BIN, cfgPath, readyPath], { env: { ...process.env, TUMIKI_TOKEN: token }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    proc.stderr.on('data', (d) => { stderr += d; });
    try {
      const url = await waitFor(() => fs.existsSync(readyPath) && fs.readFileSync(readyPath, 'utf8').trim(),
        { what: 'the gateway to listen' });
      const client = await connect({ token, mcpUrl: (slug = 'default') => `${url}/mcp/${slug}` });
      const big = 'x'.repeat(20000);
      const answered = [];
      let refused = null;
      for (let i = 0; i < 100 && !refused; i++) {
        try {
          await client.callTool({ name: 'echo__echo', arguments: { text: `${i}-${big}` } });
          answered.push(i);
        } catch (e) {
          refused = e;
        }
      }
      assert.ok(refused, 'no call was refused');
      assert.match(refused.message, /audit unavailable/);
      assert.equal(refused.code, 503, 'HTTP status');
      assert.ok(answered.length >= 3, `only ${answered.length} calls before the trail filled up`);
      await assert.rejects(client.callTool({ name: 'echo__echo', arguments: { text: 'after' } }), /audit unavailable/);
      await client.close().catch(() => {});
      assert.match(stderr, /AUDIT RECORD NOT WRITTEN/);
      const recorded = records({ dir }).filter((r) => r.action === 'tool.call')
        .map((r) => Number(r.detail.arguments.text.split('-')[0]));
      assert.deepEqual(recorded, answered, 'every answered call, and only those, has its record');
      const v = await runTumiki(['audit', 'verify', '--config', cfgPath]);
      assert.equal(v.code, 0, v.stdout + v.stderr);
    } finally {
      proc.kill('SIGTERM');
      if (!(await waitExit(proc, 5000))) proc.kill('SIGKILL');
    }
  });

  test('the gateway refuses to start when the trail cannot be written', async () => {
    const dir = await makeTempDir();
    const blocker = path.join(dir, 'file');
    await fsp.writeFile(blocker, 'x');
    const cfgPath = path.join(dir, 'tumiki.json');
    await fsp.writeFile(cfgPath, JSON.stringify({ listen: '127.0.0.1:0', data_dir: path.join(dir, 'data'),
      audit: { dir: path.join(blocker, 'audit') }, mcpServers: {} }));
    const r = await runTumiki(['serve', '--config', cfgPath], { env: { ...process.env, TUMIKI_TOKEN: 'x'.repeat(40) } });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /audit: cannot create .*audit: Not a directory.*audit\.enabled/);
    await fsp.writeFile(cfgPath, JSON.stringify({ audit: { retention_days: 0 } }));
    const c = await runTumiki(['check-config', cfgPath]);
    assert.equal(c.code, 1);
    assert.match(c.stderr, /audit\.retention_days: must be between 1 and 36500/);
  });
});
