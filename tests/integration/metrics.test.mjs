// SPDX-License-Identifier: Apache-2.0
// Monitoring against the real binary: /readyz reports a slow upstream until
// its handshake is done; /metrics refuses a scrape without a credential and
// serves the Prometheus text format with one (checked by promtool when it is
// installed, and always by a strict parser here); counters move after real
// tools/call traffic, authentication failures and 429s. Alerts: a local
// webhook receiver checks the HMAC signature and body of the alerts raised
// by a burst of bad tokens and by a crash-looping upstream, and neither the
// signing key nor the webhook URL's query string reaches the log.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';

import { cleanup, connect, randomToken, startWebhookReceiver as startReceiver, verifyWebhook as verify, rawRequest, runTumiki, servers, startGateway, TK_ECHO_BIN, waitFor } from './lib.mjs';

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\["\\n])*",?)*\})? (-?[0-9.e+-]+|\+Inf|NaN)$/;

/** Strict text-format 0.0.4 parse: returns Map "name{labels}" -> number. */
function parseMetrics(text) {
  assert.ok(text.endsWith('\n'), 'exposition ends with a newline');
  const types = new Map();
  const samples = new Map();
  for (const line of text.slice(0, -1).split('\n')) {
    if (line.startsWith('# HELP ')) continue;
    const t = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (t) {
      assert.ok(!types.has(t[1]), `TYPE ${t[1]} declared twice`);
      types.set(t[1], t[2]);
      continue;
    }
    const m = SAMPLE.exec(line);
    assert.ok(m, `malformed line: ${JSON.stringify(line)}`);
    const family = types.has(m[1]) ? m[1] : m[1].replace(/_(bucket|sum|count)$/, '');
    assert.ok(types.has(family), `sample ${m[1]} before its TYPE line`);
    const key = m[1] + (m[2] || '');
    assert.ok(!samples.has(key), `duplicate sample ${key}`);
    samples.set(key, Number(m[3]));
  }
  return samples;
}

function promtoolCheck(text) {
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 10000 });
  if (r.error?.code === 'ENOENT') return null; // not installed: the strict parser above still ran
  return r;
}

const value = (samples, key) => samples.get(key) ?? 0;

async function scrape(gw, token = gw.token) {
  const headers = token ? { Authorization: `Bearer ${token}` } : {};
  return rawRequest(`${gw.url}/metrics`, { method: 'GET', headers });
}

async function samplesOf(gw) {
  const r = await scrape(gw);
  assert.equal(r.status, 200, r.text);
  return parseMetrics(r.text);
}

async function badTokens(gw, n, token = 'x'.repeat(40)) {
  const statuses = [];
  for (let i = 0; i < n; i++) {
    const r = await rawRequest(gw.mcpUrl(), { headers: { Authorization: `Bearer ${token}`,
      'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' },
    body: { jsonrpc: '2.0', id: 1, method: 'ping' } });
    statuses.push(r.status);
  }
  return statuses;
}

