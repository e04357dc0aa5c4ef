import { EventEmitter } from 'node:events';
import { Duplex } from 'node:stream';
import { createRequire } from 'node:module';
import type net from 'node:net';

// Go gRPC clients dialed with a URL target (etcdctl 3.4 does this for `endpoint status`,
// `endpoint hashkv`, `defrag`, `snapshot save`, `move-leader`) send the whole URL as the
// HTTP/2 `:authority`, e.g. `http://127.0.0.1:2379`. Go's server takes it; nghttp2 inside
// Node rejects any authority holding a `/` with RST_STREAM(PROTOCOL_ERROR), and Node offers
// no switch for that check. So for such connections we sit between the socket and Node's
// HTTP/2 server and rewrite the client->server byte stream: every header block is decoded
// with an HPACK decoder that mirrors the client's encoder, the authority is cut down to
// host:port, and the block is re-encoded without the dynamic table (so the server's decoder
// state never has to agree with the client's). Every other frame passes untouched.

// ---------------------------------------------------------------------------------------
// HTTP/2 framing constants (RFC 9113 section 4 and 6)

export const H2_PREFACE_BYTES = 24;
const FRAME_HEADER_BYTES = 9;
const FRAME_HEADERS = 0x1;
const FRAME_SETTINGS = 0x4;
const FRAME_PING = 0x6;
const FRAME_CONTINUATION = 0x9;
const FLAG_END_STREAM = 0x1;
const FLAG_ACK = 0x1;
const FLAG_END_HEADERS = 0x4;
const FLAG_PADDED = 0x8;
const FLAG_PRIORITY = 0x20;
const PRIORITY_FIELD_BYTES = 5;
const PING_PAYLOAD_BYTES = 8;
const STREAM_ID_MASK = 0x7fffffff;
/** SETTINGS_MAX_FRAME_SIZE's initial value; every peer must accept frames this large. */
export const DEFAULT_MAX_FRAME_BYTES = 16_384;
/** SETTINGS_HEADER_TABLE_SIZE's initial value; Node's server does not change it. */
export const DEFAULT_HEADER_TABLE_BYTES = 4096;
/**
 * Upper bound on one header block, compressed and decoded (HPACK size: name + value + 32 per
 * field). Node's server refuses header lists above 64 KiB by default, so honest clients stay
 * far below; the bound only keeps a hostile client from making us buffer without limit.
 */
export const MAX_HEADER_BLOCK_BYTES = 1 << 20;

/** The client broke HTTP/2 or HPACK; the connection cannot continue. */
export class H2ShimProtocolError extends Error {
  constructor(message: string) {
    super(`HTTP/2 authority shim: ${message}`);
    this.name = 'H2ShimProtocolError';
  }
}

// ---------------------------------------------------------------------------------------
// :authority normalization

/**
 * The host[:port] part of an authority that holds a URL (`http://h:1/x` -> `h:1`); any value
 * without `/` is returned as is. Never returns an empty string: nghttp2 rejects that too.
 */
