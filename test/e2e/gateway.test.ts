import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ctlOk, singleNode, sleep, stopAll, type Member } from './harness.js';

// The /v3 JSON gateway on the client port, driven with plain HTTP as curl would: JSON
// bodies, base64 keys and values, 64-bit integers as strings, etcd's error bodies and
// HTTP statuses, and newline-delimited streams for watch and keep-alive.
// Expected shapes were taken from real etcd 3.4 answering the same requests.

let m: Member;

beforeAll(async () => {
  m = await singleNode();
});
afterAll(async () => {
  await stopAll();
});

const b64 = (s: string) => Buffer.from(s).toString('base64');
const unb64 = (s: string) => Buffer.from(s, 'base64').toString();

interface Reply {
  status: number;
  headers: Headers;
  text: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  json: any;
}

async function post(path: string, body: unknown, headers: Record<string, string> = {}): Promise<Reply> {
  const res = await fetch(`${m.clientUrl}${path}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

/** Reads a newline-delimited JSON stream one object at a time. */
class StreamReader {
  private buf = '';
  private readonly reader: ReadableStreamDefaultReader<Uint8Array>;
  private readonly decoder = new TextDecoder();

  constructor(readonly res: Response) {
    this.reader = res.body!.getReader();
  }

  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  async next(timeoutMs = 5000): Promise<any> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const nl = this.buf.indexOf('\n');
      if (nl >= 0) {
        const line = this.buf.slice(0, nl);
        this.buf = this.buf.slice(nl + 1);
        if (line.trim()) return JSON.parse(line);
        continue;
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no stream message within ${timeoutMs}ms (buffer: ${this.buf})`);
      const chunk = await Promise.race([this.reader.read(), sleep(left).then(() => 'timeout' as const)]);
      if (chunk === 'timeout') continue;
      if (chunk.done) {
        if (this.buf.trim()) {
          const rest = this.buf;
          this.buf = '';
          return JSON.parse(rest);
        }
        return null;
      }
      this.buf += this.decoder.decode(chunk.value, { stream: true });
    }
  }
}

async function openStream(path: string, body: string, signal?: AbortSignal): Promise<StreamReader> {
  const res = await fetch(`${m.clientUrl}${path}`, { method: 'POST', body, signal });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toBe('application/json');
  return new StreamReader(res);
}

