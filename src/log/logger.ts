/**
 * Structured logging shaped like etcd's zap output, so that log shippers and operators' greps
 * keep working: one JSON object per line,
 *   {"level":"info","ts":"2026-11-25T12:00:00.000Z","msg":"...","local-member-id":"8e9e05c52164694d"}
 * (no "caller": there is no cheap, meaningful equivalent in JS). `--log-format console` prints
 * `ts<TAB>level<TAB>msg<TAB>{fields}` instead.
 *
 * A disabled level costs one no-op call: the level is fixed at creation, so disabled methods are
 * bound to a function that does nothing and never looks at its arguments.
 */
import { closeSync, openSync, writeSync } from 'node:fs';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'panic' | 'fatal';
export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** Writes a fatal-level line. Unlike zap it does not exit: the caller decides how to stop. */
  fatal(msg: string, fields?: LogFields): void;
  /** A logger that adds `fields` to every line (after level/ts/msg, before per-call fields). */
  child(fields: LogFields): Logger;
  /** Whether `level` would be written; use it to skip building expensive fields. */
  isEnabled(level: LogLevel): boolean;
}

export interface LoggerOptions {
  /** Lowest level written. Default info. */
  level?: LogLevel;
  /** Default json. */
  format?: 'json' | 'console';
  /**
   * Destinations: `default`/`stderr`, `stdout`, `/dev/null` (discard) or file paths (appended).
   * Default `['stderr']`.
   */
  outputs?: readonly string[];
  /** Receives each finished line (with its '\n') instead of `outputs`; for tests and embedding. */
  sink?: (line: string) => void;
  /** Clock, epoch milliseconds. Default Date.now. */
  now?: () => number;
}

/** A Logger that owns open files; `close()` releases them. */
export interface ClosableLogger extends Logger {
  close(): void;
}

const LEVEL_RANK: Readonly<Record<LogLevel, number>> = { debug: -1, info: 0, warn: 1, error: 2, panic: 4, fatal: 5 };

const MAX_DEPTH = 8;

function noop(): void {}

// ---- value encoding ---------------------------------------------------------------------------

/** etcd prints IDs (member, cluster, lease…) as unpadded lowercase hex; by field name convention. */
function isIdField(key: string): boolean {
  return key.endsWith('-id') || key.endsWith('-ids');
}

function encodeBigint(key: string, v: bigint): string {
  if (isIdField(key)) return JSON.stringify(BigInt.asUintN(64, v).toString(16));
  return JSON.stringify(v.toString());
}

/** JSON for one field value; `key` is the top-level field name, which decides bigint rendering. */
export function encodeValue(key: string, v: unknown, depth = 0, seen: WeakSet<object> = new WeakSet()): string {
  switch (typeof v) {
    case 'string':
      return JSON.stringify(v);
    case 'number':
      return Number.isFinite(v) ? String(v) : JSON.stringify(String(v));
    case 'boolean':
      return v ? 'true' : 'false';
    case 'bigint':
      return encodeBigint(key, v);
    case 'undefined':
      return 'null';
    case 'symbol':
      return JSON.stringify(v.toString());
    case 'function':
      return JSON.stringify(`[function ${v.name || 'anonymous'}]`);
    case 'object':
      return encodeObject(key, v, depth, seen);
  }
}

