import { randomBytes } from "node:crypto";
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from "node:fs";
import { open } from "node:fs/promises";
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

/**
 * writeAtomic with the writing and both fsyncs off the main thread (in libuv's pool), for a file
 * written often while other work goes on (the checkpoint). Writes of one file may end out of order:
 * the temp file is renamed into place on the main thread, and only if `claim()` (called right before
 * the rename, in the same tick) says that no newer content got there first; `claim` must record its
 * own content as the newest at once. Resolves true when it was renamed into place, false when a newer
 * content had been (the temp file is removed).
 */
export async function writeAtomicAsync(file: string, text: string, claim: () => boolean, mode = 0o600): Promise<boolean> {
  const tmp = `${file}.tmp-${randomBytes(8).toString("hex")}`;
  try {
    const fh = await open(tmp, "wx", mode);
    try {
      await fh.writeFile(text);
      await fh.sync();
    } finally {
      await fh.close();
    }
    if (!claim()) {
      rmSync(tmp, { force: true });
      return false;
    }
    renameSync(tmp, file);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  try {
    const dir = await open(dirname(file), "r");
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  } catch {
    // As in writeAtomic: the rename is atomic all the same.
  }
  return true;
}