describe('JSON gateway: KV', () => {
  it('put and range: base64 bytes, int64 as strings, defaults omitted, proto field names', async () => {
    const put = await post('/v3/kv/put', { key: b64('gw/a'), value: b64('va') });
    expect(put.status).toBe(200);
    expect(put.headers.get('access-control-allow-origin')).toBe('*');
    expect(Object.keys(put.json)).toEqual(['header']);
    expect(Object.keys(put.json.header)).toEqual(['cluster_id', 'member_id', 'revision', 'raft_term']);
    expect(put.json.header.revision).toMatch(/^\d+$/);
    const rev = put.json.header.revision;

    const got = await post('/v3/kv/range', { key: b64('gw/a') });
    expect(got.status).toBe(200);
    expect(got.json.count).toBe('1');
    expect(got.json.kvs).toEqual([{ key: b64('gw/a'), create_revision: rev, mod_revision: rev, version: '1', value: b64('va') }]);
    expect(got.json.more).toBeUndefined(); // false is a default: omitted

    const missing = await post('/v3/kv/range', { key: b64('gw/nothing') });
    expect(Object.keys(missing.json)).toEqual(['header']);
  });

  it('accepts lowerCamelCase names, enum names, quoted and bare numbers; ignores unknown fields', async () => {
    await post('/v3/kv/put', { key: b64('gw/b'), value: b64('vb') });
    await post('/v3/kv/put', { key: b64('gw/c'), value: b64('vc') });
    const r = await post('/v3/kv/range', {
      key: b64('gw/'), rangeEnd: b64('gw0'), sort_order: 'DESCEND', sort_target: 'KEY', limit: '2', keysOnly: true, whatever: 1,
    });
    expect(r.status).toBe(200);
    expect(r.json.kvs.map((kv: { key: string }) => unb64(kv.key))).toEqual(['gw/c', 'gw/b']);
    expect(r.json.kvs[0].value).toBeUndefined();
    expect(r.json.more).toBe(true);
    expect(r.json.count).toBe('3');
    const count = await post('/v3/kv/range', { key: b64('gw/'), range_end: b64('gw0'), count_only: true, limit: 1 });
    expect(count.json.count).toBe('3');
    expect(count.json.kvs).toBeUndefined();
  });

  it('txn with compares by enum name, nested responses carry only the revision in their header', async () => {
    const t = await post('/v3/kv/txn', {
      compare: [{ target: 'VALUE', key: b64('gw/a'), value: b64('va'), result: 'EQUAL' }],
      success: [{ request_put: { key: b64('gw/a'), value: b64('va2'), prev_kv: true } }, { request_range: { key: b64('gw/a') } }],
      failure: [{ request_delete_range: { key: b64('gw/a') } }],
    });
    expect(t.status).toBe(200);
    expect(t.json.succeeded).toBe(true);
    const rev = t.json.header.revision;
    expect(t.json.responses[0].response_put.header).toEqual({ revision: rev });
    expect(unb64(t.json.responses[0].response_put.prev_kv.value)).toBe('va');
    expect(unb64(t.json.responses[1].response_range.kvs[0].value)).toBe('va2');

    const f = await post('/v3/kv/txn', {
      compare: [{ target: 'VERSION', key: b64('gw/a'), version: '100', result: 'GREATER' }],
      failure: [{ request_range: { key: b64('gw/a') } }],
    });
    expect(f.json.succeeded).toBeUndefined(); // false is omitted
    expect(f.json.responses[0].response_range.count).toBe('1');
  });

  it('deleterange with prev_kv; compaction', async () => {
    const d = await post('/v3/kv/deleterange', { key: b64('gw/b'), prev_kv: true });
    expect(d.json.deleted).toBe('1');
    expect(unb64(d.json.prev_kvs[0].value)).toBe('vb');
    const again = await post('/v3/kv/deleterange', { key: b64('gw/b') });
    expect(again.json.deleted).toBeUndefined();
    const c = await post('/v3/kv/compaction', { revision: d.json.header.revision, physical: true });
    expect(c.status).toBe(200);
    const old = await post('/v3/kv/range', { key: b64('gw/a'), revision: 2 });
    expect(old.status).toBe(400);
    expect(old.json).toEqual({
      error: 'etcdserver: mvcc: required revision has been compacted',
      message: 'etcdserver: mvcc: required revision has been compacted',
      code: 11,
    });
  });

  it('/v3beta is an alias of /v3; an empty body is an empty request', async () => {
    const r = await post('/v3beta/kv/range', { key: b64('gw/c') });
    expect(unb64(r.json.kvs[0].value)).toBe('vc');
    const status = await post('/v3/maintenance/status', '');
    expect(status.status).toBe(200);
    expect(status.json.version).toMatch(/^3\./);
    expect(status.json.leader).toBe(status.json.header.member_id);
  });
});

