/**
 * Value syntax of Go's flag/strconv/time packages, because etcd's flags are Go flags and an
 * operator's existing command lines (`--snapshot-count=0x2710`, `--grpc-keepalive-time=1h30m`)
 * must mean the same thing to tsetcd.
 */
import { ValueError, goQuote } from './errors.js';

/** Go's flag package maps every strconv syntax error to this text. */
export const PARSE_ERROR = 'parse error';
/** Go's flag package maps every strconv range error to this text. */
export const RANGE_ERROR = 'value out of range';

const TRUE_WORDS: ReadonlySet<string> = new Set(['1', 't', 'T', 'TRUE', 'true', 'True']);
const FALSE_WORDS: ReadonlySet<string> = new Set(['0', 'f', 'F', 'FALSE', 'false', 'False']);

/** strconv.ParseBool. */
export function parseGoBool(s: string): boolean {
  if (TRUE_WORDS.has(s)) return true;
  if (FALSE_WORDS.has(s)) return false;
  throw new ValueError(PARSE_ERROR);
}

/** Underscores may only separate digits (Go's underscoreOK for base-prefixed literals). */
function underscoresWellPlaced(digits: string): boolean {
  return !(digits.startsWith('_') || digits.endsWith('_') || digits.includes('__'));
}

/**
 * strconv.ParseUint(s, 0, bits): decimal, `0x`/`0o`/`0b` prefixes, a leading `0` for octal,
 * and `_` separators. Returns a bigint so that range checks are exact.
 */
export function parseGoUnsigned(s: string, bits: 32 | 64): bigint {
  if (s === '') throw new ValueError(PARSE_ERROR);
  let base = 10;
  let digits = s;
  let prefixed = false;
  if (s.length > 1 && s[0] === '0') {
    const marker = s[1]!.toLowerCase();
    if (marker === 'x') { base = 16; digits = s.slice(2); prefixed = true; }
    else if (marker === 'o') { base = 8; digits = s.slice(2); prefixed = true; }
    else if (marker === 'b') { base = 2; digits = s.slice(2); prefixed = true; }
    else { base = 8; digits = s.slice(1); prefixed = true; }
  }
  if (digits.includes('_')) {
    // Go accepts `0x_1F` (underscore right after the prefix) but not `_1` or `1__0`.
    const body = prefixed && digits.startsWith('_') ? digits.slice(1) : digits;
    if (!underscoresWellPlaced(body)) throw new ValueError(PARSE_ERROR);
    digits = body.replace(/_/g, '');
  }
  if (digits === '') throw new ValueError(PARSE_ERROR);
  const alphabet = '0123456789abcdef'.slice(0, base);
  let value = 0n;
  const bigBase = BigInt(base);
  for (const ch of digits.toLowerCase()) {
    const d = alphabet.indexOf(ch);
    if (d < 0) throw new ValueError(PARSE_ERROR);
    value = value * bigBase + BigInt(d);
  }
  const max = (1n << BigInt(bits)) - 1n;
  if (value > max) throw new ValueError(RANGE_ERROR);
  return value;
}

/** strconv.ParseInt(s, 0, 64). */
export function parseGoSigned(s: string): bigint {
  let negative = false;
  let body = s;
  if (s.startsWith('+') || s.startsWith('-')) {
    negative = s[0] === '-';
    body = s.slice(1);
  }
  const magnitude = parseGoUnsigned(body, 64);
  const limit = negative ? 1n << 63n : (1n << 63n) - 1n;
  if (magnitude > limit) throw new ValueError(RANGE_ERROR);
  return negative ? -magnitude : magnitude;
}

/**
 * Narrow a parsed integer to a JS number. Values beyond 2^53 would silently lose precision,
 * so they are refused (no etcd setting needs them).
 */
export function toSafeNumber(v: bigint): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) {
    throw new ValueError(RANGE_ERROR);
  }
  return Number(v);
}

const NANOS_PER_UNIT: ReadonlyMap<string, bigint> = new Map([
  ['ns', 1n],
  ['us', 1_000n],
  ['\u00b5s', 1_000n], // micro sign
  ['\u03bcs', 1_000n], // Greek mu
  ['ms', 1_000_000n],
  ['s', 1_000_000_000n],
  ['m', 60_000_000_000n],
  ['h', 3_600_000_000_000n],
]);

