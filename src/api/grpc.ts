import * as grpc from '@grpc/grpc-js';
import type protobuf from 'protobufjs';
import { root, type Msg } from '../server/pb.js';
import { counterCell, type ServerMetrics } from '../server/metrics.js';
import { toRpcError } from './errors.js';

// gRPC service definitions built straight from the protobufjs reflection of our .proto
// files. Requests are decoded with protobufjs (no toObject pass) and keep their raw bytes
// in `$raw`, so write requests can be proposed through Raft without re-encoding.

export const RAW = '$raw';

export function serviceDefinition(fullName: string): grpc.ServiceDefinition {
  const svc = root.lookupService(fullName);
  const def: Record<string, grpc.MethodDefinition<Msg, Msg>> = {};
  for (const method of svc.methodsArray) {
    method.resolve();
    const reqType = method.resolvedRequestType as protobuf.Type;
    const resType = method.resolvedResponseType as protobuf.Type;
    def[method.name] = {
      path: `/${fullName}/${method.name}`,
      requestStream: !!method.requestStream,
      responseStream: !!method.responseStream,
      requestSerialize: (obj: Msg) => Buffer.from(reqType.encode(obj).finish()),
      requestDeserialize: (buf: Buffer) => {
        const m = reqType.decode(buf) as Msg;
        m[RAW] = buf;
        return m;
      },
      // A handler may hand over an already-encoded message (the Watch fan-out encodes each
      // event once and shares the bytes between watchers).
      responseSerialize: (obj: Msg) => {
        if (Buffer.isBuffer(obj)) return obj;
        const w = resType.encode(obj).finish();
        return Buffer.from(w.buffer, w.byteOffset, w.byteLength);
      },
      responseDeserialize: (buf: Buffer) => resType.decode(buf),
      originalName: method.name,
    };
  }
  return def;
}

export function grpcError(err: unknown): grpc.ServiceError {
  const mapped = toRpcError(err);
  const e = new Error(mapped.message) as grpc.ServiceError;
  e.code = mapped.code;
  e.details = mapped.message;
  e.metadata = new grpc.Metadata();
  if (mapped.detail) e.metadata.set('tsetcd-detail', mapped.detail);
  return e;
}

type UnaryFn = (req: Msg, call: grpc.ServerUnaryCall<Msg, Msg>) => Msg | Promise<Msg>;

/** Wraps a unary handler: metrics, promise -> callback, internal error -> etcd's gRPC status. */
export function unary(metrics: ServerMetrics, service: string, method: string, fn: UnaryFn): grpc.handleUnaryCall<Msg, Msg> {
  const labels = { grpc_type: 'unary', grpc_service: service, grpc_method: method };
  const started = counterCell(metrics.grpcStarted, labels);
  const received = counterCell(metrics.grpcMsgReceived, labels);
  const sent = counterCell(metrics.grpcMsgSent, labels);
  const ok = counterCell(metrics.grpcHandled, { ...labels, grpc_code: 'OK' });
  return (call, callback) => {
    // A member's own warm-up call (fast-unary.ts sets the flag) is served but not counted.
    const counted = (call as { warmUp?: boolean }).warmUp !== true;
    if (counted) {
      started.inc();
      received.inc();
    }
    let out: Msg | Promise<Msg>;
    try {
      out = fn(call.request, call);
    } catch (e) {
      fail(e);
      return;
    }
    if (out instanceof Promise) out.then(done, fail);
    else done(out);

    function done(res: Msg): void {
      if (counted) {
        sent.inc();
        ok.inc();
      }
      callback(null, res);
    }
    function fail(e: unknown): void {
      const ge = grpcError(e);
      if (counted) metrics.grpcHandled.inc({ ...labels, grpc_code: grpc.status[ge.code] ?? String(ge.code) });
      callback(ge);
    }
  };
}

export function unimplemented(what: string): grpc.ServiceError {
  const e = new Error(`${what} is not implemented by tsetcd yet`) as grpc.ServiceError;
  e.code = grpc.status.UNIMPLEMENTED;
  e.details = e.message;
  return e;
}
