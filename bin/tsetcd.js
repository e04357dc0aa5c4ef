#!/usr/bin/env node
// tsetcd: a drop-in replacement for etcd v3. Takes etcd's flags; see `tsetcd --help`.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const entry = new URL('../dist/src/main.js', import.meta.url);
if (!existsSync(fileURLToPath(entry))) {
  process.stderr.write('tsetcd is not built yet: run `npm install` (or `npm run build`) in the tsetcd directory\n');
  process.exit(1);
}
const { main } = await import(entry.href);
await main(process.argv.slice(2));
