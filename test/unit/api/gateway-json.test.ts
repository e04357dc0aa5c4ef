import { describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import Long from 'long';
import {
  JsonNumber, JsonStreamDecoder, decodeBase64Std, goJson, messageFromJson, messageToJson, type JsonValue,
} from '../../../src/api/jsonpb.js';
import { httpStatusFromCode, ROUTES } from '../../../src/api/gateway.js';
import { InProcessChannel, prefixEnd, type RpcStatusError } from '../../../src/api/inprocess.js';
import { serviceDefinition } from '../../../src/api/grpc.js';
import { root, type Msg } from '../../../src/server/pb.js';

// The gateway's JSON mapping (grpc-gateway v1 + jsonpb as etcd uses them) and the
// in-process channel's gRPC call semantics.

const T = (name: string) => root.lookupType(name);

function decodeAll(chunks: string[], max = 1 << 20): { values: JsonValue[]; error: Error | null } {
  const d = new JsonStreamDecoder(max);
  const values: JsonValue[] = [];
  for (const c of chunks) values.push(...d.push(c));
  values.push(...d.finish());
  return { values, error: d.error };
}

function parse(text: string): JsonValue {
  const r = decodeAll([text]);
  if (r.error) throw r.error;
  return r.values[0]!;
}

describe('JSON parsing (Go json.Decoder semantics)', () => {
  it('keeps 64-bit numbers exact and decodes escapes', () => {
    const v = parse('{"ID": 7587880813432223502, "s": "a\\u00e9\\n\\"\\\\", "f": -1.5e3, "b": [true, false, null]}') as Record<string, JsonValue>;
    expect((v.ID as JsonNumber).text).toBe('7587880813432223502');
    expect(v.s).toBe('aé\n"\\');
    expect((v.f as JsonNumber).text).toBe('-1.5e3');
    expect(v.b).toEqual([true, false, null]);
  });

  it('splits concatenated values across arbitrary chunk boundaries', () => {
    const text = '{"a":"x}y\\"z"} {"b":[1,{"c":2}]}\n{"d":"\\u007b"}  7 null';
    for (let cut = 1; cut < text.length; cut += 3) {
      const r = decodeAll([text.slice(0, cut), text.slice(cut)]);
      expect(r.error).toBeNull();
      expect(r.values).toHaveLength(5);
      expect((r.values[0] as Record<string, JsonValue>).a).toBe('x}y"z');
      expect((r.values[3] as JsonNumber).text).toBe('7');
      expect(r.values[4]).toBeNull();
    }
  });

  it('reports Go\'s wording; values before a bad one are kept', () => {
    expect(decodeAll(['xx']).error?.message).toBe("invalid character 'x' looking for beginning of value");
    expect(decodeAll(['{"a" 1}']).error?.message).toBe("invalid character '1' after object key");
    expect(decodeAll(['{"a":1 "b":2}']).error?.message).toBe('invalid character \'"\' after object key:value pair');
    expect(decodeAll(['{"a":tru}']).error?.message).toBe("invalid character '}' in literal true (expecting 'e')");
    expect(decodeAll(['{"a":1']).error?.message).toBe('unexpected EOF');
    const partial = decodeAll(['{"a":1}zz']);
    expect(partial.values).toHaveLength(1);
    expect(partial.error?.message).toBe("invalid character 'z' looking for beginning of value");
    expect(decodeAll(['   ']).values).toEqual([]);
  });

  it('refuses a value larger than the limit', () => {
    const r = decodeAll([`{"key":"${'A'.repeat(100)}`], 50);
    expect(r.error?.message).toMatch(/too large/);
  });

  it('base64 is the standard alphabet with padding', () => {
    expect(decodeBase64Std('Zm9v').toString()).toBe('foo');
    expect(decodeBase64Std('Zm8=').toString()).toBe('fo');
    expect(() => decodeBase64Std('Zm9v_')).toThrow('illegal base64 data at input byte 4');
    expect(() => decodeBase64Std('Zm8')).toThrow(/illegal base64 data/);
    expect(() => decodeBase64Std('Zm-v')).toThrow('illegal base64 data at input byte 2');
  });
});

describe('JSON -> request message', () => {
  it('proto and lowerCamelCase names, enums by name or number, quoted or bare integers, unknown fields ignored', () => {
    const msg = messageFromJson(T('etcdserverpb.RangeRequest'), parse(
      '{"key":"Zm9v","rangeEnd":"Zm9w","sort_order":"DESCEND","sort_target":3,"limit":"10","revision":12,"keys_only":true,"bogus":{"x":1},"count_only":null}',
    ));
    expect(msg.key.toString()).toBe('foo');
    expect(msg.range_end.toString()).toBe('fop');
    expect(msg.sort_order).toBe(2);
    expect(msg.sort_target).toBe(3);
    expect(Long.isLong(msg.limit) && msg.limit.toString()).toBe('10');
    expect(msg.revision.toString()).toBe('12');
    expect(msg.keys_only).toBe(true);
    expect('count_only' in msg).toBe(false);
    // it encodes: protobufjs accepts the object as is
    const back = T('etcdserverpb.RangeRequest').decode(T('etcdserverpb.RangeRequest').encode(msg).finish()) as Msg;
    expect(back.limit.toNumber()).toBe(10);
  });

  it('nested and repeated messages (txn) and 64-bit IDs beyond 2^53', () => {
    const txn = messageFromJson(T('etcdserverpb.TxnRequest'), parse(
      '{"compare":[{"target":"VALUE","key":"YQ==","value":"Yg==","result":"NOT_EQUAL"}],"success":[{"request_put":{"key":"YQ==","lease":9007199254740993}}]}',
    ));
    expect(txn.compare[0].target).toBe(3);
    expect(txn.compare[0].result).toBe(3);
    expect(txn.success[0].request_put.lease.toString()).toBe('9007199254740993');
  });

  it('errors as jsonpb words them', () => {
    const range = T('etcdserverpb.RangeRequest');
    expect(() => messageFromJson(range, parse('{"sort_order":"BAD"}'))).toThrow('unknown value "BAD" for enum etcdserverpb.RangeRequest_SortOrder');
    expect(() => messageFromJson(range, parse('{"key":5}'))).toThrow('json: cannot unmarshal number into Go value of type []uint8');
    expect(() => messageFromJson(range, parse('[]'))).toThrow('json: cannot unmarshal array into Go value of type map[string]json.RawMessage');
    expect(() => messageFromJson(range, parse('{"limit":"x"}'))).toThrow("invalid character 'x' looking for beginning of value");
    expect(() => messageFromJson(range, parse('{"limit":1.5}'))).toThrow('json: cannot unmarshal number 1.5 into Go value of type int64');
    expect(() => messageFromJson(range, parse('{"serializable":"true"}'))).toThrow('json: cannot unmarshal string into Go value of type bool');
    expect(() => messageFromJson(T('etcdserverpb.LeaseGrantRequest'), parse('{"ID":"9223372036854775808"}'))).toThrow(/into Go value of type int64/);
    expect(messageFromJson(range, null)).toEqual({});
  });
});

describe('response message -> JSON', () => {
  it('proto names, int64 as strings, bytes as base64, defaults omitted, enums by name', () => {
    const type = T('etcdserverpb.WatchResponse');
    const wire = type.encode({
      header: { cluster_id: Long.fromString('18446744073709551615', true), member_id: 1, revision: 5, raft_term: 2 },
      watch_id: 0,
      created: false,
      events: [
        { type: 0, kv: { key: Buffer.from('k'), create_revision: 4, mod_revision: 5, version: 2, value: Buffer.from('v'), lease: 0 } },
        { type: 1, kv: { key: Buffer.from('k'), mod_revision: 6 } },
      ],
    }).finish();
    const json = messageToJson(type, type.decode(wire));
    expect(json).toEqual({
      header: { cluster_id: '18446744073709551615', member_id: '1', revision: '5', raft_term: '2' },
      events: [
        { kv: { key: 'aw==', create_revision: '4', mod_revision: '5', version: '2', value: 'dg==' } },
        { type: 'DELETE', kv: { key: 'aw==', mod_revision: '6' } },
      ],
    });
    expect(Object.keys(json.header as object)).toEqual(['cluster_id', 'member_id', 'revision', 'raft_term']);
  });

  it('a set oneof member is written even when zero; unset members are not', () => {
    const type = T('etcdserverpb.Compare');
    const set = messageToJson(type, type.decode(type.encode({ key: Buffer.from('a'), target: 1, create_revision: 0 }).finish()));
    expect(set).toEqual({ target: 'CREATE', key: 'YQ==', create_revision: '0' });
    const unset = messageToJson(type, type.decode(type.encode({ key: Buffer.from('a') }).finish()));
    expect(unset).toEqual({ key: 'YQ==' });
  });

  it('an empty message is {} and an empty repeated field is omitted', () => {
    const type = T('etcdserverpb.RangeResponse');
    expect(messageToJson(type, type.decode(type.encode({ header: {}, kvs: [] }).finish()))).toEqual({ header: {} });
  });

  it('Go\'s HTML-safe escaping', () => {
    expect(goJson({ a: '<&>\u2028' })).toBe('{"a":"\\u003c\\u0026\\u003e\\u2028"}');
  });
});

describe('gateway routes and statuses', () => {
  it('maps gRPC codes as grpc-gateway v1 does', () => {
    const S = grpc.status;
    expect([S.INVALID_ARGUMENT, S.NOT_FOUND, S.FAILED_PRECONDITION, S.OUT_OF_RANGE, S.UNKNOWN, S.UNAVAILABLE, S.RESOURCE_EXHAUSTED, S.UNAUTHENTICATED, S.PERMISSION_DENIED, S.UNIMPLEMENTED, S.CANCELLED]
      .map(httpStatusFromCode)).toEqual([400, 404, 412, 400, 500, 503, 429, 401, 403, 501, 408]);
  });

  it('every route names a method of our protos', () => {
    for (const [path, route] of ROUTES) {
      expect(path.startsWith('/v3/')).toBe(true);
      expect(root.lookupService(route.service).methods[route.method], path).toBeDefined();
    }
  });

  it('prefixEnd', () => {
    expect(prefixEnd(Buffer.from('a/')).toString()).toBe('a0');
    expect([...prefixEnd(Buffer.from([0x61, 0xff]))]).toEqual([0x62]);
    expect([...prefixEnd(Buffer.from([0xff, 0xff]))]).toEqual([0]);
  });
});

// ---------------------------------------------------------------- in-process channel

function kvChannel(impl: Partial<Record<'Range' | 'Put' | 'DeleteRange' | 'Txn' | 'Compact', grpc.UntypedHandleCall>>): InProcessChannel {
  const ch = new InProcessChannel();
  const fallback: grpc.handleUnaryCall<Msg, Msg> = (_c, cb) => cb(null, {});
  ch.addService(serviceDefinition('etcdserverpb.KV'), { Range: fallback, Put: fallback, DeleteRange: fallback, Txn: fallback, Compact: fallback, ...impl });
  return ch;
}

describe('in-process channel', () => {
  it('unary: the handler sees a decoded request with $raw and metadata; the caller a decoded response', async () => {
    let seen: Msg;
    let token: unknown;
    const ch = kvChannel({
      Range: ((call: grpc.ServerUnaryCall<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) => {
        seen = call.request;
        token = call.metadata.get('token')[0];
        cb(null, { count: 3, kvs: [{ key: Buffer.from('k'), version: 1 }] });
      }) as grpc.UntypedHandleCall,
    });
    const md = new grpc.Metadata();
    md.set('token', 't0k');
    const res = await ch.unary('/etcdserverpb.KV/Range', { key: Buffer.from('k'), limit: 5 }, { metadata: md });
    expect(seen.key.toString()).toBe('k');
    expect(Buffer.isBuffer(seen.$raw)).toBe(true);
    expect(token).toBe('t0k');
    expect(res.count.toNumber()).toBe(3);
    expect(res.kvs[0].key.toString()).toBe('k');
  });

  it('unary errors keep their code; a throwing handler is UNKNOWN; unknown services are UNIMPLEMENTED', async () => {
    const ch = kvChannel({
      Put: ((_c: unknown, cb: grpc.sendUnaryData<Msg>) => cb(Object.assign(new Error('etcdserver: key is not provided'), { code: 3 }))) as grpc.UntypedHandleCall,
      Txn: (() => {
        throw new Error('boom');
      }) as grpc.UntypedHandleCall,
    });
    await expect(ch.unary('/etcdserverpb.KV/Put', {})).rejects.toMatchObject({ code: 3, details: 'etcdserver: key is not provided' });
    await expect(ch.unary('/etcdserverpb.KV/Txn', {})).rejects.toMatchObject({ code: grpc.status.UNKNOWN, details: 'Server method handler threw error boom' });
    await expect(ch.unary('/etcdserverpb.Auth/UserAdd', {})).rejects.toMatchObject({ code: grpc.status.UNIMPLEMENTED, details: 'unknown service etcdserverpb.Auth' });
  });

  it('unary cancellation: the handler gets "cancelled", the caller CANCELLED', async () => {
    let cancelled = false;
    const ch = kvChannel({
      Range: ((call: grpc.ServerUnaryCall<Msg, Msg>) => call.on('cancelled', () => (cancelled = true))) as grpc.UntypedHandleCall,
    });
    const ac = new AbortController();
    const p = ch.unary('/etcdserverpb.KV/Range', {}, { signal: ac.signal });
    ac.abort();
    await expect(p).rejects.toMatchObject({ code: grpc.status.CANCELLED });
    expect(cancelled).toBe(true);
  });

  it('bidi streams: messages both ways, flow control by ack, half-close, status at the end', async () => {
    const ch = new InProcessChannel();
    ch.addService(serviceDefinition('etcdserverpb.Lease'), {
      LeaseGrant: (_c: unknown, cb: grpc.sendUnaryData<Msg>) => cb(null, {}),
      LeaseRevoke: (_c: unknown, cb: grpc.sendUnaryData<Msg>) => cb(null, {}),
      LeaseTimeToLive: (_c: unknown, cb: grpc.sendUnaryData<Msg>) => cb(null, {}),
      LeaseLeases: (_c: unknown, cb: grpc.sendUnaryData<Msg>) => cb(null, {}),
      LeaseKeepAlive: ((call: grpc.ServerDuplexStream<Msg, Msg>) => {
        call.on('data', (req: Msg) => {
          for (let i = 0; i < 3; i++) call.write({ ID: req.ID, TTL: i });
        });
        call.on('end', () => call.end());
      }) as grpc.UntypedHandleCall,
    });
    const got: number[] = [];
    let pendingAck: (() => void) | undefined;
    let status: RpcStatusError | null | undefined;
    const s = ch.stream('/etcdserverpb.Lease/LeaseKeepAlive', {
      message: (msg, ack) => {
        got.push(Number(msg.TTL ?? 0));
        pendingAck = ack; // hold: the next message must wait
      },
      end: (err) => (status = err),
    });
    s.write({ ID: 7 });
    await new Promise((r) => setImmediate(r));
    expect(got).toEqual([0]);
    pendingAck!();
    await new Promise((r) => setImmediate(r));
    expect(got).toEqual([0, 1]);
    s.end();
    pendingAck!();
    await new Promise((r) => setImmediate(r));
    pendingAck!();
    await new Promise((r) => setImmediate(r));
    expect(got).toEqual([0, 1, 2]);
    expect(status).toBeNull();
  });

  it('stream errors and client cancellation', async () => {
    const ch = new InProcessChannel();
    const events: string[] = [];
    ch.addService(serviceDefinition('etcdserverpb.Watch'), {
      Watch: ((call: grpc.ServerDuplexStream<Msg, Msg>) => {
        call.on('cancelled', () => events.push('cancelled'));
        call.on('data', (req: Msg) => {
          if (req.cancel_request) call.destroy(Object.assign(new Error('etcdserver: no leader'), { code: grpc.status.UNAVAILABLE }));
        });
      }) as grpc.UntypedHandleCall,
    });
    let status: RpcStatusError | null | undefined;
    const failing = ch.stream('/etcdserverpb.Watch/Watch', { message: (_m, ack) => ack(), end: (e) => (status = e) });
    failing.write({ cancel_request: { watch_id: 1 } });
    await new Promise((r) => setImmediate(r));
    expect(status).toMatchObject({ code: grpc.status.UNAVAILABLE, details: 'etcdserver: no leader' });

    let status2: RpcStatusError | null | undefined;
    const cancelled = ch.stream('/etcdserverpb.Watch/Watch', { message: (_m, ack) => ack(), end: (e) => (status2 = e) });
    cancelled.cancel();
    await new Promise((r) => setImmediate(r));
    expect(events).toEqual(['cancelled']);
    expect(status2).toMatchObject({ code: grpc.status.CANCELLED });
  });
});
