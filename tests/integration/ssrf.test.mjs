// SPDX-License-Identifier: Apache-2.0
// The outbound (SSRF) guard against the real binary. Remote server URLs at
// loopback, link-local (cloud metadata), private or IPv6-local addresses,
// in any spelling (decimal, octal, hex, IPv4-mapped) or by a name resolving
// to one, are refused when the config is loaded, with the key named. With
// an explicit allow, a server that answers with a redirect to a metadata
// address, or (legacy SSE) announces an endpoint on another origin, is not
// followed. (Address classification is unit-tested in test_ssrf.c.)
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { cleanup, connect, makeTempDir, runTumiki, startGateway } from './lib.mjs';

describe('SSRF guard', () => {
  let dir;
  const hits = [];
  let evil; // a loopback HTTP server that redirects and lies about its endpoint

  before(async () => {
    dir = await makeTempDir('tumiki-ssrf-');
    evil = http.createServer((req, res) => {
      hits.push(`${req.method} ${req.url}`);
      if (req.url.startsWith('/sse')) { // legacy SSE: announce a foreign endpoint
        res.writeHead(200, { 'Content-Type': 'text/event-stream' });
        res.write('event: endpoint\ndata: http://169.254.169.254/latest/meta-data\n\n');
        return;
      }
      res.writeHead(307, { Location: 'http://169.254.169.254/latest/meta-data/' });
      res.end();
    });
    await new Promise((r) => evil.listen(0, '127.0.0.1', r));
  });
  after(async () => {
    evil?.closeAllConnections?.();
    evil?.close();
    await cleanup();
  });

  async function check(url, extra = {}) {
    const cfg = path.join(dir, `c${Math.random().toString(16).slice(2)}.json`);
    fs.writeFileSync(cfg, JSON.stringify({ listen: '127.0.0.1:0', data_dir: path.join(dir, 'd'),
      mcpServers: { remote: { url } }, ...extra }));
    return runTumiki(['check-config', cfg]);
  }

  test('blocked addresses in every spelling are refused at load time', async () => {
    const urls = ['http://127.0.0.1/mcp', 'http://169.254.169.254/latest', 'http://[::1]:8080/mcp',
      'http://2130706433/mcp', 'http://0177.0.0.1/mcp', 'http://0x7f.0.0.1/mcp', 'http://127.1/mcp',
      'http://[::ffff:169.254.169.254]/', 'http://10.0.0.1/mcp', 'http://192.168.1.1/mcp',
      'http://172.16.0.1/mcp', 'http://100.64.0.1/mcp', 'http://0.0.0.0/mcp', 'http://[fe80::1]/mcp',
      'http://[fc00::1]/mcp', 'http://localhost:3000/mcp', 'http://224.0.0.1/'];
    for (const url of urls) {
      const r = await check(url);
      assert.equal(r.code, 1, `${url} was accepted`);
      assert.match(r.stderr, /mcpServers\.remote\.url: .*not allowed/, `${url}: ${r.stderr}`);
    }
    const scheme = await check('file:///etc/passwd');
    assert.equal(scheme.code, 1);
    const creds = await check('http://user:hunter2@127.0.0.1/mcp');
    assert.equal(creds.code, 1);
    assert.ok(!creds.stderr.includes('hunter2'), 'credentials must not be echoed');
  });

  test('an explicit allow range admits exactly that range', async () => {
    const ok = await check('http://127.0.0.1:9/mcp', { outbound: { allow_cidrs: ['127.0.0.0/8'] } });
    assert.equal(ok.code, 0, ok.stderr);
    const meta = await check('http://169.254.169.254/', { outbound: { allow_cidrs: ['127.0.0.0/8'] } });
    assert.equal(meta.code, 1);
    const bad = await check('http://127.0.0.1/', { outbound: { allow_cidrs: ['127.0.0.1/33'] } });
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /outbound\.allow_cidrs\[0\]/);
  });

  test('redirects and foreign SSE endpoints are not followed', async () => {
    const port = evil.address().port;
    const gw = await startGateway({ config: {
      outbound: { allow_cidrs: ['127.0.0.0/8'] },
      mcpServers: {
        redirecting: { url: `http://127.0.0.1:${port}/mcp`, connect_timeout_ms: 2000 },
        lying: { type: 'sse', url: `http://127.0.0.1:${port}/sse`, connect_timeout_ms: 1500 },
      },
    } });
    const client = await connect(gw);
    const tools = await client.listTools();
    assert.deepEqual(tools.tools, [], 'neither server produced a catalogue');
    await client.close();
    assert.ok(hits.some((h) => h.startsWith('POST /mcp')), 'the redirecting server was asked');
    assert.ok(hits.every((h) => !h.includes('meta-data')), `followed: ${hits.join(', ')}`);
    const logs = gw.stderr();
    assert.match(logs, /redirects are not followed/);
    assert.match(logs, /refused an endpoint on another origin/);
  });
});
