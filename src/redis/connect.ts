/**
 * One admin connection to one node. Node-local commands (CLUSTER SETSLOT, FORGET, ...)
 * must reach exactly the node they are meant for, so shardform never sends them
 * through a cluster client, which may route a command elsewhere.
 *
 * Every command has a deadline. A connection that misses one, or that breaks, is marked broken and
 * closed, so that callers (the executor's pool) open a fresh one instead of waiting on a dead socket.
 */
import { connect as tcpConnect } from "node:net";
import type { ConnectionOptions } from "node:tls";
import { Redis } from "ioredis";
import { rawPipeline } from "./raw-pipeline.js";
import { RawLane } from "./raw-lane.js";
import { debugEnabled, logCommand, logDebug } from "./debug-log.js";
import { NodeTimeoutError, NodeUnreachableError, assert } from "../errors.js";
import { NOT_RESP, authError, connectError, describe, isConnectionError, permissionError } from "./errors.js";
import { parseNodeAddr, type NodeAddr } from "./node-key.js";

export { describe } from "./errors.js";

export interface Credentials {
  user?: string | undefined;
  password?: string | undefined;
  /** Where the password came from, for messages ("environment variable REDIS_PASSWORD"); never the password. */
  source?: string | undefined;
}

/** TLS material as loaded from files (see cli/access.ts); never written anywhere. */
export interface TlsSettings {
  ca?: Buffer | undefined;
  cert?: Buffer | undefined;
  key?: Buffer | undefined;
  servername?: string | undefined;
  /** Skip certificate verification (like redis-cli --insecure). */
  insecure?: boolean | undefined;
}

/** Node's TLS connect options for these settings: shared by the admin connections and the bulk writer. */
export function tlsConnectOptions(tls: TlsSettings): ConnectionOptions {
  return {
    ...(tls.ca ? { ca: tls.ca } : {}),
    ...(tls.cert ? { cert: tls.cert } : {}),
    ...(tls.key ? { key: tls.key } : {}),
    ...(tls.servername ? { servername: tls.servername } : {}),
    rejectUnauthorized: !tls.insecure,
    ...(tls.insecure ? { checkServerIdentity: () => undefined } : {}),
  };
}

/** How to reach nodes: credentials, TLS, and the name our connections carry (CLIENT SETNAME). */
export interface Access {
  credentials?: Credentials | undefined;
  tls?: TlsSettings | undefined;
  /** Shown in CLIENT LIST / MONITOR, e.g. "shardform-plan". */
  clientName?: string | undefined;
}

/** Commands that only read. A read-only connection refuses everything else before it leaves the process. */
export const READ_ONLY_COMMANDS: ReadonlySet<string> = new Set([
  "ping",
  "info",
  "dbsize",
  "asking",
  // Chooses the database a connection reads (Valkey 9 with cluster-databases > 1); it writes nothing.
  "select",
  "cluster nodes",
  "cluster info",
  "cluster myid",
  "cluster countkeysinslot",
  "cluster slot-stats",
  "cluster getkeysinslot",
  "cluster slots",
  "cluster shards",
  "client list",
  "config get",
  "memory usage",
  "scan",
  "readonly",
  "command info",
  "get",
  "mget",
  "exists",
  "type",
]);

export function commandName(args: readonly (string | number | Buffer)[]): string {
  const first = String(args[0]).toLowerCase();
  if (first === "cluster" || first === "config" || first === "client" || first === "memory" || first === "command" || first === "acl") {
    return `${first} ${String(args[1] ?? "").toLowerCase()}`.trim();
  }
  return first;
}

export interface NodeClientOptions {
  access?: Access | undefined;
  /** When true, any command outside READ_ONLY_COMMANDS throws before being sent. */
  readOnly?: boolean;
  connectTimeoutMs?: number;
  /** Default deadline of a command. */
  commandTimeoutMs?: number;
}

export const DEFAULT_COMMAND_TIMEOUT_MS = 10_000;

export class NodeClient {
  readonly addr: NodeAddr;
  readonly readOnly: boolean;
  private readonly redis: Redis;
  private readonly timeoutMs: number;
  private readonly access: Access;
  /** Set once the connection broke or missed a deadline; a broken client must be replaced. */
  broken = false;
  /** Set when the connection was closed from the other end (the server died, or CLIENT KILL), not by this client. */
  closedByPeer = false;
  private closing = false;
  /** The database SELECT chose on this connection (bigPipeline reads the same one). */
  private db = 0;
  /** The raw lane beside this connection (laneSend), while it is being opened or open. */
  private rawLane: Promise<RawLane> | null = null;
  private openLane: RawLane | null = null;

  private constructor(addr: NodeAddr, redis: Redis, readOnly: boolean, timeoutMs: number, access: Access) {
    this.addr = addr;
    this.redis = redis;
    this.readOnly = readOnly;
    this.timeoutMs = timeoutMs;
    this.access = access;
  }

