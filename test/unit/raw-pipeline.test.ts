import { describe, expect, it } from "vitest";
import { encodeCommands, RespReader } from "../../src/redis/raw-pipeline.js";

describe("raw pipelines: RESP written and read without ioredis", () => {
  it("encodes commands as arrays of bulk strings, counting bytes (not characters)", () => {
    expect(encodeCommands([["cluster", "countkeysinslot", 42], ["get", "ké"]]).toString("utf8")).toBe(
      "*3\r\n$7\r\ncluster\r\n$15\r\ncountkeysinslot\r\n$2\r\n42\r\n*2\r\n$3\r\nget\r\n$3\r\nké\r\n",
    );
  });

  it("reads every reply type, also when chunks cut a reply anywhere", () => {
    const wire = Buffer.from("+OK\r\n:123\r\n-ERR bad slot\r\n$-1\r\n$4\r\nhé!\r\n*2\r\n$1\r\na\r\n$0\r\n\r\n*0\r\n*-1\r\n*2\r\n*1\r\n:1\r\n+x\r\n", "utf8");
    const expected = ["OK", 123, new Error("ERR bad slot"), null, "hé!", ["a", ""], [], null, [[1], "x"]];
    for (let cut = 1; cut < wire.length; cut++) {
      const r = new RespReader();
      r.feed(wire.subarray(0, cut));
      r.feed(wire.subarray(cut));
      expect(r.replies).toEqual(expected);
    }
    const one = new RespReader();
    for (let i = 0; i < wire.length; i++) one.feed(wire.subarray(i, i + 1));
    expect(one.replies).toEqual(expected);
  });

  it("refuses a reply that is not RESP", () => {
    expect(() => new RespReader().feed(Buffer.from("HTTP/1.1 400\r\n"))).toThrow(/Protocol error: unexpected reply type "H"/);
  });
});
