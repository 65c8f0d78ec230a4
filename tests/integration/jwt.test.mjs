// SPDX-License-Identifier: Apache-2.0
// JWT bearer tokens against the real binary: `tumiki jwt issue` tokens work
// with the SDK client on their endpoint; expired, forged, alg-swapped (none,
// HS512, RS256 with the secret as a "public key"), wrong issuer/audience,
// over-12-hour, jti-less and tampered tokens are refused; `tumiki jwt
// revoke` puts a jti on the list and the running gateway refuses it within a
// second, and so does disabling or deleting the user a token was issued to
// (through the admin API); a signing key under 256 bits stops the gateway from starting.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, describe, test } from 'node:test';

import { cleanup, connect, mcpHeaders, rawRequest, runTumiki, servers, sleep, startGateway, textOf } from './lib.mjs';

const SECRET = crypto.randomBytes(32).toString('hex'); // 64 bytes of key material
const b64 = (o) => Buffer.from(typeof o === 'string' ? o : JSON.stringify(o)).toString('base64url');
function sign(header, claims, key = SECRET, alg = 'sha256') {
  const data = `${b64(header)}.${b64(claims)}`;
  return `${data}.${crypto.createHmac(alg, key).update(data).digest('base64url')}`;
}
const now = () => Math.floor(Date.now() / 1000);
const good = (over = {}) => ({ iss: 'tumiki', aud: 'tumiki-mcp', sub: 'alice', jti: crypto.randomUUID(),
  tk_endpoint: 'a', iat: now(), exp: now() + 600, ...over });
const initBody = { jsonrpc: '2.0', id: 1, method: 'initialize',
  params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'j', version: '1' } } };

