import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { PunchEngine, probeBind, type PunchResult } from '../../src/native/engine.js';
import { needsRoot } from '../helpers/root.js';
import { fillPattern, patternByte } from './helpers.js';
import { makeNsPair, makeRoutedPair } from '../../src/lab/netns.js';

const LO = '127.0.0.1';
// Two engines, two threads: each side's connect() fires from its own thread at the same instant, the way
// two hosts would. (On loopback a SYN is delivered within the sender's connect(); the other side's socket
// must already be in SYN_SENT for the kernel to take the simultaneous-open path, which the precise shared
// start instant and 1 ms re-SYN grid make happen within a few slots.)
const engA = new PunchEngine();
const engB = new PunchEngine();
after(async () => {
  await engA.stop();
  await engB.stop();
});

async function loopbackPair(): Promise<[PunchResult, PunchResult]> {
  const pa = probeBind({ address: LO, port: 0 }).port;
  const pb = probeBind({ address: LO, port: 0 }).port;
  const startAtNs = engA.now() + 30_000_000n;
  const common = { startAtNs, resynIntervalUs: 1000, deadlineMs: 8000 };
  return Promise.all([
    engA.punch({ ...common, local: { address: LO, port: pa }, remotes: [{ address: LO, port: pb }] }),
    engB.punch({ ...common, local: { address: LO, port: pb }, remotes: [{ address: LO, port: pa }] }),
  ]);
}

test('simultaneous open on loopback between two engine plans (no listener anywhere)', async () => {
  const [a, b] = await loopbackPair();
  try {
    assert.deepEqual(a.local, b.remote);
    assert.deepEqual(b.local, a.remote);
    assert.equal(a.socket.localPort, b.socket.remotePort);
    a.socket.write('from a');
    const [got] = (await once(b.socket, 'data')) as [Buffer];
    assert.equal(got.toString(), 'from a');
    // Every SYN of both sides left from the plan's one port: the winners' ports are the bound ones.
    const synsA = a.timeline.filter((e) => e.kind === 'syn');
    assert.ok(synsA.length >= 1 && a.timeline.at(-1)!.kind === 'established');
  } finally {
    a.socket.destroy();
    b.socket.destroy();
  }
});

test('100 MB through a punched socket pair, every byte checked, with backpressure', async () => {
  const [a, b] = await loopbackPair();
  const TOTAL = 100 * 1024 * 1024;
  const CHUNK = 256 * 1024;
  try {
    let received = 0;
    let bad = -1;
    const done = new Promise<void>((resolve, reject) => {
      b.socket.on('data', (d: Buffer) => {
        for (let i = 0; i < d.length; i++) {
          if (d[i] !== patternByte(received + i)) {
            bad = received + i;
            reject(new Error(`byte ${bad} differs`));
            return;
          }
        }
        received += d.length;
      });
      b.socket.on('end', () => resolve());
      b.socket.on('error', reject);
    });
    let sent = 0;
    let pauses = 0;
    const buf = Buffer.alloc(CHUNK);
    while (sent < TOTAL) {
      fillPattern(buf, sent);
      const ok = a.socket.write(Buffer.from(buf));
      sent += CHUNK;
      if (!ok) {
        pauses++;
        await once(a.socket, 'drain');
      }
    }
    a.socket.end();
    await done;
    assert.equal(bad, -1);
    assert.equal(received, TOTAL);
    assert.ok(pauses > 0, 'write() reported backpressure and drain resumed it');
  } finally {
    a.socket.destroy();
    b.socket.destroy();
  }
});

const SIDE = fileURLToPath(new URL('./fixtures/punch-side.js', import.meta.url));

interface SideReport {
  ok: boolean;
  code?: string;
  local?: { address: string; port: number };
  remote?: { address: string; port: number };
  got?: string;
  kinds?: string[];
  errnos?: string[];
  attempts?: number;
}

/** Starts one punch-side child per namespace; once all are ready, gives them one start instant. */
/** One side's endpoints in a plan: bound to `local:port`, punching `remote:port`. */
function side(local: string, remote: string, port: number): { local: object; remotes: object[] } {
  return { local: { address: local, port }, remotes: [{ address: remote, port }] };
}

