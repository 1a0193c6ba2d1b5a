/**
 * Shares and how far amounts are from them: the arithmetic the planner balances by and that `check`
 * and `import` report (kept here so that the spec and check stages need not import the planner).
 */

/** Integer shares of `total` proportional to weights, summing to total. */
export function weightedCounts(total: number, weights: readonly number[]): number[] {
  const sum = weights.reduce((a, b) => a + b, 0);
  const exact = weights.map((w) => (total * w) / sum);
  const counts = exact.map(Math.floor);
  let rest = total - counts.reduce((a, b) => a + b, 0);
  const order = exact.map((e, i) => ({ i, frac: e - Math.floor(e) })).sort((a, b) => b.frac - a.frac || a.i - b.i);
  for (let k = 0; rest > 0; k = (k + 1) % order.length, rest--) counts[order[k]!.i]! += 1;
  return counts;
}

/** Imbalance in percent: the largest deviation of a master's count from its share. */
export function imbalancePercent(current: readonly number[], target: readonly number[]): number {
  let worst = 0;
  for (let i = 0; i < target.length; i++) {
    const t = target[i]!;
    const c = current[i]!;
    const dev = t === 0 ? (c === 0 ? 0 : Infinity) : (Math.abs(c - t) / t) * 100;
    worst = Math.max(worst, dev);
  }
  return worst;
}

/** Imbalance in percent of amounts (keys, bytes) against an equal share of their total; 0 when there is nothing. */
export function equalShareImbalance(values: readonly number[]): number {
  const total = values.reduce((a, b) => a + b, 0);
  return total === 0 ? 0 : imbalancePercent(values, values.map(() => total / values.length));
}
