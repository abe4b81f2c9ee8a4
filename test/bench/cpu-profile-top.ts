/**
 * Summarise a `node --cpu-prof` profile: self time per function, top N, as a table.
 * `node build/test/bench/cpu-profile-top.js <file.cpuprofile> [N]`
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const [file, topArg] = process.argv.slice(2);
if (file === undefined) {
  console.error('usage: cpu-profile-top <file.cpuprofile> [N]');
  process.exit(2);
}
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const byId = new Map(profile.nodes.map((node) => [node.id, node]));
const self = new Map<string, number>();
let total = 0;
profile.samples.forEach((id, i) => {
  const delta = profile.timeDeltas[i] ?? 0;
  total += delta;
  const frame = byId.get(id)!.callFrame;
  const where = frame.url.replace(/^.*\/(node_modules|build)\//, '$1/');
  const key = `${frame.functionName || '(anonymous)'} ${where}:${frame.lineNumber + 1}`;
  self.set(key, (self.get(key) ?? 0) + delta);
});
const rows = [...self]
  .sort((a, b) => b[1] - a[1])
  .slice(0, Number(topArg ?? 25))
  .map(([fn, us]) => ({
    function: fn,
    'self ms': Math.round(us / 1000),
    '%': ((100 * us) / total).toFixed(1),
  }));
console.log(`total ${Math.round(total / 1000)} ms sampled`);
console.table(rows);
