// Property: after any sequence of saves and snapshot markers, a crash that leaves the
// in-flight write cut at any byte (or the rest of the segment zero-filled) reopens to
// exactly the state before that write, or the state after a prefix of its records —
// never anything else — and the repaired WAL keeps working.

import fs from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Entry, HardState, SnapshotMeta } from '../../../src/raft/types.js';
import { Wal } from '../../../src/wal/index.js';
import { entry, makeTempDir, plain, removeDir, walFiles } from './helpers.js';

type Op =
  | { kind: 'save'; rewind: number; count: number; dataBytes: number; newTerm: boolean; vote: boolean; commitStep: number; withState: boolean }
  | { kind: 'snapshot'; back: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({
    kind: fc.constant('save' as const),
    rewind: fc.oneof({ weight: 4, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 1, max: 4 }) }),
    count: fc.integer({ min: 0, max: 4 }),
    dataBytes: fc.integer({ min: 0, max: 60 }),
    newTerm: fc.boolean(),
    vote: fc.boolean(),
    commitStep: fc.integer({ min: 0, max: 3 }),
    withState: fc.boolean(),
  }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('snapshot' as const), back: fc.integer({ min: 0, max: 3 }) }) },
);

interface ModelState {
  entries: Entry[]; // live entries after the snapshot
  hardState: HardState;
  snapshot: SnapshotMeta | undefined;
}

function cloneState(s: ModelState): ModelState {
  return { entries: [...s.entries], hardState: { ...s.hardState }, snapshot: s.snapshot };
}

function lastIndexOf(s: ModelState): number {
  return Math.max(s.entries[s.entries.length - 1]?.index ?? 0, s.snapshot?.index ?? 0);
}

function appendEntries(s: ModelState, batch: Entry[]): ModelState {
  const next = cloneState(s);
  const first = batch[0];
  if (!first) return next;
  next.entries = next.entries.filter((e) => e.index < first.index).concat(batch);
  return next;
}

function view(s: ModelState): unknown {
  return { entries: plain(s.entries), hardState: s.hardState, snapshot: s.snapshot ?? null };
}

/** A write as it was issued, with the byte range it occupies in its segment. */
interface Step {
  file: string;
  startBytes: number;
  endBytes: number;
  before: ModelState;
  /** Every state a crash inside this write may legitimately recover to. */
  candidates: ModelState[];
}

const SEGMENT_BYTES = [300, 700, 4096];

describe('Wal crash consistency (property)', () => {
  it('reopens to a prefix-consistent log after a crash at any byte of any write', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(opArb, { minLength: 1, maxLength: 24 }),
        fc.constantFrom(...SEGMENT_BYTES),
        fc.nat(),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.boolean(),
        async (ops, segmentSizeBytes, crashPick, crashFraction, zeroFill) => {
          const root = makeTempDir();
          const dir = path.join(root, 'wal');
          try {
            const steps: Step[] = [];
            let model: ModelState = { entries: [], hardState: { term: 0, vote: 0n, commit: 0 }, snapshot: undefined };
            const wal = await Wal.create(dir, Buffer.from('meta'), { segmentSizeBytes });
            let term = 1;
            let payloadSeq = 0;
            for (const op of ops) {
              const before = cloneState(model);
              const { file, offsetBytes: startBytes } = wal.tail;
              const candidates: ModelState[] = [before];
              if (op.kind === 'save') {
                if (op.newTerm) term++;
                const snapIndex = model.snapshot?.index ?? 0;
                const last = lastIndexOf(model);
                // never rewind over committed entries (Raft never does)
                const from = Math.max(last + 1 - op.rewind, model.hardState.commit + 1, snapIndex + 1);
                const batch: Entry[] = [];
                for (let i = 0; i < op.count; i++) batch.push(entry(from + i, term, `p${payloadSeq++}`.padEnd(op.dataBytes, '.')));
                let after = before;
                for (let k = 1; k <= batch.length; k++) {
                  after = appendEntries(before, batch.slice(0, k));
                  candidates.push(after);
                }
                let hs: HardState | undefined;
                if (op.withState) {
                  const newLast = lastIndexOf(after);
                  hs = {
                    term,
                    vote: op.vote ? BigInt(term) : model.hardState.vote,
                    commit: Math.min(newLast, model.hardState.commit + op.commitStep),
                  };
                  after = cloneState(after);
                  after.hardState = hs;
                  candidates.push(after);
                }
                await wal.save(hs, batch);
                model = after;
              } else {
                const snapIndex = model.snapshot?.index ?? 0;
                const index = Math.max(snapIndex, model.hardState.commit - op.back);
                const meta: SnapshotMeta = { index, term, confState: { voters: [1n, 2n], learners: [] } };
                await wal.saveSnapshot(meta);
                const after = cloneState(model);
                after.snapshot = meta;
                after.entries = after.entries.filter((e) => e.index > index);
                candidates.push(after);
                model = after;
              }
              // a cut after the write seals the old segment exactly at the write's end
              const endBytes = wal.tail.file === file ? wal.tail.offsetBytes : fs.statSync(path.join(dir, file)).size;
              steps.push({ file, startBytes, endBytes, before, candidates });
            }
            await wal.close();

            // crash while step `j` was being written
            const j = crashPick % steps.length;
            const step = steps[j]!;
            const crashAt = step.startBytes + Math.floor(crashFraction * (step.endBytes - step.startBytes));
            for (const name of walFiles(dir)) if (name > step.file) fs.rmSync(path.join(dir, name)); // created later
            const crashed = path.join(dir, step.file);
            const bytes = fs.readFileSync(crashed);
            if (zeroFill) fs.writeFileSync(crashed, Buffer.concat([bytes.subarray(0, crashAt), Buffer.alloc(bytes.length - crashAt)]));
            else fs.writeFileSync(crashed, bytes.subarray(0, crashAt));

            const opened = await Wal.open(dir, { segmentSizeBytes });
            const recovered: ModelState = { entries: opened.entries, hardState: opened.hardState, snapshot: opened.snapshot };
            const matches = step.candidates.filter((c) => {
              try {
                expect(view(recovered)).toEqual(view(c));
                return true;
              } catch {
                return false;
              }
            });
            if (crashAt === step.startBytes) expect(view(recovered)).toEqual(view(step.before));
            else if (crashAt === step.endBytes) expect(view(recovered)).toEqual(view(step.candidates[step.candidates.length - 1]!));
            else expect(matches.length).toBeGreaterThan(0);

            // the repaired WAL continues its crc chain and replays what is written next
            const next = entry(lastIndexOf(recovered) + 1, term + 1, 'after-crash');
            const hs: HardState = { term: term + 1, vote: 0n, commit: recovered.hardState.commit };
            await opened.wal.save(hs, [next]);
            await opened.wal.close();
            const reopened = await Wal.open(dir, { segmentSizeBytes });
            const expected = appendEntries(recovered, [next]);
            expected.hardState = hs;
            expect(view({ entries: reopened.entries, hardState: reopened.hardState, snapshot: reopened.snapshot })).toEqual(view(expected));
            await reopened.wal.close();
          } finally {
            removeDir(root);
          }
        },
      ),
      { numRuns: 60 },
    );
  });
});