export function authorityHostPort(authority: string): string {
  if (!authority.includes('/')) return authority;
  let rest = authority;
  const schemeEnd = rest.indexOf('://');
  if (schemeEnd >= 0) rest = rest.slice(schemeEnd + 3);
  const pathStart = rest.search(/[/?#]/);
  if (pathStart >= 0) rest = rest.slice(0, pathStart);
  return rest === '' ? 'localhost' : rest;
}

// ---------------------------------------------------------------------------------------
// HPACK: decoding through hpack.js (it has the Huffman code and the table bookkeeping),
// encoding with a tiny stateless encoder of our own.

/** One decoded header field; strings hold raw octets as latin1 characters. */
export interface HeaderField {
  name: string;
  value: string;
  /** Sent as "never indexed" (RFC 7541 6.2.3): intermediaries must keep it that way. */
  neverIndex: boolean;
}

interface HpackTableEntry {
  name: string;
  value: string;
  nameSize: number;
}
interface HpackTable {
  lookup(index: number): HpackTableEntry;
  add(name: string, value: string, nameSize: number, valueSize: number): void;
  updateSize(size: number): void;
}
interface HpackDecoder {
  push(chunk: Buffer): void;
  isEmpty(): boolean;
  decodeBit(): number;
  decodeInt(): number;
  /** Octets of a string literal, Huffman-decoded if need be. */
  decodeStr(): ArrayLike<number>;
}
interface HpackModule {
  decoder: { create(): HpackDecoder };
  table: { create(options: { maxSize: number }): HpackTable };
  'static-table': { table: HpackTableEntry[] };
}

// hpack.js ships no types; createRequire lets us give it a narrow interface of our own.
const hpack = createRequire(import.meta.url)('hpack.js') as HpackModule;

/** Static-table index of each header name (first occurrence), for shorter stateless output. */
const STATIC_NAME_INDEX: ReadonlyMap<string, number> = (() => {
  const m = new Map<string, number>();
  hpack['static-table'].table.forEach((e, i) => {
    if (!m.has(e.name)) m.set(e.name, i + 1);
  });
  return m;
})();

function octetsToString(octets: ArrayLike<number>): string {
  if (Buffer.isBuffer(octets)) return octets.toString('latin1');
  let s = '';
  for (let i = 0; i < octets.length; i++) s += String.fromCharCode(octets[i]!);
  return s;
}

/**
 * Decodes header blocks exactly as the server's decoder would, keeping the dynamic table in
 * step with the client's encoder. One instance per connection, blocks in wire order.
 */
export class HpackBlockDecoder {
  private readonly table: HpackTable;
  private readonly maxTableBytes: number;

  /** `headerTableBytes`: the SETTINGS_HEADER_TABLE_SIZE the server advertised. */
  constructor(headerTableBytes = DEFAULT_HEADER_TABLE_BYTES) {
    this.maxTableBytes = headerTableBytes;
    this.table = hpack.table.create({ maxSize: headerTableBytes });
  }

  decode(block: Buffer): HeaderField[] {
    const decoder = hpack.decoder.create();
    if (block.length > 0) decoder.push(block);
    const fields: HeaderField[] = [];
    let decodedBytes = 0;
    try {
      while (!decoder.isEmpty()) {
        const field = this.decodeField(decoder);
        if (field === null) continue;
        decodedBytes += field.name.length + field.value.length + 32;
        if (decodedBytes > MAX_HEADER_BLOCK_BYTES) throw new H2ShimProtocolError(`decoded header list exceeds ${MAX_HEADER_BLOCK_BYTES} bytes`);
        fields.push(field);
      }
    } catch (e) {
      if (e instanceof H2ShimProtocolError) throw e;
      throw new H2ShimProtocolError(`HPACK decoding failed: ${(e as Error).message}`);
    }
    return fields;
  }

  /** One representation (RFC 7541 section 6); null for a dynamic table size update. */
  private decodeField(d: HpackDecoder): HeaderField | null {
    if (d.decodeBit() === 1) {
      const entry = this.table.lookup(d.decodeInt());
      return { name: entry.name, value: entry.value, neverIndex: false };
    }
    const incremental = d.decodeBit() === 1;
    let neverIndex = false;
    if (!incremental) {
      if (d.decodeBit() === 1) {
        const size = d.decodeInt();
        if (size > this.maxTableBytes) throw new H2ShimProtocolError(`table size update ${size} above ${this.maxTableBytes}`);
        this.table.updateSize(size);
        return null;
      }
      neverIndex = d.decodeBit() === 1;
    }
    const nameIndex = d.decodeInt();
    let name: string;
    if (nameIndex === 0) name = octetsToString(d.decodeStr());
    else name = this.table.lookup(nameIndex).name;
    const value = octetsToString(d.decodeStr());
    // Strings are latin1, one char per octet, so lengths are octet counts.
    if (incremental) this.table.add(name, value, name.length, value.length);
    return { name, value, neverIndex };
  }
}

/** Bytes of an HPACK integer with an `prefixBits`-bit prefix (RFC 7541 5.1). */
function hpackIntBytes(value: number, prefixBits: number): number {
  const max = (1 << prefixBits) - 1;
  if (value < max) return 1;
  let n = 2;
  for (let rest = value - max; rest >= 128; rest = Math.floor(rest / 128)) n++;
  return n;
}

function writeHpackInt(out: Buffer, pos: number, value: number, prefixBits: number, firstByteBits: number): number {
  const max = (1 << prefixBits) - 1;
  if (value < max) {
    out[pos++] = firstByteBits | value;
    return pos;
  }
  out[pos++] = firstByteBits | max;
  let rest = value - max;
  while (rest >= 128) {
    out[pos++] = (rest % 128) | 0x80;
    rest = Math.floor(rest / 128);
  }
  out[pos++] = rest;
  return pos;
}

/**
 * Encodes fields with no state: each one "literal without indexing" (or "never indexed"
 * when the client said so), names by static-table index when there is one, no Huffman.
 * Any HPACK decoder reads the result the same way whatever its dynamic table holds.
 */
export function encodeHeaderBlockStateless(fields: readonly HeaderField[]): Buffer {
  let size = 0;
  for (const f of fields) {
    const staticIndex = STATIC_NAME_INDEX.get(f.name);
    size += staticIndex !== undefined ? hpackIntBytes(staticIndex, 4) : 1 + hpackIntBytes(f.name.length, 7) + f.name.length;
    size += hpackIntBytes(f.value.length, 7) + f.value.length;
  }
  const out = Buffer.allocUnsafe(size);
  let pos = 0;
  for (const f of fields) {
    const kindBits = f.neverIndex ? 0x10 : 0x00;
    const staticIndex = STATIC_NAME_INDEX.get(f.name);
    if (staticIndex !== undefined) {
      pos = writeHpackInt(out, pos, staticIndex, 4, kindBits);
    } else {
      out[pos++] = kindBits;
      pos = writeHpackInt(out, pos, f.name.length, 7, 0);
      pos += out.write(f.name, pos, 'latin1');
    }
    pos = writeHpackInt(out, pos, f.value.length, 7, 0);
    pos += out.write(f.value, pos, 'latin1');
  }
  if (pos !== size) throw new Error(`stateless HPACK encoder wrote ${pos} bytes, sized ${size}`);
  return out;
}

/** Cuts URL-shaped `:authority` / `host` values down to host:port, in place; returns how many. */
export function fixAuthority(fields: HeaderField[]): number {
  let fixed = 0;
  for (const f of fields) {
    if ((f.name === ':authority' || f.name === 'host') && f.value.includes('/')) {
      f.value = authorityHostPort(f.value);
      fixed++;
    }
  }
  return fixed;
}

// ---------------------------------------------------------------------------------------
// Frame-level rewriter of the client->server direction

/** A HEADERS frame whose block continues in CONTINUATION frames. */
interface OpenHeaderBlock {
  streamId: number;
  /** END_STREAM and PRIORITY of the HEADERS frame, to repeat on the rewritten one. */
  flags: number;
  priority: Buffer | null;
  fragments: Buffer[];
  fragmentBytes: number;
}

/** A HEADERS or CONTINUATION frame whose payload is being collected. */
interface CollectingFrame {
  type: number;
  flags: number;
  streamId: number;
  payload: Buffer;
  received: number;
  /** Stream offset of the frame (kept for PINGs, which may be removed). */
  offset?: number;
}

export interface ClientStreamRewriterOptions {
  /** Bytes of the client preface still ahead in the stream (24 at the very start, 0 after). */
  prefaceBytes?: number;
  /** SETTINGS_HEADER_TABLE_SIZE the server advertised (the client's encoder table bound). */
  headerTableBytes?: number;
  /** Largest frame payload written toward the server. */
  maxFrameBytes?: number;
  /**
   * SETTINGS ACK frames to remove from the stream: the acknowledgements of SETTINGS frames
   * that the server's HTTP/2 stack never sent (see injectH2Connection).
   */
  dropSettingsAcks?: number;
}

/** A frame removed from the client's stream: where it started and how long it was. */
export interface DroppedFrame {
  offset: number;
  bytes: number;
}

/**
 * Parses the client->server byte stream frame by frame, in whatever pieces it arrives, and
 * returns it with every header block re-encoded statelessly (authority fixed). Chunks that
 * hold no header-block bytes come back as the very same Buffer (no copy).
 */
export class ClientStreamRewriter {
  private prefaceLeft: number;
  private readonly hpackDecoder: HpackBlockDecoder;
  private readonly maxFrameBytes: number;
  private acksToDrop: number;
  /** Frame header bytes seen so far when a header straddles chunks. */
  private readonly heldHeader = Buffer.alloc(FRAME_HEADER_BYTES);
  private heldHeaderBytes = 0;
  /** Payload bytes left of a frame that passes through. */
  private passLeft = 0;
  private collecting: CollectingFrame | null = null;
  private openBlock: OpenHeaderBlock | null = null;
  /** Stream offset of `transform`'s current chunk. */
  private consumedBytes = 0;
  /** Header blocks rewritten so far. */
  headerBlocks = 0;
  /** Authority values that held a URL and were cut down. */
  authorityFixes = 0;
  /** Every frame removed so far (SETTINGS ACKs, answered PINGs), in stream order. */
  readonly droppedFrames: DroppedFrame[] = [];
  /**
   * While set, PING frames are removed from the stream and their payloads queued in
   * `pingsToAnswer`: someone else answers them (injectH2Connection, before the server has
   * the connection). Cleared, later PINGs pass to the server as usual.
   */
  answerPings = false;
  /** Payloads of removed PINGs not yet answered; the answerer empties it. */
  readonly pingsToAnswer: Buffer[] = [];

  constructor(opts: ClientStreamRewriterOptions = {}) {
    this.prefaceLeft = opts.prefaceBytes ?? H2_PREFACE_BYTES;
    this.hpackDecoder = new HpackBlockDecoder(opts.headerTableBytes ?? DEFAULT_HEADER_TABLE_BYTES);
    this.maxFrameBytes = opts.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    if (this.maxFrameBytes < PRIORITY_FIELD_BYTES + 1) throw new Error(`maxFrameBytes ${this.maxFrameBytes} too small`);
    this.acksToDrop = opts.dropSettingsAcks ?? 0;
  }

  /** SETTINGS ACKs still to be removed. */
  get pendingAcksToDrop(): number {
    return this.acksToDrop;
  }

  /**
   * Feeds the next piece of the client's stream; returns what to hand to the server, in
   * order. Throws H2ShimProtocolError when the client broke the protocol.
   */
  transform(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    const end = chunk.length;
    let pos = 0;
    /** Start of the pending pass-through run of `chunk`, or -1. */
    let runStart = -1;
    const flushRun = (runEnd: number) => {
      if (runStart >= 0 && runEnd > runStart) out.push(runStart === 0 && runEnd === end ? chunk : chunk.subarray(runStart, runEnd));
      runStart = -1;
    };
    while (pos < end) {
      if (this.prefaceLeft > 0 || this.passLeft > 0) {
        if (runStart < 0) runStart = pos;
        if (this.prefaceLeft > 0) {
          const n = Math.min(this.prefaceLeft, end - pos);
          this.prefaceLeft -= n;
          pos += n;
        } else {
          const n = Math.min(this.passLeft, end - pos);
          this.passLeft -= n;
          pos += n;
        }
        continue;
      }
      if (this.collecting !== null) {
        const c = this.collecting;
        const n = Math.min(c.payload.length - c.received, end - pos);
        chunk.copy(c.payload, c.received, pos, pos + n);
        c.received += n;
        pos += n;
        this.finishCollectedFrame(out);
        continue;
      }
      // At a frame header.
      if (this.heldHeaderBytes === 0 && end - pos >= FRAME_HEADER_BYTES) {
        const kind = this.startFrame(chunk, pos, this.consumedBytes + pos);
        if (kind === 'pass') {
          if (runStart < 0) runStart = pos;
        } else {
          flushRun(pos);
        }
        pos += FRAME_HEADER_BYTES;
        this.finishCollectedFrame(out); // an empty HEADERS/CONTINUATION payload is complete already
        continue;
      }
      // The header straddles chunks: hold its bytes until it is whole.
      flushRun(pos);
      const n = Math.min(FRAME_HEADER_BYTES - this.heldHeaderBytes, end - pos);
      chunk.copy(this.heldHeader, this.heldHeaderBytes, pos, pos + n);
      this.heldHeaderBytes += n;
      pos += n;
      if (this.heldHeaderBytes === FRAME_HEADER_BYTES) {
        this.heldHeaderBytes = 0;
        const frameOffset = this.consumedBytes + pos - FRAME_HEADER_BYTES;
        if (this.startFrame(this.heldHeader, 0, frameOffset) === 'pass') out.push(Buffer.from(this.heldHeader));
        this.finishCollectedFrame(out);
      }
    }
    flushRun(end);
    this.consumedBytes += end;
    return out;
  }

  /** Reads a frame header at `buf[at]` (stream offset `frameOffset`) and sets up its payload handling. */
  private startFrame(buf: Buffer, at: number, frameOffset: number): 'pass' | 'drop' | 'collect' {
    const length = buf.readUIntBE(at, 3);
    const type = buf[at + 3]!;
    const flags = buf[at + 4]!;
    const streamId = buf.readUInt32BE(at + 5) & STREAM_ID_MASK;
    if (this.openBlock !== null && type !== FRAME_CONTINUATION) {
      throw new H2ShimProtocolError(`frame type ${type} inside the header block of stream ${this.openBlock.streamId}`);
    }
    if (type === FRAME_HEADERS || type === FRAME_CONTINUATION) {
      if (type === FRAME_CONTINUATION && (this.openBlock === null || this.openBlock.streamId !== streamId)) {
        throw new H2ShimProtocolError(`unexpected CONTINUATION on stream ${streamId}`);
      }
      if (length > MAX_HEADER_BLOCK_BYTES) throw new H2ShimProtocolError(`header frame of ${length} bytes`);
      this.collecting = { type, flags, streamId, payload: Buffer.allocUnsafe(length), received: 0 };
      return 'collect';
    }
    if (type === FRAME_SETTINGS && (flags & FLAG_ACK) !== 0 && length === 0 && this.acksToDrop > 0) {
      this.acksToDrop--;
      this.droppedFrames.push({ offset: frameOffset, bytes: FRAME_HEADER_BYTES });
      return 'drop';
    }
    if (type === FRAME_PING && this.answerPings && (flags & FLAG_ACK) === 0 && length === PING_PAYLOAD_BYTES && streamId === 0) {
      this.collecting = { type, flags, streamId, payload: Buffer.allocUnsafe(length), received: 0, offset: frameOffset };
      return 'collect';
    }
    this.passLeft = length;
    return 'pass';
  }

  /** Once the collected frame's payload is whole, processes it and queues any rewritten frames. */
  private finishCollectedFrame(out: Buffer[]): void {
    const c = this.collecting;
    if (c === null || c.received < c.payload.length) return;
    this.collecting = null;
    if (c.type === FRAME_PING) {
      // Whole only now: if answering stopped meanwhile, the PING goes on to the server.
      if (this.answerPings) {
        this.droppedFrames.push({ offset: c.offset ?? 0, bytes: FRAME_HEADER_BYTES + c.payload.length });
        this.pingsToAnswer.push(c.payload);
      } else {
        out.push(pingFrame(c.flags, c.payload));
      }
      return;
    }
    const frames = this.onBlockFrame(c);
    if (frames !== null) out.push(frames);
  }

  /** Handles a whole HEADERS/CONTINUATION payload; returns rewritten frames once the block ends. */
  private onBlockFrame(frame: CollectingFrame): Buffer | null {
    if (frame.type === FRAME_HEADERS) {
      const { priority, fragment } = headersFramePieces(frame.payload, frame.flags, frame.streamId);
      this.openBlock = {
        streamId: frame.streamId,
        flags: frame.flags & (FLAG_END_STREAM | FLAG_PRIORITY),
        priority,
        fragments: [fragment],
        fragmentBytes: fragment.length,
      };
    } else {
      const open = this.openBlock!;
      open.fragments.push(frame.payload);
      open.fragmentBytes += frame.payload.length;
      if (open.fragmentBytes > MAX_HEADER_BLOCK_BYTES) throw new H2ShimProtocolError(`header block exceeds ${MAX_HEADER_BLOCK_BYTES} bytes`);
    }
    if ((frame.flags & FLAG_END_HEADERS) === 0) return null;
    const open = this.openBlock!;
    this.openBlock = null;
    const block = open.fragments.length === 1 ? open.fragments[0]! : Buffer.concat(open.fragments, open.fragmentBytes);
    const fields = this.hpackDecoder.decode(block);
    this.authorityFixes += fixAuthority(fields);
    this.headerBlocks++;
    return headerBlockFrames(open.streamId, open.flags, open.priority, encodeHeaderBlockStateless(fields), this.maxFrameBytes);
  }
}

/** A PING frame (connection stream) with `flags` and its 8-byte `payload`. */
function pingFrame(flags: number, payload: Buffer): Buffer {
  const frame = Buffer.alloc(FRAME_HEADER_BYTES + PING_PAYLOAD_BYTES);
  frame.writeUIntBE(PING_PAYLOAD_BYTES, 0, 3);
  frame[3] = FRAME_PING;
  frame[4] = flags;
  payload.copy(frame, FRAME_HEADER_BYTES);
  return frame;
}

/** The priority field and header block fragment of a HEADERS payload (padding dropped). */
function headersFramePieces(payload: Buffer, flags: number, streamId: number): { priority: Buffer | null; fragment: Buffer } {
  let start = 0;
  let padBytes = 0;
  if ((flags & FLAG_PADDED) !== 0) {
    if (payload.length < 1) throw new H2ShimProtocolError(`padded HEADERS without pad length on stream ${streamId}`);
    padBytes = payload[0]!;
    start = 1;
  }
  let priority: Buffer | null = null;
  if ((flags & FLAG_PRIORITY) !== 0) {
    if (payload.length < start + PRIORITY_FIELD_BYTES) throw new H2ShimProtocolError(`HEADERS too short for its priority on stream ${streamId}`);
    priority = payload.subarray(start, start + PRIORITY_FIELD_BYTES);
    start += PRIORITY_FIELD_BYTES;
  }
  if (start + padBytes > payload.length) throw new H2ShimProtocolError(`HEADERS padding exceeds the payload on stream ${streamId}`);
  return { priority, fragment: payload.subarray(start, payload.length - padBytes) };
}

function writeFrameHeader(out: Buffer, at: number, length: number, type: number, flags: number, streamId: number): void {
  out.writeUIntBE(length, at, 3);
  out[at + 3] = type;
  out[at + 4] = flags;
  out.writeUInt32BE(streamId, at + 5);
}

/**
 * A header block as one HEADERS frame plus as many CONTINUATION frames as `maxFrameBytes`
 * requires, in a single Buffer.
 */
export function headerBlockFrames(streamId: number, flags: number, priority: Buffer | null, block: Buffer, maxFrameBytes: number): Buffer {
  const priorityBytes = priority === null ? 0 : PRIORITY_FIELD_BYTES;
  const firstFragment = Math.min(block.length, maxFrameBytes - priorityBytes);
  const continuations = Math.ceil((block.length - firstFragment) / maxFrameBytes);
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES * (1 + continuations) + priorityBytes + block.length);
  const headersFlags = (flags & (FLAG_END_STREAM | FLAG_PRIORITY)) | (continuations === 0 ? FLAG_END_HEADERS : 0);
  writeFrameHeader(out, 0, priorityBytes + firstFragment, FRAME_HEADERS, headersFlags, streamId);
  let pos = FRAME_HEADER_BYTES;
  if (priority !== null) pos += priority.copy(out, pos);
  pos += block.copy(out, pos, 0, firstFragment);
  for (let sent = firstFragment; sent < block.length; ) {
    const n = Math.min(maxFrameBytes, block.length - sent);
    const last = sent + n === block.length;
    writeFrameHeader(out, pos, n, FRAME_CONTINUATION, last ? FLAG_END_HEADERS : 0, streamId);
    pos += FRAME_HEADER_BYTES;
    pos += block.copy(out, pos, sent, sent + n);
    sent += n;
  }
  if (pos !== out.length) throw new Error(`header block framing wrote ${pos} bytes, sized ${out.length}`);
  return out;
}

// ---------------------------------------------------------------------------------------
// The Duplex handed to the HTTP/2 server in place of the socket

/**
 * Stands in for `socket` in front of Node's HTTP/2 server: what the server reads is the
 * client's stream after `rewriter`, what it writes goes to the socket unchanged. Node wraps
 * any non-socket Duplex in its JSStreamSocket, so this works with `http2Server.emit(
 * 'connection', ...)` and grpc-js's `injectConnection`.
 */
export class AuthorityRewritingSocket extends Duplex {
  readonly socket: net.Socket;
  private readonly rewriter: ClientStreamRewriter;

  /**
   * `rewriter` must be positioned where `socket`'s unread data starts; `rewrittenAhead` is
   * its output for bytes it already consumed (they reach the server first).
   */
  constructor(socket: net.Socket, rewriter: ClientStreamRewriter = new ClientStreamRewriter(), rewrittenAhead: readonly Buffer[] = []) {
    // Same half-close behaviour as the sockets of a default net.Server.
    super({ allowHalfOpen: false });
    this.socket = socket;
    this.rewriter = rewriter;
    for (const b of rewrittenAhead) this.push(b);
    if (socket.readableEnded) this.push(null);
    socket.on('data', (chunk: Buffer) => this.onSocketData(chunk));
    socket.on('end', () => this.push(null));
    socket.on('error', (err) => this.destroy(err));
    socket.on('close', () => this.destroy());
    socket.on('timeout', () => this.emit('timeout'));
    // Flow is driven by _read(): nothing is read before the server asks for it.
    socket.pause();
  }

  private onSocketData(chunk: Buffer): void {
    let pieces: Buffer[];
    try {
      pieces = this.rewriter.transform(chunk);
    } catch (err) {
      this.destroy(err as Error);
      return;
    }
    if (pieces.length === 0) return;
    const data = pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces);
    if (!this.push(data)) this.socket.pause();
  }

  override _read(): void {
    this.socket.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.socket.write(chunk)) callback();
    else this.socket.once('drain', () => callback());
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, callback: (error?: Error | null) => void): void {
    this.socket.cork();
    for (const { chunk } of chunks) this.socket.write(chunk);
    this.socket.uncork();
    if (!this.socket.writableNeedDrain) callback();
    else this.socket.once('drain', () => callback());
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.socket.end();
    callback();
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.socket.destroy(err ?? undefined);
    callback(err);
  }

  setTimeout(timeoutMs: number, onTimeout?: () => void): this {
    this.socket.setTimeout(timeoutMs);
    if (onTimeout) this.once('timeout', onTimeout);
    return this;
  }

  setNoDelay(noDelay?: boolean): this {
    this.socket.setNoDelay(noDelay);
    return this;
  }

  setKeepAlive(enable?: boolean, initialDelayMs?: number): this {
    this.socket.setKeepAlive(enable, initialDelayMs);
    return this;
  }

  address(): ReturnType<net.Socket['address']> {
    return this.socket.address();
  }

  get remoteAddress(): string | undefined {
    return this.socket.remoteAddress;
  }

  get remotePort(): number | undefined {
    return this.socket.remotePort;
  }

  get remoteFamily(): string | undefined {
    return this.socket.remoteFamily;
  }

  get localAddress(): string | undefined {
    return this.socket.localAddress;
  }

  get localPort(): number | undefined {
    return this.socket.localPort;
  }
}

