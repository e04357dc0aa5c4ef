// runCheckPerf drives etcdctl as a child process; here a stand-in script plays etcdctl.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCheckPerf } from '../../../bench/checkperf.js';

describe('runCheckPerf', () => {
  let dir = '';
  const script = (name: string, body: string): string => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
    return file;
  };

  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsetcd-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('passes the endpoints and load, sets ETCDCTL_API=3 and parses the verdict', async () => {
    const fake = script(
      'pass.sh',
      // Exits without a verdict unless called exactly like etcdctl check perf should be.
      '[ "$ETCDCTL_API" = 3 ] || exit 9\n' +
        '[ "$*" = "--endpoints=127.0.0.1:1,127.0.0.1:2 check perf --load=m" ] || exit 8\n' +
        'printf " 1 / 60 \\r 60 / 60 100%%\\n"\n' +
        'echo "PASS: Throughput is 1001 writes/s"; echo "PASS: Slowest request took 0.2s"; echo "PASS: Stddev is 0.01s"; echo PASS',
    );
    const r = await runCheckPerf({ endpoints: ['127.0.0.1:1', '127.0.0.1:2'], load: 'm', etcdctlPath: fake });
    expect(r.verdict).toBe('pass');
    expect(r.writesPerSec).toBe(1001);
    expect(r.slowestSec).toBe(0.2);
    expect(r.error).toBeUndefined();
  });

  it('a non-zero exit without a verdict is an error carrying the last output line', async () => {
    const fake = script('fail.sh', 'echo "Error: prefix has keys" >&2; exit 3');
    const r = await runCheckPerf({ endpoints: ['127.0.0.1:1'], load: 's', etcdctlPath: fake });
    expect(r.verdict).toBe('error');
    expect(r.error).toMatch(/code 3.*prefix has keys/);
  });

  it('is killed when abortReason fires, and on timeout', async () => {
    const fake = script('hang.sh', 'exec sleep 30');
    const t0 = Date.now();
    let polls = 0;
    const aborted = await runCheckPerf({
      endpoints: ['127.0.0.1:1'],
      load: 's',
      etcdctlPath: fake,
      abortReason: () => (++polls >= 1 ? 'member m0 exited' : undefined),
    });
    expect(aborted.verdict).toBe('error');
    expect(aborted.error).toBe('aborted: member m0 exited');
    const timedOut = await runCheckPerf({ endpoints: ['127.0.0.1:1'], load: 's', etcdctlPath: fake, timeoutMs: 300 });
    expect(timedOut.error).toMatch(/timed out/);
    expect(Date.now() - t0).toBeLessThan(10_000);
  });
});
