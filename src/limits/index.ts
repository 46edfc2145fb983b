/** Rate limits and concurrency caps shared by punch/ and relay/. */
export { type Clock, monotonicMs, ManualClock } from './clock.js';
export { LimitError, type LimitErrorCode } from './errors.js';
export { TokenBucket, type TokenBucketOptions } from './token-bucket.js';
export { ConcurrencyCap, type Release } from './concurrency-cap.js';
export { KeyedBuckets, KeyedCaps, type KeyedBucketsOptions, type KeyedCapsOptions } from './keyed.js';
export { netgroupOf } from './netgroup.js';
export { NetgroupAdmission } from './netgroup-admission.js';
export type { Admission, AdmissionRefusal, NetgroupAdmissionOptions } from './netgroup-admission.js';
