/** Hole-punch announcements and their best-effort relay (docs/PROTOCOL.md, "Relay"). */
export { RelayError, type RelayErrorCode } from './errors.js';
export {
  ANNOUNCEMENT_MAX_AGE_S,
  ANNOUNCEMENT_MAX_FUTURE_S,
  makeAnnouncement,
  toAnnouncement,
  isFresh,
  announcementKey,
  announcementAddressKey,
  type Announcement,
  type MakeAnnouncementOptions,
} from './announcement.js';
export {
  AnnouncementRelay,
  RELAY_TARGET_BUCKET_S,
  type RelayPeer,
  type RelayOptions,
  type RelayDecision,
} from './relay.js';
export {
  AnnouncementDirectory,
  DIRECTORY_MAX_PER_CLEARNET,
  DIRECTORY_MAX_SOURCES,
  DIRECTORY_LOCAL_SOURCE,
  type AnnouncementDirectoryOptions,
} from './directory.js';
export {
  RELAY_FANOUT,
  RELAY_PUSH_MAX_ENTRIES,
  RELAY_BUCKET_INITIAL,
  GETADDR_ANSWER_MAX_ENTRIES,
  GETADDR_INTERVAL_S,
  GETADDR_MIN_SPACING_S,
  ANNOUNCE_INTERVAL_S,
  RELAYS_PER_NODE,
  chunkEntries,
} from './defaults.js';
export { GetaddrMeter, getaddrAskerKey, type GetaddrMeterOptions } from './getaddr.js';
