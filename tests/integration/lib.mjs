// SPDX-License-Identifier: Apache-2.0
// Shared helpers for Tumiki's integration tests: start the real gateway binary
// on 127.0.0.1 with an ephemeral port next to real MCP servers (the reference
// servers from npm and the C echo fixture), connect the official SDK client,
// send raw HTTP requests, and make sure no process outlives its test file.
// Every wait here is bounded; all traffic goes to 127.0.0.1.
import { spawn } from 'node:child_process';
import assert from 'node:assert/strict';
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const TUMIKI_BIN = process.env.TUMIKI_BIN || path.join(ROOT, 'build', 'tumiki');
export const TK_ECHO_BIN = process.env.TK_ECHO_BIN || path.join(ROOT, 'build', 'tk-echo-server');
const MCP = path.join(ROOT, 'node_modules', '@modelcontextprotocol');
export const EVERYTHING_JS = path.join(MCP, 'server-everything', 'dist', 'index.js');
export const FILESYSTEM_JS = path.join(MCP, 'server-filesystem', 'dist', 'index.js');
export const INSPECTOR_DIR = path.join(MCP, 'inspector-cli', 'build');
export const PROTOCOL_VERSION = '2025-11-25';

// A stdio child gets only the environment its config gives it (nothing is
// inherited), so commands are absolute paths.
export const servers = {
  everything: () => ({ command: process.execPath, args: [EVERYTHING_JS, 'stdio'] }),
  filesystem: (dir) => ({ command: process.execPath, args: [FILESYSTEM_JS, dir] }),
  echo: (name = 'echo', extra = []) => ({ command: TK_ECHO_BIN, args: ['--name', name, ...extra] }),
};

const live = new Set(); // gateways not yet stopped
const tmpDirs = new Set();
const started = new Set(); // every gateway started by this test file
const SANITIZER = /(ERROR|WARNING): (Address|Leak|Memory|Thread)Sanitizer|runtime error:|SUMMARY: UndefinedBehaviorSanitizer/;

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function randomToken() {
  return randomBytes(24).toString('hex'); // 48 hex chars
}

export async function makeTempDir(prefix = 'tumiki-it-') {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), prefix));
  tmpDirs.add(dir);
  return fs.realpathSync(dir);
}

