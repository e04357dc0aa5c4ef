// Bookkeeping for callers waiting on Raft: proposals waiting for their entry to be
// applied, and reads waiting for the applied index to reach a read index. Deadlines are
// swept by one timer instead of one timer per request (cheap on the hot path).

interface Waiter<T> {
  resolve: (value: T) => void;
  reject: (err: Error) => void;
  deadlineMs: number;
}

export class ProposalWaits {
  private readonly waits = new Map<number, Waiter<unknown>>();

  get size(): number {
    return this.waits.size;
  }

  register<T>(id: number, deadlineMs: number): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.waits.set(id, { resolve: resolve as (v: unknown) => void, reject, deadlineMs });
    });
  }

  has(id: number): boolean {
    return this.waits.has(id);
  }

  resolve(id: number, value: unknown): void {
    const w = this.waits.get(id);
    if (!w) return;
    this.waits.delete(id);
    w.resolve(value);
  }

  reject(id: number, err: Error): void {
    const w = this.waits.get(id);
    if (!w) return;
    this.waits.delete(id);
    w.reject(err);
  }

  /** Fails every waiter whose deadline passed; returns how many. */
  expire(nowMs: number, makeError: () => Error): number {
    let n = 0;
    for (const [id, w] of this.waits) {
      if (w.deadlineMs <= nowMs) {
        this.waits.delete(id);
        w.reject(makeError());
        n++;
      }
    }
    return n;
  }

  rejectAll(err: Error): void {
    for (const w of this.waits.values()) w.reject(err);
    this.waits.clear();
  }
}

/** Callers waiting until the applied index reaches some index. Kept sorted by index. */
export class AppliedIndexWaits {
  private waiters: { index: number; resolve: () => void; reject: (e: Error) => void; deadlineMs: number }[] = [];

  wait(index: number, appliedIndex: number, deadlineMs: number): Promise<void> {
    if (appliedIndex >= index) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const w = { index, resolve, reject, deadlineMs };
      // usually appended at the end: indexes grow
      let i = this.waiters.length;
      while (i > 0 && this.waiters[i - 1]!.index > index) i--;
      this.waiters.splice(i, 0, w);
    });
  }

  trigger(appliedIndex: number): void {
    let n = 0;
    while (n < this.waiters.length && this.waiters[n]!.index <= appliedIndex) n++;
    if (n === 0) return;
    const done = this.waiters.splice(0, n);
    for (const w of done) w.resolve();
  }

  expire(nowMs: number, makeError: () => Error): void {
    if (this.waiters.length === 0) return;
    const keep = [];
    for (const w of this.waiters) {
      if (w.deadlineMs <= nowMs) w.reject(makeError());
      else keep.push(w);
    }
    this.waiters = keep;
  }

  rejectAll(err: Error): void {
    for (const w of this.waiters) w.reject(err);
    this.waiters = [];
  }
}
