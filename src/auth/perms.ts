// Key permissions as etcd defines them. A role grants READ, WRITE or READWRITE on
//   - one key            (range_end empty),
//   - a range [key, end)  (range_end set; `--prefix` sends the prefix's successor),
//   - every key >= key    (range_end "\x00", `--from-key`).
// A user's permissions are the union over its roles. A request on one key needs a granted
// interval containing it; a request on a range needs the union of granted intervals to
// cover the whole range (a range that is only partly granted is refused).

export enum PermType {
  READ = 0,
  WRITE = 1,
  READWRITE = 2,
}

export interface Permission {
  permType: PermType;
  key: Buffer;
  /** Empty: the single key. "\x00": every key from `key` on. */
  rangeEnd: Buffer;
}

/** [begin, end): end undefined means unbounded. */
export interface KeyInterval {
  begin: Buffer;
  end?: Buffer;
}

const ZERO = Buffer.from([0]);

function isFromKey(rangeEnd: Buffer): boolean {
  return rangeEnd.length === 1 && rangeEnd[0] === 0;
}

/** The interval a permission grants. */
export function permissionInterval(p: { key: Buffer; rangeEnd: Buffer }): KeyInterval {
  if (p.rangeEnd.length === 0) return { begin: p.key, end: Buffer.concat([p.key, ZERO]) };
  if (isFromKey(p.rangeEnd)) return { begin: p.key };
  return { begin: p.key, end: p.rangeEnd };
}

/** end-of-interval comparison where undefined is +infinity */
function compareEnd(a: Buffer | undefined, b: Buffer | undefined): number {
  if (a === undefined) return b === undefined ? 0 : 1;
  if (b === undefined) return -1;
  return Buffer.compare(a, b);
}

/** A set of granted intervals, kept sorted by begin for the coverage sweep. */
export class IntervalSet {
  private readonly intervals: KeyInterval[];

  constructor(intervals: KeyInterval[]) {
    this.intervals = [...intervals].sort((a, b) => Buffer.compare(a.begin, b.begin));
  }

  get size(): number {
    return this.intervals.length;
  }

  containsKey(key: Buffer): boolean {
    for (const iv of this.intervals) {
      if (Buffer.compare(iv.begin, key) > 0) return false; // sorted: no later interval starts at or before key
      if (compareEnd(iv.end, key) > 0) return true;
    }
    return false;
  }

  /** True when the union of the intervals covers [begin, end) entirely. */
  covers(begin: Buffer, end: Buffer | undefined): boolean {
    let reached: Buffer | undefined = begin; // everything below `reached` is covered (from `begin` on)
    for (const iv of this.intervals) {
      if (Buffer.compare(iv.begin, reached) > 0) break; // a gap before this interval
      if (compareEnd(iv.end, reached) > 0) {
        reached = iv.end;
        if (reached === undefined || compareEnd(reached, end) >= 0) return true;
      }
    }
    return false;
  }
}

/** A user's merged permissions (the union of its roles' grants). */
export class RangePermissions {
  constructor(
    readonly read: IntervalSet,
    readonly write: IntervalSet,
  ) {}

  static fromPermissions(perms: Iterable<Permission>): RangePermissions {
    const read: KeyInterval[] = [];
    const write: KeyInterval[] = [];
    for (const p of perms) {
      const iv = permissionInterval(p);
      if (p.permType === PermType.READ || p.permType === PermType.READWRITE) read.push(iv);
      if (p.permType === PermType.WRITE || p.permType === PermType.READWRITE) write.push(iv);
    }
    return new RangePermissions(new IntervalSet(read), new IntervalSet(write));
  }

  /**
   * Whether `type` access to `key` (rangeEnd empty), [key, rangeEnd), or every key from
   * `key` on (rangeEnd "\x00") is granted.
   */
  allows(type: 'read' | 'write', key: Buffer, rangeEnd?: Buffer): boolean {
    const set = type === 'read' ? this.read : this.write;
    if (!rangeEnd || rangeEnd.length === 0) return set.containsKey(key);
    if (isFromKey(rangeEnd)) return set.covers(key, undefined);
    // An empty or inverted range names no key; grant it only if its start key is granted.
    if (Buffer.compare(rangeEnd, key) <= 0) return set.containsKey(key);
    return set.covers(key, rangeEnd);
  }
}

/** The range end that `etcdctl --prefix` sends for a prefix (its lexical successor). */
export function prefixRangeEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i] = end[i]! + 1;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from(ZERO); // all 0xff (or empty): every key from the prefix on
}
