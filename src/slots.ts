/** Slot arithmetic shared by every stage. A range is inclusive on both ends. */
export const SLOT_COUNT = 16384;
export type SlotRange = [number, number];

/** Sorted distinct slots -> minimal list of ranges. */
export function toRanges(slots: Iterable<number>): SlotRange[] {
  const sorted = [...new Set(slots)].sort((a, b) => a - b);
  const out: SlotRange[] = [];
  for (const s of sorted) {
    const last = out[out.length - 1];
    if (last && last[1] === s - 1) last[1] = s;
    else out.push([s, s]);
  }
  return out;
}

export function expandRanges(ranges: readonly SlotRange[]): number[] {
  const out: number[] = [];
  for (const [a, b] of ranges) for (let s = a; s <= b; s++) out.push(s);
  return out;
}

export function countSlots(ranges: readonly SlotRange[]): number {
  let n = 0;
  for (const [a, b] of ranges) n += b - a + 1;
  return n;
}

export function formatRange([a, b]: SlotRange): string {
  return a === b ? `${a}` : `${a}-${b}`;
}

export function formatRanges(ranges: readonly SlotRange[]): string {
  return ranges.length === 0 ? "(none)" : ranges.map(formatRange).join(",");
}

/** "0-5460" or "42" -> range; null when malformed or out of 0..16383 or reversed. */
export function parseRange(text: string): SlotRange | null {
  const m = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(text);
  if (!m) return null;
  const a = Number(m[1]);
  const b = m[2] === undefined ? a : Number(m[2]);
  if (a > b || a < 0 || b >= SLOT_COUNT) return null;
  return [a, b];
}
