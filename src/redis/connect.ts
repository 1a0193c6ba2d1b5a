/**
 * One admin connection to one node. Node-local commands (CLUSTER SETSLOT, FORGET, ...)
 * must reach exactly the node they are meant for, so shardform never sends them
 * through a cluster client, which may route a command elsewhere.
 */
import { Redis } from "ioredis";
import { AuthFailedError, NodeUnreachableError, assert } from "../errors.js";
import { parseNodeAddr, type NodeAddr } from "./node-key.js";

export interface Credentials {
  user?: string | undefined;
  password?: string | undefined;
}

/** Commands that only read. A read-only connection refuses everything else before it leaves the process. */
const READ_ONLY: ReadonlySet<string> = new Set([
  "ping",
  "info",
  "dbsize",
  "cluster nodes",
  "cluster info",
  "cluster myid",
  "cluster countkeysinslot",
  "cluster getkeysinslot",
  "cluster slots",
  "cluster shards",
  "get",
  "mget",
  "exists",
  "type",
]);

function commandName(args: readonly (string | number)[]): string {
  const first = String(args[0]).toLowerCase();
  if (first === "cluster" || first === "config" || first === "client") return `${first} ${String(args[1]).toLowerCase()}`;
  return first;
}

export interface NodeClientOptions {
  credentials?: Credentials;
  /** When true, any command outside the read-only list throws before being sent. */
  readOnly?: boolean;
  connectTimeoutMs?: number;
  commandTimeoutMs?: number;
}

export class NodeClient {
  readonly addr: NodeAddr;
  readonly readOnly: boolean;
  private readonly redis: Redis;

  private constructor(addr: NodeAddr, redis: Redis, readOnly: boolean) {
    this.addr = addr;
    this.redis = redis;
    this.readOnly = readOnly;
  }

  static async connect(addr: NodeAddr, opts: NodeClientOptions = {}): Promise<NodeClient> {
    const { host, port } = parseNodeAddr(addr);
    const redis = new Redis({
      host,
      port,
      username: opts.credentials?.user,
      password: opts.credentials?.password,
      // RESP2 keeps reply shapes those that redis-cli and the docs show.
      protocol: 2,
      lazyConnect: true,
      connectTimeout: opts.connectTimeoutMs ?? 3000,
      commandTimeout: opts.commandTimeoutMs ?? 10000,
      maxRetriesPerRequest: 0,
      enableOfflineQueue: true,
      retryStrategy: () => null,
      enableReadyCheck: false,
    });
    // Errors surface through the awaited commands; the last one explains a closed connection.
    let lastError: unknown;
    redis.on("error", (err) => (lastError = err));
    try {
      await redis.connect();
      await redis.ping();
    } catch (err) {
      redis.disconnect();
      const cause = describe(lastError ?? err);
      if (/WRONGPASS|NOAUTH|invalid password|called without any password/i.test(cause)) {
        throw new AuthFailedError(addr, cause);
      }
      throw new NodeUnreachableError(addr, cause);
    }
    return new NodeClient(addr, redis, opts.readOnly ?? false);
  }

  private guard(args: readonly (string | number)[]): void {
    if (this.readOnly) {
      const name = commandName(args);
      assert(READ_ONLY.has(name), `read-only connection to ${this.addr} was asked to send "${name}"`);
    }
  }

  async call(...args: (string | number)[]): Promise<unknown> {
    this.guard(args);
    try {
      return await this.redis.call(String(args[0]), ...args.slice(1));
    } catch (err) {
      if (isConnectionError(err)) throw new NodeUnreachableError(this.addr, describe(err));
      throw err;
    }
  }

  /** Like call, but replies keep binary data (keys) as Buffers. */
  async callBuffer(...args: (string | number | Buffer)[]): Promise<unknown> {
    this.guard(args.map((a) => (Buffer.isBuffer(a) ? "" : a)));
    try {
      return await this.redis.callBuffer(String(args[0]), ...args.slice(1));
    } catch (err) {
      if (isConnectionError(err)) throw new NodeUnreachableError(this.addr, describe(err));
      throw err;
    }
  }

  /** DUMP of a key in a slot this node is importing: ASKING and DUMP sent together, so nothing runs between. */
  async askingDump(key: Buffer): Promise<Buffer | null> {
    assert(!this.readOnly, "askingDump on a read-only connection");
    const res = await this.redis.pipeline().call("asking").callBuffer("dump", key).exec();
    assert(res !== null, "pipeline returned null");
    const [err, value] = res[1]!;
    if (err) throw err;
    return value as Buffer | null;
  }

  async callString(...args: (string | number)[]): Promise<string> {
    const r = await this.call(...args);
    if (typeof r !== "string") throw new Error(`Assertion failed: ${String(args[0])} on ${this.addr} did not return a string`);
    return r;
  }

  /** Sends many commands in one round trip; per-command errors are returned, not thrown. */
  async pipeline(commands: (string | number)[][]): Promise<[Error | null, unknown][]> {
    for (const c of commands) this.guard(c);
    const p = this.redis.pipeline();
    for (const c of commands) p.call(String(c[0]), ...c.slice(1));
    const res = await p.exec();
    assert(res !== null, "pipeline returned null");
    return res as [Error | null, unknown][];
  }

  /** Like pipeline, but arguments may be Buffers (keys) and replies keep binary data as Buffers. */
  async pipelineBuffer(commands: (string | number | Buffer)[][]): Promise<[Error | null, unknown][]> {
    for (const c of commands) this.guard(c.map((a) => (Buffer.isBuffer(a) ? "" : a)));
    const p = this.redis.pipeline();
    for (const c of commands) p.callBuffer(String(c[0]), ...c.slice(1));
    const res = await p.exec();
    assert(res !== null, "pipeline returned null");
    return res as [Error | null, unknown][];
  }

  async close(): Promise<void> {
    try {
      await this.redis.quit();
    } catch {
      this.redis.disconnect();
    }
  }
}

function isConnectionError(err: unknown): boolean {
  const msg = describe(err);
  return /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|Connection is closed|Command timed out|connect ETIMEDOUT/.test(msg);
}

export function describe(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
