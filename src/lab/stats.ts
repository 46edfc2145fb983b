/** Small statistics for time-to-connect reports. */

/** The q-quantile (0..1) by linear interpolation; NaN for an empty list. */
export function quantile(values: number[], q: number): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo]! + (s[hi]! - s[lo]!) * (pos - lo);
}

export function median(values: number[]): number {
  return quantile(values, 0.5);
}

export function round1(x: number): number {
  return Math.round(x * 10) / 10;
}
