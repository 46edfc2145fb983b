/**
 * The engine's ACK probe against a real lost final ACK (docs/ENGINE.md "ACK probe"). eim×eim NATs that drop
 * unsolicited SYNs, 25 ms RTT, direct coordination, the zero-round-trip path (A's warm punch port is known, so the
 * fault can be aimed at it). A table on A's router makes the one handshake order that orphans B's socket:
 * - B's SYNs to A's punch port never reach A: only A's SYN opens the connection (B goes SYN_SENT → SYN_RECV);
 * - A's first pure ACK from that port is dropped (a conntrack mark remembers it went): A is established, B waits.
 * Without the probe B's kernel re-sends its SYN-ACK only on the SYN's 1 s timer; with it B asks A to repeat the
 * ACK after two 50 ms checks. Asserts the `ack-probe` event and that B is established well inside that second.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { needsRoot } from '../helpers/root.js';
import { PunchRig, type AttemptResult } from '../../src/lab/demo/rig.js';

const RUNS = 3;

/** The fault table (inet lab_fault on A's router); before the NAT firewall's forward chain (priority -10). */
function faultRules(port: number): string {
  return [
    'table inet lab_fault {',
    '  chain forward {',
    '    type filter hook forward priority -10; policy accept;',
    `    iifname "wan" tcp dport ${port} tcp flags & (syn | ack) == syn drop`,
    `    oifname "wan" tcp sport ${port} tcp flags & (syn | ack | fin | rst) == ack ct mark 0 ct mark set 1 drop`,
    '  }',
    '}',
    '',
  ].join('\n');
}

describe(
  'ACK probe: a lost final ACK of the handshake (eim×eim, drop)',
  { ...needsRoot('network namespaces, nftables'), timeout: 300_000 },
  () => {
    let rig: PunchRig | undefined;
    before(async () => {
      rig = await PunchRig.up({
        overlay: 'direct',
        delayMs: 12.5,
        profile: 'plain',
        zeroRtt: true,
        a: { nat: 'eim', inbound: 'drop' },
        b: { nat: 'eim', inbound: 'drop' },
        family: 4,
      });
    });
    after(async () => {
      await rig?.down();
    });

    test(`${RUNS} zero-RTT punches, each losing A's final ACK`, async () => {
      const port = rig!.zeroRttPort;
      assert.ok(port !== undefined, 'A announced a warm punch port');
      const ns = rig!.lab.sites.a!.router.ns;
      const add = await rig!.lab.exec(ns, ['nft', '-f', '-'], { input: faultRules(port) });
      assert.equal(add.code, 0, `nft: ${add.stderr}`);
      try {
        const results: AttemptResult[] = [];
        const gaps: number[] = [];
        for (let i = 0; i < RUNS; i++) {
          const r = await rig!.attempt(30_000, { zeroRtt: true });
          const tl = r.events.map((e) => `${e.at.toFixed(1)} ${e.who} ${e.event} ${e.detail ?? ''}`).join('\n  ');
          assert.ok(r.ok && r.zeroRttUsed, `#${i + 1}: ${r.error?.code ?? r.zeroRttFallback ?? 'fell back'}\n  ${tl}`);
          const at = (who: string, ev: string): number | undefined =>
            r.events.find((e) => e.who === who && e.event === ev)?.at;
          const probe = at('B', 'engine:ack-probe');
          const bSyn = at('B', 'engine:syn');
          const bEst = at('B', 'engine:established');
          assert.ok(probe !== undefined, `#${i + 1}: B sent an ACK probe\n  ${tl}`);
          assert.ok(bSyn !== undefined && bEst !== undefined, `#${i + 1}: B's engine timeline\n  ${tl}`);
          // The kernel's own recovery comes 1 s after B's SYN at the earliest; the probe's at two checks (100 ms)
          // plus one round trip after the SYN_RECV.
          assert.ok(bEst - bSyn < 700, `#${i + 1}: B established ${Math.round(bEst - bSyn)} ms after its SYN\n  ${tl}`);
          gaps.push(Math.round(bEst - bSyn));
          results.push(r);
        }
        console.log(
          JSON.stringify({
            runs: RUNS,
            bSynToEstablishedMs: gaps,
            ttcMs: results.map((r) => Math.round(r.timeToConnectMs ?? -1)),
          }),
        );
      } finally {
        await rig!.lab.exec(ns, ['nft', 'delete', 'table', 'inet', 'lab_fault']);
      }
    });
  },
);