async function runSides(sides: { ns: string; name: string; plan: object }[], leadMs = 300): Promise<SideReport[]> {
  const kids = sides.map(({ ns, name, plan }) => {
    const child = spawn('ip', ['netns', 'exec', ns, process.execPath, SIDE, JSON.stringify({ name, plan })], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    let out = '';
    let onReady: () => void = () => {};
    const ready = new Promise<void>((r) => (onReady = r));
    child.stdout.on('data', (d) => {
      out += String(d);
      if (out.includes('ready\n')) onReady();
    });
    const exit = new Promise<number | null>((r) => child.on('exit', r));
    return { child, name, ready, exit, out: () => out };
  });
  const timer = setTimeout(() => kids.forEach((k) => k.child.kill('SIGKILL')), 30_000);
  try {
    await Promise.race([Promise.all(kids.map((k) => k.ready)), Promise.all(kids.map((k) => k.exit))]);
    // CLOCK_MONOTONIC is shared by every namespace of the machine, so one start instant serves all sides.
    const start = engA.now() + BigInt(leadMs) * 1_000_000n;
    for (const k of kids) k.child.stdin.end(`${start}\n`);
    const codes = await Promise.all(kids.map((k) => k.exit));
    return kids.map((k, i) => {
      assert.equal(codes[i], 0, `side ${k.name} exited ${codes[i]}: ${k.out()}`);
      return JSON.parse(k.out().trim().split('\n').at(-1)!) as SideReport;
    });
  } finally {
    clearTimeout(timer);
  }
}

test(
  'simultaneous open between two network namespaces (firewalls drop unsolicited SYNs)',
  { ...needsRoot('network namespaces'), timeout: 60_000 },
  async () => {
    const pair = makeNsPair({ dropNewSynInA: true, dropNewSynInB: true });
    try {
      const port = 40_000 + Math.floor(Math.random() * 20_000);
      const common = { resynIntervalUs: 20_000, deadlineMs: 5000 };
      const [a, b] = (await runSides([
        { ns: pair.a, name: 'A', plan: { ...common, ...side(pair.addrA, pair.addrB, port) } },
        { ns: pair.b, name: 'B', plan: { ...common, ...side(pair.addrB, pair.addrA, port) } },
      ])) as [SideReport, SideReport];
      assert.ok(a.ok, JSON.stringify(a));
      assert.ok(b.ok, JSON.stringify(b));
      assert.equal(a.got, 'hello from B');
      assert.equal(b.got, 'hello from A');
      assert.deepEqual(a.local, { address: pair.addrA, port });
      assert.deepEqual(a.remote, { address: pair.addrB, port });
      // The drop rule means no RST ever came back: both SYNs crossed, the first SYN of each side won.
      assert.deepEqual(a.kinds, ['syn', 'established']);
      assert.deepEqual(b.kinds, ['syn', 'established']);
    } finally {
      pair.destroy();
    }
  },
);

for (const family of [4, 6] as const) {
  test(
    `prime then fire across a router (IPv${family}): the ${family === 4 ? 'TTL' : 'hop limit'}-1 prime dies with ` +
      `ICMP time exceeded, the full SYNs meet`,
    { ...needsRoot('network namespaces'), timeout: 60_000 },
    async () => {
      const net3 = makeRoutedPair({ dropNewSynInA: true, dropNewSynInB: true, family });
      try {
        const port = 40_000 + Math.floor(Math.random() * 20_000);
        const common = { profile: 'prime', primeTtl: 1, primeDelayMs: 100, resynIntervalUs: 20_000, deadlineMs: 5000 };
        const [a, b] = (await runSides([
          { ns: net3.a, name: 'A', plan: { ...common, ...side(net3.addrA, net3.addrB, port) } },
          { ns: net3.b, name: 'B', plan: { ...common, ...side(net3.addrB, net3.addrA, port) } },
        ])) as [SideReport, SideReport];
        assert.ok(a.ok, JSON.stringify(a));
        assert.ok(b.ok, JSON.stringify(b));
        assert.equal(a.got, 'hello from B');
        assert.equal(b.got, 'hello from A');
        assert.deepEqual(a.local, { address: net3.addrA, port });
        for (const side of [a, b]) {
          // The prime SYN expired at the router and the ICMP time exceeded killed its socket; then the full
          // SYN (possibly RST once if it arrived before the peer's full SYN left, and re-sent) met the peer's.
          // The router's ICMP error can still be missing or late (IPv6: seen in clean-clone runs; IPv4: once
          // in a unit run, with the router's rate limits off): the punch connected all the same, the prime
          // stayed unanswered and the full SYN followed it. Whether the ICMP kills the prime socket when it
          // does come is asserted whenever it is seen.
          const kinds = side.kinds!;
          if (kinds[1] === 'icmp') {
            assert.deepEqual(kinds.slice(0, 3), ['prime', 'icmp', 'syn'], JSON.stringify(side));
            assert.equal(side.errnos![0], 'icmp:EHOSTUNREACH');
          } else {
            assert.deepEqual(kinds.slice(0, 2), ['prime', 'syn'], JSON.stringify(side));
            console.log(`# IPv${family} side ${JSON.stringify(side.local)}: no ICMP time exceeded seen for the prime`);
          }
          assert.equal(kinds.at(-1), 'established');
        }
      } finally {
        net3.destroy();
      }
    },
  );
}
