import { OnionpunchError } from '../errors.js';

/** Stable codes: SIM_BAD_OPTION (a simulation parameter out of range), SIM_NO_CHARTS (vega/vega-lite missing). */
export type SimErrorCode = 'SIM_BAD_OPTION' | 'SIM_NO_CHARTS';

/** The simulator was given nonsense, or cannot draw its charts. */
export class SimError extends OnionpunchError {
  declare readonly code: SimErrorCode;
  constructor(code: SimErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}
