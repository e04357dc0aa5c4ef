import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import Long from 'long';

// The project's .proto files loaded once with protobufjs. Messages are decoded to
// protobufjs instances (snake_case field names, 64-bit fields as Long) and encoded from
// plain objects. The gRPC adapters and the Raft entry payloads share these codecs, so a
// client request is decoded once and its raw bytes can travel through Raft unchanged.

function findProtoDir(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const candidate = path.join(dir, 'proto');
    if (fs.existsSync(path.join(candidate, 'rpc.proto'))) return candidate;
    dir = path.dirname(dir);
  }
  throw new Error('cannot find the proto/ directory next to the tsetcd installation');
}

export const protoDir = findProtoDir();

function loadRoot(): protobuf.Root {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => (path.isAbsolute(target) ? target : path.join(protoDir, target));
  root.loadSync(['rpc.proto', 'kv.proto', 'auth.proto', 'v3election.proto', 'v3lock.proto', 'health.proto'], { keepCase: true });
  root.resolveAll();
  return root;
}

export const root = loadRoot();

const typesByName = new Map<string, protobuf.Type>();

/** A message type of `root` by its full name (looked up once: a lookup walks the namespaces). */
export function type(name: string): protobuf.Type {
  let t = typesByName.get(name);
  if (t === undefined) {
    t = root.lookupType(name);
    typesByName.set(name, t);
  }
  return t;
}

/** A decoded message; fields are accessed by their proto (snake_case) names. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Msg = any;

/** Long | number | string -> number (revisions, TTLs, indexes: always < 2^53). */
export function num(v: unknown): number {
  if (typeof v === 'number') return v;
  if (v === null || v === undefined) return 0;
  if (typeof v === 'string') return Number(v);
  return (v as Long).toNumber();
}

/** One shared zero: most requests carry no lease, and every stored key keeps its lease ID. */
const ZERO = 0n;

/** Long | number | string -> bigint (member IDs, lease IDs, cluster IDs: may exceed 2^53). */
export function big(v: unknown): bigint {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number') return v === 0 ? ZERO : BigInt(v);
  if (v === null || v === undefined) return ZERO;
  if (typeof v === 'string') return BigInt(v);
  const l = v as Long;
  if (l.low === 0 && l.high === 0) return ZERO;
  const u = (BigInt(l.high >>> 0) << 32n) | BigInt(l.low >>> 0);
  // signed int64 fields (lease IDs) come back as signed Longs
  return l.unsigned || l.high >= 0 ? u : u - (1n << 64n);
}

/** bigint -> Long for encoding 64-bit fields exactly. */
export function toLong(v: bigint, unsigned = true): Long {
  const u = BigInt.asUintN(64, v);
  return new Long(Number(u & 0xffffffffn) | 0, Number(u >> 32n) | 0, unsigned);
}

export function bytes(v: unknown): Buffer {
  if (v === null || v === undefined) return EMPTY;
  if (Buffer.isBuffer(v)) return v;
  if (Array.isArray(v)) return v.length === 0 ? EMPTY : Buffer.from(v as number[]);
  const u = v as Uint8Array;
  return Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

export const EMPTY = Buffer.alloc(0);
