import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createLogger, encodeValue, loggerFromConfig, nullLogger, type LoggerOptions } from '../../../src/log/logger.js';

const FIXED_MS = Date.UTC(2026, 10, 25, 12, 0, 0, 123);

function capture(opts: LoggerOptions = {}): { lines: string[]; logger: ReturnType<typeof createLogger> } {
  const lines: string[] = [];
  const logger = createLogger({ now: () => FIXED_MS, sink: (l) => lines.push(l), ...opts });
  return { lines, logger };
}

describe('JSON log lines (zap shape)', () => {
  it('writes one object per line: level, ts, msg first, then fields', () => {
    const { lines, logger } = capture();
    logger.info('starting an etcd server', { name: 'infra0', 'max-learners': 1, 'pre-vote': true });
    expect(lines).toEqual([
      '{"level":"info","ts":"2026-11-25T12:00:00.123Z","msg":"starting an etcd server","name":"infra0","max-learners":1,"pre-vote":true}\n',
    ]);
    const parsed = JSON.parse(lines[0]!);
    expect(Object.keys(parsed).slice(0, 3)).toEqual(['level', 'ts', 'msg']);
    expect(parsed).not.toHaveProperty('caller');
  });

  it('prints bigint IDs as hex when the field name ends in -id, other bigints as decimal strings', () => {
    const { lines, logger } = capture();
    logger.info('x', {
      'local-member-id': 0x8e9e05c52164694dn,
      'cluster-id': 0xcdf818194e3a8c32n,
      'member-ids': [1n, 255n],
      revision: 18446744073709551615n,
      'small-id': 1n,
    });
    const o = JSON.parse(lines[0]!);
    expect(o['local-member-id']).toBe('8e9e05c52164694d');
    expect(o['cluster-id']).toBe('cdf818194e3a8c32');
    expect(o['member-ids']).toEqual(['1', 'ff']);
    expect(o['small-id']).toBe('1');
    expect(o.revision).toBe('18446744073709551615');
  });

  it('encodes errors, arrays, maps, dates, buffers, nested objects and odd values safely', () => {
    const circular: Record<string, unknown> = { a: 1 };
    circular['self'] = circular;
    const { lines, logger } = capture();
    logger.warn('failed', {
      error: new Error('etcdserver: request timed out'),
      urls: ['http://127.0.0.1:2380'],
      map: new Map([['k', 1n]]),
      at: new Date(0),
      data: Buffer.from('hi'),
      nested: { 'lease-id': 16n, list: [true, null] },
      nan: Number.NaN,
      missing: undefined,
      circular,
    });
    const o = JSON.parse(lines[0]!);
    expect(o.error).toBe('etcdserver: request timed out');
    expect(o.urls).toEqual(['http://127.0.0.1:2380']);
    expect(o.map).toEqual({ k: '1' });
    expect(o.at).toBe('1970-01-01T00:00:00.000Z');
    expect(o.data).toBe('aGk=');
    expect(o.nested).toEqual({ 'lease-id': '16', list: [true, null] });
    expect(o.nan).toBe('NaN');
    expect(o.missing).toBeNull();
    expect(o.circular).toEqual({ a: 1, self: '[Circular]' });
  });

  it('escapes message text so every line stays one valid JSON object', () => {
    const { lines, logger } = capture();
    logger.error('line1\nline2 "quoted" \u0001');
    expect(lines[0]!.endsWith('}\n')).toBe(true);
    expect(lines[0]!.slice(0, -1)).not.toContain('\n');
    expect(JSON.parse(lines[0]!).msg).toBe('line1\nline2 "quoted" \u0001');
  });

  it('child loggers add their fields to every line', () => {
    const { lines, logger } = capture();
    const child = logger.child({ 'local-member-id': 0xabcn }).child({ component: 'raft' });
    child.info('became leader', { term: 2 });
    expect(lines[0]).toBe('{"level":"info","ts":"2026-11-25T12:00:00.123Z","msg":"became leader","local-member-id":"abc","component":"raft","term":2}\n');
  });
});

