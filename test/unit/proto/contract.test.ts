// Contract tests for proto/*.proto: our own definitions must describe exactly
// the same wire API as etcd's (3.4 files installed on this machine, plus the
// fields etcd 3.5/3.6 added), so that etcdctl, Go clientv3 and the npm etcd3
// client interoperate with tsetcd unchanged.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import * as protoLoader from '@grpc/proto-loader';
import * as grpc from '@grpc/grpc-js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const ourProtoDir = path.join(repoRoot, 'proto');
const ourEntryFiles = ['rpc.proto', 'v3election.proto', 'v3lock.proto', 'health.proto'];

// etcd 3.4 imports its own files as "etcd/<dir>/...", rooted at go.etcd.io.
const etcdGoRoot = '/usr/share/gocode/src/go.etcd.io';
const etcd34Files = [
  'etcd/mvcc/mvccpb/kv.proto',
  'etcd/auth/authpb/auth.proto',
  'etcd/etcdserver/etcdserverpb/rpc.proto',
  'etcd/etcdserver/api/v3election/v3electionpb/v3election.proto',
  'etcd/etcdserver/api/v3lock/v3lockpb/v3lock.proto',
];
const etcd3NpmProtoDir = path.join(repoRoot, 'node_modules/etcd3/proto');

const loaderOptions: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: Number,
  defaults: true,
  oneofs: true,
  includeDirs: [ourProtoDir],
};

let stubDir = '';

