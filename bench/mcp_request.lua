-- SPDX-License-Identifier: Apache-2.0
-- wrk script for bench/run.sh: every request is one MCP JSON-RPC request on
-- one already initialised session, each with its own id:
--   BENCH_METHOD=tools/call (default): tools/call BENCH_TOOL {"text":"hello"}
--   BENCH_METHOD=tools/list: tools/list
-- A response is an error when its status is not 200, when it is a JSON-RPC
-- error, or when its body lacks BENCH_EXPECT (default "hello"). done() prints
-- one machine-readable line that run.sh turns into a table row:
--   BENCH_RESULT <req/s> <p50 ms> <p99 ms> <p99.9 ms> <errors> <non200> <rpc errors/unexpected> <socket errors>
-- Inputs (environment): TUMIKI_TOKEN (bearer token; none: no Authorization
-- header), BENCH_SESSION (Mcp-Session-Id; none: no header), BENCH_TOOL,
-- BENCH_METHOD, BENCH_EXPECT.

local token = os.getenv("TUMIKI_TOKEN") or ""
local session = os.getenv("BENCH_SESSION") or ""
local tool = os.getenv("BENCH_TOOL") or "echo__echo"
local method = os.getenv("BENCH_METHOD") or "tools/call"
local expect = os.getenv("BENCH_EXPECT") or "hello"
if not tool:match("^[%w_%-%.]+$") then
  error("mcp_request.lua: BENCH_TOOL has characters that would need JSON escaping")
end
if method ~= "tools/call" and method ~= "tools/list" then
  error("mcp_request.lua: BENCH_METHOD must be tools/call or tools/list")
end

wrk.method = "POST"
if token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
if session ~= "" then
  wrk.headers["Mcp-Session-Id"] = session
end
wrk.headers["MCP-Protocol-Version"] = "2025-11-25"

local body_fmt
if method == "tools/call" then
  body_fmt = '{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"'
    .. tool .. '","arguments":{"text":"hello"}}}'
else
  body_fmt = '{"jsonrpc":"2.0","id":%d,"method":"tools/list"}'
end

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
  bad = 0
end

function request()
  counter = counter + 1
  -- ids unique across threads: thread n uses n*1e8 + 1, 2, ...
  return wrk.format(nil, nil, nil, string.format(body_fmt, tid * 100000000 + counter))
end

function response(status, headers, body)
  if status ~= 200 then
    non200 = non200 + 1
  elseif not body or string.find(body, '"error":{', 1, true)
      or not string.find(body, expect, 1, true) then
    bad = bad + 1
  end
end

function done(summary, latency, requests)
  local n200, nbad = 0, 0
  for _, t in ipairs(threads) do
    n200 = n200 + (t:get("non200") or 0)
    nbad = nbad + (t:get("bad") or 0)
  end
  local e = summary.errors
  local sock = e.connect + e.read + e.write + e.timeout
  local secs = summary.duration / 1e6
  local rps = secs > 0 and summary.requests / secs or 0
  io.write(string.format("BENCH_RESULT %.1f %.3f %.3f %.3f %d %d %d %d\n", rps,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    latency:percentile(99.9) / 1000, n200 + nbad + sock, n200, nbad, sock))
end