// ---------------------------------------------------------------------------------------
// Choosing per connection: the shim costs. Node then drives the connection through its
// JSStreamSocket instead of the native socket, and every request's headers are re-coded in
// JS. Measured with 32 concurrent unary calls on one connection: +15-20 us of server CPU per
// request (+15-25 %), of which the HPACK work is ~3 us. So only connections that need it
// get it.

/** A SETTINGS frame with no parameters: a valid server connection preface. */
const EMPTY_SETTINGS_FRAME = Buffer.from([0, 0, 0, FRAME_SETTINGS, 0, 0, 0, 0, 0]);
/** Client bytes held while deciding before giving up and taking the shim (which is always right). */
const MAX_DECIDING_BYTES = 256 * 1024;

/** `data` (the client's stream from its start) without the frames the rewriter removed. */
function withoutDroppedFrames(data: Buffer, dropped: readonly DroppedFrame[]): Buffer {
  if (dropped.length === 0) return data;
  const kept: Buffer[] = [];
  let from = 0;
  for (const d of dropped) {
    kept.push(data.subarray(from, d.offset));
    from = d.offset + d.bytes;
  }
  kept.push(data.subarray(from));
  return Buffer.concat(kept);
}

/**
 * Default for H2HandoffOptions.firstRequestWaitMs. Long: etcd's Go client opens a connection
 * to every endpoint at once and may send its first request over some of them seconds later
 * (etcdctl check perf builds 200 clients before its load starts); deciding on a timer gave a
 * fifth of those connections the shim for nothing. Keepalive PINGs are answered meanwhile.
 */
