import type http from 'node:http';
import { STATUS_CODES } from 'node:http';
import { StringDecoder } from 'node:string_decoder';
import * as grpc from '@grpc/grpc-js';
import type protobuf from 'protobufjs';
import type { EtcdServer } from '../server/server.js';
import { root, type Msg } from '../server/pb.js';
import type { InProcessChannel, LocalStream, RpcStatusError } from './inprocess.js';
import {
  JsonMappingError, JsonStreamDecoder, JsonTooLarge, goJson, messageFromJson, messageToJson, type JsonValue,
} from './jsonpb.js';

// The JSON gateway on the client port, as etcd 3.4/3.5 serve it with grpc-gateway: POST
// /v3/<service>/<method> with a JSON request body, answered with the JSON response (see
// jsonpb.ts for the mapping). Server-streaming and bidirectional methods (watch, lease
// keep-alive, election observe, snapshot) answer a stream of newline-delimited
// {"result":{...}} objects; a bidirectional call reads a stream of JSON requests from the
// body. Calls go through the in-process channel, i.e. the same handlers as gRPC clients.
// /v3beta/ is an alias of /v3/ (etcd 3.4 rewrites it the same way).

interface Route {
  service: string;
  method: string;
  /**
   * Bidirectional calls: when the client's side is closed after the body ends. etcd's watch
   * server ignores the close (the watch lives until the HTTP client goes away); a keep-alive
   * stream is closed once every request has been answered (etcd answers one at a time).
   */
  halfClose?: 'never' | 'when-answered';
}

const r = (service: string, method: string, halfClose?: Route['halfClose']): Route => ({ service, method, halfClose });
const KV = 'etcdserverpb.KV';
const LEASE = 'etcdserverpb.Lease';
const CLUSTER = 'etcdserverpb.Cluster';
const MAINT = 'etcdserverpb.Maintenance';
const AUTH = 'etcdserverpb.Auth';
const ELECTION = 'v3electionpb.Election';
const LOCK = 'v3lockpb.Lock';