describe('metrics and readiness', () => {
  let gw;
  before(async () => {
    gw = await startGateway({ config: { mcpServers: {
      echo: servers.echo('echo'),
      slow: { command: '/bin/sh', args: ['-c', `sleep 3; exec ${TK_ECHO_BIN} --name slow`] },
    } } });
  });
  after(cleanup);

  test('/readyz is 503 naming the slow upstream, then 200', async () => {
    const first = await rawRequest(`${gw.url}/readyz`, { method: 'GET' });
    assert.equal(first.status, 503, first.text);
    const body = JSON.parse(first.text);
    assert.equal(body.status, 'not ready');
    assert.ok(body.waiting.includes('upstream:slow'), first.text);
    // the fast upstream settles first (on a loaded machine it may still be
    // starting at the first probe); the slow one (3 s) is still named
    const partial = await waitFor(async () => {
      const r = await rawRequest(`${gw.url}/readyz`, { method: 'GET' });
      const b = JSON.parse(r.text);
      return r.status === 503 && !b.waiting.includes('upstream:echo') ? b : null;
    }, { timeoutMs: 2500, intervalMs: 20, what: '/readyz naming only the slow upstream' });
    assert.deepEqual(partial.waiting, ['upstream:slow']);
    const ready = await waitFor(async () => {
      const r = await rawRequest(`${gw.url}/readyz`, { method: 'GET' });
      return r.status === 200 ? r : null;
    }, { timeoutMs: 15000, intervalMs: 100, what: '/readyz 200' });
    assert.deepEqual(JSON.parse(ready.text), { status: 'ready' });
    const health = await rawRequest(`${gw.url}/healthz`, { method: 'GET' });
    assert.equal(health.status, 200);
    const post = await rawRequest(`${gw.url}/readyz`, { method: 'POST', body: '' });
    assert.equal(post.status, 405);
  });

  test('/metrics needs a bearer credential', async () => {
    const none = await scrape(gw, null);
    assert.equal(none.status, 401);
    assert.match(none.headers['www-authenticate'], /^Bearer realm="tumiki"$/);
    const wrong = await scrape(gw, randomToken());
    assert.equal(wrong.status, 401);
    assert.doesNotMatch(wrong.text, /tumiki_/);
    const ok = await scrape(gw);
    assert.equal(ok.status, 200);
    assert.equal(ok.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8');
    assert.match(ok.text, /^tumiki_build_info\{version="[0-9.]+"\} 1$/m);
  });

  test('counters move with real traffic; the scrape passes promtool', async () => {
    const before = await samplesOf(gw);
    const client = await connect(gw);
    try {
      for (let i = 0; i < 3; i++)
        await client.callTool({ name: 'echo__echo', arguments: { text: `hello ${i}` } });
      await assert.rejects(client.callTool({ name: 'echo__no_such_tool', arguments: {} }));
      const open = await samplesOf(gw);
      assert.equal(value(open, 'tumiki_sessions{endpoint="default"}') - value(before, 'tumiki_sessions{endpoint="default"}'), 1);
      await client.transport.terminateSession(); // DELETE: the gauge goes back down
    } finally {
      await client.close();
    }
    assert.deepEqual(await badTokens(gw, 2), [401, 401]);
    const r = await rawRequest(gw.mcpUrl(), { headers: { 'Content-Type': 'application/json' }, body: {} });
    assert.equal(r.status, 401);

    const res = await scrape(gw);
    const after = parseMetrics(res.text);
    const d = (key) => value(after, key) - value(before, key);
    assert.equal(d('tumiki_tool_calls_total{endpoint="default",server="echo",tool="echo",result="ok"}'), 3);
    assert.equal(d('tumiki_mcp_requests_total{endpoint="default",method="tools/call"}'), 4);
    assert.equal(d('tumiki_mcp_requests_total{endpoint="default",method="initialize"}'), 1);
    assert.equal(d('tumiki_tool_call_duration_seconds_count{server="echo"}'), 3);
    assert.equal(d('tumiki_auth_failures_total{reason="invalid"}'), 2);
    assert.equal(d('tumiki_auth_failures_total{reason="missing"}'), 1);
    assert.ok(d('tumiki_http_requests_total{endpoint="default",code="401"}') === 3);
    assert.ok(d('tumiki_http_requests_total{endpoint="default",code="200"}') >= 4);
    assert.ok(value(after, 'tumiki_http_request_duration_seconds_count{endpoint="default"}') >= 7);
    assert.equal(value(after, 'tumiki_upstream_up{server="echo"}'), 1);
    assert.equal(value(after, 'tumiki_upstream_up{server="slow"}'), 1);
    assert.equal(value(after, 'tumiki_upstream_inflight{server="echo"}'), 0);
    assert.ok(value(after, 'tumiki_connections') >= 1);
    assert.ok(value(after, 'process_resident_memory_bytes') > 1e6);
    assert.ok(value(after, 'process_start_time_seconds') > 1.6e9);
    // the session was ended by the client
    assert.equal(value(after, 'tumiki_sessions{endpoint="default"}'), 0);
    // no credential ever reaches the exposition
    assert.ok(!res.text.includes(gw.token));

    const pt = promtoolCheck(res.text);
    if (pt !== null) assert.equal(pt.status, 0, `promtool: ${pt.stdout}${pt.stderr}`);
  });
});

describe('API keys on /metrics', () => {
  let gw;
  const keyFor = async (endpoint) => {
    const r = await runTumiki(['key', 'create', '--endpoint', endpoint, '--config', gw.configPath], { cwd: gw.dir });
    assert.equal(r.code, 0, r.stderr);
    return r.stdout.trim();
  };
  before(async () => {
    gw = await startGateway({ config: { mcpServers: { echo: servers.echo('echo') },
      endpoints: { a: { servers: ['echo'] } } } });
  });
  after(cleanup);

  test('a key for every endpoint may scrape; a key for one endpoint may not', async () => {
    const all = await keyFor('*');
    const one = await keyFor('a');
    const ok = await scrape(gw, all);
    assert.equal(ok.status, 200);
    parseMetrics(ok.text);
    assert.ok(!ok.text.includes(all.slice(20)), 'no key material in the exposition');
    const scoped = await scrape(gw, one);
    assert.equal(scoped.status, 403);
    const s = await samplesOf(gw);
    assert.equal(value(s, 'tumiki_auth_failures_total{reason="forbidden"}'), 1);
    assert.equal(value(s, 'tumiki_http_requests_total{endpoint="/metrics",code="403"}'), 1);
  });
});

describe('429s and auth failures from one address', () => {
  let gw;
  before(async () => {
    gw = await startGateway({ config: { mcpServers: { echo: servers.echo('echo') },
      rate_limits: { per_key: '1000000/min', per_ip_unauthenticated: '3/min' },
      alerts: { rate_limited: { count: 2, window_s: 60 }, auth_failures: { count: 0, window_s: 60 } } } });
  });
  after(cleanup);

  test('rate-limited failures are counted by scope', async () => {
    const statuses = await badTokens(gw, 5);
    assert.deepEqual(statuses, [401, 401, 401, 429, 429]);
    const s = await samplesOf(gw);
    assert.equal(value(s, 'tumiki_rate_limited_total{scope="ip"}'), 2);
    assert.equal(value(s, 'tumiki_auth_failures_total{reason="invalid"}'), 5);
    assert.equal(value(s, 'tumiki_http_requests_total{endpoint="default",code="429"}'), 2);
  });

  test('without a webhook, a 429 flood alerts in the log only', async () => {
    const alerts = await waitFor(() => {
      const l = gw.logs().filter((x) => x.module === 'alerts');
      return l.length ? l : null;
    }, { timeoutMs: 5000, what: 'alert log line' });
    assert.equal(alerts.length, 1, JSON.stringify(alerts)); // auth_failures is off
    assert.equal(alerts[0].level, 'warn');
    assert.match(alerts[0].msg, /^alert rate_limited \(warning\): \{"count":2,"window_s":60\}$/);
  });
});

describe('metrics.require_auth false on loopback', () => {
  let gw;
  before(async () => {
    gw = await startGateway({ config: { metrics: { require_auth: false } } });
  });
  after(cleanup);

  test('scrape without a credential', async () => {
    const r = await scrape(gw, null);
    assert.equal(r.status, 200);
    parseMetrics(r.text);
  });
});

describe('alerts to a signed webhook', () => {
  let gw;
  let rx;
  const secret = randomToken();
  const urlSecret = randomToken();
  before(async () => {
    rx = await startReceiver();
    gw = await startGateway({
      env: { TK_ALERT_SECRET: secret },
      config: {
        outbound: { allow_cidrs: ['127.0.0.1/32'] },
        alerts: {
          webhook_url: `http://127.0.0.1:${rx.port}/hook?key=${urlSecret}`,
          secret_env: 'TK_ALERT_SECRET',
          auth_failures: { count: 5, window_s: 60 },
          upstream_restarts: { count: 3, window_s: 60 },
          cooldown_s: 600,
          timeout_ms: 2000,
        },
        mcpServers: { echo: servers.echo('echo'), crashy: { command: '/bin/false' } },
      },
    });
  });
  after(async () => {
    await cleanup();
    await rx?.close();
  });

  test('a burst of bad tokens raises one signed auth_failures alert', async () => {
    await badTokens(gw, 4);
    await badTokens(gw, 4);
    const d = await waitFor(() => rx.got.find((g) => JSON.parse(g.body).alert === 'auth_failures'),
      { timeoutMs: 10000, what: 'auth_failures alert' });
    assert.equal(d.url, `/hook?key=${urlSecret}`);
    assert.equal(d.headers['content-type'], 'application/json');
    const body = verify(secret, d);
    assert.equal(body.severity, 'warning');
    assert.match(body.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.deepEqual(body.details, { count: 5, window_s: 60 });
    // 8 failures, threshold 5, cooldown 10 min: exactly one alert
    assert.equal(rx.got.filter((g) => JSON.parse(g.body).alert === 'auth_failures').length, 1);
    // a tampered body does not verify
    assert.throws(() => verify(secret, { ...d, body: d.body.replace('warning', 'critical') }));
  });

  test('a crash-looping upstream raises upstream_crash_loop naming it', async () => {
    const d = await waitFor(() => rx.got.find((g) => JSON.parse(g.body).alert === 'upstream_crash_loop'),
      { timeoutMs: 15000, intervalMs: 100, what: 'upstream_crash_loop alert' });
    const body = verify(secret, d);
    assert.equal(body.severity, 'critical');
    assert.deepEqual(body.details, { count: 3, server: 'crashy', window_s: 60 });
    const s = await samplesOf(gw);
    assert.ok(value(s, 'tumiki_upstream_restarts_total{server="crashy"}') >= 3);
    assert.equal(value(s, 'tumiki_upstream_restarts_total{server="echo"}'), 0);
    // failed-but-supervised counts as ready
    const ready = await rawRequest(`${gw.url}/readyz`, { method: 'GET' });
    assert.equal(ready.status, 200, ready.text);
  });

  test('the log names the alerts but never the key or the URL', async () => {
    const lines = gw.logs().filter((l) => /alert/.test(l.msg));
    assert.ok(lines.some((l) => l.level === 'warn' && /auth_failures/.test(l.msg)), JSON.stringify(lines));
    assert.ok(!gw.stderr().includes(secret));
    assert.ok(!gw.stderr().includes(urlSecret));
  });
});