describe('JSON gateway: errors as etcd writes them', () => {
  it('gRPC errors: {error, message, code} with the HTTP status of the code', async () => {
    const noKey = await post('/v3/kv/put', { key: '' });
    expect(noKey.status).toBe(400);
    expect(noKey.json).toEqual({ error: 'etcdserver: key is not provided', message: 'etcdserver: key is not provided', code: 3 });
    expect(noKey.headers.get('content-type')).toBe('application/json');

    const revoke = await post('/v3/lease/revoke', { ID: 123 });
    expect(revoke.status).toBe(404);
    expect(revoke.json).toEqual({ error: 'etcdserver: requested lease not found', message: 'etcdserver: requested lease not found', code: 5 });

    await post('/v3/lease/grant', { TTL: 30, ID: 4242 });
    const dup = await post('/v3/lease/grant', { TTL: 30, ID: 4242 });
    expect(dup.status).toBe(412);
    expect(dup.json.code).toBe(9);
    expect(dup.json.error).toBe('etcdserver: lease already exists');

    const tooLong = await post('/v3/lease/grant', { TTL: '10000000000' });
    expect(tooLong.status).toBe(400);
    expect(tooLong.json.error).toBe('etcdserver: too large lease TTL');
  });

  it('undecodable bodies: InvalidArgument with Go\'s wording', async () => {
    const bad = await post('/v3/kv/range', 'xx');
    expect(bad.status).toBe(400);
    expect(bad.json).toEqual({
      error: "invalid character 'x' looking for beginning of value",
      message: "invalid character 'x' looking for beginning of value",
      code: 3,
    });
    const badEnum = await post('/v3/kv/range', { key: b64('k'), sort_order: 'BAD' });
    expect(badEnum.json.error).toBe('unknown value "BAD" for enum etcdserverpb.RangeRequest_SortOrder');
    const badB64 = await post('/v3/kv/range', { key: 'Zm9v_' });
    expect(badB64.json.error).toBe('illegal base64 data at input byte 4');
    const notBytes = await post('/v3/kv/range', { key: 5 });
    expect(notBytes.json.error).toBe('json: cannot unmarshal number into Go value of type []uint8');
  });

  it('unknown paths, wrong methods, CORS preflight', async () => {
    const unknown = await post('/v3/kv/nothing', {});
    expect(unknown.status).toBe(404);
    expect(unknown.text).toBe('Not Found\n');
    const outside = await post('/v3alpha/kv/range', {});
    expect(outside.status).toBe(404);
    expect(outside.text).toBe('404 page not found\n');
    const get = await fetch(`${m.clientUrl}/v3/kv/range`);
    expect(get.status).toBe(405);
    expect(await get.text()).toBe('Method Not Allowed\n');
    const pre = await fetch(`${m.clientUrl}/v3/kv/put`, { method: 'OPTIONS' });
    expect(pre.status).toBe(200);
    expect(pre.headers.get('access-control-allow-methods')).toBe('POST, GET, OPTIONS, PUT, DELETE');
    expect(pre.headers.get('access-control-allow-headers')).toBe('accept, content-type, authorization');
    // the other HTTP endpoints are untouched
    expect((await fetch(`${m.clientUrl}/health`)).status).toBe(200);
  });
});

describe('JSON gateway: watch stream', () => {
  it('streams created, then events in order with prev_kv, and stays open after the body ends', async () => {
    const ac = new AbortController();
    const s = await openStream('/v3/watch', JSON.stringify({ create_request: { key: b64('w/'), range_end: b64('w0'), prev_kv: true } }), ac.signal);
    const created = await s.next();
    expect(created.result.created).toBe(true);
    expect(created.result.watch_id).toBeUndefined(); // watch ID 0 is a default

    await post('/v3/kv/put', { key: b64('w/1'), value: b64('one') });
    await post('/v3/kv/put', { key: b64('w/1'), value: b64('uno') });
    await post('/v3/kv/deleterange', { key: b64('w/1') });

    const e1 = await s.next();
    expect(e1.result.events).toHaveLength(1);
    expect(e1.result.events[0].type).toBeUndefined(); // PUT = 0
    expect(unb64(e1.result.events[0].kv.value)).toBe('one');
    const e2 = await s.next();
    expect(unb64(e2.result.events[0].kv.value)).toBe('uno');
    expect(unb64(e2.result.events[0].prev_kv.value)).toBe('one');
    const e3 = await s.next();
    expect(e3.result.events[0].type).toBe('DELETE');
    expect(e3.result.events[0].kv).toEqual({ key: b64('w/1'), mod_revision: e3.result.header.revision });
    expect(unb64(e3.result.events[0].prev_kv.value)).toBe('uno');
    expect(BigInt(e2.result.header.revision)).toBe(BigInt(e1.result.header.revision) + 1n);
    expect(BigInt(e3.result.header.revision)).toBe(BigInt(e2.result.header.revision) + 1n);

    // long after the request body ended, the watch still delivers
    await sleep(300);
    await post('/v3/kv/put', { key: b64('w/2'), value: b64('two') });
    expect(unb64((await s.next()).result.events[0].kv.key)).toBe('w/2');
    ac.abort();
  });

  it('several requests in one body: client watch IDs, cancel, progress; history from start_revision', async () => {
    const first = await post('/v3/kv/put', { key: b64('h/1'), value: b64('a') });
    await post('/v3/kv/put', { key: b64('h/1'), value: b64('b') });
    const ac = new AbortController();
    const body = [
      { create_request: { key: b64('h/1'), start_revision: first.json.header.revision, watch_id: 7 } },
      { create_request: { key: b64('h/2'), watch_id: 8 } },
      { cancel_request: { watch_id: 8 } },
    ].map((r) => JSON.stringify(r)).join('');
    const s = await openStream('/v3/watch', body, ac.signal);
    const seen: Array<Record<string, unknown>> = [];
    const history = () => seen.filter((r) => r.events).flatMap((r) => r.events as Array<{ kv: { value: string } }>);
    while (history().length < 2 || !seen.some((r) => r.canceled)) seen.push((await s.next()).result);
    expect(seen.filter((r) => r.created).map((r) => r.watch_id).sort()).toEqual(['7', '8']);
    expect(seen.find((r) => r.canceled)).toMatchObject({ watch_id: '8', canceled: true });
    expect(history().map((e) => unb64(e.kv.value))).toEqual(['a', 'b']);
    ac.abort();
  });

  it('a first request that is not JSON fails the call (UNKNOWN, 500)', async () => {
    const r = await post('/v3/watch', 'zz');
    expect(r.status).toBe(500);
    expect(r.json.code).toBe(2);
    expect(r.json.error).toBe("invalid character 'z' looking for beginning of value");
  });

  it('a closed HTTP stream cancels its watch', async () => {
    const ac = new AbortController();
    const s = await openStream('/v3/watch', JSON.stringify({ create_request: { key: b64('gone') } }), ac.signal);
    await s.next();
    ac.abort();
    await sleep(200);
    // the member keeps serving (and has no stuck writer on the dead socket)
    for (let i = 0; i < 5; i++) await post('/v3/kv/put', { key: b64('gone'), value: b64(String(i)) });
    expect((await post('/v3/kv/range', { key: b64('gone') })).json.kvs[0].version).toBe('5');
  });
});

