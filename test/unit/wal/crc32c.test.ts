import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { crc32c } from '../../../src/wal/crc32c.js';

/** Bit-at-a-time reference, obviously correct and slow. */
function referenceCrc32c(data: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of data) {
    crc ^= byte;
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

describe('crc32c', () => {
  it('matches the published Castagnoli check values', () => {
    expect(crc32c(0, Buffer.from('123456789'))).toBe(0xe3069283);
    expect(crc32c(0, new Uint8Array(0))).toBe(0);
    // RFC 3720 (iSCSI) B.4 test vectors
    expect(crc32c(0, new Uint8Array(32))).toBe(0x8a9136aa);
    expect(crc32c(0, new Uint8Array(32).fill(0xff))).toBe(0x62a8ab43);
    expect(crc32c(0, Uint8Array.from({ length: 32 }, (_, i) => i))).toBe(0x46dd794e);
  });

  it('agrees with a bitwise reference and chains across any split point', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.nat(), (data, splitSeed) => {
        const whole = crc32c(0, data);
        expect(whole).toBe(referenceCrc32c(data));
        const split = data.length === 0 ? 0 : splitSeed % (data.length + 1);
        expect(crc32c(crc32c(0, data, 0, split), data, split)).toBe(whole);
      }),
      { numRuns: 300 },
    );
  });

  it('rejects ranges outside the buffer', () => {
    expect(() => crc32c(0, new Uint8Array(4), 0, 5)).toThrow(RangeError);
    expect(() => crc32c(0, new Uint8Array(4), 3, 2)).toThrow(RangeError);
  });
});
