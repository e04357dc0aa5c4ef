import * as grpc from '@grpc/grpc-js';

// The responses of one server-streaming call, framed and written to its HTTP/2 stream
// several at a time.
//
// grpc-js writes each response by itself: through the call's object-mode Writable, one
// message in flight at a time, each its own HTTP/2 stream write (a native write request and
// its completion callback). A watch fan-out sends one response per watcher per event:
// hundreds per applied write on one stream, about 13 us of server CPU each that way (a
// single member, 256 watchers on 8 streams). Here the responses produced in one turn of the
// event loop are framed (gRPC's 5-byte length prefix each) into one buffer, written once,
// straight to the HTTP/2 stream under the grpc-js call; the client reads the same bytes.
// Response headers go out first through grpc-js's public sendMetadata; trailers, reading and
// cancellation stay with grpc-js.
//
// Reaching the HTTP/2 stream uses a grpc-js internal (the server call's `call.stream`, present
// when the server has no interceptors). It is checked once per call; without it every
// response goes through grpc-js's own write, as before.

const GRPC_MESSAGE_HEADER_BYTES = 5;

/** The part of Node's ServerHttp2Stream this writer uses. */
interface RawStream {
  write(chunk: Buffer): boolean;
  readonly writableLength: number;
  readonly destroyed: boolean;
  readonly writableEnded: boolean;
  on(event: 'drain', listener: () => void): unknown;
}

/** What the writer uses of a grpc-js server-streaming or bidi call. */
export interface StreamingCall {
  write(message: Buffer): boolean;
  readonly writableLength: number;
  sendMetadata(md: grpc.Metadata): void;
  on(event: 'drain', listener: () => void): unknown;
}

function rawStreamOf(call: StreamingCall): RawStream | undefined {
  const inner = (call as unknown as { call?: { stream?: Partial<RawStream> } }).call;
  const s = inner?.stream;
  if (s && typeof s.write === 'function' && typeof s.on === 'function' && typeof s.writableLength === 'number') return s as RawStream;
  return undefined;
}

export interface BatcherLimits {
  /** Direct writes: bytes queued (not yet taken by the peer) at which the call counts as congested. */
  congestedBytes: number;
  /** grpc-js writes: responses queued at which the call counts as congested. */
  congestedResponses: number;
  /** Told the size of each message written directly (grpc-js's serializer counts the others). */
  countSentBytes?: (bytes: number) => void;
}

export class ResponseBatcher {
  private readonly raw: RawStream | undefined;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private flushQueued = false;
  private headersSent = false;
  private readonly flushNow = (): void => {
    this.flushQueued = false;
    this.flush();
  };

  constructor(
    private readonly call: StreamingCall,
    private readonly limits: BatcherLimits,
  ) {
    this.raw = rawStreamOf(call);
  }

  /** True when responses bypass grpc-js's per-message write (exposed for tests). */
  get direct(): boolean {
    return this.raw !== undefined;
  }

  /** Queues one encoded response; it is written, with the others of this turn, once the turn ends. */
  write(message: Buffer): void {
    if (!this.raw) {
      this.call.write(message);
      return;
    }
    this.pending.push(message);
    this.pendingBytes += GRPC_MESSAGE_HEADER_BYTES + message.length;
    this.limits.countSentBytes?.(message.length);
    if (!this.flushQueued) {
      this.flushQueued = true;
      queueMicrotask(this.flushNow);
    }
  }

  /** Writes what is queued now (before the call ends or fails, so nothing is lost or reordered). */
  flush(): void {
    const raw = this.raw;
    if (!raw || this.pending.length === 0) return;
    const messages = this.pending;
    const total = this.pendingBytes;
    this.pending = [];
    this.pendingBytes = 0;
    if (raw.destroyed || raw.writableEnded) return;
    if (!this.headersSent) {
      this.headersSent = true;
      this.call.sendMetadata(new grpc.Metadata());
    }
    raw.write(frame(messages, total));
  }

  congested(): boolean {
    if (!this.raw) return this.call.writableLength >= this.limits.congestedResponses;
    return this.pendingBytes + this.raw.writableLength >= this.limits.congestedBytes;
  }

  /** Calls `fn` whenever the queued responses have been taken by the peer after congestion. */
  onDrain(fn: () => void): void {
    if (this.raw) this.raw.on('drain', fn);
    else this.call.on('drain', fn);
  }
}

/** Messages, each behind gRPC's prefix (uncompressed flag, big-endian length), in one buffer. */
function frame(messages: Buffer[], totalBytes: number): Buffer {
  const out = Buffer.allocUnsafe(totalBytes);
  let at = 0;
  for (const m of messages) {
    out[at] = 0;
    out.writeUInt32BE(m.length, at + 1);
    m.copy(out, at + GRPC_MESSAGE_HEADER_BYTES);
    at += GRPC_MESSAGE_HEADER_BYTES + m.length;
  }
  return out;
}
