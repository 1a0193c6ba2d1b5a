const MiB = 1 << 20;

/** Bytes for people: MiB with one decimal, GiB from 10 GiB on. */
export function formatBytes(b: number): string {
  return b >= 10 * 1024 * MiB ? `${(b / 1024 / MiB).toFixed(1)} GiB` : `${(b / MiB).toFixed(1)} MiB`;
}
