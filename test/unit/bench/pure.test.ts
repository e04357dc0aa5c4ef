// Pure helpers of the bench suite: statistics, key encoding, gRPC framing, output parsing.
import { describe, expect, it } from 'vitest';
import { LatencyRecorder, percentileOfSorted } from '../../../bench/stats.js';
import { benchKey, parseArgs, specFromArgs, toGrpcTarget } from '../../../bench/client.js';
import { MessageDeframer, frameMessage } from '../../../bench/transport.js';
import { parseCheckPerfOutput } from '../../../bench/checkperf.js';
import { parseProcStat } from '../../../bench/cluster.js';
import {
  SUITE,
  buildTable,
  formatTable,
  medianRecord,
  parseSuiteOptions,
  ratioText,
  selectWorkloads,
  workloadTotal,
  type RunRecord,
} from '../../../bench/run.js';

describe('stats', () => {
  it('nearest-rank percentiles', () => {
    const sorted = Float64Array.from({ length: 100 }, (_, i) => i + 1); // 1..100
    expect(percentileOfSorted(sorted, 50)).toBe(50);
    expect(percentileOfSorted(sorted, 90)).toBe(90);
    expect(percentileOfSorted(sorted, 99)).toBe(99);
    expect(percentileOfSorted(sorted, 100)).toBe(100);
    expect(percentileOfSorted([7], 99)).toBe(7);
    expect(percentileOfSorted([], 50)).toBe(0);
    expect(() => percentileOfSorted([1], 0)).toThrow();
  });

  it('summarizes latencies, grows past its initial capacity and counts errors apart', () => {
    const rec = new LatencyRecorder(2);
    for (const ms of [4, 1, 3, 2]) rec.recordMs(ms);
    rec.recordError('UNAVAILABLE: x');
    rec.recordError('UNAVAILABLE: x');
    const s = rec.summarize(2);
    expect(s.status).toBe('ok');
    expect(s.total).toBe(4);
    expect(s.requestsPerSec).toBe(2);
    expect(s.avgMs).toBe(2.5);
    expect(s.p50Ms).toBe(2);
    expect(s.slowestMs).toBe(4);
    expect(s.fastestMs).toBe(1);
    expect(s.stddevMs).toBeCloseTo(Math.sqrt(1.25), 10);
    expect(s.errors).toBe(2);
    expect(s.errorKinds).toEqual({ 'UNAVAILABLE: x': 2 });
    expect(() => rec.recordMs(-1)).toThrow();
  });

  it('a run without successes is failed', () => {
    const rec = new LatencyRecorder();
    rec.recordError('boom');
    expect(rec.summarize(1).status).toBe('failed');
  });
});

describe('benchKey (Go binary.PutVarint into a zero key)', () => {
  it('encodes zig-zag varints like etcd benchmark keys', () => {
    expect([...benchKey(0, 8)]).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
    expect([...benchKey(1, 8)]).toEqual([2, 0, 0, 0, 0, 0, 0, 0]);
    expect([...benchKey(63, 4)]).toEqual([126, 0, 0, 0]);
    expect([...benchKey(64, 4)]).toEqual([0x80, 0x01, 0, 0]);
    // 100000 -> zigzag 200000 = 0x30D40 -> 0xC0 0x9A 0x0C
    expect([...benchKey(100000, 3)]).toEqual([0xc0, 0x9a, 0x0c]);
  });

  it('distinct indexes give distinct keys and too-small keys are rejected', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 5000; i++) seen.add(benchKey(i, 8).toString('hex'));
    expect(seen.size).toBe(5000);
    expect(() => benchKey(100000, 2)).toThrow(/too small/);
    expect(() => benchKey(-1, 8)).toThrow();
  });
});

