// SPDX-License-Identifier: Apache-2.0
// A loopback reverse proxy that adds "Authorization: Bearer $TUMIKI_TOKEN" to
// every request and forwards it unchanged otherwise (method, path, body and
// all headers, Host and Origin included), streaming responses back (SSE).
// The conformance CLI (0.1.16) cannot send an Authorization header in server
// mode, so it talks to this proxy; the gateway keeps its auth on.
// A Host header naming this proxy is rewritten to name the gateway, so a
// "valid localhost Host" stays valid; any other Host (e.g. evil.example.com)
// passes through untouched for the gateway to judge.
// Usage: TUMIKI_TOKEN=... node auth-proxy.mjs <upstream base URL> <port file>
// Prints nothing; writes "http://127.0.0.1:PORT\n" to <port file> when ready.
import fs from 'node:fs';
import http from 'node:http';

const [upstreamArg, portFile] = process.argv.slice(2);
const upstream = new URL(upstreamArg);
const token = process.env.TUMIKI_TOKEN;
if (!token || !portFile || upstream.hostname !== '127.0.0.1') {
  console.error('usage: TUMIKI_TOKEN=... node auth-proxy.mjs http://127.0.0.1:PORT PORTFILE');
  process.exit(2);
}
const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer']);

const server = http.createServer((req, res) => {
  const self = `127.0.0.1:${server.address().port}`;
  const headers = {};
  for (const [k, v] of Object.entries(req.headers)) if (!HOP.has(k)) headers[k] = v;
  if (headers.host === self || headers.host === `localhost:${server.address().port}`) headers.host = upstream.host;
  headers.authorization = `Bearer ${token}`;
  const up = http.request({ host: '127.0.0.1', port: upstream.port, method: req.method, path: req.url, headers,
    agent: false }, (ur) => {
    const h = {};
    for (const [k, v] of Object.entries(ur.headers)) if (!HOP.has(k)) h[k] = v;
    res.writeHead(ur.statusCode, h);
    res.flushHeaders();
    ur.pipe(res);
  });
  up.on('error', (e) => {
    if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
    res.end(`proxy: ${e.message}\n`);
  });
  req.on('aborted', () => up.destroy());
  res.on('close', () => up.destroy());
  req.pipe(up);
});
server.listen(0, '127.0.0.1', () => {
  fs.writeFileSync(portFile, `http://127.0.0.1:${server.address().port}\n`);
});
process.on('SIGTERM', () => process.exit(0));
