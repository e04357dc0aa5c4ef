import { describe, expect, it } from 'vitest';
import { TestCluster } from './helpers.js';
import { StateType } from '../../../src/raft/types.js';

describe('smoke', () => {
  it('elects and commits', () => {
    const c = new TestCluster([1n, 2n, 3n]);
    c.elect(1n);
    c.propose(1n, 'a');
    c.propose(2n, 'b');
    for (const n of c.nodes.values()) expect(n.appliedData()).toEqual(['a', 'b']);
    expect(c.get(2n).state).toBe(StateType.Follower);
  });
});
