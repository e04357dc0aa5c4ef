import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Etcd3 } from 'etcd3';
import { ctlOk, etcdctl, freePort, Member, singleNode, sleep, stopAll } from './harness.js';

// Crash safety with real processes: SIGKILL during writes loses no acknowledged write;
// a torn WAL tail is repaired at start; a corrupt record before the tail refuses to start.

afterAll(stopAll);

function walDir(m: Member): string {
  return path.join(m.spec.dataDir, 'member', 'wal');
}

function lastSegment(m: Member): string {
  const files = fs.readdirSync(walDir(m)).filter((f) => f.endsWith('.wal')).sort();
  return path.join(walDir(m), files[files.length - 1]!);
}

/** Offset one past the last non-zero byte (segments may be preallocated with zeros). */
function dataEnd(file: string): number {
  const buf = fs.readFileSync(file);
  let end = buf.length;
  while (end > 0 && buf[end - 1] === 0) end--;
  return end;
}

describe('durability', () => {
  it('SIGKILL while clients write: every acknowledged write survives and revisions continue', async () => {
    const m = await singleNode();
    const client = new Etcd3({ hosts: m.clientUrl });
    const acked = new Map<string, { value: string; rev: number }>();
    let stop = false;
    const writer = async (w: number) => {
      for (let i = 0; !stop; i++) {
        const key = `dur/${w}/${i}`;
        try {
          const res = await client.put(key).value(`v${i}`).exec();
          acked.set(key, { value: `v${i}`, rev: Number(res.header.revision) });
        } catch {
          return; // the server died under us: unacknowledged, may or may not exist
        }
      }
    };
    const writers = Array.from({ length: 16 }, (_, w) => writer(w));
    await sleep(1500);
    await m.kill();
    stop = true;
    await Promise.all(writers);
    client.close();
    expect(acked.size).toBeGreaterThan(50);

    m.start();
    await m.waitHealthy();
    const client2 = new Etcd3({ hosts: m.clientUrl });
    const all = await client2.getAll().prefix('dur/').strings();
    let maxRev = 0;
    for (const [k, v] of acked) {
      expect(all[k], k).toBe(v.value);
      maxRev = Math.max(maxRev, v.rev);
    }
    const next = await client2.put('after-restart').value('x').exec();
    expect(Number(next.header.revision)).toBeGreaterThan(maxRev);
    client2.close();
    await m.stop();
  }, 90_000);

  it('a torn WAL tail is repaired at start with a warning', async () => {
    const m = await singleNode();
    for (let i = 0; i < 20; i++) await ctlOk(m.clientUrl, ['put', `torn/${i}`, `v${i}`]);
    await m.kill();
    const seg = lastSegment(m);
    const end = dataEnd(seg);
    const fd = fs.openSync(seg, 'r+');
    fs.ftruncateSync(fd, end - 5); // cut the last record short
    fs.closeSync(fd);
    m.start();
    await m.waitHealthy();
    expect(m.stderr).toMatch(/torn|repair|truncat/i);
    expect(await ctlOk(m.clientUrl, ['get', 'torn/0', '--print-value-only'])).toBe('v0\n');
    expect(await ctlOk(m.clientUrl, ['get', 'torn/18', '--print-value-only'])).toBe('v18\n');
    await ctlOk(m.clientUrl, ['put', 'torn/after', 'ok']);
    await m.stop();
  }, 60_000);

  it('a flipped byte before the tail refuses to start, naming file and offset', async () => {
    const m = await singleNode();
    for (let i = 0; i < 50; i++) await ctlOk(m.clientUrl, ['put', `flip/${i}`, 'x'.repeat(100)]);
    await m.kill();
    const seg = lastSegment(m);
    const end = dataEnd(seg);
    const offset = Math.floor(end / 2);
    const fd = fs.openSync(seg, 'r+');
    const b = Buffer.alloc(1);
    fs.readSync(fd, b, 0, 1, offset);
    b[0] = b[0]! ^ 0xff;
    fs.writeSync(fd, b, 0, 1, offset);
    fs.closeSync(fd);
    m.start();
    const code = await m.exited;
    expect(code).toBe(1);
    expect(m.stderr).toContain(path.basename(seg));
    expect(m.stderr).toMatch(/offset \d+/);
  }, 60_000);

  it('a second process on the same data dir gets a clear error', async () => {
    const m = await singleNode();
    // same data dir, other ports: the failure must be about the data dir, not the sockets
    const spec = { ...m.spec, clientPort: await freePort(), peerPort: await freePort() };
    const args = m.args.map((a) =>
      a.replace(`:${m.spec.clientPort}`, `:${spec.clientPort}`).replace(`:${m.spec.peerPort}`, `:${spec.peerPort}`),
    );
    const twin = new Member(spec, args);
    twin.start();
    const code = await twin.exited;
    expect(code).toBe(1);
    expect(twin.stderr).toMatch(/data dir .* is in use by another process/);
    const r = await etcdctl(m.clientUrl, ['put', 'still', 'serving']);
    expect(r.code).toBe(0);
  }, 60_000);
  it('after a WAL I/O failure the member refuses writes with that error, once, and stays readable', async () => {
    const m = await singleNode();
    await ctlOk(m.clientUrl, ['put', 'before', 'x']);
    // The open segment stays writable once unlinked, but cutting the next one (at 64 MB) fails.
    fs.rmSync(path.join(m.spec.dataDir, 'member', 'wal'), { recursive: true, force: true });
    const big = 'v'.repeat(1_400_000);
    let failed: { code: number; stderr: string } | undefined;
    for (let i = 0; i < 60 && !failed; i++) {
      const r = await etcdctl(m.clientUrl, ['put', `big${i}`, '--command-timeout=5s'], big);
      if (r.code !== 0) failed = r;
    }
    expect(failed, 'a write should fail once the WAL cannot cut a segment').toBeDefined();
    for (let i = 0; i < 3; i++) {
      const r = await etcdctl(m.clientUrl, ['put', `after${i}`, 'v', '--command-timeout=5s']);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/ENOENT/);
    }
    expect(await ctlOk(m.clientUrl, ['get', 'before', '--print-value-only', '--consistency=s'])).toBe('x\n');
    expect(m.stderr.match(/ready loop failed/g)).toHaveLength(1);
    expect(m.stderr).not.toMatch(/ready\(\) called again/);
  }, 90_000);
});
