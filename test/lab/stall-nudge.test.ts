/**
 * Stall coordination through real NATs (the lab's eim routers that drop unsolicited inbound, real conntrack):
 * a side whose SYN went unanswered reports it (`StallLink.onStall`), and the peer's report comes back as
 * `nudge()`, which re-sends from a fresh socket only where the far side holds none of our sequence numbers.
 * The losses are nft rules on the routers (a quota of one packet), before their conntrack sees the packet;
 * each side runs in its own lab host namespace (test/native/fixtures/nudge-side.ts) and the test plays the
 * peer's `opstall` by calling nudge at a fixed time.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { Lab } from '../../src/lab/topology/lab.js';
import { randomPort } from '../../src/lab/topology/observe.js';
import { PunchEngine } from '../../src/native/engine.js';
import { needsRoot } from '../helpers/root.js';

const SIDE = fileURLToPath(new URL('../native/fixtures/nudge-side.js', import.meta.url));

interface Report {
  ok: boolean;
  code?: string;
  establishedMs?: number;
  reports: number[];
  events: Array<{ kind: string; atMs: number; errno?: string }>;
}

interface SideArgs {
  /** ms after the common start instant this side fires. */
  offsetMs: number;
  nudges?: Array<{ atMs: number; mode: 'any' | 'recv-only' | 'sent-only' }>;
}

const ROOT = needsRoot('network namespaces and nftables');

