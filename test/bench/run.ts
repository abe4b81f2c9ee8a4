/** `npm run bench`: every benchmark, printed as one table. */
import { benchStore } from './store-bench.js';

interface Row {
  metric: string;
  value: string;
  target: string;
}

function rate(n: number): string {
  return `${Math.round(n).toLocaleString('en-US')}/s`;
}

const rows: Row[] = [];
const store = benchStore();
rows.push({
  metric: 'Store.book + confirm (in process)',
  value: rate(store.pairsPerSecond),
  target: '>= 2,000,000/s',
});
rows.push({ metric: 'Store.applyRelease (in process)', value: rate(store.releasesPerSecond), target: '' });
rows.push({ metric: 'Store.book rejected at burst', value: rate(store.rejectionsPerSecond), target: '' });

console.table(rows);
