// SPDX-License-Identifier: Apache-2.0
// Preloaded (node --require) into the peer gateways that bench/run.sh starts:
// a server that would listen on every interface (no host given) listens on
// 127.0.0.1 instead, so the benchmark never exposes a port beyond loopback.
'use strict';
const net = require('node:net');

const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if (typeof args[0] === 'number' || (typeof args[0] === 'string' && /^\d+$/.test(args[0]))) {
    const rest = args.slice(1);
    if (typeof rest[0] !== 'string') {
      return listen.call(this, Number(args[0]), '127.0.0.1', ...rest);
    }
  } else if (args[0] && typeof args[0] === 'object' && args[0].path === undefined) {
    return listen.call(this, { ...args[0], host: '127.0.0.1' }, ...args.slice(1));
  }
  return listen.apply(this, args);
};
