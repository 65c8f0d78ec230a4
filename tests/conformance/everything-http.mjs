// SPDX-License-Identifier: Apache-2.0
// Starts @modelcontextprotocol/server-everything's Streamable HTTP transport,
// bound to 127.0.0.1 only (upstream calls app.listen(PORT), i.e. all
// interfaces). Usage: PORT=NNNN node tests/conformance/everything-http.mjs
import net from 'node:net';

const origListen = net.Server.prototype.listen;
net.Server.prototype.listen = function patchedListen(...args) {
  // express: app.listen(port, cb) -> server.listen(port, cb)
  if (typeof args[0] === 'number' || typeof args[0] === 'string') {
    const port = Number(args[0]);
    const rest = args.slice(1).filter((a) => typeof a === 'function');
    return origListen.call(this, port, '127.0.0.1', ...rest);
  }
  if (args[0] && typeof args[0] === 'object' && !args[0].path) {
    args[0] = { ...args[0], host: '127.0.0.1' };
  }
  return origListen.apply(this, args);
};

await import('@modelcontextprotocol/server-everything/dist/transports/streamableHttp.js');
