// The compatibility scenario (test/helpers/compat.ts) on redis-7.0. Ports 22000-22007 (bus +10000): this file's own range.
import { compatSuite, serverBuild } from "../helpers/compat.js";

compatSuite(serverBuild("redis-7.0"), 22000);
