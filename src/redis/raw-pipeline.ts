/**
 * Large read-only pipelines (thousands of CLUSTER COUNTKEYSINSLOT, GETKEYSINSLOT or MEMORY USAGE) on a
 * connection of their own: the commands go out as one buffer of RESP and the replies are parsed as
 * they arrive. ioredis makes an object, a promise and a reply array per command, which costs about ten
 * times as long as the round trip itself for a pipeline of 5,000 commands (30 ms against 3 ms on
 * loopback) and puts observing a cluster and sampling its keys on the CPU rather than on the network.
 *
 * Replies have ioredis' pipeline shape: [error, value] per command; integers as numbers, bulk strings
 * as UTF-8 strings, arrays as arrays, a null bulk as null. A connection that fails, breaks or misses
 * the deadline rejects the whole pipeline with the same errors as NodeClient.
 */
import { connect, type Socket } from "node:net";
import { connect as tlsConnect, type ConnectionOptions } from "node:tls";
import { NodeTimeoutError, NodeUnreachableError } from "../errors.js";
import type { Credentials } from "./connect.js";
import { authError, connectError } from "./errors.js";
import { parseNodeAddr, type NodeAddr } from "./node-key.js";

export type Reply = string | number | null | Error | Reply[];

/** Arguments as RESP bulk strings, without the array's header. */
export function bulkStrings(args: readonly (string | number)[]): string {
  let out = "";
  for (const a of args) {
    const s = String(a);
    out += `$${Buffer.byteLength(s)}\r\n${s}\r\n`;
  }
  return out;
}

/** One RESP command: an array of bulk strings. */
export function resp(args: readonly (string | number)[]): string {
  return `*${args.length}\r\n${bulkStrings(args)}`;
}

/** Encodes commands as RESP, one buffer for all. */
export function encodeCommands(commands: readonly (readonly (string | number)[])[]): Buffer {
  let out = "";
  for (const c of commands) out += resp(c);
  return Buffer.from(out, "utf8");
}

/** The AUTH command for a password (with the user name when there is one). */
export function authCommand(user: string | undefined, password: string): string[] {
  return user ? ["AUTH", user, password] : ["AUTH", password];
}

/** What a raw connection sends before its commands: AUTH when there is a password, SELECT when the database is not 0. */
export function loginCommands(creds: Credentials | undefined, db: number | undefined): (string | number)[][] {
  const out: (string | number)[][] = [];
  if (creds?.password) out.push(authCommand(creds.user, creds.password));
  if (db) out.push(["SELECT", db]);
  return out;
}

/** A login command's error reply, as the error of the connection: a refused password, or the command that failed. */
export function loginError(addr: NodeAddr, command: readonly (string | number)[], reply: Error, creds: Credentials | undefined): Error {
  return authError(addr, reply, creds) ?? new NodeUnreachableError(addr, `${String(command[0])} failed: ${reply.message}`);
}

const CR = 13;

/**
 * An incremental RESP2 reader: feed it bytes, take the replies that are complete. A reply cut by a
 * chunk boundary waits for the next chunk (its start is kept, nothing is parsed twice past it).
 */
export class RespReader {
  private buf: Buffer = Buffer.alloc(0);
  private pos = 0;
  readonly replies: Reply[] = [];

  feed(chunk: Buffer): void {
    this.buf = this.pos < this.buf.length ? Buffer.concat([this.buf.subarray(this.pos), chunk]) : chunk;
    this.pos = 0;
    for (;;) {
      const start = this.pos;
      const r = this.read();
      if (r === undefined) {
        this.pos = start;
        return;
      }
      this.replies.push(r);
    }
  }

  /** The line at pos (without CRLF), moving past it; undefined when it is not complete yet. */
  private line(): string | undefined {
    const end = this.buf.indexOf(CR, this.pos);
    if (end < 0 || end + 1 >= this.buf.length) return undefined;
    const s = this.buf.toString("latin1", this.pos, end);
    this.pos = end + 2;
    return s;
  }