/** Wait (bounded) until fn() returns a truthy value; returns it. */
export async function waitFor(fn, { timeoutMs = 10000, intervalMs = 50, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  let lastErr;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      lastErr = e;
    }
    await sleep(intervalMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}` +
    (lastErr ? `: ${lastErr.message}` : ''));
}

/** Resolves with {code, signal} when proc exits, or null after timeoutMs. */
export function waitExit(proc, timeoutMs) {
  if (proc.exitCode !== null || proc.signalCode !== null)
    return Promise.resolve({ code: proc.exitCode, signal: proc.signalCode });
  return new Promise((resolve) => {
    const t = setTimeout(() => { proc.off('exit', onExit); resolve(null); }, timeoutMs);
    function onExit(code, signal) { clearTimeout(t); resolve({ code, signal }); }
    proc.once('exit', onExit);
  });
}

/**
 * Run `tumiki ARGS...` to completion (bounded). Returns {code, signal, stdout,
 * stderr, ms}; the process is SIGKILLed if it outlives timeoutMs.
 */
export async function runTumiki(args, { env, timeoutMs = 10000, cwd = ROOT } = {}) {
  const t0 = Date.now();
  const proc = spawn(TUMIKI_BIN, args, { cwd, env: env || process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  proc.stdout.on('data', (d) => { stdout += d; });
  proc.stderr.on('data', (d) => { stderr += d; });
  const closed = new Promise((r) => proc.once('close', r));
  let res = await waitExit(proc, timeoutMs);
  let timedOut = false;
  if (!res) {
    timedOut = true;
    proc.kill('SIGKILL');
    res = await waitExit(proc, 5000);
  }
  await Promise.race([closed, sleep(1000)]);
  if (SANITIZER.test(stderr)) throw new Error(`tumiki ${args.join(' ')}: sanitizer report:\n${stderr.slice(-6000)}`);
  return { ...(res || {}), timedOut, stdout, stderr, ms: Date.now() - t0 };
}

/**
 * Start the gateway with `config` (listen forced to 127.0.0.1:0 unless given,
 * data_dir in a temp dir) in cwd (default: that temp dir). Waits up to
 * readyTimeoutMs for --ready-file.
 * Returns {url, token, proc, dir, configPath, stderr(), logs(), mcpUrl(slug), stop()}.
 */
export async function startGateway({ config = {}, env = {}, token = randomToken(),
  readyTimeoutMs = 30000, extraArgs = [], expectCleanExit = true, cwd } = {}) {
  if (!fs.existsSync(TUMIKI_BIN)) throw new Error(`TUMIKI_BIN ${TUMIKI_BIN} does not exist (build first)`);
  const dir = await makeTempDir('tumiki-gw-');
  // Tests drive many requests through one token: unless a test sets its own
  // rate_limits, lift the defaults (100/min per key, 60/min per address),
  // which ratelimit.test.mjs checks on their own.
  const cfg = { listen: '127.0.0.1:0', data_dir: path.join(dir, 'data'),
    rate_limits: { per_key: '1000000/min', per_ip_unauthenticated: '1000000/min' }, ...config };
  // TUMIKI_TEST_THREADS runs the whole suite with that many HTTP threads
  // (unless a test sets server itself).
  if (process.env.TUMIKI_TEST_THREADS && config.server === undefined)
    cfg.server = { threads: Number(process.env.TUMIKI_TEST_THREADS) };
  const configPath = path.join(dir, 'tumiki.json');
  const readyPath = path.join(dir, 'ready');
  await fsp.writeFile(configPath, JSON.stringify(cfg, null, 2));
  const childEnv = { ...process.env, ...env };
  if (token === null) delete childEnv.TUMIKI_TOKEN;
  else childEnv.TUMIKI_TOKEN = token;
  const proc = spawn(TUMIKI_BIN, ['serve', '--config', configPath, '--ready-file', readyPath, ...extraArgs],
    { cwd: cwd || dir, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stdout.on('data', (d) => { out += d; });
  proc.stderr.on('data', (d) => { err += d; });
  if (process.env.TK_IT_VERBOSE) proc.stderr.on('data', (d) => process.stderr.write(d));

  let stopped = null;
  const gw = {
    token, proc, dir, configPath, readyPath, url: null, expectCleanExit,
    stderr: () => err,
    stdout: () => out,
    /** stderr parsed as JSON log lines (non-JSON lines are skipped). */
    logs: () => err.split('\n').filter(Boolean).flatMap((l) => {
      try { return [JSON.parse(l)]; } catch { return []; }
    }),
    mcpUrl: (slug = 'default') => `${gw.url}/mcp/${slug}`,
    /** SIGTERM, wait up to 5 s, then SIGKILL. Resolves with {code, signal}. */
    stop: () => {
      if (!stopped) {
        stopped = (async () => {
          live.delete(gw);
          if (proc.exitCode !== null || proc.signalCode !== null)
            return { code: proc.exitCode, signal: proc.signalCode, forced: false };
          proc.kill('SIGTERM');
          let res = await waitExit(proc, 5000);
          if (res) return { ...res, forced: false };
          proc.kill('SIGKILL');
          res = await waitExit(proc, 5000);
          return { ...(res || {}), forced: true };
        })();
      }
      return stopped;
    },
  };
  live.add(gw);
  started.add(gw);

  try {
    const deadline = Date.now() + readyTimeoutMs;
    for (;;) {
      if (proc.exitCode !== null || proc.signalCode !== null)
        throw new Error(`tumiki exited early (code ${proc.exitCode}, signal ${proc.signalCode})`);
      let text = '';
      try { text = await fsp.readFile(readyPath, 'utf8'); } catch { /* not yet */ }
      if (text.endsWith('\n')) {
        gw.url = text.trim().replace(/\/+$/, '');
        break;
      }
      if (Date.now() > deadline) throw new Error(`no ready file after ${readyTimeoutMs} ms`);
      await sleep(25);
    }
    if (!/^https?:\/\/127\.0\.0\.1:\d+$/.test(gw.url))
      throw new Error(`unexpected ready-file content ${JSON.stringify(gw.url)}`);
  } catch (e) {
    await gw.stop();
    started.delete(gw);
    e.message += `\n--- tumiki stderr ---\n${err.slice(-4000)}`;
    throw e;
  }
  return gw;
}


/**
 * Stop every gateway still running, remove temp dirs (use in after()), then
 * fail if any gateway exited uncleanly: not status 0 after SIGTERM (unless it
 * was started with expectCleanExit: false), needed SIGKILL, or printed a
 * sanitizer report (ASan/LSan/UBSan builds).
 */
export async function cleanup() {
  const gws = [...started];
  started.clear();
  const results = await Promise.all(gws.map((g) => g.stop()));
  for (const d of tmpDirs) await fsp.rm(d, { recursive: true, force: true }).catch(() => {});
  tmpDirs.clear();
  const problems = [];
  gws.forEach((g, i) => {
    const r = results[i];
    const san = SANITIZER.exec(g.stderr());
    if (san) {
      const at = g.stderr().lastIndexOf('\n', san.index);
      problems.push(`gateway pid ${g.proc.pid}: sanitizer report:\n${g.stderr().slice(at + 1, at + 1 + 6000)}`);
    } else if (r.forced) {
      problems.push(`gateway pid ${g.proc.pid}: still running 5 s after SIGTERM (killed)`);
    } else if (g.expectCleanExit && r.code !== 0) {
      problems.push(`gateway pid ${g.proc.pid}: exit code ${r.code}, signal ${r.signal}; stderr tail:\n${g.stderr().slice(-2000)}`);
    }
  });
  if (problems.length) throw new Error(problems.join('\n\n'));
}

// Last resort if a test file dies without its after() hook.
process.on('exit', () => {
  for (const g of live) { try { g.proc.kill('SIGKILL'); } catch { /* gone */ } }
});

/** An SDK client connected to an endpoint of gw. */
export async function connect(gw, { slug = 'default', token = gw.token, capabilities = {},
  name = 'tumiki-it' } = {}) {
  const transport = new StreamableHTTPClientTransport(new URL(gw.mcpUrl(slug)), {
    requestInit: { headers: { Authorization: `Bearer ${token}` } },
  });
  const client = new Client({ name, version: '1.0.0' }, { capabilities });
  await client.connect(transport, { timeout: 20000 });
  return client;
}

/** All pages of a list method (bounded at 50 pages). */
export async function listAll(client, kind) {
  const fn = {
    tools: (p) => client.listTools(p),
    prompts: (p) => client.listPrompts(p),
    resources: (p) => client.listResources(p),
    resourceTemplates: (p) => client.listResourceTemplates(p),
  }[kind];
  const items = [];
  let cursor;
  for (let page = 0; page < 50; page++) {
    const r = await fn(cursor ? { cursor } : undefined);
    items.push(...r[kind]);
    if (!r.nextCursor) return items;
    cursor = r.nextCursor;
  }
  throw new Error(`${kind}/list: more than 50 pages`);
}

/** The text of a CallToolResult's content items, joined. */
export function textOf(result) {
  return (result.content || []).filter((c) => c.type === 'text').map((c) => c.text).join('');
}

/** The pid reported by the echo fixture's `pid` tool. */
export function pidOf(result) {
  if (result.structuredContent && Number.isInteger(result.structuredContent.pid))
    return result.structuredContent.pid;
  const m = /\d+/.exec(textOf(result));
  if (!m) throw new Error(`no pid in ${JSON.stringify(result)}`);
  return Number(m[0]);
}

/**
 * Raw HTTP/1.1 request with full control over headers (Host included).
 * Resolves {status, headers, text, messages} where messages are the JSON-RPC
 * messages of the body (one JSON body, or the data: lines of an SSE body).
 * For SSE bodies that stay open, set untilId to stop after that response.
 */
export function rawRequest(url, { method = 'POST', headers = {}, body, timeoutMs = 10000,
  untilId, headOnly = false } = {}) {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    let settled = false;
    const req = http.request({ host: u.hostname, port: u.port, path: u.pathname + u.search, method,
      headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      const done = () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        req.destroy();
        resolve({ status: res.statusCode, headers: res.headers, text, messages: parseBody(res.headers, text) });
      };
      if (headOnly) return done();
      res.on('data', (d) => {
        text += d;
        if (untilId !== undefined && parseBody(res.headers, text).some((m) => m.id === untilId && !m.method))
          done();
      });
      res.on('end', done);
      res.on('error', done);
      res.on('close', done);
    });
    const timer = setTimeout(() => {
      if (settled) return;
      settled = true;
      req.destroy();
      reject(new Error(`${method} ${url}: no complete response in ${timeoutMs} ms`));
    }, timeoutMs);
    req.on('error', (e) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(e);
    });
    if (body !== undefined) req.end(typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body));
    else req.end();
  });
}

export function parseBody(headers, text) {
  const ct = String(headers['content-type'] || '');
  if (ct.includes('text/event-stream')) {
    const out = [];
    for (const ev of text.split(/\r?\n\r?\n/)) {
      const data = ev.split(/\r?\n/).filter((l) => l.startsWith('data:')).map((l) => l.slice(5).replace(/^ /, '')).join('\n');
      if (!data) continue;
      try { out.push(JSON.parse(data)); } catch { /* partial event */ }
    }
    return out;
  }
  if (!text) return [];
  try {
    const v = JSON.parse(text);
    return Array.isArray(v) ? v : [v];
  } catch {
    return [];
  }
}

/** Headers for a raw MCP POST. */
export function mcpHeaders(gw, { session, protocolVersion = PROTOCOL_VERSION, extra = {} } = {}) {
  const h = {
    'Content-Type': 'application/json',
    Accept: 'application/json, text/event-stream',
    Authorization: `Bearer ${gw.token}`,
  };
  if (session) h['Mcp-Session-Id'] = session;
  if (protocolVersion && session) h['MCP-Protocol-Version'] = protocolVersion;
  return { ...h, ...extra };
}

/** initialize + notifications/initialized over raw HTTP; returns the session id. */
export async function rawInitialize(gw, slug = 'default') {
  const r = await rawRequest(gw.mcpUrl(slug), {
    headers: mcpHeaders(gw), untilId: 1,
    body: { jsonrpc: '2.0', id: 1, method: 'initialize',
      params: { protocolVersion: PROTOCOL_VERSION, capabilities: {}, clientInfo: { name: 'raw', version: '1' } } },
  });
  if (r.status !== 200) throw new Error(`initialize: HTTP ${r.status} ${r.text}`);
  const session = r.headers['mcp-session-id'];
  if (!session) throw new Error('initialize: no Mcp-Session-Id header');
  const n = await rawRequest(gw.mcpUrl(slug), {
    headers: mcpHeaders(gw, { session }), body: { jsonrpc: '2.0', method: 'notifications/initialized' },
  });
  if (n.status !== 202) throw new Error(`notifications/initialized: HTTP ${n.status} ${n.text}`);
  return session;
}

/** pids of all descendants of pid (via /proc). */
export function descendants(pid) {
  const byParent = new Map();
  for (const ent of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(ent)) continue;
    let stat;
    try { stat = fs.readFileSync(`/proc/${ent}/stat`, 'utf8'); } catch { continue; }
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ppid = Number(rest[1]);
    if (!byParent.has(ppid)) byParent.set(ppid, []);
    byParent.get(ppid).push(Number(ent));
  }
  const out = [];
  const queue = [pid];
  while (queue.length && out.length < 10000) {
    for (const c of byParent.get(queue.shift()) || []) { out.push(c); queue.push(c); }
  }
  return out;
}

/** Process state letter from /proc/PID/stat ('Z' zombie), or null if gone. */
export function procState(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
  } catch {
    return null;
  }
}

/** An alerts webhook receiver on 127.0.0.1 that keeps every request. */
export async function startWebhookReceiver() {
  const got = [];
  const srv = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      got.push({ headers: req.headers, body, url: req.url });
      res.writeHead(204).end();
    });
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  return { got, port: srv.address().port, close: () => new Promise((r) => srv.close(r)) };
}

export function verifyWebhook(secret, delivery) {
  const ts = delivery.headers['x-tumiki-timestamp'];
  const sig = delivery.headers['x-tumiki-signature'];
  assert.match(ts, /^[0-9]+$/);
  assert.ok(Math.abs(Number(ts) - Date.now() / 1000) < 60, 'timestamp is current');
  assert.match(sig, /^sha256=[0-9a-f]{64}$/);
  const want = 'sha256=' + createHmac('sha256', secret).update(`${ts}.${delivery.body}`).digest('hex');
  assert.ok(timingSafeEqual(Buffer.from(sig), Buffer.from(want)), 'signature verifies');
  return JSON.parse(delivery.body);
}

/** Every complete record of a gateway's audit trail (data/audit), oldest
 * first, each with its file and line; a torn last line is skipped. */
export function auditRecords(gw) {
  const dir = path.join(gw.dir, 'data', 'audit');
  const out = [];
  const files = fs.readdirSync(dir).filter((n) => /^audit-\d{8}\.jsonl$/.test(n)).sort();
  for (const f of files) {
    const file = path.join(dir, f);
    fs.readFileSync(file, 'utf8').split('\n').forEach((l, i) => {
      try { out.push({ ...JSON.parse(l), _file: file, _line: i + 1 }); } catch { /* torn or empty */ }
    });
  }
  return out;
}