describe('gRPC framing', () => {
  it('deframes messages split across and packed into chunks', () => {
    const msgs = [Buffer.from('a'), Buffer.alloc(0), Buffer.alloc(70000, 7), Buffer.from('last')];
    const stream = Buffer.concat(msgs.map(frameMessage));
    for (const chunkSize of [1, 3, 5, 6, 1000, stream.length]) {
      const got: Buffer[] = [];
      const d = new MessageDeframer((m) => got.push(Buffer.from(m)));
      for (let i = 0; i < stream.length; i += chunkSize) d.push(stream.subarray(i, i + chunkSize));
      expect(got.map((b) => b.toString('hex'))).toEqual(msgs.map((b) => b.toString('hex')));
    }
  });

  it('rejects compressed messages', () => {
    const d = new MessageDeframer(() => {});
    const frame = frameMessage(Buffer.from('xy'));
    frame[0] = 1;
    expect(() => d.push(Buffer.concat([frame, Buffer.from([0])]))).toThrow(/compress/);
  });
});

describe('etcdctl check perf output', () => {
  it('parses a PASS run (progress bar with carriage returns included)', () => {
    const out =
      '\r 0 / 60    0.00%\r 59 / 60   98.33%\r 60 / 60  100.00% 1m0s\n' +
      'PASS: Throughput is 151 writes/s\nPASS: Slowest request took 0.006503s\nPASS: Stddev is 0.000253s\nPASS\n';
    const r = parseCheckPerfOutput('s', out);
    expect(r.verdict).toBe('pass');
    expect(r.writesPerSec).toBe(151);
    expect(r.slowestSec).toBeCloseTo(0.006503);
    expect(r.stddevSec).toBeCloseTo(0.000253);
    expect(r.lines).toHaveLength(4);
  });

  it('finds a verdict glued to the end of the progress bar', () => {
    const out = '\r 60 / 60  100.00% 1m0sPASS: Throughput is 150 writes/s\nPASS: Slowest request took 0.1s\nPASS: Stddev is 0.01s\nPASS\n';
    const r = parseCheckPerfOutput('s', out);
    expect(r.writesPerSec).toBe(150);
    expect(r.lines[0]).toBe('PASS: Throughput is 150 writes/s');
    expect(r.verdict).toBe('pass');
  });

  it('parses a FAIL run', () => {
    const out =
      'FAIL: Throughput too low: 2370 writes/s\nSlowest request took too long: 0.831000s\nStddev too high: 0.120000s\nFAIL\n';
    const r = parseCheckPerfOutput('l', out);
    expect(r.verdict).toBe('fail');
    expect(r.writesPerSec).toBe(2370);
    expect(r.slowestSec).toBeCloseTo(0.831);
    expect(r.stddevSec).toBeCloseTo(0.12);
  });

  it('too many errors is a FAIL without numbers; garbage is an error', () => {
    expect(parseCheckPerfOutput('m', 'FAIL: too many errors\nFAIL: ERROR(x) -> 3\n').verdict).toBe('fail');
    expect(parseCheckPerfOutput('m', 'Error: context deadline exceeded\n').verdict).toBe('error');
  });
});

describe('argument parsing', () => {
  it('handles --a b, --a=b and boolean flags', () => {
    const a = parseArgs(['--conns', '8', '--total=5', 'put', '--sequential-keys', '--key-size', '16'], new Set(['sequential-keys']));
    expect(a.positional).toEqual(['put']);
    expect(a.flags.get('conns')).toBe('8');
    expect(a.flags.get('total')).toBe('5');
    expect(a.flags.get('sequential-keys')).toBe(true);
    const spec = specFromArgs(a);
    expect(spec).toEqual({ kind: 'put', keySizeBytes: 16, valSizeBytes: 8, keySpaceSize: 1, sequentialKeys: true });
  });

  it('range needs a key and a valid consistency', () => {
    expect(specFromArgs(parseArgs(['range', 'k', 'z', '--consistency', 's']))).toEqual({
      kind: 'range',
      key: 'k',
      rangeEnd: 'z',
      consistency: 's',
    });
    expect(() => specFromArgs(parseArgs(['range']))).toThrow();
    expect(() => specFromArgs(parseArgs(['range', 'k', '--consistency', 'x']))).toThrow();
    expect(() => specFromArgs(parseArgs(['nope']))).toThrow(/unknown workload/);
  });

  it('normalizes endpoints', () => {
    expect(toGrpcTarget('http://127.0.0.1:2379/')).toBe('127.0.0.1:2379');
    expect(toGrpcTarget('localhost:1')).toBe('localhost:1');
    expect(() => toGrpcTarget('127.0.0.1')).toThrow();
  });

  it('suite options', () => {
    const o = parseSuiteOptions(['--only', 'etcd', '--cluster', '1,3', '--quick', '--workload', 'put,range-s', '--total', '100']);
    expect(o.targets).toEqual(['etcd']);
    expect(o.clusterSizes).toEqual([1, 3]);
    expect(o.quick).toBe(true);
    expect(o.maxSecondsPerWorkload).toBe(8);
    expect(o.totalOverride).toBe(100);
    expect(o.transport).toBe('h2');
    expect(() => parseSuiteOptions(['--only', 'zk'])).toThrow();
    expect(() => parseSuiteOptions(['--cluster', '2'])).toThrow();
  });
});

