/** A connection to one node for one job, as the test files use it. */
import { NodeClient } from "../../src/redis/connect.js";

/** Runs `fn` with a connection to `addr`, closed afterwards. */
export async function withNode<T>(addr: string, fn: (c: NodeClient) => Promise<T>): Promise<T> {
  const c = await NodeClient.connect(addr);
  try {
    return await fn(c);
  } finally {
    await c.close();
  }
}
