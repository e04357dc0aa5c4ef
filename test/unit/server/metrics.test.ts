import { describe, expect, it } from 'vitest';
import { counterCell, gaugeFrom, ServerMetrics } from '../../../src/server/metrics.js';

function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(series + ' '));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('hot-path metric cells', () => {
  it('counter cells add up per label set and appear at scrape, alongside direct increments', async () => {
    const m = new ServerMetrics();
    const put = { grpc_type: 'unary', grpc_service: 'etcdserverpb.KV', grpc_method: 'Put' };
    const range = { ...put, grpc_method: 'Range' };
    const puts = counterCell(m.grpcStarted, put);
    const ranges = counterCell(m.grpcStarted, range);
    for (let i = 0; i < 5; i++) puts.inc();
    ranges.inc(2);
    m.grpcStarted.inc(put); // prom-client's own path still counts
    const text = await m.metricsText();
    expect(sample(text, 'grpc_server_started_total{grpc_type="unary",grpc_service="etcdserverpb.KV",grpc_method="Put"}')).toBe(6);
    expect(sample(text, 'grpc_server_started_total{grpc_type="unary",grpc_service="etcdserverpb.KV",grpc_method="Range"}')).toBe(2);
    // Nothing is counted twice by a second scrape; later increments add on.
    puts.inc();
    const again = await m.metricsText();
    expect(sample(again, 'grpc_server_started_total{grpc_type="unary",grpc_service="etcdserverpb.KV",grpc_method="Put"}')).toBe(7);
    // Unlabelled counters and gauges used as totals work the same way, also through get().
    const writes = counterCell(m.walWriteBytes);
    writes.inc(100);
    writes.inc(28);
    expect((await m.walWriteBytes.get()).values[0]?.value).toBe(128);
  });

  it('gaugeFrom reads the current value at every scrape', async () => {
    const m = new ServerMetrics();
    let pending = 3;
    gaugeFrom(m.proposalsPending, () => pending);
    expect(sample(await m.metricsText(), 'etcd_server_proposals_pending')).toBe(3);
    pending = 0;
    expect(sample(await m.metricsText(), 'etcd_server_proposals_pending')).toBe(0);
  });
});
