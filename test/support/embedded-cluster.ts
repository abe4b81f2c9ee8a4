/**
 * The throwaway PostgreSQL cluster of the test harness: the one implementation lives in
 * src/embedded/cluster.ts (also used by `serve --embedded`). Kept for older importers.
 */
export {
  embeddedBinDir,
  startCluster as startEmbeddedCluster,
  type EmbeddedCluster,
  type StartClusterOptions,
} from '../../src/embedded/cluster.js';
