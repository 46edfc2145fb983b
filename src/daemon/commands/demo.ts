/**
 * `onionpunch demo [options]`: the main job, end to end, as root: a two-site NAT lab, NAT-check servers and a
 * private Tor (or I2P) network on public hosts, A and B as child processes in their NATed namespaces; A
 * publishes an onion coordination endpoint, B discovers its mapping, dials A over the overlay, both punch,
 * then B runs a Bitcoin version handshake across the punched connection (A answers as responder). Prints a
 * timeline (ms since start) and tears everything down, also on failure and SIGINT. `--json` ends with one
 * line `{"ok", "timeToConnectMs", "natA", "natB", "siteA", "siteB", "family", "overlay", ...}`; a spray (an edm
 * or edm-pba side: the lab always allows hard-NAT punching) adds `"synsA"`, `"synsB"` and `"spray"`.
 * The site behaviours and link conditions are read by the lab's own parsers (`lab up` takes the same words).
 */
import { flag, oneOf, parseCommand, value } from '../args.js';
import { formatSiteBehaviour, parseDuration, parsePercent, parseSiteBehaviour } from '../../lab/topology/spec.js';

const SPEC_HELP = 'comma list of eim|eim-shift|edm|edm-pba, drop|rst|icmp, cgnat, fw6 (as lab up)';

const DEMO = {
  name: 'demo',
  summary:
    'Builds a two-site NAT lab with a private Tor (or I2P) network, punches a direct TCP connection from B to A\n' +
    '(coordinated over an onion service or I2P destination), runs a Bitcoin version handshake across it and\n' +
    'prints a timeline. Needs root; installs missing tor/i2pd/nftables/iproute2 with apt-get on Debian/Ubuntu.',
  options: {
    'nat-a': value('SPEC', `site A: ${SPEC_HELP}; default eim,drop`, parseSiteBehaviour, {}),
    'nat-b': value('SPEC', 'site B, the same words (e.g. eim,rst or cgnat); fw6 on both: IPv6', parseSiteBehaviour, {}),
    delay: value(
      'MS',
      'one-way delay per access link, e.g. 25ms or 0.5s (A-B RTT = 4x; default 12.5ms)',
      (s) => parseDuration(s, 2000),
      12.5,
    ),
    jitter: value('MS', 'jitter per access link (default 0)', (s) => parseDuration(s, 1000), 0),
    loss: value('PCT', 'loss per access link and direction, e.g. 1% (default 0)', (s) => parsePercent(s, 50), 0),
    overlay: value('tor|i2p', 'coordination overlay (default tor)', oneOf(['tor', 'i2p'] as const), 'tor'),
    profile: value('P', 'SYN schedule: plain | prime (default plain)', oneOf(['plain', 'prime'] as const), 'plain'),
    nodes: flag(
      'real Bitcoin nodes: relays on two public hosts, bcoin 1.0.2 + serve on A, bcoin + proxy on B;\n' +
        "A mines 101 blocks, the proxy has B's node connect (addnode onetry), B syncs through the punch\n" +
        '(Bitcoin Core instead of bcoin when BITCOIND names a bitcoind binary)',
    ),
    'no-install': flag('do not install missing packages; print the apt-get command and stop'),
    json: flag('machine-readable: the last line is one JSON object'),
  },
  notes:
    "Set ONIONPUNCH_DEMO_VERBOSE=1 for the rig's own log lines. With --nodes, --json ends with\n" +
    '{"ok", "nodes": "bcoin"|"core", "heightA", "heightB", "syncMs", "timeToConnectMs", "natA", "natB", ' +
    '"overlay", ...}.',
};

