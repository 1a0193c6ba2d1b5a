import { describe, expect, it } from "vitest";
import calculateSlot from "cluster-key-slot";
import { TestKeyEncoder, testKey, testKeySlot, testValue } from "../../src/testdata/populate.js";
import { resp } from "../../src/redis/bulk.js";

describe("testKeySlot", () => {
  it.each(["key:", "", "ключ:", "a}b:", "{tag}:", "x{y"])("gives the slot Redis gives for prefix %j", (prefix) => {
    const slotOf = testKeySlot(prefix);
    for (const i of [0, 1, 9, 10, 12345, 999_999, 1_000_000, 9_999_999_999, 12_345_678_901]) {
      expect(slotOf(i)).toBe(calculateSlot(testKey(prefix, i)));
    }
    for (let i = 0; i < 20_000; i += 7) expect(slotOf(i)).toBe(calculateSlot(testKey(prefix, i)));
  });
});

describe("TestKeyEncoder", () => {
  it.each([
    ["key:", 16],
    ["", 1],
    ["ключ:", 3],
    ["{tag}:", 100],
  ])("writes the same bytes as SET testKey testValue (after SET's head) for prefix %j and %i-byte values", (prefix, size) => {
    const enc = new TestKeyEncoder(prefix, size);
    const out = Buffer.alloc(enc.bytes * 3);
    for (const i of [0, 7, 10, 99, 123_456, 1_000_000, 9_999_999_999]) {
      enc.encode(i, out, enc.bytes); // in the middle of the buffer
      // The key and the value, as the arguments of a SET (or of an MSET of several keys).
      expect("*3\r\n$3\r\nSET\r\n" + out.subarray(enc.bytes, 2 * enc.bytes).toString()).toBe(resp(["SET", testKey(prefix, i), testValue(i, size)]));
    }
  });
});
