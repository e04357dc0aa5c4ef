// Locates the repository and loads the etcd v3 gRPC contract for the bench client.
//
// The bench must speak exactly the wire API the server implements, so it loads the
// project's own proto/rpc.proto. Only when that file is absent (e.g. the compiled bench
// was copied elsewhere) does it fall back to the etcd 3.4 .proto files shipped by
// Debian's golang-etcd-server-dev, which are field-for-field identical.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as protoLoader from '@grpc/proto-loader';

/** Where the loaded definitions came from, so reports can say what was measured with. */
export type ProtoSource = 'repo' | 'system-etcd';

export interface LoadedProto {
  definition: protoLoader.PackageDefinition;
  source: ProtoSource;
  /** The .proto file actually loaded. */
  file: string;
}

const SYSTEM_GOCODE_DIR = '/usr/share/gocode/src';

/**
 * Walks up from this module's directory to the tsetcd repository root (the directory
 * holding a package.json named "tsetcd"). Works both from bench/*.ts (vitest) and from
 * dist/bench/*.js (compiled).
 */
export function findRepoRoot(startDir: string = path.dirname(fileURLToPath(import.meta.url))): string {
  let dir = path.resolve(startDir);
  for (;;) {
    if (isTsetcdRepo(dir)) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  // Running from an unrelated location: the working directory is the best remaining guess.
  if (isTsetcdRepo(process.cwd())) return process.cwd();
  throw new Error(`cannot find the tsetcd repository root above ${startDir}`);
}

function isTsetcdRepo(dir: string): boolean {
  const pkgPath = path.join(dir, 'package.json');
  if (!fs.existsSync(pkgPath)) return false;
  try {
    const pkg = JSON.parse(fs.readFileSync(pkgPath, 'utf8')) as { name?: unknown };
    return pkg.name === 'tsetcd';
  } catch {
    return false;
  }
}

// keepCase keeps etcd's snake_case field names (request_put, watch_id); int64 become
// strings so 64-bit lease IDs and revisions survive without precision loss.
const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: false,
  oneofs: true,
};

/** Loads etcdserverpb from <repo>/proto/rpc.proto, falling back to the system etcd protos. */
export function loadEtcdProto(repoRoot?: string): LoadedProto {
  const root = repoRoot ?? safeRepoRoot();
  if (root !== undefined) {
    const protoDir = path.join(root, 'proto');
    const file = path.join(protoDir, 'rpc.proto');
    if (fs.existsSync(file)) {
      const definition = protoLoader.loadSync('rpc.proto', { ...LOADER_OPTIONS, includeDirs: [protoDir] });
      return { definition, source: 'repo', file };
    }
  }
  const systemFile = path.join(SYSTEM_GOCODE_DIR, 'go.etcd.io/etcd/etcdserver/etcdserverpb/rpc.proto');
  if (!fs.existsSync(systemFile)) {
    throw new Error('no rpc.proto found: neither <repo>/proto/rpc.proto nor ' + systemFile);
  }
  // etcd's files import "etcd/mvcc/...", "gogoproto/gogo.proto" and "google/api/annotations.proto";
  // all three live under Debian's gocode tree.
  const definition = protoLoader.loadSync('etcd/etcdserver/etcdserverpb/rpc.proto', {
    ...LOADER_OPTIONS,
    includeDirs: [
      path.join(SYSTEM_GOCODE_DIR, 'go.etcd.io'),
      path.join(SYSTEM_GOCODE_DIR, 'github.com/gogo/protobuf'),
      path.join(SYSTEM_GOCODE_DIR, 'github.com/grpc-ecosystem/grpc-gateway/third_party/googleapis'),
    ],
  });
  return { definition, source: 'system-etcd', file: systemFile };
}

function safeRepoRoot(): string | undefined {
  try {
    return findRepoRoot();
  } catch {
    return undefined;
  }
}

/** One RPC's path and (de)serializers, as proto-loader describes it. */
export interface MethodCodec {
  path: string;
  serialize: (value: object) => Buffer;
  deserialize: (bytes: Buffer) => unknown;
}

/** Looks up `etcdserverpb.<service>/<method>`; throws if the contract lacks it. */
export function methodCodec(proto: LoadedProto, service: string, method: string): MethodCodec {
  const svc = proto.definition[`etcdserverpb.${service}`] as protoLoader.ServiceDefinition | undefined;
  if (svc === undefined || 'format' in svc) {
    throw new Error(`service etcdserverpb.${service} not found in ${proto.file}`);
  }
  const m = svc[method];
  if (m === undefined) throw new Error(`method ${service}/${method} not found in ${proto.file}`);
  return {
    path: m.path,
    serialize: (value: object) => m.requestSerialize(value),
    deserialize: (bytes: Buffer) => m.responseDeserialize(bytes),
  };
}
