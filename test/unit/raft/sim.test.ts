// Deterministic simulation of 3- and 5-node clusters under faults.
//   RAFT_SIM_SEEDS=<n>  number of seeds per cluster size (default 200 split across sizes)
//   RAFT_SIM_SEED=<n>   replay exactly one seed (cluster size derived from the seed as in the sweep)
import { describe, expect, it } from 'vitest';
import { runSeedWithReport } from './sim/simulator.js';
import type { SimStats } from './sim/simulator.js';

const singleSeed = process.env['RAFT_SIM_SEED'];
const seedCount = Number(process.env['RAFT_SIM_SEEDS'] ?? 200);

/** Odd seeds run 3 nodes, even seeds run 5 nodes; so a seed number alone identifies a run. */
function nodeCountFor(seed: number): number {
  return seed % 2 === 1 ? 3 : 5;
}

function runSeeds(seeds: number[]): { failures: string[]; stats: SimStats[] } {
  const failures: string[] = [];
  const stats: SimStats[] = [];
  for (const seed of seeds) {
    const res = runSeedWithReport({ seed, nodeCount: nodeCountFor(seed) });
    if (res.ok) stats.push(res.stats);
    else {
      failures.push(res.report);
      console.error(res.report);
    }
  }
  return { failures, stats };
}

function summarize(stats: SimStats[]): string {
  const sum = (f: (s: SimStats) => number): number => stats.reduce((a, s) => a + f(s), 0);
  const liveness = stats.flatMap((s) => s.livenessTicks);
  return (
    `runs=${stats.length} leaders=${sum((s) => s.leadersElected)} commits=${sum((s) => s.committedIndex)} ` +
    `snapshots=${sum((s) => s.snapshotsInstalled)} confChanges=${sum((s) => s.confChangesApplied)} ` +
    `reads=${sum((s) => s.readsServed)} crashes=${sum((s) => s.crashes)} transfers=${sum((s) => s.transfers)} ` +
    `maxLivenessTicks=${Math.max(0, ...liveness)}`
  );
}

describe('raft deterministic simulation', () => {
  if (singleSeed !== undefined) {
    it(`replays RAFT_SIM_SEED=${singleSeed}`, () => {
      const { failures, stats } = runSeeds([Number(singleSeed)]);
      if (stats.length > 0) console.log(summarize(stats));
      expect(failures).toEqual([]);
    });
    return;
  }

  const seeds = Array.from({ length: seedCount }, (_, i) => i + 1);
  it('3-node clusters keep safety and recover liveness', () => {
    const { failures, stats } = runSeeds(seeds.filter((s) => nodeCountFor(s) === 3));
    console.log(`3 nodes: ${summarize(stats)}`);
    // The simulation must actually exercise the interesting paths.
    expect(stats.reduce((a, s) => a + s.snapshotsInstalled, 0)).toBeGreaterThan(0);
    expect(stats.reduce((a, s) => a + s.confChangesApplied, 0)).toBeGreaterThan(0);
    expect(failures).toEqual([]);
  });

  it('5-node clusters keep safety and recover liveness', () => {
    const { failures, stats } = runSeeds(seeds.filter((s) => nodeCountFor(s) === 5));
    console.log(`5 nodes: ${summarize(stats)}`);
    expect(stats.reduce((a, s) => a + s.readsServed, 0)).toBeGreaterThan(0);
    expect(failures).toEqual([]);
  });
});
