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
