/**
 * A process that does nothing but tick a timer (forked by farm-bench.ts while recompute passes
 * run): its longest gap is how long the OS alone kept a thread off the CPU on this machine at
 * that moment, the floor under any stall the daemon's own event loop can show.
 * Messages: `start` opens the window, `stop` answers with its StallReport and exits.
 */
import { StallProbe } from './stall-probe.js';

const probe = new StallProbe();
process.on('message', (message) => {
  if (message === 'start') probe.start();
  else process.send!(probe.stop(), () => process.exit(0));
});
process.send!('ready');
