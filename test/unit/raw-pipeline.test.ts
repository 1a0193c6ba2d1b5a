import { describe, expect, it } from "vitest";
import { encodeCommands, RespReader } from "../../src/redis/raw-pipeline.js";
import { arrayFrame, commandWithRaw, frameError, frameValue, replyEnd } from "../../src/redis/raw-lane.js";

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

describe("the raw lane's frames: replies kept as their bytes", () => {
  const wire = Buffer.concat([
    Buffer.from("*3\r\n$3\r\nk\r1\r\n$4\r\n\u0000\r\n\xff\r\n$0\r\n\r\n", "latin1"),
    Buffer.from("+OK\r\n-ERR Target instance replied with error: BUSYKEY\r\n:7\r\n$-1\r\n*-1\r\n*0\r\n*2\r\n*1\r\n:1\r\n$2\r\nab\r\n", "latin1"),
  ]);
  const frames = (buf: Buffer): Buffer[] => {
    const out: Buffer[] = [];
    for (let at = 0; ; ) {
      const end = replyEnd(buf, at);
      if (end < 0) return out;
      out.push(buf.subarray(at, end));
      at = end;
    }
  };

  it("splits replies at their ends, and waits for the rest of one cut anywhere", () => {
    const all = frames(wire);
    expect(all.map((f) => f.toString("latin1"))).toEqual([
      "*3\r\n$3\r\nk\r1\r\n$4\r\n\u0000\r\n\xff\r\n$0\r\n\r\n",
      "+OK\r\n",
      "-ERR Target instance replied with error: BUSYKEY\r\n",
      ":7\r\n",
      "$-1\r\n",
      "*-1\r\n",
      "*0\r\n",
      "*2\r\n*1\r\n:1\r\n$2\r\nab\r\n",
    ]);
    // Cut at every byte: the complete replies before the cut, nothing of the one it cuts.
    for (let cut = 0; cut <= wire.length; cut++) {
      const got = frames(wire.subarray(0, cut));
      expect(Buffer.concat(got).length).toBeLessThanOrEqual(cut);
      expect(got).toEqual(all.slice(0, got.length));
      expect(got.length === all.length || Buffer.concat(all.slice(0, got.length + 1)).length > cut).toBe(true);
    }
  });

  it("turns GETKEYSINSLOT's reply into MIGRATE ... KEYS with the same bytes, whatever bytes the keys hold", () => {
    const keys = [Buffer.from("k\r1", "latin1"), Buffer.from([0, 13, 10, 255]), Buffer.alloc(0), Buffer.from("ké", "utf8")];
    const reply = Buffer.concat([Buffer.from(`*${keys.length}\r\n`), ...keys.flatMap((k) => [Buffer.from(`$${k.length}\r\n`), k, Buffer.from("\r\n")])]);
    const { count, elements } = arrayFrame(reply);
    expect(count).toBe(4);
    const head = ["migrate", "127.0.0.1", 7001, "", 0, 5000, "keys"];
    const cmd = Buffer.concat(commandWithRaw(head, count, elements));
    // The same bytes a client encoding every argument would send.
    const expected = Buffer.concat([
      Buffer.from(`*${head.length + keys.length}\r\n`),
      ...[...head.map((h) => Buffer.from(String(h))), ...keys].flatMap((a) => [Buffer.from(`$${a.length}\r\n`), a, Buffer.from("\r\n")]),
    ]);
    expect(cmd.equals(expected)).toBe(true);
    expect(arrayFrame(Buffer.from("*0\r\n"))).toEqual({ count: 0, elements: Buffer.alloc(0) });
  });

  it("reads an error reply as an error, and refuses a reply that is not an array where one is due", () => {
    expect(frameError(Buffer.from("-IOERR error or timeout reading to target instance\r\n"))?.message).toBe("IOERR error or timeout reading to target instance");
    expect(frameError(Buffer.from("+NOKEY\r\n"))).toBeNull();
    expect(() => arrayFrame(Buffer.from("-MOVED 42 127.0.0.1:7002\r\n"))).toThrow("MOVED 42 127.0.0.1:7002");
    expect(() => arrayFrame(Buffer.from(":3\r\n"))).toThrow(/expected an array reply/);
    expect(frameValue(Buffer.from(":42\r\n"))).toBe(42);
    expect(frameValue(Buffer.from("+OK\r\n"))).toBe("OK");
    expect(frameValue(Buffer.from("$13\r\nloading:0\r\né\r\n", "utf8"))).toBe("loading:0\r\né");
    expect(frameValue(Buffer.from("$-1\r\n"))).toBeNull();
    expect(frameValue(Buffer.from("-CLUSTERDOWN The cluster is down\r\n"))).toEqual(new Error("CLUSTERDOWN The cluster is down"));
    expect(() => frameValue(Buffer.from("*0\r\n"))).toThrow(/expected a simple reply/);
  });
});