const MAX_DURATION_NS = (1n << 63n) - 1n;

/**
 * time.ParseDuration, returning nanoseconds. Error texts are Go's
 * (`time: invalid duration "x"`, `time: missing unit in duration "5"`, `time: unknown unit "d" in duration "5d"`);
 * the flag layer replaces them with "parse error" exactly as Go's flag package does.
 */
export function parseGoDurationNs(orig: string): bigint {
  const invalid = (): ValueError => new ValueError(`time: invalid duration ${goQuote(orig)}`);
  let s = orig;
  let negative = false;
  if (s !== '' && (s[0] === '-' || s[0] === '+')) {
    negative = s[0] === '-';
    s = s.slice(1);
  }
  if (s === '0') return 0n;
  if (s === '') throw invalid();
  let total = 0n;
  while (s !== '') {
    if (!(s[0] === '.' || (s[0]! >= '0' && s[0]! <= '9'))) throw invalid();
    const intMatch = /^[0-9]*/.exec(s)![0];
    s = s.slice(intMatch.length);
    let fraction = '';
    if (s.startsWith('.')) {
      s = s.slice(1);
      fraction = /^[0-9]*/.exec(s)![0];
      s = s.slice(fraction.length);
    }
    if (intMatch === '' && fraction === '') throw invalid();
    const unitMatch = /^[^0-9.]*/.exec(s)![0];
    s = s.slice(unitMatch.length);
    if (unitMatch === '') throw new ValueError(`time: missing unit in duration ${goQuote(orig)}`);
    const unitNs = NANOS_PER_UNIT.get(unitMatch);
    if (unitNs === undefined) {
      throw new ValueError(`time: unknown unit ${goQuote(unitMatch)} in duration ${goQuote(orig)}`);
    }
    const whole = intMatch === '' ? 0n : BigInt(intMatch);
    let part = whole * unitNs;
    if (fraction !== '') {
      // Go truncates the fractional nanoseconds; integer arithmetic keeps that exact.
      const scale = 10n ** BigInt(fraction.length);
      part += (BigInt(fraction) * unitNs) / scale;
    }
    total += part;
    if (total > MAX_DURATION_NS + (negative ? 1n : 0n)) throw invalid();
  }
  return negative ? -total : total;
}

/** Nanoseconds to (possibly fractional) milliseconds. */
export function nsToMs(ns: bigint): number {
  return Number(ns) / 1e6;
}

/** Go's Duration.String(), for help text and messages (`1h0m0s`, `100ms`, `0s`). */
export function formatGoDuration(ns: bigint): string {
  if (ns === 0n) return '0s';
  const negative = ns < 0n;
  let u = negative ? -ns : ns;
  let out: string;
  if (u < 1_000_000_000n) {
    // Sub-second values use the largest unit that keeps an integer part.
    const [unit, size] = u < 1_000n ? ['ns', 1n] : u < 1_000_000n ? ['\u00b5s', 1_000n] : ['ms', 1_000_000n];
    out = fixedPoint(u, size) + unit;
  } else {
    const hours = u / 3_600_000_000_000n;
    u -= hours * 3_600_000_000_000n;
    const minutes = u / 60_000_000_000n;
    u -= minutes * 60_000_000_000n;
    out = fixedPoint(u, 1_000_000_000n) + 's';
    if (hours > 0n || minutes > 0n) out = `${minutes}m` + out;
    if (hours > 0n) out = `${hours}h` + out;
  }
  return negative ? '-' + out : out;
}

function fixedPoint(value: bigint, unit: bigint): string {
  const whole = value / unit;
  const rest = value % unit;
  if (rest === 0n) return whole.toString();
  const width = unit.toString().length - 1;
  const frac = rest.toString().padStart(width, '0').replace(/0+$/, '');
  return `${whole}.${frac}`;
}

/** A comma-separated string list, as etcd's StringsValue; empty input gives an empty list. */
export function parseStringList(s: string): string[] {
  if (s === '') return [];
  return s.split(',');
}

/** Same, without duplicates (etcd's UniqueStringsValue), keeping first-seen order. */
export function parseUniqueStringList(s: string): string[] {
  return [...new Set(parseStringList(s))];
}
