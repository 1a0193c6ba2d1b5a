import { randomBytes } from "node:crypto";
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from "node:fs";
import { dirname } from "node:path";

/**
 * Writes a file so that a crash leaves either the old or the new content: temp file, fsync, rename,
 * fsync of the directory. The temp file has an unpredictable name and is created with O_EXCL, so
 * nothing planted at that path (a symlink in a shared directory) is written through.
 */
export function writeAtomic(file: string, text: string, mode = 0o600): void {
  const tmp = `${file}.tmp-${randomBytes(8).toString("hex")}`;
  const fd = openSync(tmp, "wx", mode);
  try {
    try {
      writeSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  try {
    const dfd = openSync(dirname(file), "r");
    try {
      fsyncSync(dfd);
    } finally {
      closeSync(dfd);
    }
  } catch {
    // Some platforms cannot fsync a directory; the rename is still atomic.
  }
}
