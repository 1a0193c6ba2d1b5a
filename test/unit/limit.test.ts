import { describe, expect, it } from "vitest";
import { setTimeout as sleep } from "node:timers/promises";
import { mapLimit } from "../../src/util/limit.js";

describe("mapLimit", () => {
  it("keeps the items' order and never runs more than the limit at once", async () => {
    let running = 0;
    let most = 0;
    const out = await mapLimit([5, 1, 4, 2, 3], 2, async (x) => {
      most = Math.max(most, ++running);
      await sleep(x);
      running--;
      return x * 10;
    });
    expect(out).toEqual([50, 10, 40, 20, 30]);
    expect(most).toBe(2);
  });

  it("after a failure starts nothing new, and rejects only once the calls in flight have ended (a lease's cleanup must see every connection)", async () => {
    const started: number[] = [];
    const ended: number[] = [];
    const p = mapLimit([0, 1, 2, 3, 4, 5], 3, async (i) => {
      started.push(i);
      if (i === 0) throw new Error("first fails");
      await sleep(30);
      ended.push(i);
      return i;
    });
    await expect(p).rejects.toThrow("first fails");
    // 1 and 2 were in flight when 0 failed: they ended before the rejection; 3.. never started.
    expect(started).toEqual([0, 1, 2]);
    expect(ended.sort()).toEqual([1, 2]);
  });
});