export async function main(args: string[]): Promise<number> {
  const p = parseCommand(DEMO, args);
  if (p === null) return 0;
  const v = p.values;
  const json = v.json;
  const a = v['nat-a'];
  const b = v['nat-b'];
  const natA = a.nat ?? 'eim';
  const natB = b.nat ?? 'eim';
  const inA = a.inbound ?? 'drop';
  const inB = b.inbound ?? 'drop';
  const overlay = v.overlay;
  const { delay: delayMs, jitter: jitterMs, loss: lossPct, profile } = v;
  // IPv6 is punched when both sites have it; a site with fw6 alone still has its IPv4 NAT.
  const family: 4 | 6 = a.ipv6 === 'fw6' && b.ipv6 === 'fw6' ? 6 : 4;
  const siteA = formatSiteBehaviour(a);
  const siteB = formatSiteBehaviour(b);
  const { ensurePrereqs } = await import('../../lab/prereqs.js');
  try {
    await ensurePrereqs(['lab', overlay], { what: 'onionpunch demo', install: !v['no-install'] });
  } catch (err) {
    const e = err as { code?: string; message?: string };
    const line = { ok: false, error: { code: e.code, message: e.message }, natA, natB, siteA, siteB, family, overlay };
    if (json) process.stdout.write(JSON.stringify(line) + '\n');
    throw err;
  }
  const { PunchRig } = await import('../../lab/demo/rig.js');
  const { wallMs } = await import('../../lab/demo/jsonl.js');
  const t0 = wallMs();
  const say = (line: string): void => {
    process.stdout.write(`${(wallMs() - t0).toFixed(0).padStart(7)} ms  ${line}\n`);
  };
  const verbose = process.env.ONIONPUNCH_DEMO_VERBOSE === '1';
  let rig: import('../../lab/demo/rig.js').PunchRig | undefined;
  let interrupted = false;
  const onSigint = (): void => {
    interrupted = true;
    say('interrupted: tearing down');
    void (rig?.down() ?? Promise.resolve()).finally(() => process.exit(130));
  };
  process.once('SIGINT', onSigint);
  process.once('SIGTERM', onSigint);
  const summary: Record<string, unknown> = { ok: false, natA, natB, siteA, siteB, family, overlay };
  if (v.nodes) {
    const { bitcoindBinary } = await import('../../lab/nodes/core.js');
    const { bcoinAvailable } = await import('../../lab/nodes/bcoin.js');
    const kind = bitcoindBinary() ? 'core' : 'bcoin';
    Object.assign(summary, { nodes: kind, heightA: 0, heightB: 0, syncMs: null, timeToConnectMs: null });
    if (kind === 'bcoin' && !bcoinAvailable()) {
      summary.error = {
        code: 'DEMO_ERROR',
        message: 'bcoin is not installed: npm install bcoin@1.0.2 (a devDependency)',
      };
      say(`FAILED: ${(summary.error as { message: string }).message}`);
      if (json) process.stdout.write(JSON.stringify(summary) + '\n');
      return 1;
    }
  }
  try {
    say(
      `building the lab: site A (${siteA}), site B (${siteB}), IPv${family}, ${delayMs} ms one-way per access link ` +
        `(A-B RTT ${4 * delayMs} ms), jitter ${jitterMs} ms, loss ${lossPct}%`,
    );
    rig = await PunchRig.up(
      {
        a: { nat: natA, inbound: inA, ...(a.cgnat ? { cgnat: true } : {}), ...(a.ipv6 ? { ipv6: a.ipv6 } : {}) },
        b: { nat: natB, inbound: inB, ...(b.cgnat ? { cgnat: true } : {}), ...(b.ipv6 ? { ipv6: b.ipv6 } : {}) },
        family,
        delayMs,
        jitterMs,
        lossPct,
        overlay,
        profile,
        ...(v.nodes ? { nodes: summary.nodes as 'bcoin' | 'core' } : {}),
        onFlowEvent: (e) => {
          process.stdout.write(
            `${(e.at - t0).toFixed(0).padStart(7)} ms  ${e.who.padEnd(7)} ` +
              `${e.event}${e.detail ? `  ${e.detail}` : ''}\n`,
          );
        },
        log: (l) => {
          if (verbose) say(l);
        },
        onMessage: (who: string, m: { type: string; [k: string]: unknown }) => {
          if (m.type === 'eim')
            say(
              `${who}: EIM check: ${String(m.mapping)}${m.portPreserving ? ' (port-preserving)' : ''}` +
                `${m.reason ? ` — ${String(m.reason)}` : ''}; observed ${JSON.stringify(m.observed)}`,
            );
          if (m.type === 'ready' && who === 'A')
            say(`A: coordination endpoint ${String(m.address)}:${String(m.port)} published`);
        },
      },
      (r) => {
        rig = r;
      },
    );
    const tm = rig.timings;
    if (v.nodes) {
      say(
        `lab up at ${tm.labUp} ms, relays at ${tm.natcheckUp} ms, private ${overlay} network, nodes and daemons at ` +
          `${tm.sitesUp} ms; waiting for B's node to sync`,
      );
      const r = await rig.syncNodes(150_000);
      Object.assign(summary, {
        ok: r.ok,
        heightA: r.heightA,
        heightB: r.heightB,
        hashA: r.hashA,
        hashB: r.hashB,
        ...(r.syncMs !== undefined ? { syncMs: r.syncMs } : {}),
        ...(r.timeToConnectMs !== undefined ? { timeToConnectMs: r.timeToConnectMs } : {}),
        inboundOnA: r.inboundOnA,
        outboundOnB: r.outboundOnB,
        ...(r.error ? { error: r.error } : {}),
      });
      if (r.ok)
        say(
          `OK: B's node synced to height ${r.heightB} (${r.hashB}) over the punched connection; punch ` +
            `${String(r.timeToConnectMs)} ms, sync ${String(r.syncMs)} ms; B inbound on A, A outbound on B`,
        );
      else say(`FAILED: ${r.error?.code}: ${r.error?.message}`);
    } else {
      await punchOnly(rig);
    }
  } catch (err) {
    const e = err as { code?: string; message?: string };
    summary.error = { code: e.code ?? 'DEMO_ERROR', message: e.message ?? String(err) };
    say(`FAILED: ${e.code ?? 'error'}: ${e.message ?? String(err)}`);
  } finally {
    if (!interrupted) {
      say(
        `tearing down (${v.nodes ? 'nodes, daemons, relays' : 'workers'}, ${overlay === 'tor' ? 'Tor' : 'I2P'}, lab)`,
      );
      await rig?.down();
      process.removeListener('SIGINT', onSigint);
      process.removeListener('SIGTERM', onSigint);
    }
  }
  summary.elapsedMs = Math.round(wallMs() - t0);
  if (json) process.stdout.write(JSON.stringify(summary) + '\n');
  return summary.ok ? 0 : 1;

  /** The punch-only demo: one attempt of the A/B workers and its timeline. */
  async function punchOnly(rig: import('../../lab/demo/rig.js').PunchRig): Promise<void> {
    const tm = rig.timings;
    say(
      `lab up at ${tm.labUp} ms, NAT-check servers at ${tm.natcheckUp} ms, private ` +
        `${overlay === 'tor' ? `Tor network at ${tm.torUp}` : `I2P network at ${tm.i2pUp}`} ms, A and B ready at ` +
        `${tm.workersUp} ms`,
    );
    say(
      `B: punching A (discovery + ${overlay === 'tor' ? 'Tor' : 'I2P'} dial + coordination + simultaneous open), ` +
        `then Bitcoin version handshake`,
    );
    const r = await rig.attempt();
    const base = r.events[0]?.at ?? wallMs();
    for (const e of r.events) {
      process.stdout.write(
        `${(e.at - t0).toFixed(1).padStart(9)} ms  (+${(e.at - base).toFixed(1).padStart(7)})  ${e.who}  ` +
          `${e.event}${e.detail ? `  ${e.detail}` : ''}\n`,
      );
    }
    summary.ok = r.ok;
    if (r.timeToConnectMs !== undefined) summary.timeToConnectMs = Math.round(r.timeToConnectMs * 10) / 10;
    if (r.totalMs !== undefined) summary.totalMs = Math.round(r.totalMs);
    if (r.overlayRttMs !== undefined) summary.overlayRttMs = Math.round(r.overlayRttMs * 10) / 10;
    if (r.directRttMs !== undefined) summary.directRttMs = Math.round(r.directRttMs * 10) / 10;
    if (r.synsA !== undefined) summary.synsA = r.synsA;
    if (r.synsB !== undefined) summary.synsB = r.synsB;
    if (r.spray) {
      const s = r.spray;
      summary.spray = s;
      const syns = `SYNs A ${String(r.synsA)}, B ${String(r.synsB)}`;
      say(
        `spray: ${s.hard} hard, ports ${s.probeLow}..${s.probeHigh}; ${syns}` +
          ` (N ${s.sockets}, M ${s.probes}); winning pair A ${s.pairA ?? '?'}, B ${s.pairB ?? '?'}`,
      );
    }
    summary.eimA = rig.eimA?.mapping;
    summary.eimB = rig.eimB?.mapping;
    if (r.error) summary.error = r.error;
    if (r.ok)
      say(
        `OK: direct TCP connection A<->B, Bitcoin handshake done; B's request reached A -> established in ` +
          `${String(summary.timeToConnectMs)} ms (overlay RTT ${String(summary.overlayRttMs)} ms, direct RTT ` +
          `${String(summary.directRttMs)} ms)`,
      );
    else say(`FAILED: ${r.error?.code}: ${r.error?.message}`);
  }
}
