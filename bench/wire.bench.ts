/**
 * Wire codec benchmark: our encode/decode vs `bitcoin-protocol` (npm, pure JS) on what both support
 * (version, addr v1 with 1000 entries), plus our addrv2 (1000 entries) and full frame+parse paths.
 * Ratios come from one run on one machine. Writes bench/results/wire.json.
 */
import { Bench } from 'tinybench';
import { createRequire } from 'node:module';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import {
  FrameParser,
  decodePayload,
  encodeMessage,
  encodePayload,
  type AddrPayload,
  type AddrV2Payload,
  type VersionPayload,
} from '../src/wire/index.js';

interface StructCodec {
  encode(v: unknown): Buffer;
  decode(b: Buffer): unknown;
}
const theirs = (
  createRequire(import.meta.url)('bitcoin-protocol') as { messages: { defaultMessages: Record<string, StructCodec> } }
).messages.defaultMessages;

const le8 = (v: bigint) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(v);
  return b;
};

const version: VersionPayload = {
  version: 70016,
  services: 1033n,
  timestamp: 1_732_500_000n,
  addrRecv: { services: 0n, address: '198.18.0.7', port: 40123 },
  addrFrom: { services: 1033n, address: '::', port: 0 },
  nonce: 0x0123456789abcdefn,
  userAgent: '/Satoshi:27.1.0/',
  startHeight: 870_000,
  relay: true,
};
const theirVersion = {
  version: 70016,
  services: le8(1033n),
  timestamp: 1_732_500_000,
  receiverAddress: { services: le8(0n), address: '198.18.0.7', port: 40123 },
  senderAddress: { services: le8(1033n), address: '::', port: 0 },
  nonce: le8(0x0123456789abcdefn),
  userAgent: '/Satoshi:27.1.0/',
  startHeight: 870_000,
  relay: true,
};
const ip4 = (i: number) => `${(i >> 24) & 255 || 1}.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
const addr: AddrPayload = {
  addrs: Array.from({ length: 1000 }, (_, i) => ({
    time: 1_700_000_000 + i,
    services: 1033n,
    address: ip4(0x0b000000 + i * 7919),
    port: 8333,
  })),
};
const theirAddr = addr.addrs.map((a) => ({
  time: a.time,
  services: le8(a.services),
  address: a.address,
  port: a.port,
}));
const addrv2: AddrV2Payload = {
  addrs: Array.from({ length: 1000 }, (_, i) =>
    i % 2 === 0
      ? {
          time: 1_700_000_000 + i,
          services: 1033n,
          network: 'ipv4' as const,
          networkId: 1,
          address: ip4(0x0b000000 + i * 7919),
          port: 8333,
        }
      : {
          time: 1_700_000_000 + i,
          services: 1033n,
          network: 'ipv6' as const,
          networkId: 2,
          address: `2001:db8::${i.toString(16)}`,
          port: 8333,
        },
  ),
};

const versionBytes = encodePayload('version', version);
const addrBytes = encodePayload('addr', addr);
const addrv2Bytes = encodePayload('addrv2', addrv2);
// Both sides must agree on the bytes, or the comparison is meaningless.
if (!theirs.version!.encode(theirVersion).subarray(0, versionBytes.length).equals(versionBytes))
  throw new Error('version bytes differ');
if (!theirs.addr!.encode(theirAddr).equals(addrBytes)) throw new Error('addr bytes differ');
const versionFrame = encodeMessage('main', 'version', version);

let sink: unknown;
const tasks: Array<[string, () => void]> = [
  [
    'ours: version encode',
    () => {
      sink = encodePayload('version', version);
    },
  ],
  [
    'theirs: version encode',
    () => {
      sink = theirs.version!.encode(theirVersion);
    },
  ],
  [
    'ours: version decode',
    () => {
      sink = decodePayload('version', versionBytes);
    },
  ],
  [
    'theirs: version decode',
    () => {
      sink = theirs.version!.decode(versionBytes);
    },
  ],
  [
    'ours: addr(1000) encode',
    () => {
      sink = encodePayload('addr', addr);
    },
  ],
  [
    'theirs: addr(1000) encode',
    () => {
      sink = theirs.addr!.encode(theirAddr);
    },
  ],
  [
    'ours: addr(1000) decode',
    () => {
      sink = decodePayload('addr', addrBytes);
    },
  ],
  [
    'theirs: addr(1000) decode',
    () => {
      sink = theirs.addr!.decode(addrBytes);
    },
  ],
  [
    'ours: addrv2(1000) encode',
    () => {
      sink = encodePayload('addrv2', addrv2);
    },
  ],
  [
    'ours: addrv2(1000) decode',
    () => {
      sink = decodePayload('addrv2', addrv2Bytes);
    },
  ],
  [
    'ours: version frame encode (one buffer)',
    () => {
      sink = encodeMessage('main', 'version', version);
    },
  ],
  [
    'ours: version frame parse + decode',
    () => {
      const f = new FrameParser({ network: 'main' }).push(versionFrame).frames[0]!;
      sink = decodePayload('version', f.payload);
    },
  ],
];

// The machine may be shared: run ROUNDS rounds, each pair back to back, and report the median ratio.
const ROUNDS = 5;
const OPS = ['version encode', 'version decode', 'addr(1000) encode', 'addr(1000) decode'];
const rounds: Array<Record<string, number>> = [];
for (let round = 0; round < ROUNDS; round++) {
  const bench = new Bench({ time: 150, warmup: true });
  for (const [name, fn] of tasks) bench.add(name, fn);
  await bench.run();
  const ops: Record<string, number> = {};
  for (const t of bench.tasks) {
    const r = t.result as { period?: number };
    if (!r.period) throw new Error(`task ${t.name} has no result`);
    ops[t.name] = 1000 / r.period;
  }
  rounds.push(ops);
}
void sink;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const opsPerSec: Record<string, number> = Object.fromEntries(
  tasks.map(([name]) => [name, median(rounds.map((r) => r[name]!))]),
);
const ratioRounds = Object.fromEntries(
  OPS.map((op) => [op, rounds.map((r) => Number((r[`ours: ${op}`]! / r[`theirs: ${op}`]!).toFixed(2)))]),
);
const ratios = Object.fromEntries(OPS.map((op) => [op, median(ratioRounds[op]!)]));

const cpuModel = (() => {
  try {
    return /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? cpus()[0]?.model ?? 'unknown';
  } catch {
    return cpus()[0]?.model ?? 'unknown';
  }
})();
const result = {
  suite: 'wire',
  date: new Date().toISOString(),
  machine: { nproc: cpus().length, cpu: cpuModel, node: process.version },
  baseline: 'bitcoin-protocol@4.1.3 (npm, pure JS) payload codecs',
  method: `tinybench, ${ROUNDS} rounds x 150 ms per task; medians of per-round ops/s and of per-round ratios`,
  opsPerSec: Object.fromEntries(Object.entries(opsPerSec).map(([k, v]) => [k, Math.round(v)])),
  ratiosOursOverTheirs: ratios,
  ratiosPerRound: ratioRounds,
  rounds: ROUNDS,
  target: 'our decode >= 2x theirs',
  targetMet: ratios['version decode']! >= 2 && ratios['addr(1000) decode']! >= 2,
};
mkdirSync('bench/results', { recursive: true });
writeFileSync('bench/results/wire.json', JSON.stringify(result, null, 2) + '\n');
console.table(Object.entries(result.opsPerSec).map(([task, ops]) => ({ task, 'ops/s': ops })));
console.log('ratios (ours / theirs):', ratios, 'target met:', result.targetMet);
