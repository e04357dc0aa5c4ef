import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Backend, type BackendOptions } from '../../../src/backend/backend.js';
import { Bucket, META_CONSISTENT_INDEX } from '../../../src/backend/buckets.js';
import { SnapshotFormatError } from '../../../src/backend/snapshot.js';

const b = (s: string): Buffer => Buffer.from(s);

let tmp: string;
const open: Backend[] = [];

async function openBackend(dir: string, opts: BackendOptions = {}): Promise<Backend> {
  const be = await Backend.open(dir, { batchIntervalMs: 60_000, ...opts });
  open.push(be);
  return be;
}

async function collect(it: AsyncIterable<[Buffer, Buffer]>): Promise<Array<[string, string]>> {
  const out: Array<[string, string]> = [];
  for await (const [k, v] of it) out.push([k.toString(), v.toString()]);
  return out;
}

function nextCommit(): { opts: BackendOptions; commits: number[]; wait: () => Promise<void> } {
  const commits: number[] = [];
  let waiters: Array<() => void> = [];
  return {
    commits,
    opts: {
      onCommit: (s) => {
        commits.push(s);
        const w = waiters;
        waiters = [];
        for (const f of w) f();
      },
    },
    wait: () => new Promise<void>((resolve) => waiters.push(resolve)),
  };
}

beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tsetcd-'));
});

