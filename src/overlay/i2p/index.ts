/** The I2P coordination transport (SAM v3.1). */
export * from './sam.js';
export { I2pCoordinationEndpoint, type I2pEndpointOptions } from './endpoint.js';
export { I2pCoordinationDialer, I2P_DIAL_TIMEOUT_MS, type I2pDialerOptions } from './dialer.js';
export type { I2pKeys } from './sam.js';
