import { encodeConfChange, decodeConfChange } from '../raft/codec.js';
import { ConfChangeType, EntryType, type ConfState, type Entry, type HardState, type NodeId } from '../raft/types.js';

// --force-new-cluster (disaster recovery, as etcd does it): keep this member's committed
// log, drop what was never committed, and commit conf changes that remove every other
// member, so the member restarts as the only voter of its cluster with all its data.

export interface ForcedLog {
  /** Entries to write from `hardState.commit + 1` of the old log on (the removals). */
  appended: Entry[];
  hardState: HardState;
  /** Members removed by the appended entries. */
  removed: NodeId[];
}

/** Member IDs in the configuration after the snapshot and the committed conf changes. */
export function membersAfter(snapshotConf: ConfState | undefined, committed: Entry[]): Set<NodeId> {
  const ids = new Set<NodeId>([...(snapshotConf?.voters ?? []), ...(snapshotConf?.learners ?? [])]);
  for (const e of committed) {
    if (e.type !== EntryType.ConfChange) continue;
    const cc = decodeConfChange(e.data);
    if (cc.type === ConfChangeType.AddNode || cc.type === ConfChangeType.AddLearnerNode) ids.add(cc.nodeId);
    else if (cc.type === ConfChangeType.RemoveNode) ids.delete(cc.nodeId);
  }
  return ids;
}

export function forceNewClusterLog(
  localId: NodeId, hardState: HardState, entries: Entry[], snapshot?: { index: number; confState: ConfState },
): ForcedLog {
  const committed = entries.filter((e) => e.index <= hardState.commit);
  const ids = membersAfter(snapshot?.confState, committed);
  let index = committed.length > 0 ? committed[committed.length - 1]!.index : snapshot?.index ?? 0;
  if (index < hardState.commit) index = hardState.commit;
  const appended: Entry[] = [];
  const removed: NodeId[] = [];
  for (const id of [...ids].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (id === localId) continue;
    index++;
    appended.push({
      term: hardState.term, index, type: EntryType.ConfChange,
      data: encodeConfChange({ type: ConfChangeType.RemoveNode, nodeId: id, context: new Uint8Array() }),
    });
    removed.push(id);
  }
  return { appended, hardState: { term: hardState.term, vote: hardState.vote, commit: index }, removed };
}
