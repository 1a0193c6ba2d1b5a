// The compatibility scenario (test/helpers/compat.ts) on valkey-8.0.1. Ports 22200-22207 (bus +10000): this file's own range.
import { compatSuite, serverBuild } from "../helpers/compat.js";

compatSuite(serverBuild("valkey-8.0.1"), 22200);