/** Writes empty stand-ins for the annotation-only imports etcd's files pull in. */
function writeAnnotationStubs(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsetcd-'));
  for (const rel of ['gogoproto/gogo.proto', 'google/api/annotations.proto']) {
    fs.mkdirSync(path.join(dir, path.dirname(rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, rel), 'syntax = "proto3";\n');
  }
  return dir;
}

function loadEtcd34Root(): protobuf.Root {
  const root = new protobuf.Root();
  root.resolvePath = (_origin: string, target: string): string => {
    if (path.isAbsolute(target)) return target;
    if (target.startsWith('etcd/')) return path.join(etcdGoRoot, target);
    return path.join(stubDir, target);
  };
  root.loadSync(etcd34Files, { keepCase: true });
  root.resolveAll();
  return root;
}

function loadRootFrom(dir: string, files: string[]): protobuf.Root {
  const root = new protobuf.Root();
  root.resolvePath = (origin: string, target: string): string => {
    if (path.isAbsolute(target)) return target;
    // Imports are resolved against the include dir (like protoc -I), not the importer.
    void origin;
    return path.join(dir, target);
  };
  root.loadSync(files, { keepCase: true });
  root.resolveAll();
  return root;
}

function loadOurRoot(): protobuf.Root {
  return loadRootFrom(ourProtoDir, ourEntryFiles);
}

/** Every type, enum and service reachable from a root, nested ones included. */
function collectDefinitions(ns: protobuf.NamespaceBase): protobuf.ReflectionObject[] {
  const found: protobuf.ReflectionObject[] = [];
  for (const child of ns.nestedArray) {
    if (child instanceof protobuf.Type || child instanceof protobuf.Enum || child instanceof protobuf.Service) {
      found.push(child);
    }
    if (child instanceof protobuf.Namespace) found.push(...collectDefinitions(child));
  }
  return found;
}

/** Canonical description of a field's wire-relevant shape. */
function describeField(field: protobuf.Field): Record<string, unknown> {
  field.resolve();
  const typeName = field.resolvedType ? field.resolvedType.fullName : field.type;
  const keyType = field instanceof protobuf.MapField ? field.keyType : null;
  return {
    name: field.name,
    id: field.id,
    type: typeName,
    repeated: field.repeated,
    mapKeyType: keyType,
    oneof: field.partOf ? field.partOf.name : null,
  };
}

function describeMethod(method: protobuf.Method): Record<string, unknown> {
  method.resolve();
  return {
    name: method.name,
    request: method.resolvedRequestType?.fullName,
    response: method.resolvedResponseType?.fullName,
    requestStream: Boolean(method.requestStream),
    responseStream: Boolean(method.responseStream),
  };
}

/**
 * Lists every way `ours` fails to be wire-compatible with `reference`.
 * Enum value names never reach the binary wire, so `checkEnumValueNames: false`
 * compares only the set of numbers (the npm etcd3 client renames them).
 */
function contractMismatches(
  reference: protobuf.Root,
  ours: protobuf.Root,
  { checkEnumValueNames } = { checkEnumValueNames: true },
): string[] {
  const problems: string[] = [];
  for (const def of collectDefinitions(reference)) {
    const mine = ours.lookup(def.fullName);
    if (!mine) {
      problems.push(`missing ${def.fullName}`);
      continue;
    }
    if (def instanceof protobuf.Type) {
      if (!(mine instanceof protobuf.Type)) {
        problems.push(`${def.fullName} is not a message in ours`);
        continue;
      }
      for (const field of def.fieldsArray) {
        const myField = mine.fields[field.name];
        if (!myField) {
          problems.push(`missing field ${def.fullName}.${field.name}`);
          continue;
        }
        const want = JSON.stringify(describeField(field));
        const got = JSON.stringify(describeField(myField));
        if (want !== got) problems.push(`field ${def.fullName}.${field.name}: want ${want} got ${got}`);
      }
    } else if (def instanceof protobuf.Enum) {
      if (!(mine instanceof protobuf.Enum)) {
        problems.push(`${def.fullName} is not an enum in ours`);
        continue;
      }
      if (!checkEnumValueNames) {
        const want = [...new Set(Object.values(def.values))].sort();
        const got = [...new Set(Object.values(mine.values))].sort();
        if (JSON.stringify(want) !== JSON.stringify(got)) problems.push(`enum ${def.fullName}: want ${want} got ${got}`);
        continue;
      }
      for (const [valueName, valueNumber] of Object.entries(def.values)) {
        if (mine.values[valueName] !== valueNumber) {
          problems.push(`enum ${def.fullName}.${valueName}: want ${valueNumber} got ${mine.values[valueName]}`);
        }
      }
    } else if (def instanceof protobuf.Service) {
      if (!(mine instanceof protobuf.Service)) {
        problems.push(`${def.fullName} is not a service in ours`);
        continue;
      }
      for (const method of def.methodsArray) {
        const myMethod = mine.methods[method.name];
        if (!myMethod) {
          problems.push(`missing rpc ${def.fullName}.${method.name}`);
          continue;
        }
        const want = JSON.stringify(describeMethod(method));
        const got = JSON.stringify(describeMethod(myMethod));
        if (want !== got) problems.push(`rpc ${def.fullName}.${method.name}: want ${want} got ${got}`);
      }
    }
  }
  return problems;
}

function mustLookupType(root: protobuf.Root, name: string): protobuf.Type {
  return root.lookupType(name);
}

let etcd34: protobuf.Root;
let ours: protobuf.Root;

beforeAll(() => {
  stubDir = writeAnnotationStubs();
  etcd34 = loadEtcd34Root();
  ours = loadOurRoot();
});

afterAll(() => {
  if (stubDir) fs.rmSync(stubDir, { recursive: true, force: true });
});

describe('proto contract vs etcd 3.4 installed files', () => {
  it('reference files were really loaded (sanity)', () => {
    const defs = collectDefinitions(etcd34);
    // Guards against a resolver bug silently comparing against nothing.
    expect(defs.length).toBeGreaterThan(100);
    expect(etcd34.lookupService('etcdserverpb.KV').methodsArray.length).toBe(5);
    expect(etcd34.lookupService('v3electionpb.Election').methodsArray.length).toBe(5);
    expect(etcd34.lookupService('v3lockpb.Lock').methodsArray.length).toBe(2);
  });

  it('every etcd 3.4 message, enum and service exists in ours with identical fields and RPCs', () => {
    expect(contractMismatches(etcd34, ours)).toEqual([]);
  });

  it('the comparator detects a wrong field number, a missing RPC and a changed streaming flag', () => {
    // Self-test: mutate a copy of ours and make sure the mismatches are reported.
    const broken = loadOurRoot();
    const put = broken.lookupType('etcdserverpb.PutRequest');
    const lease = put.fields['lease'];
    put.remove(lease);
    put.add(new protobuf.Field('lease', 30, 'int64'));
    const kv = broken.lookupService('etcdserverpb.KV');
    kv.remove(kv.methods['Compact']);
    const watch = broken.lookupService('etcdserverpb.Watch');
    watch.methods['Watch'].responseStream = false;
    const problems = contractMismatches(etcd34, broken);
    expect(problems.some((p) => p.startsWith('field .etcdserverpb.PutRequest.lease'))).toBe(true);
    expect(problems).toContain('missing rpc .etcdserverpb.KV.Compact');
    expect(problems.some((p) => p.startsWith('rpc .etcdserverpb.Watch.Watch'))).toBe(true);
  });
});

describe('proto contract vs the npm etcd3 client protos', () => {
  it('every message and RPC the etcd3 client knows matches ours (enum numbers only: it renames values)', () => {
    const npmRoot = loadRootFrom(etcd3NpmProtoDir, ['rpc.proto']);
    expect(collectDefinitions(npmRoot).length).toBeGreaterThan(100);
    expect(contractMismatches(npmRoot, ours, { checkEnumValueNames: false })).toEqual([]);
  });
});

describe('etcd 3.5 / 3.6 additions', () => {
  // [message, field, number, type (fully qualified for messages/enums), repeated]
  const addedFields: Array<[string, string, number, string, boolean]> = [
    ['etcdserverpb.StatusResponse', 'storageVersion', 11, 'string', false],
    ['etcdserverpb.StatusResponse', 'dbSizeQuota', 12, 'int64', false],
    ['etcdserverpb.StatusResponse', 'downgradeInfo', 13, '.etcdserverpb.DowngradeInfo', false],
    ['etcdserverpb.DowngradeInfo', 'enabled', 1, 'bool', false],
    ['etcdserverpb.DowngradeInfo', 'targetVersion', 2, 'string', false],
    ['etcdserverpb.HashKVResponse', 'hash_revision', 4, 'int64', false],
    ['etcdserverpb.SnapshotResponse', 'version', 4, 'string', false],
    ['etcdserverpb.MemberListRequest', 'linearizable', 1, 'bool', false],
    ['etcdserverpb.AuthUserAddRequest', 'hashedPassword', 4, 'string', false],
    ['etcdserverpb.AuthUserChangePasswordRequest', 'hashedPassword', 3, 'string', false],
    ['etcdserverpb.DowngradeRequest', 'action', 1, '.etcdserverpb.DowngradeRequest.DowngradeAction', false],
    ['etcdserverpb.DowngradeRequest', 'version', 2, 'string', false],
    ['etcdserverpb.DowngradeResponse', 'header', 1, '.etcdserverpb.ResponseHeader', false],
    ['etcdserverpb.DowngradeResponse', 'version', 2, 'string', false],
    ['etcdserverpb.DowngradeVersionTestRequest', 'ver', 1, 'string', false],
    ['etcdserverpb.AuthStatusResponse', 'header', 1, '.etcdserverpb.ResponseHeader', false],
    ['etcdserverpb.AuthStatusResponse', 'enabled', 2, 'bool', false],
    ['etcdserverpb.AuthStatusResponse', 'authRevision', 3, 'uint64', false],
    ['authpb.User', 'options', 4, '.authpb.UserAddOptions', false],
    ['authpb.UserAddOptions', 'no_password', 1, 'bool', false],
  ];

  it.each(addedFields)('%s.%s = %i (%s)', (typeName, fieldName, fieldNumber, fieldType, repeated) => {
    const field = mustLookupType(ours, typeName).fields[fieldName];
    expect(field).toBeDefined();
    const shape = describeField(field);
    expect(shape.id).toBe(fieldNumber);
    expect(shape.type).toBe(fieldType);
    expect(shape.repeated).toBe(repeated);
  });

  it('Downgrade and AuthStatus RPCs and the DowngradeAction enum', () => {
    const downgrade = describeMethod(ours.lookupService('etcdserverpb.Maintenance').methods['Downgrade']);
    expect(downgrade).toEqual({
      name: 'Downgrade',
      request: '.etcdserverpb.DowngradeRequest',
      response: '.etcdserverpb.DowngradeResponse',
      requestStream: false,
      responseStream: false,
    });
    const authStatus = describeMethod(ours.lookupService('etcdserverpb.Auth').methods['AuthStatus']);
    expect(authStatus).toEqual({
      name: 'AuthStatus',
      request: '.etcdserverpb.AuthStatusRequest',
      response: '.etcdserverpb.AuthStatusResponse',
      requestStream: false,
      responseStream: false,
    });
    expect(ours.lookupEnum('etcdserverpb.DowngradeRequest.DowngradeAction').values).toEqual({
      VALIDATE: 0,
      ENABLE: 1,
      CANCEL: 2,
    });
    expect(mustLookupType(ours, 'etcdserverpb.AuthStatusRequest').fieldsArray).toEqual([]);
  });

  it('RPC counts per service match etcd 3.6 exactly (no invented RPCs)', () => {
    const rpcCounts: Record<string, number> = {
      'etcdserverpb.KV': 5,
      'etcdserverpb.Watch': 1,
      'etcdserverpb.Lease': 5,
      'etcdserverpb.Cluster': 5,
      'etcdserverpb.Maintenance': 8,
      'etcdserverpb.Auth': 17,
      'v3electionpb.Election': 5,
      'v3lockpb.Lock': 2,
      'grpc.health.v1.Health': 2,
    };
    for (const [serviceName, count] of Object.entries(rpcCounts)) {
      expect(ours.lookupService(serviceName).methodsArray.length, serviceName).toBe(count);
    }
  });

  it('our files import nothing but each other and carry no gogoproto / google.api options', () => {
    for (const file of fs.readdirSync(ourProtoDir).filter((f) => f.endsWith('.proto'))) {
      const text = fs.readFileSync(path.join(ourProtoDir, file), 'utf8');
      const imports = [...text.matchAll(/^\s*import\s+"([^"]+)"/gm)].map((m) => m[1]);
      for (const imported of imports) {
        expect(fs.existsSync(path.join(ourProtoDir, imported)), `${file} imports ${imported}`).toBe(true);
      }
      expect(text).not.toMatch(/gogoproto|google\.api|openapiv2/);
    }
  });
});

describe('wire compatibility (encode with one side, decode with the other)', () => {
  it('ResponseHeader encodes to the canonical bytes', () => {
    const header = mustLookupType(ours, 'etcdserverpb.ResponseHeader');
    const bytes = header.encode(header.fromObject({ cluster_id: 1, member_id: 2, revision: 3, raft_term: 4 })).finish();
    expect(Buffer.from(bytes).toString('hex')).toBe('0801100218032004');
  });

  it('a Txn request built with etcd 3.4 types decodes identically with ours, and back', () => {
    const request = {
      compare: [{ result: 3, target: 4, key: Buffer.from('k'), lease: 7, range_end: Buffer.from('z') }],
      success: [
        { request_put: { key: Buffer.from('a'), value: Buffer.from('v'), lease: 9, prev_kv: true } },
        { request_range: { key: Buffer.from('a'), range_end: Buffer.from([0]), limit: 5, sort_order: 2, sort_target: 4, max_create_revision: 77 } },
      ],
      failure: [{ request_delete_range: { key: Buffer.from('x'), prev_kv: true } }],
    };
    const etcdTxn = mustLookupType(etcd34, 'etcdserverpb.TxnRequest');
    const ourTxn = mustLookupType(ours, 'etcdserverpb.TxnRequest');
    const etcdBytes = etcdTxn.encode(etcdTxn.fromObject(request)).finish();
    const ourBytes = ourTxn.encode(ourTxn.fromObject(request)).finish();
    expect(Buffer.from(ourBytes).equals(Buffer.from(etcdBytes))).toBe(true);
    const conversion: protobuf.IConversionOptions = { longs: String, bytes: String, enums: String, oneofs: true };
    expect(ourTxn.toObject(ourTxn.decode(etcdBytes), conversion)).toEqual(
      etcdTxn.toObject(etcdTxn.decode(ourBytes), conversion),
    );
  });

  it('a 3.6 StatusResponse from ours decodes with etcd 3.4 types (new fields skipped, old ones intact)', () => {
    const status = {
      header: { cluster_id: '18446744073709551615', member_id: 5, revision: 10, raft_term: 2 },
      version: '3.6.0',
      dbSize: 4096,
      leader: 5,
      raftIndex: 42,
      raftTerm: 2,
      raftAppliedIndex: 42,
      errors: ['NOSPACE'],
      dbSizeInUse: 2048,
      isLearner: false,
      storageVersion: '3.6.0',
      dbSizeQuota: 2147483648,
      downgradeInfo: { enabled: true, targetVersion: '3.5.0' },
    };
    const ourStatus = mustLookupType(ours, 'etcdserverpb.StatusResponse');
    const etcdStatus = mustLookupType(etcd34, 'etcdserverpb.StatusResponse');
    const bytes = ourStatus.encode(ourStatus.fromObject(status)).finish();
    const decodedByEtcd = etcdStatus.toObject(etcdStatus.decode(bytes), { longs: String });
    expect(decodedByEtcd.version).toBe('3.6.0');
    expect(decodedByEtcd.dbSizeInUse).toBe('2048');
    expect(decodedByEtcd.header.cluster_id).toBe('18446744073709551615');
    expect(decodedByEtcd.errors).toEqual(['NOSPACE']);
    const decodedByUs = ourStatus.toObject(ourStatus.decode(bytes), { longs: String });
    expect(decodedByUs.dbSizeQuota).toBe('2147483648');
    expect(decodedByUs.downgradeInfo).toEqual({ enabled: true, targetVersion: '3.5.0' });
  });
});

describe('@grpc/proto-loader loads our files with the server options', () => {
  let packageDefinition: protoLoader.PackageDefinition;

  beforeAll(() => {
    packageDefinition = protoLoader.loadSync(ourEntryFiles, loaderOptions);
  });

  it('exposes every service under etcd-compatible gRPC paths', () => {
    const expectedPaths: Array<[string, string, string]> = [
      ['etcdserverpb.KV', 'Range', '/etcdserverpb.KV/Range'],
      ['etcdserverpb.Watch', 'Watch', '/etcdserverpb.Watch/Watch'],
      ['etcdserverpb.Lease', 'LeaseKeepAlive', '/etcdserverpb.Lease/LeaseKeepAlive'],
      ['etcdserverpb.Cluster', 'MemberPromote', '/etcdserverpb.Cluster/MemberPromote'],
      ['etcdserverpb.Maintenance', 'Downgrade', '/etcdserverpb.Maintenance/Downgrade'],
      ['etcdserverpb.Auth', 'AuthStatus', '/etcdserverpb.Auth/AuthStatus'],
      ['v3electionpb.Election', 'Observe', '/v3electionpb.Election/Observe'],
      ['v3lockpb.Lock', 'Unlock', '/v3lockpb.Lock/Unlock'],
      ['grpc.health.v1.Health', 'Watch', '/grpc.health.v1.Health/Watch'],
    ];
    for (const [serviceName, methodName, grpcPath] of expectedPaths) {
      const service = packageDefinition[serviceName] as protoLoader.ServiceDefinition;
      expect(service, serviceName).toBeDefined();
      expect(service[methodName].path).toBe(grpcPath);
    }
    const watch = (packageDefinition['etcdserverpb.Watch'] as protoLoader.ServiceDefinition)['Watch'];
    expect(watch.requestStream).toBe(true);
    expect(watch.responseStream).toBe(true);
    const snapshot = (packageDefinition['etcdserverpb.Maintenance'] as protoLoader.ServiceDefinition)['Snapshot'];
    expect(snapshot.requestStream).toBe(false);
    expect(snapshot.responseStream).toBe(true);
  });

  it('deserializes with keepCase, string longs, numeric enums, defaults and oneof names', () => {
    const txn = (packageDefinition['etcdserverpb.KV'] as protoLoader.ServiceDefinition)['Txn'];
    const etcdTxn = mustLookupType(etcd34, 'etcdserverpb.TxnRequest');
    const bytes = etcdTxn
      .encode(etcdTxn.fromObject({ success: [{ request_put: { key: Buffer.from('k'), lease: '9007199254740993' } }] }))
      .finish();
    const decoded = txn.requestDeserialize(Buffer.from(bytes)) as {
      compare: unknown[];
      success: Array<{ request: string; request_put: { key: Buffer; value: Buffer; lease: string; prev_kv: boolean } }>;
    };
    expect(decoded.compare).toEqual([]);
    expect(decoded.success[0].request).toBe('request_put');
    expect(decoded.success[0].request_put.lease).toBe('9007199254740993');
    expect(decoded.success[0].request_put.prev_kv).toBe(false);
    expect(Buffer.from(decoded.success[0].request_put.value).length).toBe(0);

    const range = (packageDefinition['etcdserverpb.KV'] as protoLoader.ServiceDefinition)['Range'];
    const rangeRequest = range.requestDeserialize(range.requestSerialize({ key: Buffer.from('a'), sort_order: 2 })) as {
      sort_order: number;
      revision: string;
    };
    expect(rangeRequest.sort_order).toBe(2);
    expect(rangeRequest.revision).toBe('0');
  });
});

describe('live gRPC interop with our definitions', () => {
  let server: grpc.Server;
  let port = 0;
  const header = { cluster_id: '1', member_id: '2', revision: '7', raft_term: '3' };

  beforeAll(async () => {
    const definition = grpc.loadPackageDefinition(protoLoader.loadSync(ourEntryFiles, loaderOptions));
    const etcdserverpb = definition['etcdserverpb'] as grpc.GrpcObject;
    const health = ((definition['grpc'] as grpc.GrpcObject)['health'] as grpc.GrpcObject)['v1'] as grpc.GrpcObject;
    server = new grpc.Server();
    server.addService((etcdserverpb['KV'] as grpc.ServiceClientConstructor).service, {
      Range: (call: grpc.ServerUnaryCall<{ key: Buffer }, unknown>, callback: grpc.sendUnaryData<unknown>) => {
        const key = Buffer.from(call.request.key);
        callback(null, {
          header,
          kvs: [{ key, value: Buffer.from(`value-of-${key.toString()}`), create_revision: '5', mod_revision: '7', version: '2' }],
          count: '1',
        });
      },
    });
    server.addService((health['Health'] as grpc.ServiceClientConstructor).service, {
      Check: (_call: unknown, callback: grpc.sendUnaryData<unknown>) => callback(null, { status: 1 }),
    });
    port = await new Promise<number>((resolve, reject) => {
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, boundPort) =>
        err ? reject(err) : resolve(boundPort),
      );
    });
  });

  afterAll(() => {
    server?.forceShutdown();
  });

  it('the npm etcd3 client reads a key through our KV.Range', async () => {
    const { Etcd3 } = await import('etcd3');
    const client = new Etcd3({ hosts: `127.0.0.1:${port}` });
    try {
      expect(await client.get('foo').string()).toBe('value-of-foo');
    } finally {
      client.close();
    }
  });

  it('a client built from our health.proto gets SERVING', async () => {
    const definition = grpc.loadPackageDefinition(protoLoader.loadSync(['health.proto'], loaderOptions));
    const health = ((definition['grpc'] as grpc.GrpcObject)['health'] as grpc.GrpcObject)['v1'] as grpc.GrpcObject;
    const HealthClient = health['Health'] as grpc.ServiceClientConstructor;
    const client = new HealthClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    try {
      const reply = await new Promise<{ status: number }>((resolve, reject) => {
        client['Check']({ service: '' }, (err: Error | null, res: { status: number }) => (err ? reject(err) : resolve(res)));
      });
      expect(reply.status).toBe(1);
    } finally {
      client.close();
    }
  });

  it.skipIf(!fs.existsSync('/usr/bin/etcdctl'))('the real etcdctl reads a key through our KV.Range', async () => {
    const stdout = await new Promise<string>((resolve, reject) => {
      execFile(
        '/usr/bin/etcdctl',
        [`--endpoints=127.0.0.1:${port}`, '--dial-timeout=5s', '--command-timeout=5s', '-w', 'json', 'get', 'bar'],
        { env: { ...process.env, ETCDCTL_API: '3' }, timeout: 15_000 },
        (err, out, errOut) => (err ? reject(new Error(`${err.message}\n${errOut}`)) : resolve(out)),
      );
    });
    const parsed = JSON.parse(stdout) as {
      header: { cluster_id: number; revision: number };
      kvs: Array<{ key: string; value: string; mod_revision: number }>;
    };
    expect(parsed.header.revision).toBe(7);
    expect(Buffer.from(parsed.kvs[0].key, 'base64').toString()).toBe('bar');
    expect(Buffer.from(parsed.kvs[0].value, 'base64').toString()).toBe('value-of-bar');
    expect(parsed.kvs[0].mod_revision).toBe(7);
  });
});
