/** Picks a free local port for a session's punch socket (the engine binds it with SO_REUSEADDR/PORT). */
import { createServer } from 'node:net';
import type { Endpoint } from '../nat/types.js';

export async function allocateLocalEndpoint(family: 4 | 6, address?: string): Promise<Endpoint> {
  const host = address ?? (family === 6 ? '::' : '0.0.0.0');
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen({ host, port: 0, exclusive: true }, () => {
      const a = s.address();
      s.close(() => {
        if (a && typeof a === 'object') resolve({ address: host, port: a.port });
        else reject(new Error('no port allocated'));
      });
    });
  });
}