describe('levels', () => {
  it('filters by --log-level', () => {
    const { lines, logger } = capture({ level: 'warn' });
    logger.debug('d');
    logger.info('i');
    logger.warn('w');
    logger.error('e');
    logger.fatal('f');
    expect(lines.map((l) => JSON.parse(l).level)).toEqual(['warn', 'error', 'fatal']);
    expect(logger.isEnabled('info')).toBe(false);
    expect(logger.isEnabled('error')).toBe(true);
  });

  it('debug is written only at debug level', () => {
    const { lines, logger } = capture({ level: 'debug' });
    logger.debug('d', { k: 1 });
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: 'debug', msg: 'd', k: 1 });
  });

  it('a disabled level never touches its fields (cheap)', () => {
    const { lines, logger } = capture({ level: 'error' });
    const fields = new Proxy({}, { ownKeys: () => { throw new Error('fields were read'); } });
    logger.info('ignored', fields);
    logger.child({ a: 1 }).debug('ignored', fields);
    expect(lines).toEqual([]);
  });

  it('panic level keeps only panic and fatal lines', () => {
    const { lines, logger } = capture({ level: 'panic' });
    logger.error('e');
    logger.fatal('f');
    expect(lines).toHaveLength(1);
  });

  it('rejects unknown levels and formats', () => {
    expect(() => createLogger({ level: 'verbose' as never })).toThrow('unrecognized level: "verbose"');
    expect(() => createLogger({ format: 'xml' as never })).toThrow('unknown log format: xml');
  });
});

describe('console format and outputs', () => {
  it('--log-format console prints a tab-separated human line', () => {
    const { lines, logger } = capture({ format: 'console' });
    logger.info('ready to serve client requests', { address: '127.0.0.1:2379' });
    logger.warn('no fields');
    expect(lines).toEqual([
      '2026-11-25T12:00:00.123Z\tinfo\tready to serve client requests\t{"address":"127.0.0.1:2379"}\n',
      '2026-11-25T12:00:00.123Z\twarn\tno fields\n',
    ]);
  });

  it('appends to file outputs (several at once) and closes them', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsetcd-'));
    try {
      const a = path.join(dir, 'a.log');
      const b = path.join(dir, 'b.log');
      fs.writeFileSync(a, 'existing\n');
      const logger = loggerFromConfig({ logLevel: 'info', logFormat: 'json', logOutputs: [a, b] });
      logger.info('one');
      logger.debug('hidden');
      logger.error('two', { 'remote-peer-id': 0x10n });
      logger.close();
      const linesA = fs.readFileSync(a, 'utf8').split('\n');
      expect(linesA[0]).toBe('existing');
      expect(JSON.parse(linesA[1]!).msg).toBe('one');
      expect(JSON.parse(linesA[2]!)).toMatchObject({ level: 'error', msg: 'two', 'remote-peer-id': '10' });
      expect(fs.readFileSync(b, 'utf8')).toBe(linesA.slice(1).join('\n'));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('/dev/null discards everything', () => {
    const logger = createLogger({ outputs: ['/dev/null'] });
    expect(() => logger.error('x')).not.toThrow();
    logger.close();
  });

  it('the null logger accepts every call and returns itself as child', () => {
    nullLogger.debug('x');
    nullLogger.info('x', { a: 1 });
    nullLogger.warn('x');
    nullLogger.error('x');
    nullLogger.fatal('x');
    expect(nullLogger.child({ a: 1 })).toBe(nullLogger);
    expect(nullLogger.isEnabled('fatal')).toBe(false);
  });

  it('encodeValue handles top-level scalars', () => {
    expect(encodeValue('k', 'v')).toBe('"v"');
    expect(encodeValue('k', 1.5)).toBe('1.5');
    expect(encodeValue('x-id', 255n)).toBe('"ff"');
    expect(encodeValue('k', -1n)).toBe('"-1"');
    expect(encodeValue('x-id', -1n)).toBe('"ffffffffffffffff"');
  });
});