export const DEFAULT_FIRST_REQUEST_WAIT_MS = 30_000;

export type H2HandoffDecision = 'plain' | 'shim';

export interface H2HandoffOptions {
  /**
   * How long to wait for the client's first request and its SETTINGS ACK. A connection
   * still undecided then (an idle client) gets the shim, which is right in every case.
   */
  firstRequestWaitMs?: number;
  /** Told how the connection was handed over and why. */
  onDecision?: (decision: H2HandoffDecision, reason: string) => void;
}

/**
 * Hands an HTTP/2 connection (`socket` paused, its unread data starting at the client
 * preface) to `inject` (e.g. grpc-js's `injectConnection`), through the authority shim only
 * if the client needs it.
 *
 * Whether it does shows in the authority of its first request, and Go's gRPC client uses one
 * authority for every request of a connection. But Go clients send nothing before the
 * server's preface, and Node's HTTP/2 stack, once it has the socket, cannot be bypassed any
 * more. So we answer the preface ourselves with an empty SETTINGS frame, read up to the end
 * of the first request's header block, and decide:
 *  - authority fine: the socket goes to the server untouched, with the bytes read so far put
 *    back, minus the client's ACK of our SETTINGS (the server never sent that frame and
 *    would treat a surplus ACK as a protocol error). The server then sends its own SETTINGS,
 *    which clients accept as a later SETTINGS frame.
 *  - authority holds a URL: the server gets an AuthorityRewritingSocket, which also removes
 *    that ACK whenever it arrives.
 * Until then the client's keepalive PINGs are answered here (and removed from what the
 * server gets), so an idle client keeps its connection. A client that sends no request
 * within `firstRequestWaitMs` gets the shim.
 */
