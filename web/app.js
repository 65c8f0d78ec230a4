// SPDX-License-Identifier: Apache-2.0
// Tumiki dashboard: sign in, list endpoints, create / list / revoke one's own
// API keys. Talks to /auth/* and /api/v1/* on the same origin; the session
// cookie is HttpOnly (scripts never see it) and every state-changing request
// carries the session's CSRF token. Text is always inserted as text, never
// as HTML.
'use strict';

const state = { csrf: null, user: null };
const $ = (id) => document.getElementById(id);

async function call(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && state.csrf) headers['X-CSRF-Token'] = state.csrf;
  const r = await fetch(path, { method, headers, credentials: 'same-origin',
    body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { json = null; }
  return { status: r.status, json };
}

function errorText(res) {
  const e = res.json && res.json.error;
  return (e && (e.message || e)) || `request failed (${res.status})`;
}

function cell(text) {
  const td = document.createElement('td');
  td.textContent = text == null ? '' : String(text);
  return td;
}

function show(signedIn) {
  $('login-view').hidden = signedIn;
  $('app-view').hidden = !signedIn;
  $('logout').hidden = !signedIn;
  $('who').textContent = signedIn ? state.user.email : '';
}

const when = (ms) => (ms ? new Date(ms).toISOString().replace('T', ' ').slice(0, 19) : '');

async function loadEndpoints() {
  const res = await call('GET', '/api/v1/endpoints');
  const body = $('endpoints').tBodies[0];
  const select = $('key-endpoint');
  body.replaceChildren();
  select.replaceChildren();
  if (res.status !== 200) { $('app-error').textContent = errorText(res); return; }
  for (const ep of res.json.endpoints) {
    const tr = document.createElement('tr');
    tr.append(cell(ep.slug), cell(`${location.origin}/mcp/${ep.slug}`), cell(ep.servers.join(', ')));
    body.append(tr);
    const opt = document.createElement('option');
    opt.value = ep.slug;
    opt.textContent = ep.slug;
    select.append(opt);
  }
}

async function loadKeys() {
  const res = await call('GET', '/api/v1/keys');
  const body = $('keys').tBodies[0];
  body.replaceChildren();
  if (res.status !== 200) { $('app-error').textContent = errorText(res); return; }
  for (const k of res.json.keys) {
    const tr = document.createElement('tr');
    tr.dataset.keyId = k.id;
    if (k.revoked_at) tr.className = 'revoked';
    const action = document.createElement('td');
    if (!k.revoked_at) {
      const b = document.createElement('button');
      b.textContent = 'Revoke';
      b.className = 'revoke';
      b.addEventListener('click', () => revoke(k.id));
      action.append(b);
    }
    tr.append(cell(k.id), cell(k.name), cell(k.endpoint), cell(when(k.created_at)),
      cell(when(k.last_used_at)), cell(k.revoked_at ? 'revoked' : 'active'), action);
    body.append(tr);
  }
}

async function revoke(id) {
  const res = await call('DELETE', `/api/v1/keys/${encodeURIComponent(id)}`);
  $('app-error').textContent = res.status === 204 ? '' : errorText(res);
  await loadKeys();
}

async function enter(session) {
  state.user = session.user;
  state.csrf = session.csrf_token;
  show(true);
  await loadEndpoints();
  await loadKeys();
}

$('login-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  $('login-error').textContent = '';
  const res = await call('POST', '/auth/login', { email: $('email').value, password: $('password').value });
  $('password').value = '';
  if (res.status === 200) await enter(res.json);
  else $('login-error').textContent = errorText(res);
});

$('key-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const body = { endpoint: $('key-endpoint').value };
  if ($('key-name').value) body.name = $('key-name').value;
  const res = await call('POST', '/api/v1/keys', body);
  if (res.status === 201) {
    $('new-key-value').textContent = res.json.key;
    $('new-key').hidden = false;
    $('key-name').value = '';
    $('app-error').textContent = '';
  } else {
    $('app-error').textContent = errorText(res);
  }
  await loadKeys();
});

$('logout').addEventListener('click', async () => {
  await call('POST', '/auth/logout');
  state.user = null;
  state.csrf = null;
  $('new-key').hidden = true;
  $('new-key-value').textContent = '';
  show(false);
});

(async () => {
  const res = await call('GET', '/auth/session');
  if (res.status === 200) {
    await enter(res.json);
    return;
  }
  show(false);
  const methods = await call('GET', '/auth/methods');
  $('sso').hidden = !(methods.status === 200 && methods.json.oidc);
  if (new URLSearchParams(location.search).get('sso') === 'failed')
    $('login-error').textContent = 'single sign-on failed';
})();
