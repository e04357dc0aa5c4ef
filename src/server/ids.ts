import { createHash } from 'node:crypto';

// Member and cluster IDs are derived exactly as etcd derives them, so an operator who
// compares `etcdctl member list` output between etcd and tsetcd sees the same IDs, and a
// node with a different --initial-cluster-token can never be mistaken for a member.

function first8BytesBE(digest: Buffer): bigint {
  return digest.readBigUInt64BE(0);
}

/**
 * memberID = first 8 bytes (big-endian) of sha1(sorted peer URLs concatenated + cluster token [+ decimal unix seconds]).
 * The timestamp is only added for members created at runtime (member add), so that re-adding
 * the same URLs yields a fresh ID.
 */
export function computeMemberId(peerUrls: readonly string[], clusterToken: string, unixSeconds?: number): bigint {
  const sorted = [...peerUrls].sort();
  const hash = createHash('sha1');
  hash.update(sorted.join(''));
  hash.update(clusterToken);
  if (unixSeconds !== undefined) hash.update(String(Math.floor(unixSeconds)));
  return first8BytesBE(hash.digest());
}

/** clusterID = first 8 bytes of sha1 over the sorted member IDs, each as 8 big-endian bytes. */
export function computeClusterId(memberIds: readonly bigint[]): bigint {
  const sorted = [...memberIds].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const buf = Buffer.alloc(8 * sorted.length);
  sorted.forEach((id, i) => buf.writeBigUInt64BE(id, i * 8));
  return first8BytesBE(createHash('sha1').update(buf).digest());
}

export function idToHex(id: bigint): string {
  return id.toString(16);
}

export function parseHexId(text: string): bigint {
  if (!/^[0-9a-fA-F]{1,16}$/.test(text)) throw new Error(`invalid member ID ${JSON.stringify(text)}`);
  return BigInt('0x' + text);
}
