import { describe, expect, it } from 'vitest';
import { Compactor } from '../../../src/server/compactor.js';
import { nullLogger } from '../../../src/log/logger.js';

function deps(state: { now: number; rev: number; compacted: number; leader: boolean; calls: number[] }) {
  return {
    logger: nullLogger,
    now: () => state.now,
    isLeader: () => state.leader,
    currentRevision: () => state.rev,
    compactRevision: () => state.compacted,
    compact: async (r: number) => {
      state.calls.push(r);
      state.compacted = r;
    },
  };
}

describe('auto compaction', () => {
  it('revision mode keeps the last N revisions', async () => {
    const st = { now: 0, rev: 100, compacted: -1, leader: true, calls: [] as number[] };
    const c = new Compactor({ mode: 'revision', periodMs: 0, retainRevisions: 30 }, deps(st));
    expect(await c.run()).toBe(70);
    expect(await c.run()).toBeUndefined(); // nothing new
    st.rev = 150;
    expect(await c.run()).toBe(120);
    expect(st.calls).toEqual([70, 120]);
  });

  it('periodic mode compacts to the revision seen one period ago', async () => {
    const st = { now: 0, rev: 10, compacted: -1, leader: true, calls: [] as number[] };
    const c = new Compactor({ mode: 'periodic', periodMs: 60_000, retainRevisions: 0 }, deps(st));
    expect(c.intervalMs).toBe(6000);
    for (let t = 0; t < 60_000; t += 6000) {
      st.now = t;
      st.rev = 10 + t / 1000;
      expect(await c.run()).toBeUndefined();
    }
    st.now = 60_000;
    st.rev = 70;
    expect(await c.run()).toBe(10); // the sample taken at t=0
    st.now = 66_000;
    st.rev = 76;
    expect(await c.run()).toBe(16);
  });

  it('only the leader compacts; retention 0 disables', async () => {
    const st = { now: 0, rev: 100, compacted: -1, leader: false, calls: [] as number[] };
    const c = new Compactor({ mode: 'revision', periodMs: 0, retainRevisions: 10 }, deps(st));
    expect(await c.run()).toBeUndefined();
    expect(new Compactor({ mode: 'revision', periodMs: 0, retainRevisions: 0 }, deps(st)).enabled).toBe(false);
  });
});
