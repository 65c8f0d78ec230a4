// SPDX-License-Identifier: Apache-2.0
// Traffic protection at the connection level, against the real binary:
// slowloris clients are cut off at limits.header_timeout_ms while normal
// clients keep working, idle kept-alive connections end at
// limits.idle_timeout_ms, limits.max_connections holds, and TLS: TLS 1.2/1.3
// only with strong ciphers (checked with the sslscan scanner from Debian),
// HSTS, and a certificate reload on SIGHUP that keeps open connections.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { after, before, describe, test } from 'node:test';

import { cleanup, makeTempDir, runTumiki, sleep, startGateway, waitFor } from './lib.mjs';

/** A raw TCP connection; resolves {sock, closed: Promise<ms since open>}. */
function openRaw(port) {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const sock = net.connect(port, '127.0.0.1');
    const closed = new Promise((r) => sock.once('close', () => r(Date.now() - t0)));
    sock.on('error', () => {});
    sock.once('connect', () => resolve({ sock, closed }));
    sock.once('error', reject);
  });
}

function portOf(gw) {
  return Number(new URL(gw.url).port);
}

async function healthz(gw) {
  const r = await fetch(`${gw.url}/healthz`);
  return r.status;
}

describe('connection limits and slow clients', () => {
  let gw;

  before(async () => {
    gw = await startGateway({
      config: { limits: { header_timeout_ms: 800, idle_timeout_ms: 1500, max_connections: 8 } },
    });
  });
  after(cleanup);

  test('a slowloris client is cut off while normal clients keep working', async () => {
    const { sock, closed } = await openRaw(portOf(gw));
    const req = 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ';
    let i = 0;
    const drip = setInterval(() => { // one byte every 100 ms: never completes in time
      if (i < req.length) sock.write(req[i++]);
      else sock.write('a');
    }, 100);
    try {
      for (let k = 0; k < 5; k++) {
        assert.equal(await healthz(gw), 200);
        await sleep(100);
      }
      const ms = await Promise.race([closed, sleep(5000).then(() => -1)]);
      assert.ok(ms > 0, 'the slow connection was not closed within 5 s');
      assert.ok(ms >= 700, `closed too early (${ms} ms)`);
    } finally {
      clearInterval(drip);
      sock.destroy();
    }
  });

  test('an idle kept-alive connection is closed after idle_timeout_ms', async () => {
    const { sock, closed } = await openRaw(portOf(gw));
    let got = '';
    sock.on('data', (d) => { got += d; });
    sock.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    await waitFor(() => got.includes('ok'), { what: 'the first response' });
    const ms = await Promise.race([closed, sleep(6000).then(() => -1)]);
    assert.ok(ms > 0, 'idle connection not closed');
    assert.ok(ms >= 1300, `closed too early (${ms} ms)`);
  });

  test('max_connections holds, and frees up when clients leave', async () => {
    const socks = [];
    for (let k = 0; k < 14; k++) socks.push(await openRaw(portOf(gw)));
    await sleep(500);
    const open = socks.filter((s) => !s.sock.destroyed && s.sock.readyState === 'open');
    // the over-limit ones are cut at once (before their header deadline)
    const cut = await Promise.all(socks.map((s) => Promise.race([s.closed, sleep(600).then(() => -1)])));
    const early = cut.filter((ms) => ms >= 0 && ms < 700).length;
    assert.ok(early >= 6, `expected at least 6 connections cut early, got ${early} (${cut.join(',')}; ${open.length} open)`);
    for (const s of socks) s.sock.destroy();
    await sleep(1500); // released by the sweep
    assert.equal(await healthz(gw), 200);
  });
});

function makeCert(dir, name) {
  const key = path.join(dir, `${name}.key`);
  const cert = path.join(dir, `${name}.crt`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256',
    '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', `/CN=${name}`,
    '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'], { stdio: 'ignore' });
  return { key, cert, pem: fs.readFileSync(cert, 'utf8') };
}

function fingerprint(pem) {
  return new crypto.X509Certificate(pem).fingerprint256;
}

function tlsConnect(port, ca) {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, ca, servername: 'localhost' }, () => resolve(s));
    s.once('error', reject);
  });
}

/** One HTTP/1.1 request over an open (TLS) socket; resolves the raw response. */
function requestOn(sock, reqText) {
  return new Promise((resolve) => {
    let got = '';
    const onData = (d) => {
      got += d;
      if (/\r\n\r\n[\s\S]*ok\n/.test(got)) { sock.off('data', onData); resolve(got); }
    };
    sock.on('data', onData);
    sock.write(reqText);
  });
}