describe('JWT', () => {
  let gw;
  const tryTok = (t, slug = 'a') => rawRequest(gw.mcpUrl(slug), {
    headers: { ...mcpHeaders(gw), Authorization: `Bearer ${t}` }, body: initBody, untilId: 1 });
  const jwtCmd = (...args) => runTumiki(['jwt', ...args, '--config', gw.configPath],
    { env: { ...process.env, TK_JWT_SECRET: SECRET } });

  before(async () => {
    gw = await startGateway({
      env: { TK_JWT_SECRET: SECRET },
      config: {
        jwt: { secret_env: 'TK_JWT_SECRET' },
        mcpServers: { echo: servers.echo('echo') },
        endpoints: { a: { servers: ['echo'] }, b: { servers: ['echo'] } },
      },
    });
  });
  after(cleanup);

  test('an issued token works with the SDK client on its endpoint only', async () => {
    const r = await jwtCmd('issue', '--sub', 'alice', '--endpoint', 'a', '--ttl-hours', '1');
    assert.equal(r.code, 0, r.stderr);
    const tok = r.stdout.trim();
    const client = await connect(gw, { slug: 'a', token: tok });
    assert.equal(textOf(await client.callTool({ name: 'echo__echo', arguments: { text: 'jwt' } })), 'jwt');
    await client.close();
    assert.equal((await tryTok(tok, 'b')).status, 403);
    assert.equal((await tryTok(sign({ alg: 'HS256', typ: 'JWT' }, good()))).status, 200, 'a well-formed token');
  });

  test('forged, alg-swapped, expired and malformed tokens are refused', async () => {
    const h = { alg: 'HS256', typ: 'JWT' };
    const { publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
    const pem = publicKey.export({ type: 'spki', format: 'pem' });
    const bad = {
      'alg none': `${b64({ alg: 'none', typ: 'JWT' })}.${b64(good())}.`,
      'alg none, no dot': `${b64({ alg: 'none' })}.${b64(good())}`,
      'HS512 with the right key': sign({ alg: 'HS512', typ: 'JWT' }, good(), SECRET, 'sha512'),
      'HS256 signed with the RSA public key': sign({ alg: 'RS256', typ: 'JWT' }, good(), pem),
      'RS256 header, HMAC signature': sign({ alg: 'RS256', typ: 'JWT' }, good()),
      'wrong key': sign(h, good(), 'x'.repeat(64)),
      expired: sign(h, good({ iat: now() - 700, exp: now() - 100 })),
      'lives 13 h': sign(h, good({ exp: now() + 13 * 3600 })),
      'issued in the future': sign(h, good({ iat: now() + 3600, exp: now() + 7200 })),
      'no exp': sign(h, (({ exp, ...c }) => c)(good())),
      'no jti': sign(h, (({ jti, ...c }) => c)(good())),
      'wrong issuer': sign(h, good({ iss: 'someone-else' })),
      'wrong audience': sign(h, good({ aud: 'another-api' })),
      'audience list': sign(h, good({ aud: ['tumiki-mcp'] })),
      'not yet valid': sign(h, good({ nbf: now() + 3600 })),
    };
    const ok = sign(h, good());
    const [hd, pl, sg] = ok.split('.');
    bad['tampered payload'] = `${hd}.${b64(good({ tk_endpoint: '*', sub: 'root' }))}.${sg}`;
    bad['tampered signature'] = `${hd}.${pl}.${sg.slice(0, -2)}AA`;
    for (const [name, t] of Object.entries(bad)) {
      const r = await tryTok(t);
      assert.equal(r.status, 401, `${name}: HTTP ${r.status}`);
    }
    assert.ok(!gw.stderr().includes(sg), 'a token signature reached the log');
  });

  test('disabling or deleting a user revokes the JWTs issued to them within a second', async () => {
    const api = (method, p, body) => fetch(`${gw.url}/api/v1${p}`, { method,
      headers: { Authorization: `Bearer ${gw.token}`, 'Content-Type': 'application/json' },
      body: body && JSON.stringify(body) });
    const issue = async (sub) => {
      const r = await jwtCmd('issue', '--sub', sub, '--endpoint', '*');
      assert.equal(r.code, 0, r.stderr);
      return r.stdout.trim();
    };
    // Each HTTP thread polls the revocation list on its own: wait until every
    // token is refused, timed from the change, then give the other threads'
    // polls their half second before asserting on any connection.
    const refusedWithin = async (toks, ms) => {
      const t0 = Date.now();
      for (const tok of toks) {
        let status = 200;
        while (status === 200 && Date.now() - t0 < 3000) {
          status = (await tryTok(tok)).status;
          if (status === 200) await sleep(50);
        }
        assert.equal(status, 401);
      }
      assert.ok(Date.now() - t0 <= ms, `still accepted ${Date.now() - t0} ms later`);
      await sleep(600);
    };
    for (const id of ['ujwtdis', 'ujwtdel'])
      assert.equal((await api('POST', '/users', { id, email: `${id}@example.com`, role: 'member' })).status, 201);
    const [d1, d2, other] = [await issue('ujwtdis'), await issue('ujwtdis'), await issue('ujwtdel')];
    for (const t of [d1, d2, other]) assert.equal((await tryTok(t)).status, 200);
    assert.equal((await api('PATCH', '/users/ujwtdis', { disabled: true })).status, 200);
    await refusedWithin([d1, d2], 1000);
    for (const t of [d1, d2]) assert.equal((await tryTok(t)).status, 401, 'every token of the subject');
    assert.equal((await tryTok(other)).status, 200, 'another subject\'s token is untouched');
    assert.ok(gw.logs().some((l) => /user ujwtdis: 2 issued JWTs revoked/.test(l.msg)));
    // re-enabling does not revive the revoked tokens; a new one works
    assert.equal((await api('PATCH', '/users/ujwtdis', { disabled: false })).status, 200);
    assert.equal((await tryTok(d1)).status, 401);
    assert.equal((await tryTok(await issue('ujwtdis'))).status, 200);
    assert.equal((await api('DELETE', '/users/ujwtdel')).status, 204);
    await refusedWithin([other], 1000);
  });

  test('a revoked token is refused within a second', async () => {
    const tok = (await jwtCmd('issue', '--sub', 'bob', '--endpoint', '*')).stdout.trim();
    assert.equal((await tryTok(tok, 'b')).status, 200);
    const r = await jwtCmd('revoke', tok);
    assert.equal(r.code, 0, r.stderr);
    const t0 = Date.now();
    let status = 200;
    while (status === 200 && Date.now() - t0 < 3000) {
      status = (await tryTok(tok, 'b')).status;
      if (status === 200) await sleep(50);
    }
    assert.equal(status, 401);
    assert.ok(Date.now() - t0 <= 1000, `still accepted ${Date.now() - t0} ms after revocation`);
    // and after a restart (the list is persistent)
    await gw.stop();
    const cfg = JSON.parse(await import('node:fs').then((fs) => fs.readFileSync(gw.configPath, 'utf8')));
    gw = await startGateway({ env: { TK_JWT_SECRET: SECRET }, config: cfg });
    await sleep(300);
    assert.equal((await tryTok(tok, 'b')).status, 401);
  });

  test('a signing key shorter than 256 bits stops start-up', async () => {
    const weak = await startGateway({ env: { TK_JWT_SECRET: 'short-key-123' }, expectCleanExit: false,
      config: { jwt: { secret_env: 'TK_JWT_SECRET' } } }).then(() => null, (e) => e);
    assert.ok(weak, 'the gateway started with a weak key');
    assert.match(weak.message, /at least 256 bits/);
    assert.ok(!weak.message.includes('short-key-123'), 'the key was echoed');
  });
});
