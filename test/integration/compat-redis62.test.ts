// The compatibility scenario (test/helpers/compat.ts) on redis-6.2.16. Ports 22100-22107 (bus +10000): this file's own range.
import { compatSuite, serverBuild } from "../helpers/compat.js";

compatSuite(serverBuild("redis-6.2.16"), 22100);