describe('JSON gateway: leases', () => {
  it('grant, put with lease, timetolive with keys, keepalive stream, leases, revoke deletes the keys', async () => {
    // a 64-bit ID given as a bare JSON number keeps every digit
    const id = '7587880813432223502';
    const g = await post('/v3/lease/grant', `{"TTL": 40, "ID": ${id}}`);
    expect(g.status).toBe(200);
    expect(g.json.ID).toBe(id);
    expect(g.json.TTL).toBe('40');
    await post('/v3/kv/put', { key: b64('leased'), value: b64('x'), lease: id });

    const ttl = await post('/v3/kv/lease/timetolive', { ID: id, keys: true });
    expect(ttl.json.grantedTTL).toBe('40');
    expect(Number(ttl.json.TTL)).toBeGreaterThan(30);
    expect(ttl.json.keys).toEqual([b64('leased')]);

    const s = await openStream('/v3/lease/keepalive', JSON.stringify({ ID: id }) + JSON.stringify({ ID: id }) + JSON.stringify({ ID: '78' }));
    const k1 = await s.next();
    const k2 = await s.next();
    const k3 = await s.next();
    expect([k1.result.ID, k1.result.TTL, k2.result.TTL]).toEqual([id, '40', '40']);
    expect(k3.result.ID).toBe('78');
    expect(k3.result.TTL).toBeUndefined(); // an unknown lease: TTL 0
    expect(await s.next()).toBeNull(); // every request answered: the stream ends

    const list = await post('/v3/lease/leases', {});
    expect(list.json.leases.map((l: { ID: string }) => l.ID)).toContain(id);

    const rv = await post('/v3/kv/lease/revoke', { ID: id });
    expect(rv.status).toBe(200);
    expect((await post('/v3/kv/range', { key: b64('leased') })).json.kvs).toBeUndefined();
    expect((await post('/v3/lease/timetolive', { ID: id })).json.TTL).toBe('-1');
  });
});