function encodeObject(key: string, v: object | null, depth: number, seen: WeakSet<object>): string {
  if (v === null) return 'null';
  if (v instanceof Error) return JSON.stringify(v.message);
  if (v instanceof Date) return JSON.stringify(Number.isNaN(v.getTime()) ? 'Invalid Date' : v.toISOString());
  if (v instanceof Uint8Array) return JSON.stringify(Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64'));
  if (v instanceof URL) return JSON.stringify(v.toString());
  if (seen.has(v)) return '"[Circular]"';
  if (depth >= MAX_DEPTH) return '"[Too deep]"';
  seen.add(v);
  try {
    if (Array.isArray(v)) return `[${v.map((x) => encodeValue(key, x, depth + 1, seen)).join(',')}]`;
    if (v instanceof Set) return `[${[...v].map((x) => encodeValue(key, x, depth + 1, seen)).join(',')}]`;
    if (v instanceof Map) {
      const parts = [...v].map(([k, x]) => `${JSON.stringify(String(k))}:${encodeValue(key, x, depth + 1, seen)}`);
      return `{${parts.join(',')}}`;
    }
    const custom = (v as { toJSON?: () => unknown }).toJSON;
    if (typeof custom === 'function') return encodeValue(key, custom.call(v), depth + 1, seen);
    const parts = Object.entries(v).map(([k, x]) => `${JSON.stringify(k)}:${encodeValue(key, x, depth + 1, seen)}`);
    return `{${parts.join(',')}}`;
  } finally {
    seen.delete(v);
  }
}

/** `,"k":v` for each field, in insertion order (like zap, keys may repeat across child/call fields). */
function encodeFields(fields: LogFields | undefined): string {
  if (fields === undefined) return '';
  let out = '';
  for (const k of Object.keys(fields)) out += `,${JSON.stringify(k)}:${encodeValue(k, fields[k])}`;
  return out;
}

function formatTimestamp(ms: number): string {
  return new Date(ms).toISOString();
}

// ---- outputs ---------------------------------------------------------------------------------

type Write = (line: string) => void;

interface OpenOutputs {
  write: Write;
  close: () => void;
}

function openOutputs(outputs: readonly string[]): OpenOutputs {
  const names = [...new Set(outputs.length === 0 ? ['stderr'] : outputs.map((o) => (o === 'default' ? 'stderr' : o)))];
  if (names.includes('/dev/null')) return { write: noop, close: noop };
  const fds: number[] = [];
  const writers: Write[] = names.map((name) => {
    if (name === 'stderr') return (line) => void process.stderr.write(line);
    if (name === 'stdout') return (line) => void process.stdout.write(line);
    // Synchronous appends: a line is on its way to disk before the next statement (and before a crash exit).
    const fd = openSync(name, 'a');
    fds.push(fd);
    return (line) => void writeSync(fd, line);
  });
  const write: Write = writers.length === 1 ? writers[0]! : (line) => { for (const w of writers) w(line); };
  return { write, close: () => { for (const fd of fds.splice(0)) closeSync(fd); } };
}

// ---- logger ----------------------------------------------------------------------------------

interface Core {
  minRank: number;
  console: boolean;
  write: Write;
  now: () => number;
}

function jsonLine(core: Core, level: LogLevel, msg: string, base: string, fields: LogFields | undefined): string {
  const ts = formatTimestamp(core.now());
  return `{"level":"${level}","ts":"${ts}","msg":${JSON.stringify(msg)}${base}${encodeFields(fields)}}\n`;
}

function consoleLine(core: Core, level: LogLevel, msg: string, base: string, fields: LogFields | undefined): string {
  const ts = formatTimestamp(core.now());
  const all = base + encodeFields(fields);
  return `${ts}\t${level}\t${msg}${all === '' ? '' : `\t{${all.slice(1)}}`}\n`;
}

class CoreLogger implements Logger {
  readonly debug: (msg: string, fields?: LogFields) => void;
  readonly info: (msg: string, fields?: LogFields) => void;
  readonly warn: (msg: string, fields?: LogFields) => void;
  readonly error: (msg: string, fields?: LogFields) => void;
  readonly fatal: (msg: string, fields?: LogFields) => void;

  /** `base` is the pre-encoded `,"k":v` text of the child fields. */
  constructor(private readonly core: Core, private readonly base: string) {
    this.debug = this.method('debug');
    this.info = this.method('info');
    this.warn = this.method('warn');
    this.error = this.method('error');
    this.fatal = this.method('fatal');
  }

  private method(level: LogLevel): (msg: string, fields?: LogFields) => void {
    if (LEVEL_RANK[level] < this.core.minRank) return noop;
    const render = this.core.console ? consoleLine : jsonLine;
    return (msg, fields) => this.core.write(render(this.core, level, msg, this.base, fields));
  }

  child(fields: LogFields): Logger {
    return new CoreLogger(this.core, this.base + encodeFields(fields));
  }

  isEnabled(level: LogLevel): boolean {
    return LEVEL_RANK[level] >= this.core.minRank;
  }
}

export function isLogLevel(s: string): s is LogLevel {
  return Object.prototype.hasOwnProperty.call(LEVEL_RANK, s);
}

export function createLogger(opts: LoggerOptions = {}): ClosableLogger {
  const level = opts.level ?? 'info';
  if (!isLogLevel(level)) throw new Error(`unrecognized level: ${JSON.stringify(level)}`);
  const format = opts.format ?? 'json';
  if (format !== 'json' && format !== 'console') throw new Error(`unknown log format: ${String(format)}`);
  const outputs = opts.sink !== undefined ? { write: opts.sink, close: noop } : openOutputs(opts.outputs ?? ['stderr']);
  const core: Core = { minRank: LEVEL_RANK[level], console: format === 'console', write: outputs.write, now: opts.now ?? Date.now };
  const root = new CoreLogger(core, '');
  return Object.assign(root, { close: outputs.close });
}

/** Build the server logger from the parsed configuration. */
export function loggerFromConfig(cfg: { logLevel: LogLevel; logFormat: 'json' | 'console'; logOutputs: readonly string[] }): ClosableLogger {
  return createLogger({ level: cfg.logLevel, format: cfg.logFormat, outputs: cfg.logOutputs });
}

class NullLogger implements Logger {
  debug(): void {}
  info(): void {}
  warn(): void {}
  error(): void {}
  fatal(): void {}
  child(): Logger {
    return this;
  }
  isEnabled(): boolean {
    return false;
  }
}

/** Discards everything; for tests and for components created without a logger. */
export const nullLogger: Logger = new NullLogger();
