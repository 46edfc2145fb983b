/**
 * JSON rendering of decoded payloads. Rule (documented in docs/PROTOCOL.md): a bigint prints as a
 * JSON number when |v| <= 2^53 - 1, else as a decimal string; byte strings print as lower-case hex;
 * block hashes (getheaders) print in the usual reversed display order.
 */

/** Converts bigint / Buffer / nested values to JSON-safe values. */
export function toJSONValue(v: unknown): unknown {
  if (typeof v === 'bigint') {
    return v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= -BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();
  }
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex');
  if (Array.isArray(v)) return v.map(toJSONValue);
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) if (x !== undefined) out[k] = toJSONValue(x);
    return out;
  }
  return v;
}

function displayHash(h: Uint8Array): string {
  return Buffer.from(h).reverse().toString('hex');
}

/** JSON form of a decoded payload of `command`. */
export function payloadToJSON(command: string, payload: unknown): unknown {
  if (command === 'getheaders') {
    const p = payload as { version: number; locator: Uint8Array[]; hashStop: Uint8Array };
    return { version: p.version, locator: p.locator.map(displayHash), hashStop: displayHash(p.hashStop) };
  }
  return toJSONValue(payload);
}
