import { checkBootstrapSync } from '../cli/bootstrap.js';
import { computeClusterId, computeMemberId, idToHex } from './ids.js';

// The cluster's membership as the server sees it (the Raft ConfState only knows IDs).
// A member added with `member add` has no name and no client URLs until it starts and
// publishes them; etcdctl shows it as "unstarted".

export interface Member {
  id: bigint;
  name: string;
  peerUrls: string[];
  clientUrls: string[];
  isLearner: boolean;
}

export interface InitialMember {
  name: string;
  peerUrls: string[];
}

export function encodeMember(m: Member): Buffer {
  return Buffer.from(
    JSON.stringify({ id: idToHex(m.id), name: m.name, peerUrls: m.peerUrls, clientUrls: m.clientUrls, isLearner: m.isLearner }),
  );
}

export function decodeMember(buf: Uint8Array): Member {
  const o = JSON.parse(Buffer.from(buf).toString('utf8')) as {
    id: string; name: string; peerUrls: string[]; clientUrls: string[]; isLearner: boolean;
  };
  return { id: BigInt('0x' + o.id), name: o.name, peerUrls: o.peerUrls, clientUrls: o.clientUrls ?? [], isLearner: !!o.isLearner };
}

/**
 * Members of a cluster being bootstrapped from --initial-cluster. IDs are derived from the
 * peer URLs and the token exactly as etcd does. The identity rule from the walkthrough (this
 * node's entry must equal its --name and --initial-advertise-peer-urls, no URL listed twice)
 * is the CLI's check, with etcd's messages; when only DNS could tell whether the URLs match,
 * main() has already resolved them (verifyBootstrap) before the server starts.
 */
export function bootstrapMembers(
  initialCluster: InitialMember[],
  token: string,
  localName: string,
  advertisePeerUrls: string[],
): { members: Member[]; localId: bigint; clusterId: bigint } {
  checkBootstrapSync({ name: localName, initialCluster, initialAdvertisePeerUrls: advertisePeerUrls });
  const byName = new Map<string, string[]>();
  for (const m of initialCluster) byName.set(m.name, [...(byName.get(m.name) ?? []), ...m.peerUrls]);
  const members: Member[] = [];
  for (const [name, peerUrls] of byName) {
    members.push({ id: computeMemberId(peerUrls, token), name, peerUrls: [...peerUrls].sort(), clientUrls: [], isLearner: false });
  }
  const localId = members.find((m) => m.name === localName)!.id;
  return { members, localId, clusterId: computeClusterId(members.map((m) => m.id)) };
}

export class Membership {
  private readonly members = new Map<bigint, Member>();
  private readonly removed = new Set<bigint>();

  constructor(public clusterId: bigint) {}

  list(): Member[] {
    return [...this.members.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  get(id: bigint): Member | undefined {
    return this.members.get(id);
  }

  isRemoved(id: bigint): boolean {
    return this.removed.has(id);
  }

  add(m: Member): void {
    this.members.set(m.id, { ...m });
  }

  remove(id: bigint): void {
    this.members.delete(id);
    this.removed.add(id);
  }

  setAttributes(id: bigint, name: string, clientUrls: string[]): void {
    const m = this.members.get(id);
    if (m) {
      m.name = name;
      m.clientUrls = clientUrls;
    }
  }

  updatePeerUrls(id: bigint, peerUrls: string[]): void {
    const m = this.members.get(id);
    if (m) m.peerUrls = [...peerUrls].sort();
  }

  promote(id: bigint): void {
    const m = this.members.get(id);
    if (m) m.isLearner = false;
  }

  removedIds(): bigint[] {
    return [...this.removed];
  }

  markRemoved(id: bigint): void {
    this.removed.add(id);
  }

  voterCount(): number {
    let n = 0;
    for (const m of this.members.values()) if (!m.isLearner) n++;
    return n;
  }

  learnerCount(): number {
    return this.members.size - this.voterCount();
  }

  peerUrlInUse(url: string, exceptId?: bigint): boolean {
    for (const m of this.members.values()) if (m.id !== exceptId && m.peerUrls.includes(url)) return true;
    return false;
  }

  toJSON(): unknown {
    return {
      clusterId: idToHex(this.clusterId),
      members: this.list().map((m) => JSON.parse(encodeMember(m).toString())),
      removed: [...this.removed].map(idToHex),
    };
  }

  static fromJSON(text: string): Membership {
    const o = JSON.parse(text) as { clusterId: string; members: unknown[]; removed: string[] };
    const ms = new Membership(BigInt('0x' + o.clusterId));
    for (const m of o.members) ms.add(decodeMember(Buffer.from(JSON.stringify(m))));
    for (const r of o.removed) ms.removed.add(BigInt('0x' + r));
    return ms;
  }
}
