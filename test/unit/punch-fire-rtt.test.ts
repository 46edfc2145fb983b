/**
 * What B fires on (docs/PROTOCOL.md, the measured flow): the smaller of the pings' RTT and the overlay dial's.
 * The pings all ride B's first write and A's reply, so one slow leg there (a lost Tor cell, re-sent by the relay
 * hop's TCP 200 ms or more later) inflated every sample alike, and B, firing rtt/2 after its `opfire`, fired
 * that much late while A fired on receipt. Here a loopback relay between B and the real listener holds A's first
 * reply back 300 ms (one slow leg); the dial itself is a loopback connect. Real engines both sides, on loopback.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { createPunchListener, type ConnectionInfo } from '../../src/punch/listener.js';
import { PunchClient } from '../../src/punch/client.js';
import { clientOpts, enginePair, listenerOpts, loopbackOverlay, portDialer } from '../helpers/punch-loopback.js';

const { engA, engB } = enginePair();
after(async () => {
  await engA.stop();
  await engB.stop();
});

/** A relay to 127.0.0.1:`to` that holds the first chunk from the far side (A) back `holdMs`. */
async function slowFirstReply(to: number, holdMs: number): Promise<{ server: Server; port: number }> {
  const server = createServer((near: Socket) => {
    const far = connect(to, '127.0.0.1');
    let first = true;
    near.on('data', (d) => far.write(d));
    far.on('data', (d: Buffer) => {
      if (!first) return void near.write(d);
      first = false;
      far.pause();
      setTimeout(() => {
        near.write(d);
        far.resume();
      }, holdMs);
    });
    const end = (): void => {
      near.destroy();
      far.destroy();
    };
    near.on('error', end).on('close', end);
    far.on('error', end).on('close', end);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as { port: number }).port };
}

test(
  "one slow leg before the fire: B fires on the dial's RTT, not the inflated pings",
  { timeout: 20_000 },
  async () => {
    const listener = await createPunchListener(listenerOpts(engA));
    const { server, port } = await loopbackOverlay(listener);
    const relay = await slowFirstReply(port, 300);
    const atA = new Promise<ConnectionInfo>((r) =>
      listener.once('connection', (s: Socket, info) => (s.destroy(), r(info))),
    );
    try {
      const client = new PunchClient(clientOpts(engB, portDialer(relay.port)));
      const r = await client.punch({ address: 'a.onion', port: 1, expectIp: null });
      r.socket.destroy();
      const a = await atA;
      assert.ok(r.overlayRttMs !== undefined && r.overlayRttMs >= 290, `the pings saw the slow leg: ${r.overlayRttMs}`);
      // Both fire instants on one clock (CLOCK_MONOTONIC): each plan's first SYN. A fires 10 ms (clientOpts'
      // fireDelayMs) after the opfire arrives, at once here; B fires 10 ms + rtt/2 after sending it: ~150 ms after
      // A on the pings' RTT, within a few ms on the dial's (a loopback connect).
      const first = (tl: unknown): bigint =>
        (tl as { kind: string; actualNs: bigint }[]).find((e) => e.kind === 'syn')!.actualNs;
      const skewMs = Number(first(r.engineTimeline) - first(a.engineTimeline)) / 1e6;
      assert.ok(Math.abs(skewMs) < 40, `B fired ${skewMs.toFixed(1)} ms after A`);
    } finally {
      relay.server.close();
      server.close();
      await listener.close();
    }
  },
);
