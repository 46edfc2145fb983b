/**
 * onionpunch library entry point. Re-exports the public API of each layer.
 */
export { OnionpunchError, UsageError } from './errors.js';
