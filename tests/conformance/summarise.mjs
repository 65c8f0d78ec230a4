// SPDX-License-Identifier: Apache-2.0
// Reads the conformance CLI's result folders (one per scenario, each with a
// checks.json) for the direct run and, if given, the gateway run; prints a
// per-scenario table and decides the exit status:
//   1 if a scenario that passes directly fails through the gateway (except
//     the ones listed in VACUOUS below), or if dns-rebinding-protection fails
//     through the gateway; 0 otherwise.
// A scenario passes when none of its checks is FAILURE or WARNING (the CLI's
// own rule).
// Usage: node summarise.mjs DIRECT_DIR [GATEWAY_DIR] [--json OUT] [--strict]
//                           [--title TEXT]
// --strict drops the VACUOUS exemptions: used for the pair run against
// tests/fixtures/conformance-server.mjs, which implements every fixture, so
// every direct pass is a real one.
import fs from 'node:fs';
import path from 'node:path';

// Scenarios that "pass" against server-everything without exercising
// anything it has, so a difference through the gateway is reported as a note,
// not a regression (see docs/conformance.md):
// - tools-call-simple-text / tools-call-error call test_simple_text /
//   test_error_handling, which server-everything lacks; its SDK answers an
//   unknown tool with an isError *result*. Through Tumiki the name is also not
//   namespaced ("everything__..."), and an unknown tool is a -32602 protocol
//   error, as MCP 2025-11-25 lists "Unknown tools" under protocol errors.
// - resources-subscribe / resources-unsubscribe (un)subscribe
//   test://watched-resource, which server-everything does not list; its SDK
//   accepts any URI. A gateway routes by listed URI and may answer -32602.
const VACUOUS = new Set(['tools-call-simple-text', 'tools-call-error', 'resources-subscribe',
  'resources-unsubscribe']);
const MUST_PASS_VIA_GATEWAY = ['dns-rebinding-protection'];

function load(dir) {
  const out = new Map();
  if (!dir || !fs.existsSync(dir)) return out;
  for (const ent of fs.readdirSync(dir).sort()) {
    const m = /^server-(.+)-\d{4}-\d\d-\d\dT[\d-]+Z$/.exec(ent);
    if (!m) continue;
    const file = path.join(dir, ent, 'checks.json');
    let checks = [];
    try { checks = JSON.parse(fs.readFileSync(file, 'utf8')); } catch { checks = [{ id: m[1], status: 'FAILURE', errorMessage: `unreadable ${file}` }]; }
    const bad = checks.filter((c) => c.status === 'FAILURE' || c.status === 'WARNING');
    out.set(m[1], { pass: bad.length === 0, checks, why: bad.map((c) => `${c.id}: ${c.errorMessage || c.status}`).join('; ') });
  }
  return out;
}

const args = process.argv.slice(2);
function option(name) {
  const i = args.indexOf(name);
  if (i < 0) return null;
  const v = args[i + 1];
  args.splice(i, 2);
  return v;
}
function flag(name) {
  const i = args.indexOf(name);
  if (i < 0) return false;
  args.splice(i, 1);
  return true;
}
const jsonOut = option('--json');
const title = option('--title');
const strict = flag('--strict');
const [directDir, gatewayDir] = args;
const direct = load(directDir);
const gateway = gatewayDir ? load(gatewayDir) : null;
const names = [...new Set([...direct.keys(), ...(gateway ? gateway.keys() : [])])];

const mark = (r) => (r ? (r.pass ? 'PASS' : 'FAIL') : '-');
const rows = [];
const problems = [];
const notes = [];
for (const n of names) {
  const d = direct.get(n);
  const g = gateway?.get(n);
  rows.push({ scenario: n, direct: mark(d), gateway: gateway ? mark(g) : undefined,
    directWhy: d && !d.pass ? d.why : '', gatewayWhy: g && !g.pass ? g.why : '' });
  if (!gateway) continue;
  if (d?.pass && !g?.pass) {
    const msg = `${n}: passes directly, fails via the gateway (${g ? g.why : 'not run'})`;
    if (!strict && VACUOUS.has(n)) notes.push(msg);
    else problems.push(msg);
  }
}
if (gateway) {
  for (const n of MUST_PASS_VIA_GATEWAY) {
    const g = gateway.get(n);
    if (!g?.pass) problems.push(`${n}: must pass via the gateway (${g ? g.why : 'not run'})`);
  }
}

const w = Math.max(8, ...names.map((n) => n.length));
if (title) console.log(`== ${title}`);
console.log(`${'scenario'.padEnd(w)}  direct  ${gateway ? 'gateway' : ''}`);
for (const r of rows) {
  console.log(`${r.scenario.padEnd(w)}  ${r.direct.padEnd(6)}  ${gateway ? r.gateway.padEnd(7) : ''}` +
    `${r.gatewayWhy ? `  ${r.gatewayWhy.slice(0, 160)}` : r.directWhy ? `  (direct) ${r.directWhy.slice(0, 150)}` : ''}`);
}
const count = (m) => [...m.values()].filter((r) => r.pass).length;
console.log(`direct: ${count(direct)} of ${direct.size} scenarios pass` +
  (gateway ? `; gateway: ${count(gateway)} of ${gateway.size} pass` : ''));
if (jsonOut) fs.writeFileSync(jsonOut, JSON.stringify({ title, strict, rows, problems, notes }, null, 2));
if (notes.length) {
  console.log('notes (differences in scenarios that test nothing server-everything has):');
  for (const n of notes) console.log(`  - ${n}`);
}
if (problems.length) {
  console.log('CONFORMANCE REGRESSIONS THROUGH THE GATEWAY:');
  for (const p of problems) console.log(`  - ${p}`);
  process.exit(1);
}
if (direct.size === 0) {
  console.log('no direct results found');
  process.exit(1);
}
