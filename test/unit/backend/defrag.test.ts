import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Backend, Bucket } from '../../../src/backend/index.js';

// Defragmentation rebuilds the database from its live records: space freed by deletes is
// returned even when LevelDB kept everything in one level-0 file.

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function tmp(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'tsetcd-defrag-'));
  dirs.push(d);
  return path.join(d, 'db');
}

describe('Backend.defragment', () => {
  it('shrinks a small database after deletes and keeps every live record', async () => {
    const dir = tmp();
    const b = await Backend.open(dir, { batchIntervalMs: 10 });
    const big = Buffer.alloc(2000, 7);
    for (let i = 0; i < 400; i++) b.put(Bucket.Key, Buffer.from(`k${String(i).padStart(4, '0')}`), big);
    await b.forceCommit();
    for (let i = 0; i < 390; i++) b.del(Bucket.Key, Buffer.from(`k${String(i).padStart(4, '0')}`));
    await b.forceCommit();
    await b.refreshDiskSize();
    const before = b.sizeBytes();
    // writes during the defrag land in the pending batch and survive the swap
    const during = b.defragment();
    b.put(Bucket.Meta, Buffer.from('during'), Buffer.from('x'));
    await during;
    const after = b.sizeBytes();
    expect(after).toBeLessThan(before / 4);
    for (let i = 390; i < 400; i++) expect((await b.get(Bucket.Key, Buffer.from(`k${String(i).padStart(4, '0')}`)))?.length).toBe(2000);
    expect(await b.get(Bucket.Key, Buffer.from('k0000'))).toBeUndefined();
    expect((await b.get(Bucket.Meta, Buffer.from('during')))?.toString()).toBe('x');
    await b.close();
    const reopened = await Backend.open(dir);
    expect((await reopened.get(Bucket.Meta, Buffer.from('during')))?.toString()).toBe('x');
    expect((await reopened.get(Bucket.Key, Buffer.from('k0399')))?.length).toBe(2000);
    await reopened.close();
  });

  it('recovers a swap interrupted between its two renames', async () => {
    const dir = tmp();
    const b = await Backend.open(dir);
    b.put(Bucket.Meta, Buffer.from('k'), Buffer.from('v'));
    await b.close();
    fs.renameSync(dir, `${dir}.old`);
    const again = await Backend.open(dir);
    expect((await again.get(Bucket.Meta, Buffer.from('k')))?.toString()).toBe('v');
    await again.close();
  });
});
