/**
 * The bridge under test, in its own process so that its CPU time is its own (/proc/<pid>/stat): accepts one
 * connection on loopback, connects to the sink, bridges the two with the mode in argv[2] (`js`: the daemon's
 * stream.pipeline copy; `splice`: the addon's splice(2) thread), prints `port N` first and `done {json}`
 * when the bridge has ended, then exits.
 */
import net from 'node:net';
import { once } from 'node:events';
import { bridge } from '../../src/daemon/splice.js';
import { spliceSockets } from '../../src/native/splice.js';

const mode = process.argv[2];
const sinkPort = Number(process.argv[3]);
if ((mode !== 'js' && mode !== 'splice') || !(sinkPort > 0)) {
  process.stderr.write('usage: bridge-child.js js|splice SINK_PORT\n');
  process.exit(2);
}
const server = net.createServer({ allowHalfOpen: true });
server.listen(0, '127.0.0.1');
await once(server, 'listening');
process.stdout.write(`port ${(server.address() as net.AddressInfo).port}\n`);
const [front] = (await once(server, 'connection')) as [net.Socket];
server.close();
front.pause();
const back = net.connect({ host: '127.0.0.1', port: sinkPort, allowHalfOpen: true });
await once(back, 'connect');
back.setNoDelay(true);
const stats = mode === 'js' ? await bridge(front, back).done : await spliceSockets(front, back).done;
process.stdout.write(`done ${JSON.stringify({ aToB: stats.aToB, bToA: stats.bToA, reason: stats.reason })}\n`);
