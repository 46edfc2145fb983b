/** The NAT lab's public API (see docs/LAB.md). */
export { Lab, reapLabs, downByState, listNamespaces, delayLinePath, assertRoot, describePlan } from './topology/lab.js';
export type { LabUpOptions, LabDescription, ReapResult } from './topology/lab.js';
export { planLab, planNamespaces, freshPrefix, LAB_NS_PATTERN, NAT_KINDS, INBOUND_POLICIES } from './topology/spec.js';
export type {
  LabSpec,
  SiteSpec,
  LabPlan,
  SitePlan,
  HostPlan,
  RouterPlan,
  PublicHostPlan,
  CorePlan,
  NatKind,
  InboundPolicy,
} from './topology/spec.js';
export { LabError, LabNodeError } from './errors.js';
export { readAllStates, ownerAlive, STATE_DIR } from './topology/state.js';
export type { LabState } from './topology/state.js';
export {
  parseSiteBehaviour,
  formatSiteBehaviour,
  parseDuration,
  parsePercent,
  SITE_BEHAVIOUR_WORDS,
} from './topology/spec.js';
export type { SiteBehaviourSpec } from './topology/spec.js';
export { ensurePrereqs, checkPrereqs, currentEnv, REQUIREMENTS } from './prereqs.js';
export type { PrereqNeed, PrereqEnv, PrereqCheck, Requirement, EnsureOptions } from './prereqs.js';
export { PrereqError } from './errors.js';
export { PrivateTorError } from './tor/private-tor-process.js';
export { PrivateI2pError } from './i2p/private-i2p.js';
