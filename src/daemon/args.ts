/**
 * A cursor over command-line arguments shared by the verbs: one place that turns a missing or malformed
 * option value into a UsageError naming the option.
 */
import { UsageError } from '../errors.js';

export class ArgReader {
  private i = 0;
  constructor(private readonly args: readonly string[]) {}

  /** The next argument (an option or operand), or undefined at the end. */
  next(): string | undefined {
    return this.args[this.i++];
  }

  /** The value that follows option `opt`. */
  value(opt: string): string {
    const v = this.args[this.i++];
    if (v === undefined) throw new UsageError(`${opt} needs a value`);
    return v;
  }

  /** A finite number in [min, max]; `integer` additionally requires a whole number. */
  number(opt: string, min: number, max: number, integer = false): number {
    const raw = this.value(opt);
    const v = Number(raw);
    if (raw.trim() === '' || !Number.isFinite(v) || v < min || v > max || (integer && !Number.isInteger(v))) {
      throw new UsageError(`${opt}: expected ${integer ? 'an integer' : 'a number'} in [${min}, ${max}], got '${raw}'`);
    }
    return v;
  }

  /** One of a fixed set of words. */
  oneOf<T extends string>(opt: string, list: readonly T[]): T {
    const v = this.value(opt);
    if (!(list as readonly string[]).includes(v)) throw new UsageError(`${opt}: expected one of ${list.join(', ')}, got '${v}'`);
    return v as T;
  }
}
