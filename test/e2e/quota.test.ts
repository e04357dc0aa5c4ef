import crypto from 'node:crypto';
import { Etcd3 } from 'etcd3';
import { afterAll, describe, expect, it } from 'vitest';
import {
  clusterSpecs, ctlOk, etcdctl, eventually, initialClusterOf, Member, memberArgs, singleNode, stopAll,
} from './harness.js';

// --quota-backend-bytes with the real etcdctl: fill the backend, see the NOSPACE alarm,
// keep reading and deleting, recover with compact -> defrag -> alarm disarm, lose nothing.
//
// The quota is measured, as etcd does, on the database files (LevelDB's here). It is set
// above LevelDB's 4 MiB write buffer so the fill is flushed to tables the way a real
// database is; the fill itself goes through the npm etcd3 client to be quick.

const QUOTA_BYTES = 6 * 1024 * 1024;
const NOSPACE = 'etcdserver: mvcc: database space exceeded';

async function ctlErr(ep: string | string[], args: string[], input?: string): Promise<string> {
  const r = await etcdctl(ep, args, input);
  if (r.code === 0) throw new Error(`etcdctl ${args.join(' ')} unexpectedly succeeded: ${r.stdout}`);
  const lines = `${r.stdout}\n${r.stderr}`.split('\n').filter((l) => l !== '' && !l.includes('retry_interceptor'));
  return lines[lines.length - 1]!;
}

/** Overwrites one key with 8 KiB values until the server refuses; returns the last value stored. */
async function fillUntilNoSpace(endpoint: string): Promise<{ last: string; puts: number }> {
  const client = new Etcd3({ hosts: endpoint });
  let last = '';
  try {
    for (let i = 0; i < 3 * (QUOTA_BYTES / 8192); i++) {
      const v = `${i}-${crypto.randomBytes(6144).toString('base64')}`;
      try {
        await client.put('big').value(v);
      } catch (e) {
        expect((e as Error).message).toContain(NOSPACE);
        return { last, puts: i };
      }
      last = v;
    }
  } finally {
    client.close();
  }
  throw new Error(`the backend never reached the ${QUOTA_BYTES}-byte quota`);
}

interface Status {
  Endpoint: string;
  Status: { header: { revision: number }; dbSize: number; errors?: string[] };
}

async function status(ep: string | string[]): Promise<Status[]> {
  return JSON.parse(await ctlOk(ep, ['endpoint', 'status', '-w', 'json'])) as Status[];
}

afterAll(stopAll);

