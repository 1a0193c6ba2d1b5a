import { describe, expect, it } from "vitest";
import calculateSlot from "cluster-key-slot";
import { testKey, testKeySlot } from "../../src/testdata/populate.js";

describe("testKeySlot", () => {
  it.each(["key:", "", "ключ:", "a}b:", "{tag}:", "x{y"])("gives the slot Redis gives for prefix %j", (prefix) => {
    const slotOf = testKeySlot(prefix);
    for (const i of [0, 1, 9, 10, 12345, 999_999, 1_000_000, 9_999_999_999, 12_345_678_901]) {
      expect(slotOf(i)).toBe(calculateSlot(testKey(prefix, i)));
    }
    for (let i = 0; i < 20_000; i += 7) expect(slotOf(i)).toBe(calculateSlot(testKey(prefix, i)));
  });
});
