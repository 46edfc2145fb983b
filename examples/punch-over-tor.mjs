#!/usr/bin/env node
// Embedding onionpunch: one file, both roles, importing only from the package root (and `onionpunch/wire`).
// Needs a built package (`npm ci`; inside this repository the package resolves to itself) and a tor you can use
// (A: a control port; B: a SOCKS port). Both hosts must be behind endpoint-independent (EIM) NATs.
//
//   A:  node examples/punch-over-tor.mjs a --control 127.0.0.1:9051 --natcheck HOST:PORT --natcheck HOST:PORT
//       -> prints the onion address, then one line per punched connection
//   B:  node examples/punch-over-tor.mjs b --socks 127.0.0.1:9050 --target XXX.onion:8333 \
//          --natcheck HOST:PORT --natcheck HOST:PORT [--expect-ip A_PUBLIC_IP]
//       -> punches (only to A_PUBLIC_IP when given: without it, the onion alone decides where B connects),
//          does a Bitcoin version handshake over the punched socket, prints the timeline
//
// Add --lab to allow the NAT lab's private address ranges (never on a real network).
import {
  PunchEngine,
  probeBind,
  eimCheck,
  nativeObserver,
  createPunchListener,
  PunchClient,
  wireCodec,
  TorCoordinationEndpoint,
  TorCoordinationDialer,
} from 'onionpunch';
import { parseEndpoint } from 'onionpunch/wire';

const [role, ...rest] = process.argv.slice(2);
const opt = (name) => {
  const i = rest.indexOf(`--${name}`);
  return i >= 0 ? rest[i + 1] : undefined;
};
const all = (name) => rest.flatMap((v, i) => (rest[i - 1] === `--${name}` ? [v] : []));
const natcheck = all('natcheck').map((s) => {
  try {
    const e = parseEndpoint(s);
    return { address: e.host, port: e.port };
  } catch (err) {
    console.error(`--natcheck ${s}: ${err.code}: ${err.message}`);
    process.exit(2);
  }
});
const network = opt('network') ?? 'main';
const lab = rest.includes('--lab');
const engine = PunchEngine.shared();
const observe = nativeObserver({ network });

// 1. The EIM check (cache the verdict per network in a real program).
const eim = await eimCheck({ local: probeBind({ address: '0.0.0.0', port: 0 }), peers: natcheck, observe });
console.log(`NAT: ${eim.mapping}${eim.reason ? ` (${eim.reason})` : ''}`);
const discovery = { methods: ['predict', 'natcheck'], natcheckServers: natcheck, observe };

if (role === 'a') {
  const [host, port] = opt('control').split(':');
  const endpoint = await TorCoordinationEndpoint.create({ control: { host, port: Number(port) } });
  const listener = await createPunchListener({
    endpoint,
    engine,
    codec: wireCodec(network),
    discovery,
    eim,
    policy: { allowLab: lab },
  });
  listener.on('connection', (socket, info) => {
    const ms = info.timeline.at('established') - info.timeline.at('request');
    console.log(`punched: ${info.remote.address}:${info.remote.port} in ${ms} ms`);
    socket.end(); // hand it to your application instead: B sends the Bitcoin `version` first
  });
  listener.on('failure', (err) => console.log(`session failed: ${err.code}: ${err.message}`));
  console.log(`coordination endpoint: ${endpoint.address}:${endpoint.port}`);
} else if (role === 'b') {
  const [host, port] = opt('socks').split(':');
  const [address, vport] = opt('target').split(':');
  const dialer = new TorCoordinationDialer({ socksHost: host, socksPort: Number(port) });
  const client = new PunchClient({
    dialer,
    engine,
    codec: wireCodec(network),
    discovery,
    eim,
    policy: { allowLab: lab },
  });
  try {
    const target = { address, port: Number(vport), expectIp: opt('expect-ip') ?? null };
    const { socket, remote, timeline } = await client.punch(target);
    console.log(`connected to ${remote.address}:${remote.port}`);
    for (const e of timeline.events) {
      console.log(`${e.t.toFixed(1).padStart(8)} ms  ${e.event}${e.detail ? `  ${e.detail}` : ''}`);
    }
    socket.destroy();
  } catch (err) {
    console.log(`punch failed: ${err.code} (${err.side ?? '?'} side, step ${err.step ?? '?'}): ${err.message}`);
    process.exitCode = 1;
  }
  process.exit();
} else {
  console.error('usage: punch-over-tor.mjs a|b [options] (see the comment at the top)');
  process.exit(2);
}
