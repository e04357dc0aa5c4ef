import { describe, expect, it } from 'vitest';
import { ValueError } from '../../../src/cli/errors.js';
import {
  formatGoDuration,
  parseGoBool,
  parseGoDurationNs,
  parseGoSigned,
  parseGoUnsigned,
  parseStringList,
  parseUniqueStringList,
} from '../../../src/cli/values.js';

describe('Go bool syntax (strconv.ParseBool)', () => {
  it.each(['1', 't', 'T', 'TRUE', 'true', 'True'])('%s is true', (s) => expect(parseGoBool(s)).toBe(true));
  it.each(['0', 'f', 'F', 'FALSE', 'false', 'False'])('%s is false', (s) => expect(parseGoBool(s)).toBe(false));
  it.each(['yes', 'on', 'tRUE', '', ' true'])('%j is a parse error', (s) => {
    expect(() => parseGoBool(s)).toThrow(new ValueError('parse error'));
  });
});

describe('Go integer syntax (strconv.ParseUint/ParseInt base 0)', () => {
  it('accepts decimal, hex, octal, binary and underscores like Go', () => {
    expect(parseGoUnsigned('10000', 64)).toBe(10000n);
    expect(parseGoUnsigned('0x2710', 64)).toBe(10000n);
    expect(parseGoUnsigned('0X2710', 64)).toBe(10000n);
    expect(parseGoUnsigned('0o17', 64)).toBe(15n);
    expect(parseGoUnsigned('017', 64)).toBe(15n); // a leading 0 means octal in Go
    expect(parseGoUnsigned('0b101', 64)).toBe(5n);
    expect(parseGoUnsigned('1_000_000', 64)).toBe(1000000n);
    expect(parseGoUnsigned('0x_ff', 64)).toBe(255n);
    expect(parseGoUnsigned('0', 64)).toBe(0n);
  });

  it.each(['', 'abc', '1.5', '-1', '+1', '08', '0x', '_1', '1_', '1__0', '5s', ' 1'])('rejects %j as unsigned', (s) => {
    expect(() => parseGoUnsigned(s, 64)).toThrow(new ValueError('parse error'));
  });

  it('reports range errors separately', () => {
    expect(parseGoUnsigned('18446744073709551615', 64)).toBe(18446744073709551615n);
    expect(() => parseGoUnsigned('18446744073709551616', 64)).toThrow(new ValueError('value out of range'));
    expect(parseGoUnsigned('4294967295', 32)).toBe(4294967295n);
    expect(() => parseGoUnsigned('4294967296', 32)).toThrow(new ValueError('value out of range'));
  });

  it('parses signed values with their sign', () => {
    expect(parseGoSigned('-1')).toBe(-1n);
    expect(parseGoSigned('+42')).toBe(42n);
    expect(parseGoSigned('-0x10')).toBe(-16n);
    expect(parseGoSigned('-9223372036854775808')).toBe(-(2n ** 63n));
    expect(() => parseGoSigned('9223372036854775808')).toThrow(new ValueError('value out of range'));
    expect(() => parseGoSigned('--1')).toThrow(new ValueError('parse error'));
  });
});

describe('Go durations (time.ParseDuration)', () => {
  it.each([
    ['0', 0n],
    ['5s', 5_000_000_000n],
    ['100ms', 100_000_000n],
    ['1h30m', 5_400_000_000_000n],
    ['1.5s', 1_500_000_000n],
    ['.5m', 30_000_000_000n],
    ['2h45m10.5s', 9_910_500_000_000n],
    ['10us', 10_000n],
    ['10\u00b5s', 10_000n],
    ['10\u03bcs', 10_000n],
    ['7ns', 7n],
    ['-3s', -3_000_000_000n],
    ['+3s', 3_000_000_000n],
    ['1.0000000001s', 1_000_000_000n], // Go truncates below a nanosecond
  ])('%s = %s ns', (s, ns) => expect(parseGoDurationNs(s)).toBe(ns));

  it('uses Go error texts', () => {
    expect(() => parseGoDurationNs('5')).toThrow('time: missing unit in duration "5"');
    expect(() => parseGoDurationNs('5d')).toThrow('time: unknown unit "d" in duration "5d"');
    expect(() => parseGoDurationNs('')).toThrow('time: invalid duration ""');
    expect(() => parseGoDurationNs('abc')).toThrow('time: invalid duration "abc"');
    expect(() => parseGoDurationNs('.s')).toThrow('time: invalid duration ".s"');
    expect(() => parseGoDurationNs('3000000h')).toThrow('time: invalid duration "3000000h"');
  });

  it('formats like Duration.String()', () => {
    expect(formatGoDuration(0n)).toBe('0s');
    expect(formatGoDuration(100_000_000n)).toBe('100ms');
    expect(formatGoDuration(3_600_000_000_000n)).toBe('1h0m0s');
    expect(formatGoDuration(90_500_000_000n)).toBe('1m30.5s');
    expect(formatGoDuration(1_500n)).toBe('1.5\u00b5s');
    expect(formatGoDuration(-5_000_000_000n)).toBe('-5s');
  });

  it('round-trips through format and parse', () => {
    for (const ns of [1n, 999n, 1_000_000n, 61_000_000_000n, 7_384_000_000_001n]) {
      expect(parseGoDurationNs(formatGoDuration(ns))).toBe(ns);
    }
  });
});

describe('string lists', () => {
  it('split on commas; empty input is an empty list', () => {
    expect(parseStringList('')).toEqual([]);
    expect(parseStringList('a,b,a')).toEqual(['a', 'b', 'a']);
    expect(parseUniqueStringList('a,b,a')).toEqual(['a', 'b']);
  });
});
