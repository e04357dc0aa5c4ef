import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { EntryType, type Entry, type HardState } from '../../../src/raft/types.js';
import type { WalLogger } from '../../../src/wal/index.js';

export function makeTempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'tsetcd-'));
}

export function removeDir(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
}

export function entry(index: number, term: number, payload = `e${index}t${term}`): Entry {
  return { index, term, type: EntryType.Normal, data: Buffer.from(payload) };
}

export function entries(from: number, to: number, term: number): Entry[] {
  const out: Entry[] = [];
  for (let i = from; i <= to; i++) out.push(entry(i, term));
  return out;
}

export function hardState(term: number, vote: bigint, commit: number): HardState {
  return { term, vote, commit };
}

/** Entries in a form `toEqual` compares by value (Buffer vs Uint8Array would differ by class). */
export function plain(list: readonly Entry[]): { index: number; term: number; type: EntryType; data: string }[] {
  return list.map((e) => ({ index: e.index, term: e.term, type: e.type, data: Buffer.from(e.data).toString('hex') }));
}

export interface LoggedLine {
  level: 'info' | 'warn' | 'error';
  msg: string;
  fields?: Record<string, unknown>;
}

export function recordingLogger(): WalLogger & { lines: LoggedLine[] } {
  const lines: LoggedLine[] = [];
  const push = (level: LoggedLine['level']) => (msg: string, fields?: Record<string, unknown>) => {
    const line: LoggedLine = { level, msg };
    if (fields) line.fields = fields;
    lines.push(line);
  };
  return { lines, info: push('info'), warn: push('warn'), error: push('error') };
}

export function walFiles(dir: string): string[] {
  return fs.readdirSync(dir).filter((n) => n.endsWith('.wal')).sort();
}
