/**
 * A raw RESP stream to exactly one node, for bulk writes of test data: commands go out as bytes
 * built by the caller and replies are only counted, as `redis-cli --pipe` does. Every command must
 * answer +OK (as SET and AUTH do); the first error reply stops the writer. The number of commands
 * awaiting a reply is bounded, so memory stays flat however many keys are written.
 */
import type { Socket } from "node:net";
import { ClusterStateError, NodeUnreachableError } from "../errors.js";
import { tlsConnectOptions, type Access } from "./connect.js";
import { authError } from "./errors.js";
import type { NodeAddr } from "./node-key.js";
import { authCommand, openSocket, resp } from "./raw-pipeline.js";

const OK = "+OK\r\n";
const MINUS = 45;

export { resp };

export class BulkWriter {
  readonly addr: NodeAddr;
  private readonly socket: Socket;
  private sent = 0;
  private answered = 0;
  private readonly maxInFlight: number;
  private firstError: string | null = null;
  private closedWith: Error | null = null;
  private waiter: (() => void) | null = null;
  private received = 0;
  private authenticating: boolean;
  private readonly credentials: Access["credentials"];

  private constructor(addr: NodeAddr, socket: Socket, maxInFlight: number, authenticating: boolean, credentials: Access["credentials"]) {
    this.credentials = credentials;
    this.addr = addr;
    this.socket = socket;
    this.maxInFlight = maxInFlight;
    this.authenticating = authenticating;
    socket.on("data", (d: Buffer) => this.onData(d));
    socket.on("error", (err) => (this.closedWith = err));
    socket.on("close", () => {
      this.closedWith ??= new Error("connection closed");
      this.wake();
    });
  }

  static async open(addr: NodeAddr, access: Access = {}, maxInFlight = 100_000): Promise<BulkWriter> {
    const credentials = access.credentials ?? {};
    const { socket, ready } = openSocket(addr, access.tls ? tlsConnectOptions(access.tls) : undefined);
    await ready;
    const w = new BulkWriter(addr, socket, maxInFlight, Boolean(credentials.password), credentials);
    if (credentials.password) {
      try {
        await w.send(resp(authCommand(credentials.user, credentials.password)), 1);
        await w.finish(false);
      } catch (err) {
        w.destroy();
        throw err;
      }
      w.authenticating = false;
    }
    return w;
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }

  private onData(d: Buffer): void {
    if (this.firstError === null && d.includes(MINUS)) {
      // Cut into lines where the error's reply begins: replies before it are all "+OK\r\n".
      const text = d.toString("latin1");
      const at = text.indexOf("-");
      const line = (text.slice(at + 1).split("\r\n")[0] ?? "").slice(0, 500);
      this.firstError = line || "error reply";
    }
    this.received += d.length;
    this.answered = Math.floor(this.received / OK.length);
    this.wake();
  }

  /** Queues `count` commands; resolves when fewer than the bound await their reply. */
  async send(bytes: Buffer | string, count: number): Promise<void> {
    this.check();
    this.sent += count;
    this.socket.write(bytes);
    while (this.sent - this.answered > this.maxInFlight) await this.next();
  }

  private next(): Promise<void> {
    this.check();
    return new Promise((done) => (this.waiter = done));
  }

  private check(): void {
    if (this.firstError !== null) {
      const auth = authError(this.addr, new Error(this.firstError), this.credentials);
      if (auth && (this.authenticating || /^NOAUTH/.test(this.firstError))) throw auth;
      throw new ClusterStateError(`writing to ${this.addr} failed: ${this.firstError}`);
    }
    if (this.closedWith) throw new NodeUnreachableError(this.addr, this.closedWith.message);
  }

  /** Waits for every reply; with `close`, then closes the connection. Throws on the first error reply. */
  async finish(close = true): Promise<number> {
    while (this.answered < this.sent) await this.next();
    this.check();
    if (close) this.socket.end();
    return this.answered;
  }

  destroy(): void {
    this.socket.destroy();
  }
}