afterEach(async () => {
  for (const be of open.splice(0)) await be.abandon().catch(() => {});
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('Backend reads and writes', () => {
  it('reads see pending (uncommitted) writes, deletes and overwrites', async () => {
    const be = await openBackend(path.join(tmp, 'db'));
    be.put(Bucket.Lease, b('a'), b('1'));
    expect((await be.get(Bucket.Lease, b('a')))?.toString()).toBe('1');
    expect(be.pendingOps).toBe(1);
    await be.forceCommit();
    expect(be.pendingOps).toBe(0);
    be.put(Bucket.Lease, b('a'), b('2'));
    expect((await be.get(Bucket.Lease, b('a')))?.toString()).toBe('2');
    be.del(Bucket.Lease, b('a'));
    expect(await be.get(Bucket.Lease, b('a'))).toBeUndefined();
    expect(await be.getMany(Bucket.Lease, [b('a'), b('zz')])).toEqual([undefined, undefined]);
  });

  it('keeps buckets separate', async () => {
    const be = await openBackend(path.join(tmp, 'db'));
    be.put(Bucket.Lease, b('k'), b('lease'));
    be.put(Bucket.AuthUsers, b('k'), b('user'));
    await be.forceCommit();
    expect((await be.get(Bucket.Lease, b('k')))?.toString()).toBe('lease');
    expect((await be.get(Bucket.AuthUsers, b('k')))?.toString()).toBe('user');
    expect(await be.get(Bucket.Members, b('k'))).toBeUndefined();
    expect(await collect(be.iterate(Bucket.Lease))).toEqual([['k', 'lease']]);
  });

  it('iterate merges committed data with pending puts/deletes in key order, honoring bounds', async () => {
    const be = await openBackend(path.join(tmp, 'db'));
    for (const k of ['a', 'c', 'e', 'g']) be.put(Bucket.Lease, b(k), b(`old-${k}`));
    await be.forceCommit();
    be.put(Bucket.Lease, b('b'), b('new-b'));
    be.put(Bucket.Lease, b('c'), b('new-c'));
    be.del(Bucket.Lease, b('e'));
    be.put(Bucket.Lease, b('h'), b('new-h'));
    expect(await collect(be.iterate(Bucket.Lease))).toEqual([
      ['a', 'old-a'],
      ['b', 'new-b'],
      ['c', 'new-c'],
      ['g', 'old-g'],
      ['h', 'new-h'],
    ]);
    expect(await collect(be.iterate(Bucket.Lease, { gte: b('b'), lt: b('g') }))).toEqual([
      ['b', 'new-b'],
      ['c', 'new-c'],
    ]);
  });

  it('iterate is a point-in-time view: writes after the call are invisible', async () => {
    const be = await openBackend(path.join(tmp, 'db'));
    for (let i = 0; i < 2000; i++) be.put(Bucket.Lease, b(`k${String(i).padStart(5, '0')}`), b('v'));
    await be.forceCommit();
    const it = be.iterate(Bucket.Lease);
    be.put(Bucket.Lease, b('k99999'), b('late'));
    be.del(Bucket.Lease, b('k00000'));
    await be.forceCommit();
    const seen = await collect(it);
    expect(seen.length).toBe(2000);
    expect(seen[0]![0]).toBe('k00000');
    expect(seen.some(([k]) => k === 'k99999')).toBe(false);
  });
});

describe('Backend batching', () => {
  it('commits after batchIntervalMs and reports the commit duration', async () => {
    const c = nextCommit();
    const dir = path.join(tmp, 'db');
    const be = await openBackend(dir, { batchIntervalMs: 20, ...c.opts });
    const t0 = Date.now();
    be.put(Bucket.Lease, b('x'), b('1'));
    await c.wait();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(15);
    expect(be.pendingOps).toBe(0);
    expect(c.commits.length).toBe(1);
    expect(c.commits[0]).toBeGreaterThanOrEqual(0);
    expect(c.commits[0]).toBeLessThan(5);
    // Durable: a crash now loses nothing.
    await be.abandon();
    const re = await openBackend(dir);
    expect((await re.get(Bucket.Lease, b('x')))?.toString()).toBe('1');
  });

  it('commits once the batch reaches batchLimit, without waiting for the interval', async () => {
    const c = nextCommit();
    const be = await openBackend(path.join(tmp, 'db'), { batchLimit: 5, ...c.opts });
    for (let i = 0; i < 4; i++) be.put(Bucket.Lease, b(`k${i}`), b('v'));
    await new Promise((r) => setTimeout(r, 30));
    expect(c.commits.length).toBe(0);
    be.put(Bucket.Lease, b('k4'), b('v'));
    await c.wait();
    expect(be.pendingOps).toBe(0);
  });

  it('never splits a synchronous write sequence across batches (limit commits are deferred)', async () => {
    const c = nextCommit();
    const dir = path.join(tmp, 'db');
    const be = await openBackend(dir, { batchLimit: 3, ...c.opts });
    // 10 writes in one synchronous run, like one Raft entry's data + consistent index.
    for (let i = 0; i < 10; i++) be.put(Bucket.Lease, b(`k${i}`), b('v'));
    await c.wait();
    expect(c.commits.length).toBe(1);
    await be.abandon();
    const re = await openBackend(dir);
    expect((await collect(re.iterate(Bucket.Lease))).length).toBe(10);
  });

  it('a crash loses exactly the uncommitted batch', async () => {
    const dir = path.join(tmp, 'db');
    const be = await openBackend(dir);
    be.put(Bucket.Lease, b('committed'), b('1'));
    be.put(Bucket.Lease, b('overwritten'), b('old'));
    await be.forceCommit();
    be.put(Bucket.Lease, b('uncommitted'), b('2'));
    be.put(Bucket.Lease, b('overwritten'), b('new'));
    be.del(Bucket.Lease, b('committed'));
    await be.abandon();
    const re = await openBackend(dir);
    expect(await collect(re.iterate(Bucket.Lease))).toEqual([
      ['committed', '1'],
      ['overwritten', 'old'],
    ]);
  });

  it('close() commits pending writes', async () => {
    const dir = path.join(tmp, 'db');
    const be = await openBackend(dir);
    be.put(Bucket.Lease, b('k'), b('v'));
    await be.close();
    const re = await openBackend(dir);
    expect((await re.get(Bucket.Lease, b('k')))?.toString()).toBe('v');
    expect(() => be.put(Bucket.Lease, b('x'), b('y'))).toThrow(/closed/);
  });

  it('writes staged while a commit is in flight are committed by the next commit', async () => {
    const dir = path.join(tmp, 'db');
    const be = await openBackend(dir);
    be.put(Bucket.Lease, b('a'), b('1'));
    const first = be.forceCommit();
    be.put(Bucket.Lease, b('b'), b('2'));
    expect((await be.get(Bucket.Lease, b('a')))?.toString()).toBe('1');
    await first;
    await be.forceCommit();
    await be.abandon();
    const re = await openBackend(dir);
    expect(await collect(re.iterate(Bucket.Lease))).toEqual([
      ['a', '1'],
      ['b', '2'],
    ]);
  });
});

describe('Backend size accounting', () => {
  it('tracks logical bytes in use exactly across overwrites, deletes, commits and reopen', async () => {
    const dir = path.join(tmp, 'db');
    const be = await openBackend(dir);
    const entry = (k: string, v: string): number => 1 + k.length + v.length; // 1 = bucket prefix
    expect(be.sizeInUseBytes()).toBe(0);
    be.put(Bucket.Lease, b('aa'), b('1234'));
    be.put(Bucket.Key, b('rev1'), b('value-1'));
    expect(be.sizeInUseBytes()).toBe(entry('aa', '1234') + entry('rev1', 'value-1'));
    await be.forceCommit();
    be.put(Bucket.Lease, b('aa'), b('1')); // overwrite of a committed small-bucket key
    expect(be.sizeInUseBytes()).toBe(entry('aa', '1') + entry('rev1', 'value-1'));
    await be.deleteMany(Bucket.Key, [b('rev1')]); // committed key-bucket entry: size looked up
    expect(be.sizeInUseBytes()).toBe(entry('aa', '1'));
    await be.close();
    const re = await openBackend(dir);
    expect(re.sizeInUseBytes()).toBe(entry('aa', '1'));
    re.del(Bucket.Lease, b('aa'));
    expect(re.sizeInUseBytes()).toBe(0);
  });

  it('reports on-disk size, and defragment shrinks it after deletes', async () => {
    const dir = path.join(tmp, 'db');
    const be = await openBackend(dir);
    const keys: Buffer[] = [];
    for (let i = 0; i < 1500; i++) {
      const k = b(`k${String(i).padStart(6, '0')}`);
      keys.push(k);
      be.put(Bucket.Key, k, randomBytes(4096)); // random: snappy cannot shrink it
    }
    await be.forceCommit();
    await be.defragment();
    const full = be.sizeBytes();
    expect(full).toBeGreaterThan(1500 * 1024);
    await be.deleteMany(Bucket.Key, keys);
    expect(be.sizeInUseBytes()).toBe(0);
    await be.defragment();
    expect(be.sizeBytes()).toBeLessThan(full / 4);
  });
});

describe('Backend hash and snapshot', () => {
  async function fill(be: Backend, commitEvery: number): Promise<void> {
    for (let i = 0; i < 50; i++) {
      be.put(i % 2 ? Bucket.Lease : Bucket.Key, b(`key-${i}`), b(`value-${i}`));
      if (i % commitEvery === 0) await be.forceCommit();
    }
    be.put(Bucket.Meta, META_CONSISTENT_INDEX, Buffer.alloc(8, commitEvery));
  }

  it('hash depends on the data only, not on batching, and ignores the consistent index', async () => {
    const a = await openBackend(path.join(tmp, 'a'));
    const c = await openBackend(path.join(tmp, 'c'));
    await fill(a, 1);
    await fill(c, 7);
    const h = await a.hash();
    expect(await c.hash()).toBe(h);
    a.put(Bucket.Lease, b('key-1'), b('changed'));
    expect(await a.hash()).not.toBe(h);
  });

  it('snapshot → restoreSnapshot round-trips every bucket (pending writes included)', async () => {
    const src = await openBackend(path.join(tmp, 'src'));
    await fill(src, 5);
    src.put(Bucket.AuthRoles, b('root'), b('perm'));
    const h = await src.hash();
    const chunks: Buffer[] = [];
    for await (const chunk of src.snapshot()) chunks.push(chunk as Buffer);
    const dst = path.join(tmp, 'dst');
    await Backend.restoreSnapshot(dst, Readable.from(chunks));
    const re = await openBackend(dst);
    expect(await re.hash()).toBe(h);
    expect((await re.get(Bucket.AuthRoles, b('root')))?.toString()).toBe('perm');
    expect(re.sizeInUseBytes()).toBe(src.sizeInUseBytes());
  });

  it('rejects corrupted or truncated snapshots and leaves no partial directory', async () => {
    const src = await openBackend(path.join(tmp, 'src'));
    await fill(src, 5);
    const bytes = Buffer.concat(await Readable.from(src.snapshot()).toArray());
    const corrupted = Buffer.from(bytes);
    corrupted[40] = corrupted[40]! ^ 0xff;
    const dst = path.join(tmp, 'dst');
    await expect(Backend.restoreSnapshot(dst, Readable.from([corrupted]))).rejects.toThrow(SnapshotFormatError);
    expect(fs.existsSync(dst)).toBe(false);
    await expect(Backend.restoreSnapshot(dst, Readable.from([bytes.subarray(0, bytes.length - 10)]))).rejects.toThrow(
      SnapshotFormatError,
    );
    expect(fs.existsSync(dst)).toBe(false);
    await expect(Backend.restoreSnapshot(dst, Readable.from([Buffer.from('not a snapshot')]))).rejects.toThrow(/magic/);
  });
});