describe('JSON gateway: cluster, election and lock', () => {
  it('member list', async () => {
    const r = await post('/v3/cluster/member/list', {});
    expect(r.json.members).toHaveLength(1);
    expect(r.json.members[0].name).toBe('infra0');
    expect(r.json.members[0].clientURLs).toEqual([m.clientUrl]);
  });

  it('campaign, leader, observe stream, proclaim, resign', async () => {
    const lease = (await post('/v3/lease/grant', { TTL: 60 })).json.ID as string;
    const c = await post('/v3/election/campaign', { name: b64('gw-el'), lease, value: b64('v1') });
    expect(c.status).toBe(200);
    const leaderKey = c.json.leader;
    expect(unb64(leaderKey.key)).toBe(`gw-el/${BigInt(lease).toString(16)}`);
    expect(leaderKey.lease).toBe(lease);
    expect(leaderKey.name).toBe(b64('gw-el'));

    const ac = new AbortController();
    const obs = await openStream('/v3/election/observe', JSON.stringify({ name: b64('gw-el') }), ac.signal);
    expect(unb64((await obs.next()).result.kv.value)).toBe('v1');

    const p = await post('/v3/election/proclaim', { leader: leaderKey, value: b64('v2') });
    expect(p.status).toBe(200);
    expect(unb64((await obs.next()).result.kv.value)).toBe('v2');
    expect(unb64((await post('/v3/election/leader', { name: b64('gw-el') })).json.kv.value)).toBe('v2');

    const missing = await post('/v3/election/proclaim', { value: b64('v3') });
    expect(missing.status).toBe(500);
    expect(missing.json).toEqual({ error: '"leader" field must be provided', message: '"leader" field must be provided', code: 2 });

    expect((await post('/v3/election/resign', { leader: leaderKey })).status).toBe(200);
    const none = await post('/v3/election/leader', { name: b64('gw-el') });
    expect(none.status).toBe(500);
    expect(none.json.error).toBe('election: no leader');
    ac.abort();
  });

  it('lock and unlock', async () => {
    const lease = (await post('/v3/lease/grant', { TTL: 60 })).json.ID as string;
    const l = await post('/v3/lock/lock', { name: b64('gw-lock'), lease });
    expect(unb64(l.json.key)).toBe(`gw-lock/${BigInt(lease).toString(16)}`);
    const other = (await post('/v3/lease/grant', { TTL: 60 })).json.ID as string;
    let acquired = false;
    const waiting = post('/v3/lock/lock', { name: b64('gw-lock'), lease: other }).then((r) => {
      acquired = true;
      return r;
    });
    await sleep(300);
    expect(acquired).toBe(false);
    expect((await post('/v3/lock/unlock', { key: l.json.key })).status).toBe(200);
    const second = await waiting;
    expect(unb64(second.json.key)).toBe(`gw-lock/${BigInt(other).toString(16)}`);
    await post('/v3/lock/unlock', { key: second.json.key });
  });
});

describe('JSON gateway: auth token from the Authorization header', () => {
  it('authenticates with the token /v3/auth/authenticate returns', async () => {
    const probe = await post('/v3/auth/status', {});
    if (probe.status === 501) return; // this build has no auth service: nothing to pass the token to
    await ctlOk(m.clientUrl, ['user', 'add', 'root:rootpw']);
    await ctlOk(m.clientUrl, ['role', 'add', 'root']);
    await ctlOk(m.clientUrl, ['user', 'grant-role', 'root', 'root']);
    await ctlOk(m.clientUrl, ['auth', 'enable']);
    try {
      const denied = await post('/v3/kv/range', { key: b64('gw/c') });
      expect(denied.status).toBeGreaterThanOrEqual(400);
      const auth = await post('/v3/auth/authenticate', { name: 'root', password: 'rootpw' });
      expect(auth.status).toBe(200);
      const token = auth.json.token as string;
      expect(token).toBeTruthy();
      const ok = await post('/v3/kv/range', { key: b64('gw/c') }, { Authorization: token });
      expect(ok.status).toBe(200);
      expect(unb64(ok.json.kvs[0].value)).toBe('vc');
      // the recipes run their inner KV/Lease/Watch calls as the caller
      const lockNoToken = await post('/v3/lock/lock', { name: b64('auth-lock') });
      expect(lockNoToken.status).toBe(500);
      expect(lockNoToken.json.code).toBe(2);
      const locked = await post('/v3/lock/lock', { name: b64('auth-lock') }, { Authorization: token });
      expect(locked.status).toBe(200);
      expect(unb64(locked.json.key)).toMatch(/^auth-lock\/[0-9a-f]+$/);
      expect((await post('/v3/lock/unlock', { key: locked.json.key }, { Authorization: token })).status).toBe(200);
    } finally {
      await ctlOk(m.clientUrl, ['--user', 'root:rootpw', 'auth', 'disable']);
    }
  });
});
