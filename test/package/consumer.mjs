// An ESM program that uses the installed package the way a user would: only `import ... from 'onionpunch'`.
// pack.test.ts copies it into a fresh project next to node_modules/onionpunch and runs it. It checks the NAT
// for real against two NAT-check servers on 127.0.0.1, then punches on loopback with the facade and the real
// native engine (one Onionpunch, and so one engine, per side), over a caller-supplied loopback overlay.
// Prints one JSON line; exit code 0 only if the punch connected and bytes crossed it.
import { EventEmitter } from 'node:events';
import { createServer, connect } from 'node:net';
import { Onionpunch, startNatcheckServer, OnionpunchError } from 'onionpunch';

class LoopbackEndpoint extends EventEmitter {
  kind = 'tor';
  address = 'loopback.onion';
  port = 0;
  server = createServer((s) => this.emit('stream', s, {}));
  async open() {
    await new Promise((r) => this.server.listen(0, '127.0.0.1', r));
    this.port = this.server.address().port;
    return this;
  }
  close() {
    return new Promise((r) => this.server.close(() => r()));
  }
}
const dialer = {
  kind: 'tor',
  dial: (_address, port) => new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  }),
  close: async () => undefined,
};

const natcheckServer = () => startNatcheckServer({ host: '127.0.0.1', port: 0, network: 'regtest' });
const servers = await Promise.all([natcheckServer(), natcheckServer()]);
const endpoint = await new LoopbackEndpoint().open();
const common = {
  network: 'regtest',
  natcheck: servers.map((s) => `${s.address}:${s.port}`),
  bind: '127.0.0.1',
  policy: { allowLoopback: true },
  limits: { maxSynsPerSession: 20_000 },
  fireDelayMs: 10,
  deadlineMs: 8000,
};
// Loopback delivers a SYN inside the sender's connect(): a fine re-SYN grid, a little different per side.
const tuning = (resynIntervalUs) => ({ profile: 'plain', resynIntervalUs });
const a = await Onionpunch.open({ ...common, overlay: { endpoint }, tuning: tuning(1000) });
const b = await Onionpunch.open({ ...common, overlay: { dialer }, tuning: tuning(1037) });
const out = { ok: false };
try {
  out.nat = await a.nat();
  const listening = await a.listen();
  const inbound = new Promise((r) => listening.once('connection', (socket, info) => r({ socket, info })));
  const t0 = performance.now();
  const { socket, remote, timeline } = await b.punch(
    { address: listening.address, port: listening.port },
    { expectIp: '127.0.0.1' },
  );
  out.punchMs = Math.round(performance.now() - t0);
  const { socket: aSocket } = await inbound;
  const got = new Promise((r) => aSocket.once('data', (d) => r(d.toString())));
  socket.write('hello over the punched socket');
  out.received = await got;
  out.remote = remote;
  out.samePair = socket.remotePort === aSocket.localPort && aSocket.remotePort === socket.localPort;
  out.timeline = timeline.events.map((e) => e.event);
  out.ok = out.samePair && out.received === 'hello over the punched socket';
  socket.destroy();
  aSocket.destroy();
} catch (err) {
  out.error = err instanceof OnionpunchError
    ? { class: err.constructor.name, code: err.code, message: err.message }
    : String(err);
} finally {
  await a.close();
  await b.close();
  await endpoint.close();
  await Promise.all(servers.map((s) => s.close()));
}
// Internals stay internal: the exports map hides deep paths.
try {
  await import('onionpunch/dist/src/punch/index.js');
  out.deepImport = 'allowed';
} catch (err) {
  out.deepImport = err.code;
}
process.stdout.write(JSON.stringify(out) + '\n');
process.exitCode = out.ok ? 0 : 1;