export function injectH2Connection(socket: net.Socket, inject: (connection: Duplex) => void, opts: H2HandoffOptions = {}): void {
  const rewriter = new ClientStreamRewriter({ dropSettingsAcks: 1 });
  rewriter.answerPings = true;
  const answerPings = () => {
    for (const payload of rewriter.pingsToAnswer.splice(0)) socket.write(pingFrame(FLAG_ACK, payload));
  };
  const raw: Buffer[] = [];
  let rawBytes = 0;
  const rewritten: Buffer[] = [];
  let decided = false;

  const decide = (decision: H2HandoffDecision, reason: string) => {
    if (decided) return;
    decided = true;
    clearTimeout(timer);
    socket.removeListener('data', onData);
    socket.removeListener('close', onClose);
    socket.pause();
    if (socket.destroyed) return;
    // PINGs that arrived with the deciding request are answered first; later ones go to the server.
    answerPings();
    rewriter.answerPings = false;
    opts.onDecision?.(decision, reason);
    if (decision === 'shim') {
      const shim = new AuthorityRewritingSocket(socket, rewriter, rewritten);
      inject(shim);
      lendPeerAddress(shim);
      return;
    }
    const untouched = withoutDroppedFrames(Buffer.concat(raw, rawBytes), rewriter.droppedFrames);
    if (untouched.length > 0) socket.unshift(untouched);
    inject(socket);
  };

  const onData = (chunk: Buffer) => {
    raw.push(chunk);
    rawBytes += chunk.length;
    try {
      for (const b of rewriter.transform(chunk)) rewritten.push(b);
    } catch (err) {
      // Broken framing or HPACK: let the server's own HTTP/2 stack judge and answer it.
      decide('plain', `unparsable client stream: ${(err as Error).message}`);
      return;
    }
    answerPings();
    if (rewriter.headerBlocks > 0 && rewriter.pendingAcksToDrop === 0) {
      if (rewriter.authorityFixes > 0) decide('shim', 'first request has a URL as :authority');
      else decide('plain', 'first request has a valid :authority');
    } else if (rawBytes > MAX_DECIDING_BYTES) {
      decide('shim', `no decision after ${rawBytes} bytes`);
    }
  };
  const onClose = () => {
    decided = true;
    clearTimeout(timer);
  };

  const timer = setTimeout(() => decide('shim', 'no request and SETTINGS ACK in time'), opts.firstRequestWaitMs ?? DEFAULT_FIRST_REQUEST_WAIT_MS);
  socket.on('data', onData);
  socket.once('close', onClose);
  socket.write(EMPTY_SETTINGS_FRAME);
  socket.resume();
}

