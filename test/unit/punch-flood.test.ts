/**
 * Rate limits under a flood: 1,000 coordination requests over loopback TCP streams (standing in for the
 * overlay). A must answer each with a session or an opreject, open no more discovery connections than its
 * budget allows (counted at a real NAT-check server), and end with no session left and flat memory.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect } from 'node:net';
import { PunchEngine } from '../../src/native/engine.js';
import { startNatcheckServer } from '../../src/nat/natcheck-server.js';
import { nativeObserver } from '../../src/nat/observe.js';
import { createPunchListener } from '../../src/punch/listener.js';
import { wireCodec } from '../../src/punch/wire-codec.js';
import type { CoordMessage } from '../../src/punch/messages.js';

const codec = wireCodec('regtest');

test(
  'a flood of 1,000 coordination requests: discovery stays within budget, sessions are rejected, memory flat',
  { timeout: 120_000 },
  async () => {
    let natcheckConnections = 0;
    const nc = await startNatcheckServer({
      host: '127.0.0.1',
      port: 0,
      network: 'regtest',
      perNetgroupLimit: 64,
      onResult: () => natcheckConnections++,
    });
    const BURST = 5;
    const RATE = 2;
    const listener = await createPunchListener({
      engine: PunchEngine.shared(),
      codec,
      discovery: {
        methods: ['natcheck'],
        natcheckServers: [{ address: '127.0.0.1', port: nc.port }],
        observe: nativeObserver({ network: 'regtest' }),
        timeoutMs: 2000,
      },
      policy: { allowLoopback: true },
      localAddress: { v4: '127.0.0.1' },
      limits: {
        sessionsPerSec: 20,
        sessionBurst: 40,
        maxConcurrentSessions: 16,
        discoveryPerSec: RATE,
        discoveryBurst: BURST,
      },
      handshakeTimeoutMs: 1000,
      stepTimeoutMs: 300,
    });
    const failures = new Map<string, number>();
    listener.on('failure', (e) => failures.set(e.code, (failures.get(e.code) ?? 0) + 1));
    const server = createServer((s) => listener.handle(s));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    const heap0 = process.memoryUsage().heapUsed;
    const t0 = performance.now();
    const outcomes = new Map<string, number>();
    const one = (i: number): Promise<void> =>
      new Promise((resolve) => {
        const s = connect(port, '127.0.0.1');
        const dec = codec.decoder();
        let outcome = 'closed';
        s.on('connect', () => {
          s.write(codec.encode({ cmd: 'version', nonce: BigInt(i), userAgent: '/flood/' }));
          s.write(
            codec.encode({
              cmd: 'opendpoint',
              sessionId: Buffer.alloc(16, i & 0xff),
              flags: 0,
              endpoints: [{ address: '127.0.0.1', port: 40000 + (i % 1000) }],
            }),
          );
        });
        s.on('data', (d: Buffer) => {
          let msgs: CoordMessage[] = [];
          try {
            msgs = dec.push(d);
          } catch {
            /* ignore */
          }
          for (const m of msgs) {
            if (m.cmd === 'opreject') outcome = `reject:${m.code}`;
            if (m.cmd === 'opendpoint') {
              outcome = 'endpoint';
              s.destroy();
            }
          }
        });
        s.on('error', () => undefined);
        s.on('close', () => {
          outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
          resolve();
        });
        setTimeout(() => s.destroy(), 5000).unref();
      });
    try {
      const N = 1000;
      let next = 0;
      await Promise.all(
        Array.from({ length: 50 }, async () => {
          while (next < N) await one(next++);
        }),
      );
      // Let the last sessions time out.
      for (let i = 0; i < 50 && listener.stats.active > 0; i++) await new Promise((r) => setTimeout(r, 100));
      const elapsedS = (performance.now() - t0) / 1000;
      const st = listener.stats;
      const budget = BURST + Math.ceil(RATE * elapsedS) + 1;
      console.log(
        JSON.stringify({
          elapsedS: +elapsedS.toFixed(2),
          stats: st,
          natcheckConnections,
          budget,
          outcomes: Object.fromEntries(outcomes),
          failures: Object.fromEntries(failures),
        }),
      );
      // The session bucket is charged at the valid request, inside an accepted session.
      assert.equal(st.accepted + st.rejectedBusy, N, 'every request got a session or a busy rejection');
      assert.equal(outcomes.get('closed'), undefined, 'every request was answered (endpoint or opreject)');
      assert.ok(st.rejectedRate > 0, 'the session bucket rejected some');
      assert.ok(
        st.discoveryConnections <= budget,
        `discovery connections ${st.discoveryConnections} <= budget ${budget}`,
      );
      assert.ok(st.discoveryConnections >= BURST, 'the budget was used');
      // Every discovery connection the listener counted really reached the NAT-check server, and no more.
      await new Promise((r) => setTimeout(r, 300));
      assert.ok(
        natcheckConnections <= st.discoveryConnections,
        `natcheck saw ${natcheckConnections} <= ${st.discoveryConnections}`,
      );
      assert.equal(st.active, 0, 'no session left behind');
      const heapGrowthMb = (process.memoryUsage().heapUsed - heap0) / 1e6;
      assert.ok(heapGrowthMb < 40, `heap grew ${heapGrowthMb.toFixed(1)} MB`);
    } finally {
      await listener.close();
      server.close();
      await nc.close();
    }
  },
);