describe('workload selection', () => {
  it('default run has check perf s, --full adds m and l, --quick drops check perf', () => {
    const ids = (o: { quick: boolean; full: boolean; workloadFilters: string[] }): string[] => selectWorkloads(o).map((w) => w.id);
    const def = ids({ quick: false, full: false, workloadFilters: [] });
    expect(def).toContain('check-perf-s');
    expect(def).not.toContain('check-perf-m');
    expect(ids({ quick: false, full: true, workloadFilters: [] })).toEqual(expect.arrayContaining(['check-perf-m', 'check-perf-l']));
    expect(ids({ quick: true, full: false, workloadFilters: [] }).some((i) => i.startsWith('check-perf'))).toBe(false);
    expect(ids({ quick: true, full: false, workloadFilters: ['check-perf-l'] })).toEqual(['check-perf-l']);
    expect(ids({ quick: false, full: false, workloadFilters: ['put'] })).toEqual(['put-1x1', 'put-8x64', 'put-16x256']);
  });

  it('totals: override > quick > default', () => {
    const w = SUITE.find((x) => x.id === 'put-8x64');
    if (w === undefined || w.type !== 'load') throw new Error('put-8x64 missing');
    expect(workloadTotal(w, { quick: false })).toBe(w.total);
    expect(workloadTotal(w, { quick: true })).toBe(w.quickTotal);
    expect(workloadTotal(w, { quick: true, totalOverride: 7 })).toBe(7);
  });
});

describe('aggregation', () => {
  const rec = (target: 'tsetcd' | 'etcd', round: number, rps: number): RunRecord => ({
    round,
    target,
    clusterSize: 1,
    workload: 'put-1x1',
    title: 'put, 1 conn / 1 client',
    description: '',
    endpoints: [],
    clientCpuSec: 0,
    serverCpuSec: 0,
    serverRssBytes: 0,
    summary: { ...new LatencyRecorder().summarize(1), status: 'ok', total: rps, requestsPerSec: rps, p99Ms: 1 },
  });

  it('median record and ratio', () => {
    expect(medianRecord([rec('etcd', 0, 10), rec('etcd', 1, 30), rec('etcd', 2, 20)])?.summary?.requestsPerSec).toBe(20);
    expect(medianRecord([])).toBeUndefined();
    expect(ratioText(50, 100)).toBe('0.50x');
    expect(ratioText(undefined, 100)).toBe('-');
    expect(ratioText(5, 0)).toBe('-');
  });

  it('builds and prints the side-by-side table', () => {
    const workloads = selectWorkloads({ quick: false, full: false, workloadFilters: ['put-1x1'] });
    const rows = buildTable([rec('tsetcd', 0, 150), rec('etcd', 0, 100)], workloads, [1]);
    expect(rows).toHaveLength(1);
    expect(rows[0]!.ratio).toBe('1.50x');
    const text = formatTable(rows);
    expect(text).toContain('Cluster of 1 member(s)');
    expect(text).toContain('150 /s');
    expect(text).toContain('1.50x');
  });
});

describe('/proc parsing', () => {
  it('reads ppid, cpu ticks and rss even with spaces and parens in the name', () => {
    const line = '1234 (node (x) y) S 77 1234 1234 0 -1 4194560 100 0 0 0 250 50 3 4 20 0 11 0 500 1000000 2560 18446744073709551615';
    expect(parseProcStat(line)).toEqual({ ppid: 77, cpuTicks: 300, rssPages: 2560 });
  });
});