/** The HTTP/2 server a connection was handed to: Node keeps it on the connection under Symbol('server'). */
function http2ServerOf(connection: Duplex): EventEmitter | undefined {
  for (const sym of Object.getOwnPropertySymbols(connection)) {
    if (sym.description !== 'server') continue;
    const value = (connection as unknown as Record<symbol, unknown>)[sym];
    if (value instanceof EventEmitter) return value;
  }
  return undefined;
}

/** What grpc-js sees as a session's socket: a proxy of Node's JSStreamSocket when it wraps the shim. */
interface SessionSocketView {
  stream?: unknown;
  remoteAddress?: string;
  _peername?: { address: string; family?: string; port?: number };
}

/**
 * grpc-js takes a call's peer (`getPeer()`, which tls-identity.ts matches TLS clients by)
 * from the remoteAddress of the session's socket. With the shim that socket is the
 * JSStreamSocket Node wraps around it, which has no address of its own; net.Socket then
 * falls back to its `_peername` field, so we fill that in with the real socket's address
 * when the connection's first stream reaches the server (before grpc-js sees it). Node
 * internals are involved; if they change, calls of shimmed connections report "unknown",
 * as they would without this.
 */
function lendPeerAddress(shim: AuthorityRewritingSocket): void {
  const server = http2ServerOf(shim);
  const address = shim.remoteAddress;
  if (server === undefined || address === undefined) return;
  const peer = { address, family: shim.remoteFamily, port: shim.remotePort };
  let listening = true;
  const stop = () => {
    if (!listening) return;
    listening = false;
    server.removeListener('stream', onStream);
    server.setMaxListeners(Math.max(0, server.getMaxListeners() - 1));
    shim.removeListener('close', stop);
  };
  const onStream = (stream: { session?: { socket?: unknown } }) => {
    try {
      const view = stream.session?.socket as SessionSocketView | undefined;
      if (view?.stream !== shim) return;
      stop();
      if (view.remoteAddress === undefined) view._peername = peer;
    } catch {
      // A session that lost its socket meanwhile: nothing to lend to.
    }
  };
  // One listener per shimmed connection until its first stream: many clients connecting at
  // once is normal here, not a leak, so raise the warning threshold with them.
  server.setMaxListeners(server.getMaxListeners() + 1);
  server.prependListener('stream', onStream);
  shim.once('close', stop);
}
