// MVCC / request errors. `message` is etcd's internal error text (what etcd's Go
// error values print); `grpcMessage` and `grpcCode` are what etcd's v3rpc layer
// sends to clients (rpctypes), which clients match on byte for byte.

/** gRPC status codes used below (numeric values from the gRPC spec). */
export const GrpcCode = {
  InvalidArgument: 3,
  NotFound: 5,
  OutOfRange: 11,
} as const;

export abstract class MvccError extends Error {
  abstract readonly grpcCode: number;
  abstract readonly grpcMessage: string;
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

export class ErrCompacted extends MvccError {
  readonly grpcCode = GrpcCode.OutOfRange;
  readonly grpcMessage = 'etcdserver: mvcc: required revision has been compacted';
  constructor() {
    super('mvcc: required revision has been compacted');
  }
}

export class ErrFutureRev extends MvccError {
  readonly grpcCode = GrpcCode.OutOfRange;
  readonly grpcMessage = 'etcdserver: mvcc: required revision is a future revision';
  constructor() {
    super('mvcc: required revision is a future revision');
  }
}

/** ignore_value / ignore_lease on a key that does not exist (also: an empty RequestOp in a txn). */
export class ErrKeyNotFound extends MvccError {
  readonly grpcCode = GrpcCode.InvalidArgument;
  readonly grpcMessage = 'etcdserver: key not found';
  constructor() {
    super('key not found');
  }
}

export class ErrLeaseNotFound extends MvccError {
  readonly grpcCode = GrpcCode.NotFound;
  readonly grpcMessage = 'etcdserver: requested lease not found';
  constructor() {
    super('lease not found');
  }
}

export class ErrEmptyKey extends MvccError {
  readonly grpcCode = GrpcCode.InvalidArgument;
  readonly grpcMessage = 'etcdserver: key is not provided';
  constructor() {
    super('key is not provided');
  }
}

export class ErrDuplicateKey extends MvccError {
  readonly grpcCode = GrpcCode.InvalidArgument;
  readonly grpcMessage = 'etcdserver: duplicate key given in txn request';
  constructor() {
    super('duplicate key given in txn request');
  }
}

export class ErrTooManyOps extends MvccError {
  readonly grpcCode = GrpcCode.InvalidArgument;
  readonly grpcMessage = 'etcdserver: too many operations in txn request';
  constructor() {
    super('too many operations in txn request');
  }
}

export class ErrValueProvided extends MvccError {
  readonly grpcCode = GrpcCode.InvalidArgument;
  readonly grpcMessage = 'etcdserver: value is provided';
  constructor() {
    super('value is provided');
  }
}

export class ErrLeaseProvided extends MvccError {
  readonly grpcCode = GrpcCode.InvalidArgument;
  readonly grpcMessage = 'etcdserver: lease is provided';
  constructor() {
    super('lease is provided');
  }
}