describe('stall coordination (opstall → nudge) through lab NATs', ROOT, () => {
  let lab: Lab;
  const engine = new PunchEngine();
  before(async () => {
    lab = await Lab.up({
      sites: [
        { name: 'a', nat: 'eim', inbound: 'drop' },
        { name: 'b', nat: 'eim', inbound: 'drop' },
      ],
      delayMs: 12.5,
    });
  });
  after(async () => {
    await engine.stop();
    await lab?.down();
  });

  /** Drops the first inbound packets matching `what` (`bytes` of them) on `site`'s router, before its conntrack. */
  async function dropFirst(site: string, what: string, bytes = 100): Promise<void> {
    const rules =
      'table inet nudge_test {\n chain pre {\n  type filter hook prerouting priority -300; policy accept;\n' +
      `  iifname "wan" ${what} quota until ${bytes} bytes drop\n }\n}\n`;
    const r = await lab.exec(lab.sites[site]!.router.key, ['nft', '-f', '-'], { input: rules });
    assert.equal(r.code, 0, r.stderr);
  }

  async function clearDrops(): Promise<void> {
    for (const s of ['a', 'b']) {
      await lab.exec(lab.sites[s]!.router.key, ['nft', 'delete', 'table', 'inet', 'nudge_test']).catch(() => undefined);
    }
  }

  /** A and B punch each other's public endpoint (port-preserving NATs keep the local port). */
  async function punch(a: SideArgs, b: SideArgs): Promise<{ a: Report; b: Report }> {
    const port = randomPort();
    const kids = (['a', 'b'] as const).map((name) => {
      const me = lab.sites[name]!;
      const peer = lab.sites[name === 'a' ? 'b' : 'a']!;
      const side = name === 'a' ? a : b;
      const args = {
        stallMs: 200,
        nudges: side.nudges ?? [],
        plan: {
          local: { address: me.host.ip, port },
          remotes: [{ address: peer.publicIp, port }],
          resynIntervalUs: 50_000,
          deadlineMs: 3000,
        },
      };
      const child = lab.spawn(me.host.key, [process.execPath, SIDE, JSON.stringify(args)], {
        stdio: ['pipe', 'pipe', 'inherit'],
      });
      let out = '';
      let ready!: () => void;
      const isReady = new Promise<void>((r) => (ready = r));
      child.stdout!.on('data', (d: Buffer) => {
        out += String(d);
        if (out.includes('ready\n')) ready();
      });
      const exit = new Promise<void>((r) => child.on('exit', () => r()));
      return { child, isReady, exit, offsetMs: side.offsetMs, out: () => out };
    });
    const kill = setTimeout(() => kids.forEach((k) => k.child.kill('SIGKILL')), 20_000);
    try {
      await Promise.all(kids.map((k) => k.isReady));
      const start = engine.now() + 300_000_000n;
      for (const k of kids) k.child.stdin!.end(`${start + BigInt(Math.round(k.offsetMs * 1e6))}\n`);
      await Promise.all(kids.map((k) => k.exit));
      const [ra, rb] = kids.map((k) => JSON.parse(k.out().trim().split('\n').at(-1)!) as Report);
      return { a: ra!, b: rb! };
    } finally {
      clearTimeout(kill);
      await clearDrops();
    }
  }

  const kinds = (r: Report): string[] => r.events.map((e) => e.kind);
  const count = (r: Report, k: string): number => kinds(r).filter((x) => x === k).length;

  test("both first SYNs lost: A's nudge on B's report connects at ~nudge + RTT, not at the kernel's 1 s", async () => {
    await dropFirst('a', 'tcp flags & (syn | ack) == syn');
    await dropFirst('b', 'tcp flags & (syn | ack) == syn');
    const r = await punch({ offsetMs: 0, nudges: [{ atMs: 300, mode: 'sent-only' }] }, { offsetMs: 0 });
    assert.ok(r.a.ok && r.b.ok, JSON.stringify(r));
    // Both stalled in SYN_SENT and said so (the opstall each would send), at ~200 ms.
    for (const s of [r.a, r.b]) assert.ok(s.reports.length >= 1 && s.reports[0]! >= 190, JSON.stringify(s));
    assert.equal(count(r.a, 'nudge'), 1, JSON.stringify(r.a.events));
    assert.ok(r.a.establishedMs! < 600, `A connected after ${r.a.establishedMs} ms`);
    assert.ok(r.b.establishedMs! < 600, `B connected after ${r.b.establishedMs} ms`);
  });

  test('the same without a nudge waits for the kernel: the control for the test above', async () => {
    await dropFirst('a', 'tcp flags & (syn | ack) == syn');
    await dropFirst('b', 'tcp flags & (syn | ack) == syn');
    const r = await punch({ offsetMs: 0 }, { offsetMs: 0 });
    assert.ok(r.a.ok && r.b.ok, JSON.stringify(r));
    assert.ok(r.a.establishedMs! >= 900, `A connected after ${r.a.establishedMs} ms`);
  });

  test("engine: A's SYN-ACK lost (A SYN_RECV, B SYN_SENT): 'any' re-sends silently, no RST", async () => {
    // A fires 40 ms before B: A's SYN reaches B's router before B's SYN left and is dropped there (unsolicited);
    // B's SYN reaches A (SYN_RECV); A's SYN-ACK is lost at B's router. B stalls and reports; A is nudged.
    await dropFirst('b', 'tcp flags & (syn | ack) == syn | ack');
    const r = await punch({ offsetMs: 0, nudges: [{ atMs: 340, mode: 'any' }] }, { offsetMs: 40 });
    assert.ok(r.a.ok && r.b.ok, JSON.stringify(r));
    assert.equal(r.a.reports.length, 0, 'A was in SYN_RECV: nothing to report');
    assert.ok(r.b.reports.length >= 1, JSON.stringify(r.b));
    assert.equal(count(r.a, 'nudge'), 1, JSON.stringify(r.a.events));
    // A silent close: no FIN orphan holding the 4-tuple (the re-send would fail with EADDRNOTAVAIL) and no RST
    // that would kill B's socket and move both NATs' entries to CLOSE.
    assert.equal(count(r.a, 'error'), 0, JSON.stringify(r.a.events));
    assert.equal(count(r.a, 'rst') + count(r.b, 'rst'), 0, JSON.stringify(r));
    assert.ok(r.a.establishedMs! < 600, `A connected after ${r.a.establishedMs} ms`);
  });

  test("A nudged, then B's SYN-ACK to the fresh SYN lost: B does not probe into A's stale NAT entry", async () => {
    // As above, and B's first SYN-ACK (its answer to A's fresh SYN) is lost at A's router too. A's NAT still
    // tracks A's old ISN (it ignored the fresh SYN), so a bare ACK from B for the fresh ISN is invalid there and
    // A's router answers it with a RST: B's ACK probe did that and both sides then reset each other to the
    // deadline (a clean-clone CI failure, and lab stress's reset storms). B reported a stall, so its SYN_RECV may
    // answer a nudged SYN: it leaves the socket to its kernel, whose SYN-ACK re-syncs A's NAT at ~1 s.
    await dropFirst('b', 'tcp flags & (syn | ack) == syn | ack');
    await dropFirst('a', 'tcp flags & (syn | ack) == syn | ack');
    const r = await punch({ offsetMs: 0, nudges: [{ atMs: 340, mode: 'any' }] }, { offsetMs: 40 });
    assert.equal(count(r.a, 'nudge'), 1, JSON.stringify(r.a.events));
    assert.equal(count(r.b, 'ack-probe'), 0, JSON.stringify(r.b.events));
    assert.equal(count(r.a, 'rst') + count(r.b, 'rst'), 0, JSON.stringify(r));
    assert.ok(r.a.ok && r.b.ok, JSON.stringify(r));
    assert.ok(r.b.establishedMs! < 1500, `B connected after ${r.b.establishedMs} ms`);
  });

  test('recv-only leaves a SYN_SENT socket alone; a nudge right after a re-send is ignored', async () => {
    await dropFirst('a', 'tcp flags & (syn | ack) == syn');
    await dropFirst('b', 'tcp flags & (syn | ack) == syn');
    const r = await punch(
      { offsetMs: 0, nudges: [{ atMs: 250, mode: 'recv-only' }] },
      {
        offsetMs: 0,
        // The second and third come while the first re-send's SYN is in flight: replacing that socket would
        // make A's answer meet a newer one (RST), and the RSTs move both NATs' entries to CLOSE.
        nudges: [
          { atMs: 260, mode: 'any' },
          { atMs: 262, mode: 'any' },
          { atMs: 264, mode: 'any' },
        ],
      },
    );
    assert.ok(r.a.ok && r.b.ok, JSON.stringify(r));
    assert.equal(count(r.a, 'nudge'), 0, JSON.stringify(r.a.events));
    assert.equal(count(r.b, 'nudge'), 1, JSON.stringify(r.b.events));
    assert.equal(count(r.a, 'rst') + count(r.b, 'rst'), 0, JSON.stringify(r));
    assert.ok(r.b.establishedMs! < 600, `B connected after ${r.b.establishedMs} ms`);
  });

  test('a nudge after the kernel re-sent our SYN is ignored: that copy may be answered by now', async () => {
    // A's first SYN and the kernel's retransmission at 1 s are lost at B's router; B's SYNs at A's. The nudge at
    // 1.2 s comes after A's socket re-sent: its old ISN may have reached B by then, so A keeps it.
    await dropFirst('a', 'tcp flags & (syn | ack) == syn', 130);
    await dropFirst('b', 'tcp flags & (syn | ack) == syn', 130);
    const r = await punch({ offsetMs: 0, nudges: [{ atMs: 1200, mode: 'any' }] }, { offsetMs: 0 });
    assert.equal(count(r.a, 'nudge'), 0, JSON.stringify(r.a.events));
    assert.equal(count(r.a, 'syn'), 1, JSON.stringify(r.a.events));
  });

  test('a peer cannot make us re-send more than twice per plan', async () => {
    // Every SYN is lost both ways: a black hole, the nudges' only effect is SYNs.
    await dropFirst('a', 'tcp flags & (syn | ack) == syn', 1_000_000);
    await dropFirst('b', 'tcp flags & (syn | ack) == syn', 1_000_000);
    const nudges = [250, 500, 750, 1000, 1250, 1500].map((atMs) => ({ atMs, mode: 'any' as const }));
    const r = await punch({ offsetMs: 0, nudges }, { offsetMs: 0 });
    assert.equal(r.a.ok, false, JSON.stringify(r.a));
    assert.equal(count(r.a, 'nudge'), 2, JSON.stringify(r.a.events));
    assert.equal(count(r.a, 'syn'), 3, JSON.stringify(r.a.events));
  });
});
