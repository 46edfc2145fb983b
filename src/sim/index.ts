/** Network-scale simulation of announcement relay over the real src/relay/ code (docs/SIMULATION.md). Tooling. */
export { runRelaySim, type RelaySimOptions, type RelaySimResult, type Dist, type SimTopology } from './relay-sim.js';
export { renderSvg, coverageSpec } from './plot.js';
export { SimError, type SimErrorCode } from './errors.js';
export { Prng } from './prng.js';
export { EventHeap } from './heap.js';
