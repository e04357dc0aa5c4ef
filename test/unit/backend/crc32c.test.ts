import { describe, expect, it } from 'vitest';
import { crc32c, Crc32c } from '../../../src/backend/crc32c.js';

describe('crc32c', () => {
  it('matches the standard check value', () => {
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
    expect(crc32c(Buffer.alloc(0))).toBe(0);
  });

  it('matches etcd: HashKV of an empty store is crc32c("key") = 1084519789', () => {
    // observed from a real etcd 3.4.23: `etcdctl endpoint hashkv` on a fresh member
    expect(crc32c(Buffer.from('key'))).toBe(1084519789);
  });

  it('streams: crc(a ++ b) == crc(b, crc(a)) for every split point', () => {
    const data = Buffer.from('the quick brown fox jumps over the lazy dog, twice: the quick brown fox');
    const whole = crc32c(data);
    for (let split = 0; split <= data.length; split++) {
      const h = new Crc32c().update(data.subarray(0, split)).update(data.subarray(split));
      expect(h.digest()).toBe(whole);
    }
  });

  it('slicing-by-8 agrees with a bytewise reference on random data', () => {
    const ref = (d: Uint8Array): number => {
      let c = 0xffffffff;
      for (const byte of d) {
        c ^= byte;
        for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
      }
      return ~c >>> 0;
    };
    for (let len = 0; len < 70; len++) {
      const d = Buffer.alloc(len);
      for (let i = 0; i < len; i++) d[i] = (i * 131 + len * 17) & 0xff;
      expect(crc32c(d)).toBe(ref(d));
    }
  });
});
