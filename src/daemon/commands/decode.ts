/**
 * `onionpunch decode [HEX]`: decodes one or more framed P2P messages (hex argument or stdin; whitespace
 * tolerated), any known network. One JSON line per message: {network, command, length, checksumOk,
 * payload}; a bad message gives a line with `error: {code, message}` and exit code 1.
 * bigints print as numbers when |v| <= 2^53-1, else as decimal strings; bytes as hex.
 */
import { parseCommand } from '../args.js';
import { asciiJson } from '../log.js';
import { FrameParser, isKnownCommand, payloadToJSON, tryDecodePayload, type Frame } from '../../wire/index.js';

const DECODE = {
  name: 'decode',
  summary:
    'Decodes framed P2P messages of any known network from hex (the arguments, joined, or stdin when there\n' +
    'are none; whitespace tolerated): one JSON line per message, exit 1 if any is bad.',
  operands: '[HEX]...',
  maxOperands: 1024,
  options: {},
};

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('latin1');
}

/** Decodes a hex string of framed messages into JSON-ready lines; `ok` false if any line is an error. */
export function decodeHex(text: string): { lines: object[]; ok: boolean } {
  const hex = text.replace(/\s+/g, '').replace(/^0x/i, '');
  if (hex.length % 2 !== 0 || !/^[0-9a-f]*$/i.test(hex)) {
    return {
      lines: [
        {
          error: { code: 'DECODE_BAD_HEX', message: hex.length % 2 ? 'odd number of hex digits' : 'input is not hex' },
        },
      ],
      ok: false,
    };
  }
  const bytes = Buffer.from(hex, 'hex');
  const parser = new FrameParser({ verifyChecksum: false });
  const lines: object[] = [];
  let ok = true;
  const { frames, error } = parser.push(bytes);
  for (const f of frames) {
    const line = frameLine(f);
    if ('error' in line) ok = false;
    lines.push(line);
    if (!f.checksumOk) return { lines, ok: false }; // framing can no longer be trusted
  }
  const err = error ?? parser.end();
  if (err) {
    lines.push({ error: err.toJSON() });
    ok = false;
  }
  if (bytes.length === 0) {
    lines.push({ error: { code: 'DECODE_EMPTY', message: 'no input' } });
    ok = false;
  }
  return { lines, ok };
}

function frameLine(f: Frame): Record<string, unknown> {
  const base = { network: f.network, command: f.command, length: f.length, checksumOk: f.checksumOk };
  if (!f.checksumOk) {
    return {
      ...base,
      error: {
        code: 'WIRE_BAD_CHECKSUM',
        message: `${f.command}: checksum does not match header ${f.checksum.toString('hex')}`,
      },
    };
  }
  if (!isKnownCommand(f.command)) return { ...base, payload: { hex: f.payload.toString('hex') } };
  const r = tryDecodePayload(f.command, f.payload);
  if (!r.ok) return { ...base, error: r.error.toJSON() };
  return { ...base, payload: payloadToJSON(f.command, r.value) };
}

export async function main(args: string[]): Promise<number> {
  const p = parseCommand(DECODE, args);
  if (p === null) return 0;
  const text = p.operands.length ? p.operands.join('') : await readStdin();
  const { lines, ok } = decodeHex(text);
  // Decoded strings (user agents, reasons) come from whoever sent the bytes: printable ASCII JSON only.
  for (const l of lines) process.stdout.write(asciiJson(l) + '\n');
  return ok ? 0 : 1;
}
