#!/usr/bin/env -S node --single-threaded-gc --heap-growing-percent=100
// tsetcd: a drop-in replacement for etcd v3. Takes etcd's flags; see `tsetcd --help`.
//
// --single-threaded-gc: V8 collects garbage on this thread only, instead of also waking a
// helper thread per core. etcd members usually share a few cores with their peers, clients
// and the kernel's I/O; parallel GC bursts then take every core at once and delay everyone
// (3 members + etcdctl check perf --load=m on 2 cores: 951 -> 977 writes/s, 5 runs each).
// --heap-growing-percent=100: the heap may double before the next full GC, as Go's default
// GOGC=100 lets etcd's. V8's own factor for a heap this small was ~1.3: a member holding
// 60,000 keys ran a full mark-compact every ~2.5 s (30 per check perf run, ~12 ms final
// pause plus ~100 ms of incremental marking each); with 2x it runs ~10, and the 3 members
// used ~10% less CPU (check perf m, 3 runs each: 982-986 -> 988-989 writes/s).
// Run `node bin/tsetcd.js` to get V8's default. The bench and tests read the flags from
// this line, so they run tsetcd as an operator does (see nodeFlagsFromShebang).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const entry = new URL('../dist/src/main.js', import.meta.url);
if (!existsSync(fileURLToPath(entry))) {
  process.stderr.write('tsetcd is not built yet: run `npm install` (or `npm run build`) in the tsetcd directory\n');
  process.exit(1);
}
const { main } = await import(entry.href);
await main(process.argv.slice(2));
