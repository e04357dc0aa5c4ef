import { status as GrpcStatus } from '@grpc/grpc-js';

// THE table: every internal error message -> etcd's gRPC code and exact client-visible text.
// Clients (Go clientv3, npm etcd3, kube-apiserver) match on these strings, so they must be exact.

export interface EtcdRpcError {
  code: GrpcStatus;
  message: string;
}

const table: Record<string, EtcdRpcError> = {};
function def(internal: string, code: GrpcStatus, message = `etcdserver: ${internal}`): void {
  table[internal] = { code, message };
}

const S = GrpcStatus;
// request validation
def('key is not provided', S.INVALID_ARGUMENT);
def('key not found', S.INVALID_ARGUMENT);
def('value is provided', S.INVALID_ARGUMENT);
def('lease is provided', S.INVALID_ARGUMENT);
def('too many operations in txn request', S.INVALID_ARGUMENT);
def('duplicate key given in txn request', S.INVALID_ARGUMENT);
def('request is too large', S.INVALID_ARGUMENT);
// mvcc
def('mvcc: required revision has been compacted', S.OUT_OF_RANGE);
def('mvcc: required revision is a future revision', S.OUT_OF_RANGE);
def('mvcc: database space exceeded', S.RESOURCE_EXHAUSTED);
// lease
def('lease not found', S.NOT_FOUND, 'etcdserver: requested lease not found');
def('lease already exists', S.FAILED_PRECONDITION);
def('too large lease TTL', S.OUT_OF_RANGE);
// membership
def('member ID already exist', S.FAILED_PRECONDITION);
def('Peer URLs already exists', S.FAILED_PRECONDITION);
def('member not found', S.NOT_FOUND);
def('re-configuration failed due to not enough started members', S.FAILED_PRECONDITION);
def('can only promote a learner member which is in sync with leader', S.FAILED_PRECONDITION);
def('can only promote a learner member', S.FAILED_PRECONDITION);
def('too many learner members in cluster', S.FAILED_PRECONDITION);
def('bad leader transferee', S.FAILED_PRECONDITION);
def('rpc not supported for learner', S.UNAVAILABLE);
def('unhealthy cluster', S.UNAVAILABLE);
def('corrupt cluster', S.DATA_LOSS);
// raft / availability
def('no leader', S.UNAVAILABLE);
def('not leader', S.FAILED_PRECONDITION);
def('leader changed', S.UNAVAILABLE);
def('request timed out', S.UNAVAILABLE);
def('request timed out, possibly due to previous leader failure', S.UNAVAILABLE);
def('request timed out, possibly due to connection lost', S.UNAVAILABLE);
def('too many requests', S.RESOURCE_EXHAUSTED);
def('server stopped', S.UNAVAILABLE);
def('unknown method', S.UNIMPLEMENTED);
// auth
def('root user does not exist', S.FAILED_PRECONDITION);
def('root user does not have root role', S.FAILED_PRECONDITION);
def('user name already exists', S.FAILED_PRECONDITION);
def('user name is empty', S.INVALID_ARGUMENT);
def('user name not found', S.FAILED_PRECONDITION);
def('role name already exists', S.FAILED_PRECONDITION);
def('role name not found', S.FAILED_PRECONDITION);
def('role name is empty', S.INVALID_ARGUMENT);
def('authentication failed, invalid user ID or password', S.INVALID_ARGUMENT);
def('permission denied', S.PERMISSION_DENIED);
def('role is not granted to the user', S.FAILED_PRECONDITION);
def('permission is not granted to the role', S.FAILED_PRECONDITION);
def('authentication is not enabled', S.FAILED_PRECONDITION);
def('invalid auth token', S.UNAUTHENTICATED);
def('invalid auth management', S.INVALID_ARGUMENT);
def('revision of auth store is old', S.INVALID_ARGUMENT);
// etcd 3.4 lets these auth-package errors through unmapped: code Unknown, the package's own text.
def('auth: authentication failed, password was given for no password user', S.UNKNOWN, 'auth: authentication failed, password was given for no password user');
def('auth: token signing attempted with verify-only key', S.UNKNOWN, 'auth: token signing attempted with verify-only key');
def('auth: invalid hashed password', S.INVALID_ARGUMENT, 'auth: invalid hashed password');

/** Strips an optional "etcdserver: " prefix so both internal and already-mapped messages resolve. */
export function toRpcError(err: unknown): EtcdRpcError & { detail?: string } {
  if (err && typeof err === 'object' && 'code' in err && typeof (err as { code: unknown }).code === 'number' && 'grpcMapped' in err) {
    return err as unknown as EtcdRpcError;
  }
  const message = err instanceof Error ? err.message : String(err);
  const internal = message.startsWith('etcdserver: ') ? message.slice('etcdserver: '.length) : message;
  const hit = table[internal];
  const detail = err && typeof err === 'object' && 'detail' in err ? String((err as { detail: unknown }).detail) : undefined;
  if (hit) return detail ? { ...hit, detail } : hit;
  return { code: S.UNKNOWN, message };
}

export function isKnownError(err: unknown): boolean {
  const message = err instanceof Error ? err.message : String(err);
  return (message.startsWith('etcdserver: ') ? message.slice(12) : message) in table;
}
