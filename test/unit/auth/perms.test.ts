import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { IntervalSet, PermType, RangePermissions, permissionInterval, prefixRangeEnd, type Permission } from '../../../src/auth/perms.js';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');
const perm = (permType: PermType, key: string, rangeEnd = ''): Permission => ({ permType, key: b(key), rangeEnd: b(rangeEnd) });
const FROM_KEY = '\x00';

describe('permission intervals (etcd semantics)', () => {
  it('a grant without range end covers exactly one key', () => {
    const p = RangePermissions.fromPermissions([perm(PermType.READ, 'foo')]);
    expect(p.allows('read', b('foo'))).toBe(true);
    expect(p.allows('read', b('foo\x00'))).toBe(false);
    expect(p.allows('read', b('fo'))).toBe(false);
    expect(p.allows('read', b('foo'), b('foo\x00'))).toBe(true); // the range [foo, foo\0) is the key itself
    expect(p.allows('read', b('foo'), b('fop'))).toBe(false);
  });

  it('--prefix grants [prefix, successor)', () => {
    const p = RangePermissions.fromPermissions([perm(PermType.READWRITE, '/app/', prefixRangeEnd(b('/app/')).toString('latin1'))]);
    expect(prefixRangeEnd(b('/app/')).toString()).toBe('/app0');
    for (const k of ['/app/', '/app/x', '/app/\xff\xff']) expect(p.allows('write', b(k))).toBe(true);
    for (const k of ['/app', '/app0', '/apq', '/']) expect(p.allows('read', b(k))).toBe(false);
    expect(p.allows('read', b('/app/'), b('/app0'))).toBe(true);
    expect(p.allows('read', b('/app/a'), b('/app/b'))).toBe(true);
    expect(p.allows('read', b('/'), b('0'))).toBe(false); // a wider prefix than granted
    expect(p.allows('read', b('/app/'), b(FROM_KEY))).toBe(false); // from-key is unbounded
  });

  it('--from-key grants every key from the key on, and covers from-key requests', () => {
    const p = RangePermissions.fromPermissions([perm(PermType.WRITE, '/w/', FROM_KEY)]);
    expect(p.allows('write', b('/w/'))).toBe(true);
    expect(p.allows('write', b('zzzz'))).toBe(true);
    expect(p.allows('write', b('/w'))).toBe(false);
    expect(p.allows('write', b('/x/'), b(FROM_KEY))).toBe(true);
    expect(p.allows('write', b('/a'), b(FROM_KEY))).toBe(false);
    expect(p.allows('read', b('/w/'))).toBe(false); // WRITE grants no read
  });

  it('READ, WRITE and READWRITE feed the right sets', () => {
    const p = RangePermissions.fromPermissions([perm(PermType.READ, 'r'), perm(PermType.WRITE, 'w'), perm(PermType.READWRITE, 'rw')]);
    expect([p.allows('read', b('r')), p.allows('write', b('r'))]).toEqual([true, false]);
    expect([p.allows('read', b('w')), p.allows('write', b('w'))]).toEqual([false, true]);
    expect([p.allows('read', b('rw')), p.allows('write', b('rw'))]).toEqual([true, true]);
  });

  it('a range is allowed only when the union of grants covers it without a gap', () => {
    const p = RangePermissions.fromPermissions([perm(PermType.READ, 'a', 'c'), perm(PermType.READ, 'c', 'e'), perm(PermType.READ, 'f', 'h')]);
    expect(p.allows('read', b('a'), b('e'))).toBe(true); // [a,c) + [c,e)
    expect(p.allows('read', b('b'), b('d'))).toBe(true);
    expect(p.allows('read', b('a'), b('f'))).toBe(false); // gap [e,f)
    expect(p.allows('read', b('d'), b('g'))).toBe(false);
    expect(p.allows('read', b('f'), b('h'))).toBe(true);
    expect(p.allows('read', b('e'))).toBe(false);
  });

  it('an empty or inverted request range counts as its start key', () => {
    const p = RangePermissions.fromPermissions([perm(PermType.READ, 'k')]);
    expect(p.allows('read', b('k'), b('a'))).toBe(true);
    expect(p.allows('read', b('j'), b('a'))).toBe(false);
  });

  it('no grants: nothing is allowed', () => {
    const p = RangePermissions.fromPermissions([]);
    expect(p.allows('read', b('a'))).toBe(false);
    expect(p.allows('write', b('a'), b(FROM_KEY))).toBe(false);
  });

  it('prefixRangeEnd carries over 0xff bytes and degenerates to from-key', () => {
    expect(prefixRangeEnd(Buffer.from([0x61, 0xff]))).toEqual(Buffer.from([0x62]));
    expect(prefixRangeEnd(Buffer.from([0xff, 0xff]))).toEqual(Buffer.from([0]));
  });

  // Model check: grant status only changes at interval boundaries, so [begin, end) is
  // covered exactly when `begin` and every boundary inside the range are granted keys.
  it('covers() agrees with probing every interval boundary (fast-check)', () => {
    const keys: string[] = [];
    const gen = (prefix: string, depth: number): void => {
      if (depth > 0) keys.push(prefix);
      if (depth < 3) for (const ch of ['a', 'b', 'c']) gen(prefix + ch, depth + 1);
    };
    gen('', 0);
    const key = fc.constantFrom(...keys);
    const grant = fc.record({ key, end: fc.oneof(fc.constant(''), fc.constant(FROM_KEY), key) });
    fc.assert(
      fc.property(fc.array(grant, { maxLength: 5 }), key, fc.oneof(fc.constant(FROM_KEY), key), (grants, begin, endText) => {
        if (endText !== FROM_KEY && endText <= begin) return; // empty ranges: separate test
        const end = endText === FROM_KEY ? undefined : b(endText);
        const intervals = grants.map((g) => permissionInterval({ key: b(g.key), rangeEnd: b(g.end) }));
        const granted = (k: Buffer) => intervals.some((iv) => Buffer.compare(iv.begin, k) <= 0 && (!iv.end || Buffer.compare(k, iv.end) < 0));
        const inRange = (k: Buffer) => Buffer.compare(k, b(begin)) >= 0 && (!end || Buffer.compare(k, end) < 0);
        const probes = [b(begin), ...intervals.flatMap((iv) => (iv.end ? [iv.begin, iv.end] : [iv.begin]))].filter(inRange);
        expect(new IntervalSet(intervals).covers(b(begin), end)).toBe(probes.every(granted));
      }),
      { numRuns: 3000 },
    );
  });
});
