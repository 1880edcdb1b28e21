/**
 * Sums V8 CPU profiles (.cpuprofile, as written by BENCH_CPU_PROFILE) by self time: the top
 * functions and the share per package / source folder. Usage:
 *   node bench/lib/profile-summary.mjs prof.0.cpuprofile prof.1.cpuprofile … [--top 40]
 */
import { readFileSync } from 'node:fs';

const args = process.argv.slice(2);
const topAt = args.indexOf('--top');
const top = topAt >= 0 ? Number(args.splice(topAt, 2)[1]) : 40;
const byFn = new Map();
const byArea = new Map();
let totalUs = 0;
const area = (url) => {
  if (!url) return '(native/vm)';
  const nm = url.match(/node_modules\/((?:@[^/]+\/)?[^/]+)/);
  if (nm) return nm[1];
  const src = url.match(/\/(src\/[^/]+(?:\/[^/]+)?)\//);
  if (src) return src[1];
  if (url.startsWith('node:')) return url.split('/')[0];
  return url.replace(/^.*\//, '');
};
for (const file of args) {
  const p = JSON.parse(readFileSync(file, 'utf8'));
  const nodes = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map();
  for (let i = 0; i < p.samples.length; i++) {
    const dt = p.timeDeltas[i + 1] ?? 0;
    self.set(p.samples[i], (self.get(p.samples[i]) ?? 0) + dt);
  }
  for (const [id, us] of self) {
    const n = nodes.get(id);
    const cf = n.callFrame;
    if (cf.functionName === '(idle)' || cf.functionName === '(program)') continue;
    totalUs += us;
    const key = `${cf.functionName || '(anonymous)'} ${area(cf.url)}:${cf.lineNumber + 1}`;
    byFn.set(key, (byFn.get(key) ?? 0) + us);
    const a = cf.functionName === '(garbage collector)' ? '(gc)' : area(cf.url);
    byArea.set(a, (byArea.get(a) ?? 0) + us);
  }
}
const show = (m, n) =>
  [...m.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .forEach(([k, us]) => console.log(`${(us / 1000).toFixed(1).padStart(9)} ms ${((100 * us) / totalUs).toFixed(1).padStart(5)} %  ${k}`));
console.log(`busy (non-idle) main-thread time: ${(totalUs / 1000).toFixed(0)} ms\n\nby area:`);
show(byArea, 30);
console.log(`\ntop ${top} functions (self time):`);
show(byFn, top);