/** etcd's gateway routes (etcdserverpb/gw, v3electionpb/gw, v3lockpb/gw; 3.5 additions included). */
export const ROUTES: ReadonlyMap<string, Route> = new Map<string, Route>([
  ['/v3/kv/range', r(KV, 'Range')],
  ['/v3/kv/put', r(KV, 'Put')],
  ['/v3/kv/deleterange', r(KV, 'DeleteRange')],
  ['/v3/kv/txn', r(KV, 'Txn')],
  ['/v3/kv/compaction', r(KV, 'Compact')],
  ['/v3/watch', r('etcdserverpb.Watch', 'Watch', 'never')],
  ['/v3/lease/grant', r(LEASE, 'LeaseGrant')],
  ['/v3/lease/revoke', r(LEASE, 'LeaseRevoke')],
  ['/v3/kv/lease/revoke', r(LEASE, 'LeaseRevoke')],
  ['/v3/lease/keepalive', r(LEASE, 'LeaseKeepAlive', 'when-answered')],
  ['/v3/lease/timetolive', r(LEASE, 'LeaseTimeToLive')],
  ['/v3/kv/lease/timetolive', r(LEASE, 'LeaseTimeToLive')],
  ['/v3/lease/leases', r(LEASE, 'LeaseLeases')],
  ['/v3/kv/lease/leases', r(LEASE, 'LeaseLeases')],
  ['/v3/cluster/member/add', r(CLUSTER, 'MemberAdd')],
  ['/v3/cluster/member/remove', r(CLUSTER, 'MemberRemove')],
  ['/v3/cluster/member/update', r(CLUSTER, 'MemberUpdate')],
  ['/v3/cluster/member/list', r(CLUSTER, 'MemberList')],
  ['/v3/cluster/member/promote', r(CLUSTER, 'MemberPromote')],
  ['/v3/maintenance/alarm', r(MAINT, 'Alarm')],
  ['/v3/maintenance/status', r(MAINT, 'Status')],
  ['/v3/maintenance/defragment', r(MAINT, 'Defragment')],
  // Hash and HashKV share this path in etcd's gateway; Hash is registered first and wins.
  ['/v3/maintenance/hash', r(MAINT, 'Hash')],
  ['/v3/maintenance/snapshot', r(MAINT, 'Snapshot')],
  ['/v3/maintenance/transfer-leadership', r(MAINT, 'MoveLeader')],
  ['/v3/maintenance/downgrade', r(MAINT, 'Downgrade')],
  ['/v3/auth/enable', r(AUTH, 'AuthEnable')],
  ['/v3/auth/disable', r(AUTH, 'AuthDisable')],
  ['/v3/auth/status', r(AUTH, 'AuthStatus')],
  ['/v3/auth/authenticate', r(AUTH, 'Authenticate')],
  ['/v3/auth/user/add', r(AUTH, 'UserAdd')],
  ['/v3/auth/user/get', r(AUTH, 'UserGet')],
  ['/v3/auth/user/list', r(AUTH, 'UserList')],
  ['/v3/auth/user/delete', r(AUTH, 'UserDelete')],
  ['/v3/auth/user/changepw', r(AUTH, 'UserChangePassword')],
  ['/v3/auth/user/grant', r(AUTH, 'UserGrantRole')],
  ['/v3/auth/user/revoke', r(AUTH, 'UserRevokeRole')],
  ['/v3/auth/role/add', r(AUTH, 'RoleAdd')],
  ['/v3/auth/role/get', r(AUTH, 'RoleGet')],
  ['/v3/auth/role/list', r(AUTH, 'RoleList')],
  ['/v3/auth/role/delete', r(AUTH, 'RoleDelete')],
  ['/v3/auth/role/grant', r(AUTH, 'RoleGrantPermission')],
  ['/v3/auth/role/revoke', r(AUTH, 'RoleRevokePermission')],
  ['/v3/lock/lock', r(LOCK, 'Lock')],
  ['/v3/lock/unlock', r(LOCK, 'Unlock')],
  ['/v3/election/campaign', r(ELECTION, 'Campaign')],
  ['/v3/election/proclaim', r(ELECTION, 'Proclaim')],
  ['/v3/election/leader', r(ELECTION, 'Leader')],
  ['/v3/election/observe', r(ELECTION, 'Observe')],
  ['/v3/election/resign', r(ELECTION, 'Resign')],
]);

/** grpc-gateway v1's runtime.HTTPStatusFromCode. */
export function httpStatusFromCode(code: number): number {
  const S = grpc.status;
  const table: Record<number, number> = {
    [S.OK]: 200, [S.CANCELLED]: 408, [S.UNKNOWN]: 500, [S.INVALID_ARGUMENT]: 400, [S.DEADLINE_EXCEEDED]: 504,
    [S.NOT_FOUND]: 404, [S.ALREADY_EXISTS]: 409, [S.PERMISSION_DENIED]: 403, [S.UNAUTHENTICATED]: 401,
    [S.RESOURCE_EXHAUSTED]: 429, [S.FAILED_PRECONDITION]: 412, [S.ABORTED]: 409, [S.OUT_OF_RANGE]: 400,
    [S.UNIMPLEMENTED]: 501, [S.INTERNAL]: 500, [S.UNAVAILABLE]: 503, [S.DATA_LOSS]: 500,
  };
  return table[code] ?? 500;
}

/** etcd adds these to every client-port HTTP answer (its CORS default allows "*"). */
const CORS_HEADERS = {
  'Access-Control-Allow-Headers': 'accept, content-type, authorization',
  'Access-Control-Allow-Methods': 'POST, GET, OPTIONS, PUT, DELETE',
  'Access-Control-Allow-Origin': '*',
};
const JSON_TYPE = 'application/json';
/** The gRPC response header grpc-gateway forwards to HTTP. */
const GRPC_CONTENT_TYPE = { 'Grpc-Metadata-Content-Type': 'application/grpc' };
const TRAILER = 'Grpc-Trailer-Content-Type';

