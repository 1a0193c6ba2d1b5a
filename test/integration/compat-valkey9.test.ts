// The compatibility scenario (test/helpers/compat.ts) on Valkey 9.1.2 (installed from PyPI by
// scripts/servers.sh), where slots move by the server's own migration. Ports 20800-20807 (bus +10000).
import { compatSuite, serverBuild } from "../helpers/compat.js";

compatSuite(serverBuild("valkey-9.1.2"), 20800);
