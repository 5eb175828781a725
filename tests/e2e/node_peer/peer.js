'use strict';
// Interop peer for tests/e2e/test_node_lwm2m_peer.py: lwm2m-node-lib (Telefonica's LwM2M 1.0
// client and server for Node.js, an implementation independent of ours) as a client or a server.
//
//   node peer.js client            the library's client; the test registers it with our server
//   node peer.js server PORT       the library's server on 127.0.0.1:PORT (it must know its own
//                                  port: it sends its requests through itself as a CoAP proxy)
//
// Commands arrive as JSON lines on stdin, {"id": N, "op": ..., ...}; each gets one reply line
// {"id": N, "error": null | "NAME: message", "result": ...}. What the library reports on its own
// (a registration, a write or execute handled by the client, a notification) leaves as
// {"event": ...} lines. The first line out is {"event": "ready"}.

const readline = require('readline');
const logops = require('logops');
const lib = require('lwm2m-node-lib');

logops.setLevel('FATAL'); // the library logs JSON to stdout: keep the channel for the protocol

function emit(message) {
  process.stdout.write(JSON.stringify(message) + '\n');
}

function reply(id) {
  return (error, result) =>
    emit({
      id,
      error: error ? `${error.name || 'Error'}: ${error.message || error}` : null,
      result: result === undefined ? null : result,
    });
}

const role = process.argv[2];
let device = null; // the client's registration (client role)
let serverInfo = null; // the running server (server role)

const config = {
  server: {
    port: Number(process.argv[3]),
    lifetimeCheckInterval: 1000,
    udpWindow: 100,
    defaultType: 'Device',
    types: [],
    logLevel: 'FATAL',
    ipProtocol: 'udp4',
    serverProtocol: 'udp4',
    // the pre-1.0 draft number of plain text, which the library uses unless told otherwise
    formats: [{ name: 'application-vnd-oma-lwm2m/text', value: 1541 }],
    writeFormat: 'text/plain',
    defaultAcceptFormat: 'text/plain',
  },
  client: {
    lifetime: '300',
    version: '1.0',
    logLevel: 'FATAL',
    observe: { period: 3000 },
    ipProtocol: 'udp4',
    serverProtocol: 'udp4',
    formats: [],
    writeFormat: 'text/plain',
  },
};

const clientCommands = {
  create(c, done) {
    lib.client.registry.create(c.uri, (e) => done(e));
  },
  set(c, done) {
    lib.client.registry.setResource(c.uri, c.rid, c.value, (e) => done(e));
  },
  get(c, done) {
    lib.client.registry.get(c.uri, (e, object) => done(e, object && object.attributes));
  },
  register(c, done) {
    lib.client.register(c.host, c.port, '', c.ep, (e, info) => {
      if (e) return done(e);
      device = info;
      for (const kind of ['write', 'execute']) {
        lib.client.setHandler(info.serverInfo, kind, (type, id, rid, value, handled) => {
          emit({ event: kind, uri: `/${type}/${id}/${rid}`, value: String(value) });
          handled(null);
        });
      }
      done(null, { location: info.location });
    });
  },
  update(c, done) {
    lib.client.update(device, (e) => done(e));
  },
  unregister(c, done) {
    lib.client.unregister(device, (e) => done(e));
  },
};

const serverCommands = {
  listen(c, done) {
    lib.server.start(config.server, (e, info) => {
      if (e) return done(e);
      serverInfo = info;
      lib.server.setHandler(info, 'registration', (ep, lt, version, binding, payload, handled) => {
        emit({ event: 'registration', ep, lifetime: lt, version, binding, links: String(payload) });
        handled(null);
      });
      lib.server.setHandler(info, 'updateRegistration', (object, payload, handled) => {
        emit({ event: 'update', ep: object.name, links: payload });
        handled(null);
      });
      lib.server.setHandler(info, 'unregistration', (object, handled) => {
        emit({ event: 'unregistration', ep: object && object.name });
        handled(null);
      });
      done(null, { port: info.server._sock.address().port });
    });
  },
  device(c, done) {
    lib.server.getDevice(c.ep, (e, d) => done(e, d && { id: d.id, port: d.port }));
  },
  read(c, done) {
    lib.server.read(c.device, c.obj, c.inst, c.res, done);
  },
  write(c, done) {
    lib.server.write(c.device, c.obj, c.inst, c.res, c.value, done);
  },
  execute(c, done) {
    lib.server.execute(c.device, c.obj, c.inst, c.res, c.value, done);
  },
  discover(c, done) {
    lib.server.discover(c.device, c.obj, c.inst, c.res, done);
  },
  writeAttributes(c, done) {
    lib.server.writeAttributes(c.device, c.obj, c.inst, c.res, c.attributes, done);
  },
  observe(c, done) {
    const notified = (value, type, id, rid) =>
      emit({ event: 'notification', uri: `/${type}/${id}/${rid}`, value });
    lib.server.observe(c.device, c.obj, c.inst, c.res, notified, done);
  },
  // the write format for later writes: the library's own default is the draft-era 1541
  writeFormat(c, done) {
    config.server.writeFormat = c.format;
    done(null);
  },
};

let commands;
if (role === 'client') {
  lib.client.init(config);
  commands = clientCommands;
} else if (role === 'server') {
  commands = serverCommands;
} else {
  process.stderr.write('usage: node peer.js client | server PORT\n');
  process.exit(2);
}

readline.createInterface({ input: process.stdin }).on('line', (line) => {
  const c = JSON.parse(line);
  const run = commands[c.op];
  if (run === undefined) return reply(c.id)(new Error(`unknown op ${c.op}`));
  try {
    run(c, reply(c.id));
  } catch (e) {
    reply(c.id)(e);
  }
}).on('close', () => process.exit(0));
emit({ event: 'ready', role });
