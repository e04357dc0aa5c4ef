/**
 * Conversion of a flag's text (command line, environment) or YAML value (config file) to its
 * typed value. Failures throw ValueError carrying only the reason; the caller names the source.
 */
import type { FlagValue } from './config.js';
import { ValueError, goQuote } from './errors.js';
import { FEATURE_GATE_DEFAULTS, type FlagSpec } from './flags.js';
import { parseEtcdUrlList } from './url.js';
import {
  PARSE_ERROR,
  nsToMs,
  parseGoBool,
  parseGoDurationNs,
  parseGoSigned,
  parseGoUnsigned,
  parseUniqueStringList,
  toSafeNumber,
} from './values.js';

/** Convert command-line/environment text. Durations come back as milliseconds. */
export function convertText(spec: FlagSpec, text: string): FlagValue {
  switch (spec.type) {
    case 'string':
    case 'initial-cluster':
      // initial-cluster is a plain string flag in etcd; it is parsed (and its errors worded)
      // when the bootstrap configuration is built.
      return text;
    case 'bool':
      return parseGoBool(text);
    case 'uint':
      return toSafeNumber(parseGoUnsigned(text, 64));
    case 'uint32':
      return toSafeNumber(parseGoUnsigned(text, 32));
    case 'int':
      return toSafeNumber(parseGoSigned(text));
    case 'duration':
      return durationTextToMs(text);
    case 'url-list':
      // etcd's URL flags treat an empty value as "keep the current (default) list".
      if (text === '') return spec.default === '' ? [] : parseEtcdUrlList(spec.default);
      return parseEtcdUrlList(text);
    case 'string-list':
      return parseUniqueStringList(text);
    case 'enum':
      return enumValue(spec, text);
    case 'feature-gates':
      return parseFeatureGates(text);
  }
}

/** A flag's default, converted. Empty duration defaults (etcd shows '') mean 0. */
export function defaultValue(spec: FlagSpec): FlagValue {
  if (spec.type === 'duration' && spec.default === '') return 0;
  return convertText(spec, spec.default);
}

function durationTextToMs(text: string): number {
  try {
    return nsToMs(parseGoDurationNs(text));
  } catch {
    // Go's flag package reports every duration syntax problem as "parse error".
    throw new ValueError(PARSE_ERROR);
  }
}

function enumValue(spec: FlagSpec, text: string): string {
  const choices = spec.choices ?? [];
  if (choices.includes(text)) return text;
  const shown = choices.map((c) => (c === '' ? '""' : c)).join(', ');
  throw new ValueError(`invalid value (must be one of: ${shown})`);
}

/** `--feature-gates` syntax, with etcd's messages for each mistake. */
export function parseFeatureGates(text: string): ReadonlyMap<string, boolean> {
  const gates = new Map<string, boolean>();
  for (const item of text.split(',')) {
    if (item === '') continue;
    const eq = item.indexOf('=');
    const key = (eq < 0 ? item : item.slice(0, eq)).trim();
    if (eq < 0) throw new ValueError(`missing bool value for ${key}`);
    const raw = item.slice(eq + 1).trim();
    let enabled: boolean;
    try {
      enabled = parseGoBool(raw);
    } catch {
      throw new ValueError(`invalid value of ${key}=${raw}, err: strconv.ParseBool: parsing ${goQuote(raw)}: invalid syntax`);
    }
    gates.set(key, enabled);
  }
  for (const key of gates.keys()) {
    if (!FEATURE_GATE_DEFAULTS.has(key)) throw new ValueError(`unrecognized feature gate: ${key}`);
  }
  return gates;
}

/** Text form of a YAML scalar/list, used for `raw` and for types read from text. */
export function yamlToText(value: unknown): string {
  if (Array.isArray(value)) return value.map((v) => yamlToText(v)).join(',');
  if (value instanceof Map) return [...value.entries()].map(([k, v]) => `${String(k)}=${yamlToText(v)}`).join(',');
  if (typeof value === 'object' && value !== null) {
    return Object.entries(value).map(([k, v]) => `${k}=${yamlToText(v)}`).join(',');
  }
  return String(value);
}

/**
 * Convert a config-file value. etcd reads the file through JSON struct tags, so numbers are
 * numbers and duration fields are integer *nanoseconds*; tsetcd also accepts duration strings
 * ("10m"), numeric strings and YAML lists for list flags, which etcd would reject.
 */
export function convertYaml(spec: FlagSpec, value: unknown): FlagValue {
  if (spec.type === 'duration' && typeof value === 'number') {
    if (!Number.isInteger(value)) throw new ValueError('duration must be an integer number of nanoseconds or a string like "5s"');
    return value / 1e6;
  }
  if (spec.type === 'bool' && typeof value === 'boolean') return value;
  if ((spec.type === 'uint' || spec.type === 'int' || spec.type === 'uint32') && typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw new ValueError(PARSE_ERROR);
    if (value < 0 && spec.type !== 'int') throw new ValueError(PARSE_ERROR);
    if (spec.type === 'uint32' && value > 0xffffffff) throw new ValueError('value out of range');
    return value;
  }
  if (spec.type === 'feature-gates' && typeof value === 'object' && value !== null && !Array.isArray(value)) {
    return parseFeatureGates(yamlToText(value));
  }
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    throw new ValueError('expected a scalar or a list, got a mapping');
  }
  if (Array.isArray(value) && !(spec.type === 'url-list' || spec.type === 'string-list' || spec.type === 'initial-cluster')) {
    throw new ValueError('expected a single value, got a list');
  }
  return convertText(spec, yamlToText(value));
}