  static async connect(addr: NodeAddr, opts: NodeClientOptions = {}): Promise<NodeClient> {
    const { host, port } = parseNodeAddr(addr);
    const access = opts.access ?? {};
    const tls = access.tls;
    const connectTimeout = opts.connectTimeoutMs ?? 3000;
    const redis = new Redis({
      host,
      port,
      username: access.credentials?.user,
      password: access.credentials?.password,
      ...(access.clientName ? { connectionName: access.clientName } : {}),
      // RESP2 keeps reply shapes those that redis-cli and the docs show.
      protocol: 2,
      lazyConnect: true,
      connectTimeout,
      maxRetriesPerRequest: 0,
      enableOfflineQueue: true,
      retryStrategy: () => null,
      enableReadyCheck: false,
      ...(tls ? { tls: tlsConnectOptions(tls) } : {}),
    });
    // Errors surface through the awaited commands; the ones seen on the way explain a closed connection:
    // a reply that is not RESP (an HTTP server's "<" or "H") says more than the EPIPE that may follow it.
    const seen: unknown[] = [];
    redis.on("error", (err) => seen.push(err));
    const client = new NodeClient(addr, redis, opts.readOnly ?? false, opts.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS, access);
    if (debugEnabled()) logDebug(`${addr} connect${access.credentials?.user ? ` as user ${access.credentials.user}` : ""}${access.credentials?.password ? " with a password" : ""}${tls ? " over TLS" : ""}${opts.readOnly ? " (read-only)" : ""}`);
    redis.on("close", () => {
      client.markBroken();
      if (!client.closing) client.closedByPeer = true;
    });
    try {
      await client.deadline(
        (async () => {
          await redis.connect();
          await redis.ping();
        })(),
        "PING",
        connectTimeout + 2000,
      );
    } catch (err) {
      redis.disconnect();
      if (err instanceof NodeTimeoutError) throw err;
      let cause = seen.find((e) => NOT_RESP.test(describe(e))) ?? seen.at(-1) ?? err;
      // The peer closed before its answer was parsed (an HTTP server answers the first line, closes,
      // and the next write fails with EPIPE): ask once more with an inline PING and read the answer.
      if (!tls && !NOT_RESP.test(describe(cause)) && /EPIPE|ECONNRESET|Connection is closed/.test(describe(cause))) {
        const answer = await firstBytes(host, port, "PING\r\n", 1000);
        if (answer && !/^[+\-:$*]/.test(answer)) cause = new Error(`Protocol error: it answered ${JSON.stringify(answer.split(/\r?\n/)[0]!.slice(0, 60))}`);
      }
      throw authError(addr, cause, access.credentials) ?? permissionError(addr, cause, "connect") ?? connectError(addr, cause, Boolean(tls));
    }
    return client;
  }

  private guard(args: readonly (string | number | Buffer)[]): void {
    if (this.readOnly) {
      const name = commandName(args);
      assert(READ_ONLY_COMMANDS.has(name), `read-only connection to ${this.addr} was asked to send "${name}"`);
    }
  }

