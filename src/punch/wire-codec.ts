/**
 * The real frame codec for coordination streams: Bitcoin P2P framing with the network's magic (src/wire/),
 * mapping wire payloads to the session's CoordMessage shapes. B's version reveals nothing: services 0,
 * addr_recv and addr_from all-zero, start_height 0, relay false; A's version likewise (the coordination
 * endpoint is never linked to any other identity).
 */
import {
  FrameParser,
  encodeMessage,
  decodePayload,
  isKnownCommand,
  OPFIRE_SCHEDULE_PLAIN,
  OPFIRE_SCHEDULE_PRIME_THEN_FIRE,
  OPSTALL_STATE_SYN_SENT,
  PROTOCOL_VERSION,
  MAX_OP_PAYLOAD,
  type NetworkName,
} from '../wire/index.js';
import type { FrameCodec } from './channel.js';
import type { CoordMessage } from './messages.js';
import { PunchSessionError } from './errors.js';

const ZERO_ADDR = { services: 0n, address: '::', port: 0 };

export function wireCodec(network: NetworkName = 'main'): FrameCodec {
  return {
    encode(m: CoordMessage): Buffer {
      switch (m.cmd) {
        case 'version':
          return encodeMessage(network, 'version', {
            version: PROTOCOL_VERSION,
            services: 0n,
            timestamp: 0n,
            addrRecv: ZERO_ADDR,
            addrFrom: ZERO_ADDR,
            nonce: m.nonce,
            userAgent: m.userAgent,
            startHeight: 0,
            relay: false,
          });
        case 'verack':
          return encodeMessage(network, 'verack', {});
        case 'ping':
          return encodeMessage(network, 'ping', { nonce: m.nonce });
        case 'pong':
          return encodeMessage(network, 'pong', { nonce: m.nonce });
        case 'opendpoint':
          return encodeMessage(network, 'opendpoint', {
            sessionId: m.sessionId,
            flags: m.flags,
            endpoints: m.endpoints,
          });
        case 'opfire':
          return encodeMessage(network, 'opfire', {
            sessionId: m.sessionId,
            delayUs: m.delayUs,
            schedule: m.profile === 'prime' ? OPFIRE_SCHEDULE_PRIME_THEN_FIRE : OPFIRE_SCHEDULE_PLAIN,
            deadlineMs: m.deadlineMs,
          });
        case 'opresult':
          return encodeMessage(network, 'opresult', {
            sessionId: m.sessionId,
            status: m.status,
            elapsedMs: m.elapsedMs,
            reason: m.reason,
          });
        case 'opreject':
          return encodeMessage(network, 'opreject', { code: m.code, reason: m.reason });
        case 'opstall':
          return encodeMessage(network, 'opstall', { sessionId: m.sessionId, state: OPSTALL_STATE_SYN_SENT });
        case 'opspray': {
          const { cmd: _c, ...p } = m;
          return encodeMessage(network, 'opspray', p);
        }
        case 'oppad':
          return encodeMessage(network, 'oppad', { length: m.length });
        case 'other':
          throw new PunchSessionError('PUNCH_PROTOCOL', `cannot send unknown command ${m.command}`);
      }
    },
    decoder() {
      // Coordination messages are small: cap every frame at 4 KiB (version < 400 bytes, op* ≤ 1024).
      const parser = new FrameParser({ network, maxPayload: Math.max(4096, MAX_OP_PAYLOAD) });
      return {
        push(chunk: Buffer): CoordMessage[] {
          const { frames, error } = parser.push(chunk);
          const out: CoordMessage[] = [];
          for (const f of frames) {
            const c = f.command;
            if (!isKnownCommand(c)) {
              out.push({ cmd: 'other', command: c });
              continue;
            }
            switch (c) {
              case 'version': {
                const v = decodePayload('version', f.payload);
                out.push({ cmd: 'version', nonce: v.nonce, userAgent: v.userAgent });
                break;
              }
              case 'verack':
                out.push({ cmd: 'verack' });
                break;
              case 'ping':
              case 'pong':
                out.push({ cmd: c, nonce: decodePayload(c, f.payload).nonce });
                break;
              case 'opendpoint': {
                const p = decodePayload('opendpoint', f.payload);
                out.push({
                  cmd: 'opendpoint',
                  sessionId: p.sessionId,
                  flags: p.flags,
                  endpoints: p.endpoints.map((e) => ({ address: e.address, port: e.port })),
                });
                break;
              }
              case 'opfire': {
                const p = decodePayload('opfire', f.payload);
                if (p.schedule !== OPFIRE_SCHEDULE_PLAIN && p.schedule !== OPFIRE_SCHEDULE_PRIME_THEN_FIRE) {
                  throw new PunchSessionError('PUNCH_PROTOCOL', `opfire: unknown schedule ${p.schedule}`);
                }
                out.push({
                  cmd: 'opfire',
                  sessionId: p.sessionId,
                  delayUs: p.delayUs,
                  profile: p.schedule === OPFIRE_SCHEDULE_PLAIN ? 'plain' : 'prime',
                  deadlineMs: p.deadlineMs,
                });
                break;
              }
              case 'opresult': {
                const p = decodePayload('opresult', f.payload);
                out.push({
                  cmd: 'opresult',
                  sessionId: p.sessionId,
                  status: p.status,
                  elapsedMs: p.elapsedMs,
                  reason: p.reason,
                });
                break;
              }
              case 'opreject': {
                const p = decodePayload('opreject', f.payload);
                out.push({ cmd: 'opreject', code: p.code, reason: p.reason });
                break;
              }
              case 'opspray':
                out.push({ cmd: 'opspray', ...decodePayload('opspray', f.payload) });
                break;
              case 'opstall':
                out.push({ cmd: 'opstall', sessionId: decodePayload('opstall', f.payload).sessionId });
                break;
              case 'oppad':
                out.push({ cmd: 'oppad', length: decodePayload('oppad', f.payload).length });
                break;
              default:
                out.push({ cmd: 'other', command: c });
            }
          }
          if (error) throw error;
          return out;
        },
      };
    },
  };
}