describe('--quota-backend-bytes on one member', () => {
  it('NOSPACE: alarm, refused writes, reads and deletes work; compact + defrag + disarm recovers with no data lost', async () => {
    const m = await singleNode(['--quota-backend-bytes', String(QUOTA_BYTES)]);
    const ep = m.clientUrl;
    const ctl = (...args: string[]) => ctlOk(ep, args);
    for (const i of [1, 2, 3]) await ctl('put', `keep/${i}`, `v${i}`);

    const { last, puts } = await fillUntilNoSpace(ep);
    expect(puts).toBeGreaterThan(QUOTA_BYTES / 8192 / 2);

    // The alarm, as etcdctl lists it (member ID in decimal) and as endpoint status shows it.
    // (the JSON output's member_id is a float64: take the exact hex ID from the table output)
    const memberId = BigInt(`0x${(await ctl('endpoint', 'status')).split(', ')[1]}`).toString();
    const [st] = await status(ep);
    expect(st!.Status.dbSize).toBeGreaterThan(QUOTA_BYTES * 0.9);
    expect(await ctl('alarm', 'list')).toBe(`memberID:${memberId} alarm:NOSPACE \n`);
    expect(st!.Status.errors).toEqual([`memberID:${memberId} alarm:NOSPACE`]);

    // Every way of adding data is refused, with etcd's text.
    expect(await ctlErr(ep, ['put', 'other', 'x'])).toBe(`Error: ${NOSPACE}`);
    expect(await ctlErr(ep, ['txn'], '\nput other x\n\n\n')).toBe(`Error: ${NOSPACE}`);
    expect(await ctlErr(ep, ['lease', 'grant', '60'])).toBe(`Error: failed to grant lease (${NOSPACE})`);

    // Reads, deletes and delete-only txns still work.
    expect(await ctl('get', 'keep/1', '--print-value-only')).toBe('v1\n');
    expect(await ctl('get', 'big', '--print-value-only')).toBe(`${last}\n`);
    expect(await ctl('del', 'keep/3')).toBe('1\n');
    expect(await ctlOk(ep, ['txn'], '\ndel keep/nothing\n\n\n')).toBe('SUCCESS\n\n0\n');

    // The alarm is in the backend: it survives a restart.
    // (/health says false while an alarm is active, as etcd's does: wait on the alarm list)
    await m.stop();
    m.start();
    await eventually(async () => expect(await ctl('alarm', 'list')).toBe(`memberID:${memberId} alarm:NOSPACE \n`));
    expect(await (await fetch(`${ep}/health`)).json()).toEqual({ health: 'false', reason: 'alarm activated: NOSPACE' });
    expect(await ctlErr(ep, ['put', 'other', 'x'])).toBe(`Error: ${NOSPACE}`);

    // Recovery as etcd documents it.
    const rev = (await status(ep))[0]!.Status.header.revision;
    expect(await ctl('compaction', String(rev))).toBe(`compacted revision ${rev}\n`);
    expect(await ctl('defrag')).toBe(`Finished defragmenting etcd member[${ep}]\n`);
    const after = (await status(ep))[0]!.Status.dbSize;
    expect(after).toBeLessThan(QUOTA_BYTES / 4);
    expect(await ctl('alarm', 'disarm')).toBe(`memberID:${memberId} alarm:NOSPACE \n`);
    expect(await ctl('alarm', 'list')).toBe('');
    expect(await ctl('put', 'other', 'x')).toBe('OK\n');
    expect(await ctl('lease', 'grant', '60')).toMatch(/^lease [0-9a-f]+ granted with TTL\(60s\)\n$/);

    // Nothing written before the alarm was lost.
    expect(await ctl('get', 'keep/', '--prefix')).toBe('keep/1\nv1\nkeep/2\nv2\n');
    expect(await ctl('get', 'big', '--print-value-only')).toBe(`${last}\n`);
    expect(m.exitCode).toBeNull();
  });
});

describe('--quota-backend-bytes in a 3-member cluster', () => {
  it('the alarm is raised for the whole cluster and recovered from any member', async () => {
    const specs = await clusterSpecs(3);
    const ic = initialClusterOf(specs);
    const members = specs.map((s) => new Member(s, memberArgs(s, ic, 'new', 'quota-cluster', ['--quota-backend-bytes', String(QUOTA_BYTES)])).start());
    await Promise.all(members.map((x) => x.waitHealthy()));
    const eps = members.map((x) => x.clientUrl);
    await ctlOk(eps[0]!, ['put', 'keep', 'k']);

    const { last } = await fillUntilNoSpace(eps[0]!);
    // Every member knows the alarm and refuses writes, whichever member the client talks to.
    for (const ep of eps) {
      await eventually(async () => expect(await ctlOk(ep, ['alarm', 'list'])).toMatch(/alarm:NOSPACE/));
      expect(await ctlErr(ep, ['put', 'x', '1'])).toBe(`Error: ${NOSPACE}`);
      expect(await ctlOk(ep, ['get', 'keep', '--print-value-only', '--consistency=s'])).toBe('k\n');
    }

    const rev = (await status(eps[0]!))[0]!.Status.header.revision;
    await ctlOk(eps[1]!, ['compaction', String(rev)]);
    const defrag = await ctlOk(eps, ['defrag']);
    for (const ep of eps) expect(defrag).toContain(`Finished defragmenting etcd member[${ep}]`);
    for (const s of await status(eps)) expect(s.Status.dbSize).toBeLessThan(QUOTA_BYTES / 4);
    await ctlOk(eps[2]!, ['alarm', 'disarm']);
    for (const ep of eps) await eventually(async () => expect(await ctlOk(ep, ['alarm', 'list'])).toBe(''));
    expect(await ctlOk(eps[1]!, ['put', 'x', '1'])).toBe('OK\n');
    expect(await ctlOk(eps[2]!, ['get', 'big', '--print-value-only'])).toBe(`${last}\n`);
    expect(await ctlOk(eps[2]!, ['get', 'keep', '--print-value-only'])).toBe('k\n');
  });
});