  /** Runs `p` with a deadline; a missed deadline or a broken connection closes this client. */
  private async deadline<T>(p: Promise<T>, what: string, ms = this.timeoutMs): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, fail) => {
      timer = setTimeout(() => fail(new NodeTimeoutError(this.addr, what, ms)), ms);
    });
    try {
      return await Promise.race([p, timeout]);
    } catch (err) {
      if (err instanceof NodeTimeoutError) {
        this.markBroken();
        this.closing = true;
        this.redis.disconnect();
        p.catch(() => {}); // its rejection after the disconnect is expected
        throw err;
      }
      if (isConnectionError(err)) {
        this.markBroken();
        throw new NodeUnreachableError(this.addr, `connection lost during ${what} (${describe(err)})`);
      }
      throw permissionError(this.addr, err, what, this.access.credentials) ?? err;
    } finally {
      clearTimeout(timer);
    }
  }

  async call(...args: (string | number)[]): Promise<unknown> {
    return this.callWithin(this.timeoutMs, ...args);
  }

  /** `call` with a deadline of its own (e.g. MIGRATE, which may take as long as its timeout). */
  async callWithin(ms: number, ...args: (string | number)[]): Promise<unknown> {
    this.guard(args);
    const r = await this.logged([args], this.deadline(this.redis.call(String(args[0]), ...args.slice(1)), commandName(args).toUpperCase(), ms));
    if (commandName(args) === "select") this.db = Number(args[1]);
    return r;
  }

  /** `p` as is; with the debug log on, the commands are logged with their time once they answer or fail. */
  private logged<T>(commands: readonly (readonly (string | number | Buffer)[])[], p: Promise<T>): Promise<T> {
    if (!debugEnabled()) return p;
    const t0 = performance.now();
    return p.then(
      (v) => {
        logCommand(this.addr, commands, t0);
        return v;
      },
      (err: unknown) => {
        logCommand(this.addr, commands, t0, err);
        throw err;
      },
    );
  }

  /** Like call, but replies keep binary data (keys) as Buffers. */
  async callBuffer(...args: (string | number | Buffer)[]): Promise<unknown> {
    return this.callBufferWithin(this.timeoutMs, ...args);
  }

  async callBufferWithin(ms: number, ...args: (string | number | Buffer)[]): Promise<unknown> {
    this.guard(args);
    return this.logged([args], this.deadline(this.redis.callBuffer(String(args[0]), ...args.slice(1)), commandName(args).toUpperCase(), ms));
  }

  async callString(...args: (string | number)[]): Promise<string> {
    const r = await this.call(...args);
    if (typeof r !== "string") throw new Error(`Assertion failed: ${String(args[0])} on ${this.addr} did not return a string`);
    return r;
  }

  /** Sends many commands in one round trip; per-command errors are returned, not thrown. */
  async pipeline(commands: (string | number)[][], ms = this.timeoutMs): Promise<[Error | null, unknown][]> {
    for (const c of commands) this.guard(c);
    const p = this.redis.pipeline();
    for (const c of commands) p.call(String(c[0]), ...c.slice(1));
    const res = await this.logged(commands, this.deadline(p.exec(), `a pipeline of ${commands.length} command(s) (${commandName(commands[0] ?? ["-"]).toUpperCase()} ...)`, ms));
    assert(res !== null, "pipeline returned null");
    return res as [Error | null, unknown][];
  }

  /**
   * Like pipeline, for thousands of small read-only commands (COUNTKEYSINSLOT, GETKEYSINSLOT, MEMORY
   * USAGE): sent on a connection of their own as raw RESP, which takes a tenth of the time
   * (raw-pipeline.ts). Same replies, same errors; the same database as this connection.
   */
  async bigPipeline(commands: (string | number)[][], ms = this.timeoutMs): Promise<[Error | null, unknown][]> {
    for (const c of commands) this.guard(c);
    return this.logged(commands, rawPipeline(this.addr, commands, { credentials: this.access.credentials, tls: this.access.tls ? tlsConnectOptions(this.access.tls) : undefined, db: this.db, timeoutMs: ms }));
  }

  /**
   * Commands as RESP bytes on a lasting raw connection beside this one (raw-lane.ts: the key-by-key
   * move's GETKEYSINSLOT and MIGRATE), opened at first use with this client's credentials, TLS and
   * database, and again after a missed deadline or a break. Resolves with the `count` raw reply
   * frames. `forLog` gives the commands as the debug log shows them (the keys summed up).
   */
  async laneSend(bytes: Buffer[], count: number, what: string, forLog: () => (string | number)[][], ms = this.timeoutMs): Promise<Buffer[]> {
    assert(!this.readOnly, `read-only connection to ${this.addr} was asked for a raw lane`);
    if (this.openLane?.closed) {
      this.rawLane = null;
      this.openLane = null;
    }
    this.rawLane ??= RawLane.open(this.addr, {
      credentials: this.access.credentials,
      tls: this.access.tls ? tlsConnectOptions(this.access.tls) : undefined,
      db: this.db,
      ...(this.access.clientName ? { clientName: this.access.clientName } : {}),
      timeoutMs: this.timeoutMs,
    }).then(
      (lane) => (this.openLane = lane),
      (err: unknown) => {
        this.rawLane = null;
        throw err;
      },
    );
    const lane = await this.rawLane;
    return this.logged(debugEnabled() ? forLog() : [], lane.send(bytes, count, ms, what));
  }

  /** Like pipeline, but arguments may be Buffers (keys) and replies keep binary data as Buffers. */
  async pipelineBuffer(commands: (string | number | Buffer)[][], ms = this.timeoutMs): Promise<[Error | null, unknown][]> {
    for (const c of commands) this.guard(c);
    const p = this.redis.pipeline();
    for (const c of commands) p.callBuffer(String(c[0]), ...c.slice(1));
    const res = await this.logged(commands, this.deadline(p.exec(), `a pipeline of ${commands.length} command(s) (${commandName(commands[0] ?? ["-"]).toUpperCase()} ...)`, ms));
    assert(res !== null, "pipeline returned null");
    return res as [Error | null, unknown][];
  }

  /**
   * The connection broke or missed a deadline: the pool replaces this client without closing it, so its
   * raw lane is closed here (an open socket would keep the process alive).
   */
  private markBroken(): void {
    this.broken = true;
    this.closeLane();
  }

  private closeLane(): void {
    this.openLane?.close();
    this.rawLane?.then((lane) => lane.close()).catch(() => undefined);
  }

  async close(): Promise<void> {
    this.closing = true;
    this.closeLane();
    if (this.broken) {
      this.redis.disconnect();
      return;
    }
    try {
      await this.deadline(this.redis.quit(), "QUIT", 2000);
    } catch {
      this.redis.disconnect();
    }
  }
}

/** The first bytes a peer sends back after `send` (or null: nothing within the time, or no connection). */
function firstBytes(host: string, port: number, send: string, timeoutMs: number): Promise<string | null> {
  return new Promise((done) => {
    const sock = tcpConnect({ host, port });
    const finish = (v: string | null): void => {
      clearTimeout(timer);
      sock.destroy();
      done(v);
    };
    const timer = setTimeout(() => finish(null), timeoutMs);
    sock.on("connect", () => sock.write(send));
    sock.on("data", (d: Buffer) => finish(d.toString("latin1")));
    sock.on("error", () => finish(null));
    sock.on("close", () => finish(null));
  });
}
