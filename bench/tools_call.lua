-- SPDX-License-Identifier: Apache-2.0
-- wrk script for bench/run.sh: every request is an MCP tools/call of the echo
-- fixture's echo tool with {"text":"hello"} on one already initialised
-- session, each with its own JSON-RPC id. A response counts as an error when
-- its status is not 200 or its body lacks "hello". done() prints one
-- machine-readable line that run.sh turns into a table row:
--   BENCH_RESULT <req/s> <p50 ms> <p99 ms> <p99.9 ms> <errors> <non200> <nohello> <socket errors>
-- Inputs (environment): TUMIKI_TOKEN, BENCH_SESSION (Mcp-Session-Id),
-- BENCH_TOOL (tool name, default echo__echo).

local token = os.getenv("TUMIKI_TOKEN")
local session = os.getenv("BENCH_SESSION")
local tool = os.getenv("BENCH_TOOL") or "echo__echo"
if not token or token == "" or not session or session == "" then
  error("tools_call.lua: TUMIKI_TOKEN and BENCH_SESSION must be set")
end
if not tool:match("^[%w_%-%.]+$") then
  error("tools_call.lua: BENCH_TOOL has characters that would need JSON escaping")
end

wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer " .. token
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
wrk.headers["Mcp-Session-Id"] = session
wrk.headers["MCP-Protocol-Version"] = "2025-11-25"

local body_fmt = '{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"'
  .. tool .. '","arguments":{"text":"hello"}}}'

-- main state: keep the threads so done() can add up their counters
local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

-- thread state from here on (globals are per thread)
function init(args)
  counter = 0
  non200 = 0
  nohello = 0
end

function request()
  counter = counter + 1
  -- ids unique across threads: thread n uses n*1e8 + 1, 2, ...
  return wrk.format(nil, nil, nil, string.format(body_fmt, tid * 100000000 + counter))
end

function response(status, headers, body)
  if status ~= 200 then
    non200 = non200 + 1
  elseif not (body and string.find(body, "hello", 1, true)) then
    nohello = nohello + 1
  end
end

function done(summary, latency, requests)
  local n200, nhello = 0, 0
  for _, t in ipairs(threads) do
    n200 = n200 + (t:get("non200") or 0)
    nhello = nhello + (t:get("nohello") or 0)
  end
  local e = summary.errors
  local sock = e.connect + e.read + e.write + e.timeout
  local secs = summary.duration / 1e6
  local rps = secs > 0 and summary.requests / secs or 0
  io.write(string.format("BENCH_RESULT %.1f %.3f %.3f %.3f %d %d %d %d\n", rps,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    latency:percentile(99.9) / 1000, n200 + nhello + sock, n200, nhello, sock))
end