describe('TLS', () => {
  let gw;
  let dir;
  let certA;
  let certB;
  let live; // the TLS files the gateway serves

  before(async () => {
    dir = await makeTempDir('tumiki-tls-');
    certA = makeCert(dir, 'first');
    certB = makeCert(dir, 'second');
    live = { cert: path.join(dir, 'live.crt'), key: path.join(dir, 'live.key') };
    fs.copyFileSync(certA.cert, live.cert);
    fs.copyFileSync(certA.key, live.key);
    gw = await startGateway({ config: { tls: { cert_file: live.cert, key_file: live.key } } });
  });
  after(cleanup);

  test('serves HTTPS with HSTS and the security headers', async () => {
    assert.match(gw.url, /^https:/);
    const res = await new Promise((resolve, reject) => {
      https.get(`${gw.url}/healthz`, { ca: certA.pem, servername: 'localhost' }, resolve).on('error', reject);
    });
    assert.equal(res.statusCode, 200);
    assert.match(res.headers['strict-transport-security'], /max-age=\d+/);
    assert.equal(res.headers['x-content-type-options'], 'nosniff');
    res.resume();
  });

  test('plain HTTP on the TLS port gets no HTTP response', async () => {
    const { sock, closed } = await openRaw(portOf(gw));
    let got = '';
    sock.on('data', (d) => { got += d; });
    sock.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    await Promise.race([closed, sleep(3000)]);
    sock.destroy();
    assert.ok(!got.startsWith('HTTP/1.1 200'), got.slice(0, 80));
  });

  test('sslscan: TLS 1.0/1.1 and SSLv2/3 disabled, TLS 1.2/1.3 enabled, no weak cipher', () => {
    const r = spawnSync('sslscan', ['--no-colour', `127.0.0.1:${portOf(gw)}`], { encoding: 'utf8', timeout: 120000 });
    assert.equal(r.status, 0, r.stderr);
    const out = r.stdout;
    fs.writeFileSync(path.join(dir, 'sslscan.txt'), out);
    if (process.env.TK_SSLSCAN_OUT) fs.writeFileSync(process.env.TK_SSLSCAN_OUT, out);
    for (const p of ['SSLv2', 'SSLv3', 'TLSv1.0', 'TLSv1.1']) assert.match(out, new RegExp(`${p.replace('.', '\\.')}\\s+disabled`), p);
    for (const p of ['TLSv1.2', 'TLSv1.3']) assert.match(out, new RegExp(`${p.replace('.', '\\.')}\\s+enabled`), p);
    const accepted = out.split('\n').filter((l) => /^(Preferred|Accepted)\s/.test(l));
    assert.ok(accepted.length >= 3, out);
    for (const l of accepted) {
      const bits = Number(/(\d+) bits/.exec(l)?.[1]);
      assert.ok(bits >= 128, `weak cipher: ${l}`);
      assert.doesNotMatch(l, /RC4|DES|NULL|EXP|MD5|CBC|SHA1?\s|anon|PSK/i, `weak cipher: ${l}`);
    }
    assert.doesNotMatch(out, /Compression enabled|Insecure session renegotiation supported/);
  });

  test('SIGHUP reloads the certificate; an open connection keeps working', async () => {
    const port = portOf(gw);
    const old = await tlsConnect(port, certA.pem);
    assert.equal(fingerprint(old.getPeerX509Certificate().toString()), fingerprint(certA.pem));
    fs.copyFileSync(certB.cert, live.cert);
    fs.copyFileSync(certB.key, live.key);
    gw.proc.kill('SIGHUP');
    await waitFor(() => gw.stderr().includes('TLS certificate and key reloaded'), { what: 'reload log' });
    const fresh = await tlsConnect(port, certB.pem);
    assert.equal(fingerprint(fresh.getPeerX509Certificate().toString()), fingerprint(certB.pem));
    fresh.destroy();
    const res = await requestOn(old, 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    assert.match(res, /^HTTP\/1\.1 200/);
    old.destroy();
    // a broken file on the next reload keeps the current certificate
    fs.writeFileSync(live.cert, 'not a certificate');
    gw.proc.kill('SIGHUP');
    await waitFor(() => gw.stderr().includes('TLS not reloaded'), { what: 'failed reload log' });
    const still = await tlsConnect(port, certB.pem);
    assert.equal(fingerprint(still.getPeerX509Certificate().toString()), fingerprint(certB.pem));
    still.destroy();
  });

  test('a missing key file stops serve with a clear error', async () => {
    const cfg = path.join(dir, 'bad.json');
    fs.writeFileSync(cfg, JSON.stringify({ listen: '127.0.0.1:0', data_dir: path.join(dir, 'd'),
      tls: { cert_file: certA.cert, key_file: path.join(dir, 'nope.key') } }));
    const r = await runTumiki(['serve', '--config', cfg], { env: { ...process.env, TUMIKI_TOKEN: 'x'.repeat(40) } });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /private key .*nope\.key/);
  });
});
