/**
 * A FAKE SAM bridge on loopback, for faults a real i2pd never produces on demand (late replies, refusals,
 * sessions that never become ready). It splits the byte stream into command lines and hands each to `onLine`.
 */
import { createServer, type Socket } from 'node:net';

export interface FakeSamBridge {
  sam: { host: string; port: number };
  close(): void;
}

export async function fakeSamLines(onLine: (line: string, socket: Socket) => void): Promise<FakeSamBridge> {
  const server = createServer((s) => {
    s.on('error', () => {});
    let buf = '';
    s.on('data', (d) => {
      buf += d.toString('latin1');
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        onLine(line, s);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { sam: { host: '127.0.0.1', port: (server.address() as { port: number }).port }, close: () => server.close() };
}