/** grpc-gateway's header -> gRPC metadata rules, plus etcd's token field for the auth layer. */
function metadataFrom(req: http.IncomingMessage): grpc.Metadata {
  const md = new grpc.Metadata();
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined) continue;
    const values = Array.isArray(value) ? value : [value];
    const lower = name.toLowerCase();
    if (lower.startsWith('grpc-metadata-')) {
      const key = lower.slice('grpc-metadata-'.length);
      if (key && !key.endsWith('-bin')) for (const v of values) md.add(key, v);
    }
  }
  const auth = req.headers.authorization;
  if (auth) {
    md.set('authorization', auth);
    md.set('token', auth);
  }
  const host = req.headers.host;
  if (host) md.set('x-forwarded-host', host);
  if (req.socket.remoteAddress) md.set('x-forwarded-for', req.socket.remoteAddress);
  return md;
}

function peerOf(req: http.IncomingMessage): string {
  const s = req.socket;
  return s.remoteAddress ? `${s.remoteAddress}:${s.remotePort ?? 0}` : 'unknown';
}

function plainError(res: http.ServerResponse, status: number, text: string): void {
  const body = `${text}\n`;
  res.writeHead(status, {
    ...CORS_HEADERS,
    'Content-Type': 'text/plain; charset=utf-8',
    'X-Content-Type-Options': 'nosniff',
    'Content-Length': Buffer.byteLength(body),
  });
  res.end(body);
}

/** grpc-gateway's error body for an error before or instead of a gRPC call. */
function errorBody(code: number, message: string): string {
  return goJson({ error: message, message, code });
}

