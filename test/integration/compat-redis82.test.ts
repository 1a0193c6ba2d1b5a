// The compatibility scenario (test/helpers/compat.ts) on Redis 8.2.3 (installed from PyPI by
// scripts/servers.sh). Ports 20820-20827 (bus +10000): this file's own range.
import { compatSuite, serverBuild } from "../helpers/compat.js";

compatSuite(serverBuild("redis-8.2.3"), 20820);