  private read(): Reply | undefined {
    if (this.pos >= this.buf.length) return undefined;
    const type = this.buf[this.pos]!;
    this.pos++;
    const head = this.line();
    if (head === undefined) return undefined;
    switch (type) {
      case 0x2b: // +
        return head;
      case 0x2d: // -
        return new Error(head);
      case 0x3a: // :
        return Number(head);
      case 0x24: {
        // $
        const n = Number(head);
        if (n < 0) return null;
        if (this.pos + n + 2 > this.buf.length) return undefined;
        const s = this.buf.toString("utf8", this.pos, this.pos + n);
        this.pos += n + 2;
        return s;
      }
      case 0x2a: {
        // *
        const n = Number(head);
        if (n < 0) return null;
        const out: Reply[] = new Array<Reply>(n);
        for (let i = 0; i < n; i++) {
          const r = this.read();
          if (r === undefined) return undefined;
          out[i] = r;
        }
        return out;
      }
      default:
        throw new Error(`Protocol error: unexpected reply type ${JSON.stringify(String.fromCharCode(type))}`);
    }
  }
}

export interface RawPipelineOptions {
  credentials?: Credentials | undefined;
  /** TLS options as NodeClient connects with them (tlsConnectOptions), or none for plain TCP. */
  tls?: ConnectionOptions | undefined;
  /** The database the commands read (SELECT first when not 0). */
  db?: number;
  timeoutMs: number;
}

/**
 * A TCP or TLS socket to a node, Nagle off, for the raw RESP paths (this pipeline, the migration lane,
 * the bulk writer). `ready` settles when it connected (or the TLS handshake ended), or with the error
 * that says why not; the caller destroys the socket when it gives up waiting.
 */
export function openSocket(addr: NodeAddr, tls: ConnectionOptions | undefined): { socket: Socket; ready: Promise<void> } {
  const { host, port } = parseNodeAddr(addr);
  const socket: Socket = tls ? tlsConnect({ host, port, ...tls }) : connect({ host, port });
  socket.setNoDelay(true);
  const ready = new Promise<void>((done, fail) => {
    socket.once(tls ? "secureConnect" : "connect", () => done());
    socket.once("error", (err) => fail(connectError(addr, err, Boolean(tls))));
  });
  // A caller that stopped waiting (its deadline passed) must not see an unhandled rejection.
  ready.catch(() => undefined);
  return { socket, ready };
}

/** Sends `commands` to `addr` on a connection of their own and returns each one's [error, value]. */
export async function rawPipeline(addr: NodeAddr, commands: readonly (readonly (string | number)[])[], opts: RawPipelineOptions): Promise<[Error | null, unknown][]> {
  if (commands.length === 0) return [];
  const creds = opts.credentials;
  const tls = opts.tls;
  const prefix = loginCommands(creds, opts.db);
  const want = prefix.length + commands.length;
  const reader = new RespReader();
  let socket: Socket | undefined;
  let timer: NodeJS.Timeout | undefined;
  try {
    return await new Promise<[Error | null, unknown][]>((resolveAll, rejectAll) => {
      let connected = false;
      let settled = false;
      const done = (v: [Error | null, unknown][]): void => {
        settled = true;
        resolveAll(v);
      };
      const fail = (err: Error): void => {
        settled = true;
        rejectAll(err);
      };
      timer = setTimeout(() => settled || fail(new NodeTimeoutError(addr, `a pipeline of ${commands.length} command(s)`, opts.timeoutMs)), opts.timeoutMs);
      const { socket: s, ready } = openSocket(addr, tls);
      socket = s;
      ready.then(
        () => {
          connected = true;
          s.write(encodeCommands([...prefix, ...commands]));
        },
        (err: Error) => settled || fail(err),
      );
      s.on("data", (d: Buffer) => {
        try {
          reader.feed(d);
        } catch (err) {
          fail(err as Error);
          return;
        }
        // AUTH and SELECT come first: an error there fails the whole pipeline, as it would the connection.
        for (let i = 0; i < Math.min(prefix.length, reader.replies.length); i++) {
          const r = reader.replies[i];
          if (r instanceof Error) {
            fail(loginError(addr, prefix[i]!, r, creds));
            return;
          }
        }
        if (reader.replies.length >= want) {
          done(reader.replies.slice(prefix.length).map((r) => (r instanceof Error ? [r, undefined] : [null, r])));
        }
      });
      s.on("error", (err) => {
        if (!settled && connected) fail(new NodeUnreachableError(addr, `connection lost during a pipeline (${err.message})`));
      });
      s.on("close", () => {
        // Before the connection stood, its error comes through `ready` (emitted with this close).
        if (!settled && connected) fail(new NodeUnreachableError(addr, "connection closed during a pipeline"));
      });
    });
  } finally {
    clearTimeout(timer);
    socket?.destroy();
  }
}