/** A failure before the gRPC call was made (body decoding): no trailers. */
function requestError(res: http.ServerResponse, code: number, message: string): void {
  const body = errorBody(code, message);
  res.writeHead(httpStatusFromCode(code), { ...CORS_HEADERS, 'Content-Type': JSON_TYPE, 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

/** A gRPC call's error status (grpc-gateway forwards the call's trailers too). */
function callError(res: http.ServerResponse, err: RpcStatusError): void {
  res.writeHead(httpStatusFromCode(err.code), { ...CORS_HEADERS, 'Content-Type': JSON_TYPE, Trailer: TRAILER });
  res.write(errorBody(err.code, err.details));
  res.addTrailers({ [TRAILER]: 'application/grpc' });
  res.end();
}

function streamErrorChunk(err: RpcStatusError): string {
  const httpCode = httpStatusFromCode(err.code);
  return goJson({ error: { grpc_code: err.code, http_code: httpCode, message: err.details, http_status: STATUS_CODES[httpCode] ?? '' } });
}

interface MethodTypes {
  path: string;
  request: protobuf.Type;
  response: protobuf.Type;
  requestStream: boolean;
  responseStream: boolean;
}

function methodTypes(route: Route): MethodTypes | undefined {
  const svc = root.lookupService(route.service);
  const m = svc.methods[route.method];
  if (!m) return undefined;
  m.resolve();
  return {
    path: `/${route.service}/${route.method}`,
    request: m.resolvedRequestType!,
    response: m.resolvedResponseType!,
    requestStream: !!m.requestStream,
    responseStream: !!m.responseStream,
  };
}

export interface GatewayDeps {
  server: EtcdServer;
  channel: InProcessChannel;
}

export function gatewayHandler(deps: GatewayDeps): http.RequestListener {
  const { channel } = deps;
  /** The gRPC server's receive limit (main.ts): --max-request-bytes plus envelope. */
  const maxRecvBytes = deps.server.cfg.maxRequestBytes + 512 * 1024;
  /** JSON text of one request may be this long (base64 and escapes inflate the message). */
  const maxJsonChars = maxRecvBytes * 2 + 64 * 1024;
  const types = new Map<string, MethodTypes>();
  for (const [path, route] of ROUTES) {
    const t = methodTypes(route);
    if (t) types.set(path, t);
  }

  function tooLarge(size: number): RpcStatusError {
    return Object.assign(new Error(), {
      code: grpc.status.RESOURCE_EXHAUSTED,
      details: `grpc: received message larger than max (${size} vs. ${maxRecvBytes})`,
    }) as RpcStatusError;
  }

  /** JSON value -> request object, refusing what the gRPC server would refuse for size. */
  function toRequest(t: MethodTypes, v: JsonValue): Msg {
    const obj = messageFromJson(t.request, v);
    const size = t.request.encode(obj).finish().length;
    if (size > maxRecvBytes) throw tooLarge(size);
    return obj;
  }

  /** Reads the first JSON value of a body (Go's json.Decoder.Decode): null when the body is empty. */
  function readFirstValue(req: http.IncomingMessage): Promise<JsonValue> {
    return new Promise((resolve, reject) => {
      const decoder = new JsonStreamDecoder(maxJsonChars);
      const text = new StringDecoder('utf8');
      let settled = false;
      const settle = (fn: () => void) => {
        if (settled) return;
        settled = true;
        fn();
      };
      const take = (values: JsonValue[]) => {
        if (decoder.error) settle(() => reject(decoder.error));
        else if (values.length > 0) settle(() => resolve(values[0]!));
      };
      req.on('data', (chunk: Buffer) => {
        if (!settled) take(decoder.push(text.write(chunk)));
      });
      req.on('end', () => {
        if (settled) return;
        take(decoder.push(text.end()));
        if (!settled) take(decoder.finish());
        settle(() => resolve(null));
      });
      req.on('error', (e) => settle(() => reject(e)));
    });
  }

  /** A body that could not be decoded: InvalidArgument (its text as Go's decoder words it). */
  function decodeFailure(res: http.ServerResponse, e: unknown, code: number = grpc.status.INVALID_ARGUMENT): void {
    if (e instanceof JsonTooLarge) return requestError(res, grpc.status.RESOURCE_EXHAUSTED, tooLarge(e.chars).details);
    const status = e as Partial<RpcStatusError>;
    if (typeof status.code === 'number' && typeof status.details === 'string') return requestError(res, status.code, status.details);
    requestError(res, code, (e as Error).message);
  }

  async function unaryCall(t: MethodTypes, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    let request: Msg;
    try {
      request = toRequest(t, await readFirstValue(req));
    } catch (e) {
      return decodeFailure(res, e);
    }
    const ac = new AbortController();
    res.on('close', () => {
      if (!res.writableFinished) ac.abort();
    });
    let response: Msg;
    try {
      response = await channel.unary(t.path, request, { metadata: metadataFrom(req), peer: peerOf(req), signal: ac.signal });
    } catch (e) {
      if (!res.destroyed) callError(res, e as RpcStatusError);
      return;
    }
    const body = goJson(messageToJson(t.response, response));
    res.writeHead(200, { ...CORS_HEADERS, 'Content-Type': JSON_TYPE, ...GRPC_CONTENT_TYPE, 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
  }

  /** Writes a stream's responses as newline-delimited {"result":...} objects. */
  function streamWriter(t: MethodTypes, res: http.ServerResponse, onReply: () => void) {
    let wroteHeader = false;
    const writeHead = () => {
      if (wroteHeader) return;
      wroteHeader = true;
      res.writeHead(200, { ...CORS_HEADERS, 'Content-Type': JSON_TYPE, ...GRPC_CONTENT_TYPE });
    };
    return {
      get wroteHeader() {
        return wroteHeader;
      },
      /** The call failed before any response: the request-error format, as grpc-gateway does. */
      failEarly(code: number, message: string): void {
        wroteHeader = true;
        requestError(res, code, message);
      },
      observer: {
        message(msg: Msg, ack: () => void): void {
          if (res.destroyed) return ack();
          writeHead();
          const ok = res.write(`${goJson({ result: messageToJson(t.response, msg) })}\n`);
          onReply();
          if (ok) ack();
          else res.once('drain', ack);
        },
        end(err: RpcStatusError | null): void {
          if (res.destroyed || res.writableEnded) return;
          if (!err) {
            writeHead();
            res.end();
            return;
          }
          if (!wroteHeader) {
            wroteHeader = true;
            res.writeHead(httpStatusFromCode(err.code), { ...CORS_HEADERS, 'Content-Type': JSON_TYPE });
          }
          res.end(streamErrorChunk(err));
        },
      },
    };
  }

  async function serverStreamCall(t: MethodTypes, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    let request: Msg;
    try {
      request = toRequest(t, await readFirstValue(req));
    } catch (e) {
      return decodeFailure(res, e);
    }
    const writer = streamWriter(t, res, () => {});
    const call = channel.stream(t.path, writer.observer, { metadata: metadataFrom(req), peer: peerOf(req) }, request);
    res.on('close', () => call.cancel());
  }

  function bidiCall(t: MethodTypes, route: Route, req: http.IncomingMessage, res: http.ServerResponse): void {
    let requests = 0;
    let replies = 0;
    let bodyDone = false;
    let call: LocalStream | undefined;
    const closeWhenAnswered = () => {
      if (bodyDone && route.halfClose === 'when-answered' && replies >= requests) call?.end();
    };
    const writer = streamWriter(t, res, () => {
      replies++;
      closeWhenAnswered();
    });
    call = channel.stream(t.path, writer.observer, { metadata: metadataFrom(req), peer: peerOf(req) });
    res.on('close', () => call.cancel());

    const decoder = new JsonStreamDecoder(maxJsonChars);
    const text = new StringDecoder('utf8');
    const endOfRequests = () => {
      if (bodyDone) return;
      bodyDone = true;
      req.removeAllListeners('data');
      req.resume();
      closeWhenAnswered();
    };
    const feed = (values: JsonValue[]) => {
      for (const v of values) {
        if (bodyDone) return;
        let request: Msg;
        try {
          request = toRequest(t, v);
        } catch (e) {
          return badRequest(e);
        }
        requests++;
        call.write(request);
      }
      if (decoder.error) badRequest(decoder.error);
    };
    // grpc-gateway: a first request that cannot be decoded fails the call (UNKNOWN, as a
    // plain error); a later one only ends the request stream.
    const badRequest = (e: unknown) => {
      if (requests === 0 && !writer.wroteHeader) {
        if (e instanceof JsonMappingError || e instanceof Error) {
          const status = e as Partial<RpcStatusError>;
          const code = typeof status.code === 'number' ? status.code : grpc.status.UNKNOWN;
          writer.failEarly(code, typeof status.details === 'string' ? status.details : e.message);
        }
        bodyDone = true;
        call.cancel();
        return;
      }
      endOfRequests();
    };
    req.on('data', (chunk: Buffer) => feed(decoder.push(text.write(chunk))));
    req.on('end', () => {
      if (bodyDone) return;
      feed(decoder.push(text.end()));
      if (!bodyDone) feed(decoder.finish());
      endOfRequests();
    });
  }

  return (req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    let path = url.pathname;
    if (path.startsWith('/v3beta/')) path = `/v3/${path.slice('/v3beta/'.length)}`;
    if (req.method === 'OPTIONS') {
      res.writeHead(200, { ...CORS_HEADERS, 'Content-Length': 0 });
      res.end();
      return;
    }
    if (!path.startsWith('/v3/')) return plainError(res, 404, '404 page not found');
    const route = ROUTES.get(path);
    const t = types.get(path);
    if (!route || !t) return plainError(res, 404, 'Not Found');
    if (req.method !== 'POST') return plainError(res, 405, 'Method Not Allowed');
    const fail = (e: unknown) => {
      if (!res.headersSent) requestError(res, grpc.status.INTERNAL, (e as Error).message);
      else res.destroy();
    };
    try {
      if (!t.responseStream) unaryCall(t, req, res).catch(fail);
      else if (!t.requestStream) serverStreamCall(t, req, res).catch(fail);
      else bidiCall(t, route, req, res);
    } catch (e) {
      fail(e);
    }
  };
}
