/**
 * The load generator behind `cueacct serve --simulate` and the stress suite: a simulated
 * scheduler and a simulated Cuebot against a running daemon and its database.
 */
export { runSimulation } from './simulation.js';
export { ApiClient, TransportError, type ApiClientOptions, type JsonAnswer } from './http-client.js';
export { summarize, percentile, type LatencySummary } from './stats.js';
export * from './types.js';
