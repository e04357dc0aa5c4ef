import protobuf from 'protobufjs';
import Long from 'long';
import type { Msg } from '../server/pb.js';

// The JSON mapping of etcd's gRPC gateway (grpc-gateway v1 with golang/protobuf's jsonpb,
// OrigName on): proto field names (lowerCamelCase names accepted on input), bytes as
// standard base64, 64-bit integers as strings (numbers or strings accepted on input),
// enums by name (names or numbers accepted), proto3 default values omitted, unknown input
// fields ignored. Input is parsed with a parser of our own because JSON.parse would round
// 64-bit numbers (lease and member IDs) to doubles. Error texts follow Go's where clients
// might see them.

export class JsonSyntaxError extends Error {}
/** The input ended inside a value. */
export class JsonIncomplete extends Error {
  constructor() {
    super('unexpected EOF');
  }
}
/** A JSON value that cannot be converted to the request message (grpc-gateway: InvalidArgument). */
export class JsonMappingError extends Error {}

/** A number kept as its source text. */
export class JsonNumber {
  constructor(readonly text: string) {}
}

export type JsonValue = null | boolean | string | JsonNumber | JsonValue[] | { [key: string]: JsonValue };

function isObject(v: JsonValue): v is { [key: string]: JsonValue } {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof JsonNumber);
}

function quoteChar(c: string): string {
  if (c === "'") return "'\\''";
  if (c === '"') return "'\"'";
  const code = c.charCodeAt(0);
  if (code < 0x20) return `'\\x${code.toString(16).padStart(2, '0')}'`;
  return `'${c}'`;
}

// ---------------------------------------------------------------- parser

const WS = new Set([' ', '\t', '\n', '\r']);

class Parser {
  i = 0;
  constructor(private readonly s: string) {}

  private fail(context: string): never {
    if (this.i >= this.s.length) throw new JsonIncomplete();
    throw new JsonSyntaxError(`invalid character ${quoteChar(this.s[this.i]!)} ${context}`);
  }

  skipWs(): void {
    while (this.i < this.s.length && WS.has(this.s[this.i]!)) this.i++;
  }

  value(): JsonValue {
    this.skipWs();
    const c = this.s[this.i];
    switch (c) {
      case '{':
        return this.object();
      case '[':
        return this.array();
      case '"':
        return this.string();
      case 't':
        return this.literal('true', true);
      case 'f':
        return this.literal('false', false);
      case 'n':
        return this.literal('null', null);
      default:
        if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) return this.number();
        return this.fail('looking for beginning of value');
    }
  }

  private literal<T extends JsonValue>(word: string, v: T): T {
    for (let k = 0; k < word.length; k++, this.i++) {
      if (this.s[this.i] !== word[k]) this.fail(`in literal ${word} (expecting ${quoteChar(word[k]!)})`);
    }
    return v;
  }

  private number(): JsonNumber {
    const start = this.i;
    const digits = () => {
      const from = this.i;
      while (this.i < this.s.length && this.s[this.i]! >= '0' && this.s[this.i]! <= '9') this.i++;
      return this.i - from;
    };
    if (this.s[this.i] === '-') this.i++;
    if (this.s[this.i] === '0') this.i++;
    else if (digits() === 0) this.fail('in numeric literal');
    if (this.s[this.i] === '.') {
      this.i++;
      if (digits() === 0) this.fail('after decimal point in numeric literal');
    }
    if (this.s[this.i] === 'e' || this.s[this.i] === 'E') {
      this.i++;
      if (this.s[this.i] === '+' || this.s[this.i] === '-') this.i++;
      if (digits() === 0) this.fail('in exponent of numeric literal');
    }
    // A number at the very end of the input may continue in the next chunk.
    if (this.i >= this.s.length) throw new JsonIncomplete();
    return new JsonNumber(this.s.slice(start, this.i));
  }

  private string(): string {
    this.i++; // opening quote
    let out = '';
    let runStart = this.i;
    for (;;) {
      if (this.i >= this.s.length) throw new JsonIncomplete();
      const c = this.s[this.i]!;
      if (c === '"') {
        out += this.s.slice(runStart, this.i);
        this.i++;
        return out;
      }
      if (c.charCodeAt(0) < 0x20) this.fail('in string literal');
      if (c !== '\\') {
        this.i++;
        continue;
      }
      out += this.s.slice(runStart, this.i);
      this.i++;
      if (this.i >= this.s.length) throw new JsonIncomplete();
      const e = this.s[this.i]!;
      const simple: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };
      if (e in simple) {
        out += simple[e];
        this.i++;
      } else if (e === 'u') {
        this.i++;
        const hex = this.s.slice(this.i, this.i + 4);
        for (let k = 0; k < 4; k++) {
          const h = this.s[this.i + k];
          if (h === undefined) throw new JsonIncomplete();
          if (!/[0-9a-fA-F]/.test(h)) {
            this.i += k;
            this.fail('in \\u hexadecimal character escape');
          }
        }
        out += String.fromCharCode(parseInt(hex, 16));
        this.i += 4;
      } else this.fail('in string escape code');
      runStart = this.i;
    }
  }

  private object(): { [key: string]: JsonValue } {
    this.i++;
    const out: { [key: string]: JsonValue } = Object.create(null) as { [key: string]: JsonValue };
    this.skipWs();
    if (this.s[this.i] === '}') {
      this.i++;
      return out;
    }
    for (;;) {
      this.skipWs();
      if (this.s[this.i] !== '"') this.fail('looking for beginning of object key string');
      const key = this.string();
      this.skipWs();
      if (this.s[this.i] !== ':') this.fail('after object key');
      this.i++;
      out[key] = this.value();
      this.skipWs();
      const c = this.s[this.i];
      if (c === ',') {
        this.i++;
        continue;
      }
      if (c === '}') {
        this.i++;
        return out;
      }
      this.fail('after object key:value pair');
    }
  }

  private array(): JsonValue[] {
    this.i++;
    const out: JsonValue[] = [];
    this.skipWs();
    if (this.s[this.i] === ']') {
      this.i++;
      return out;
    }
    for (;;) {
      out.push(this.value());
      this.skipWs();
      const c = this.s[this.i];
      if (c === ',') {
        this.i++;
        continue;
      }
      if (c === ']') {
        this.i++;
        return out;
      }
      this.fail('after array element');
    }
  }
}

/**
 * Splits a stream of concatenated JSON values (what Go's json.Decoder reads from a request
 * body) into complete values. `push` returns the values completed by a chunk; `finish`
 * returns what is left at the end of the body. Throws JsonSyntaxError on bad input and
 * JsonTooLarge when one value outgrows `maxValueChars`. A cheap bracket scan finds where a
 * value ends, so a large value arriving in many chunks is parsed once.
 */
export class JsonStreamDecoder {
  private buf = '';
  private scanPos = 0;
  private depth = 0;
  private inString = false;
  private escaped = false;
  /** The first decoding error; values after it are not decoded. */
  error: Error | null = null;

  constructor(private readonly maxValueChars: number) {}

  push(chunk: string): JsonValue[] {
    const out: JsonValue[] = [];
    if (this.error) return out;
    this.buf += chunk;
    try {
      this.drain(out);
    } catch (e) {
      this.error = e as Error;
    }
    return out;
  }

  /** The end of the body: a pending scalar is complete now; an unfinished value is an error. */
  finish(): JsonValue[] {
    const rest = this.buf;
    this.buf = '';
    this.resetScan();
    if (this.error || rest.trim() === '') return [];
    try {
      return [new Parser(rest + ' ').value()];
    } catch (e) {
      this.error = e as Error;
      return [];
    }
  }

  private drain(out: JsonValue[]): void {
    for (;;) {
      const lead = this.buf.search(/[^ \t\n\r]/);
      if (lead < 0) {
        this.buf = '';
        this.resetScan();
        return;
      }
      if (lead > 0) {
        this.buf = this.buf.slice(lead);
        this.scanPos = Math.max(0, this.scanPos - lead);
      }
      const first = this.buf[0]!;
      const container = first === '{' || first === '[' || first === '"';
      if (container && this.scanEnd() < 0) {
        if (this.buf.length > this.maxValueChars) throw new JsonTooLarge(this.buf.length);
        return;
      }
      const p = new Parser(this.buf);
      try {
        out.push(p.value());
      } catch (e) {
        if (e instanceof JsonIncomplete && !container) return; // a scalar may continue
        throw e;
      }
      this.buf = this.buf.slice(p.i);
      this.resetScan();
    }
  }

  private resetScan(): void {
    this.scanPos = 0;
    this.depth = 0;
    this.inString = false;
    this.escaped = false;
  }

  /** Index just past the first complete top-level container/string in buf, or -1. */
  private scanEnd(): number {
    const s = this.buf;
    for (let i = this.scanPos; i < s.length; i++) {
      const c = s[i]!;
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (c === '\\') this.escaped = true;
        else if (c === '"') {
          this.inString = false;
          if (this.depth === 0) return i + 1;
        }
      } else if (c === '"') this.inString = true;
      else if (c === '{' || c === '[') this.depth++;
      else if (c === '}' || c === ']') {
        this.depth--;
        if (this.depth <= 0) return i + 1;
      }
    }
    this.scanPos = s.length;
    return -1;
  }
}

export class JsonTooLarge extends Error {
  constructor(readonly chars: number) {
    super(`request body too large (${chars} characters)`);
  }
}

// ---------------------------------------------------------------- JSON -> protobuf

function kindOf(v: JsonValue): string {
  if (v === null) return 'null';
  if (typeof v === 'boolean') return 'bool';
  if (typeof v === 'string') return 'string';
  if (v instanceof JsonNumber) return 'number';
  if (Array.isArray(v)) return 'array';
  return 'object';
}

function lowerCamel(name: string): string {
  return name.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
}

/** Go's type name of an enum (package.Outer_Inner), as jsonpb reports it. */
function goEnumName(e: protobuf.Enum): string {
  const parts = e.fullName.replace(/^\./, '').split('.');
  let pkgEnd = 0;
  for (let ns: protobuf.ReflectionObject | null = e.parent; ns; ns = ns.parent) {
    if (ns instanceof protobuf.Type) pkgEnd++;
  }
  const pkgParts = parts.slice(0, parts.length - 1 - pkgEnd);
  return `${pkgParts.join('.')}.${parts.slice(parts.length - 1 - pkgEnd).join('_')}`;
}

const B64 = /^[A-Za-z0-9+/]*$/;

/** Go's base64.StdEncoding.DecodeString (padding required, CR/LF ignored). */
export function decodeBase64Std(s: string): Buffer {
  const t = s.replace(/[\r\n]/g, '');
  const body = t.replace(/={1,2}$/, '');
  for (let i = 0; i < body.length; i++) {
    if (!B64.test(body[i]!)) throw new JsonMappingError(`illegal base64 data at input byte ${i}`);
  }
  if (t.length % 4 !== 0 || body.length % 4 === 1) {
    throw new JsonMappingError(`illegal base64 data at input byte ${Math.min(t.length, body.length - (body.length % 4))}`);
  }
  return Buffer.from(t, 'base64');
}

const INT64_TYPES = new Set(['int64', 'sint64', 'sfixed64', 'uint64', 'fixed64']);
const INT32_TYPES = new Set(['int32', 'sint32', 'sfixed32', 'uint32', 'fixed32']);
const UNSIGNED = new Set(['uint64', 'fixed64', 'uint32', 'fixed32']);

/** jsonpb: numeric fields take a number or a quoted number. */
function numericText(v: JsonValue, goType: string): string {
  if (v instanceof JsonNumber) return v.text;
  if (typeof v === 'string') {
    if (!/^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$/.test(v)) {
      const c = v.length > 0 ? v[0]! : '"';
      throw new JsonMappingError(v.length > 0 ? `invalid character ${quoteChar(c)} looking for beginning of value` : 'unexpected end of JSON input');
    }
    return v;
  }
  throw new JsonMappingError(`json: cannot unmarshal ${kindOf(v)} into Go value of type ${goType}`);
}

function integerValue(v: JsonValue, type: string): number | Long {
  const goType = type.startsWith('u') || type.startsWith('fixed') ? `uint${type.endsWith('64') ? 64 : 32}` : `int${type.endsWith('64') ? 64 : 32}`;
  const text = numericText(v, goType);
  if (!/^-?[0-9]+$/.test(text)) throw new JsonMappingError(`json: cannot unmarshal number ${text} into Go value of type ${goType}`);
  const n = BigInt(text);
  const bits = INT64_TYPES.has(type) ? 64n : 32n;
  const unsigned = UNSIGNED.has(type);
  const min = unsigned ? 0n : -(1n << (bits - 1n));
  const max = unsigned ? (1n << bits) - 1n : (1n << (bits - 1n)) - 1n;
  if (n < min || n > max) throw new JsonMappingError(`json: cannot unmarshal number ${text} into Go value of type ${goType}`);
  if (bits === 32n) return Number(n);
  return Long.fromString(n.toString(), unsigned);
}

function scalarFromJson(field: protobuf.Field, v: JsonValue): unknown {
  const t = field.type;
  if (t === 'bytes') {
    if (typeof v !== 'string') throw new JsonMappingError(`json: cannot unmarshal ${kindOf(v)} into Go value of type []uint8`);
    return decodeBase64Std(v);
  }
  if (t === 'string') {
    if (typeof v !== 'string') throw new JsonMappingError(`json: cannot unmarshal ${kindOf(v)} into Go value of type string`);
    return v;
  }
  if (t === 'bool') {
    if (typeof v !== 'boolean') throw new JsonMappingError(`json: cannot unmarshal ${kindOf(v)} into Go value of type bool`);
    return v;
  }
  if (INT64_TYPES.has(t) || INT32_TYPES.has(t)) return integerValue(v, t);
  if (t === 'double' || t === 'float') return Number(numericText(v, t === 'double' ? 'float64' : 'float32'));
  throw new JsonMappingError(`unsupported field type ${t}`);
}

function enumFromJson(e: protobuf.Enum, v: JsonValue): number {
  if (typeof v === 'string') {
    const n = e.values[v];
    if (n === undefined) throw new JsonMappingError(`unknown value "${v}" for enum ${goEnumName(e)}`);
    return n;
  }
  if (v instanceof JsonNumber && /^-?[0-9]+$/.test(v.text)) return Number(v.text);
  throw new JsonMappingError(`unknown value ${kindOf(v) === 'number' ? (v as JsonNumber).text : JSON.stringify(v)} for enum ${goEnumName(e)}`);
}

function fieldValueFromJson(field: protobuf.Field, v: JsonValue): unknown {
  const rt = field.resolvedType;
  if (rt instanceof protobuf.Type) return messageFromJson(rt, v);
  if (rt instanceof protobuf.Enum) return enumFromJson(rt, v);
  return scalarFromJson(field, v);
}

const fieldIndex = new WeakMap<protobuf.Type, Map<string, protobuf.Field>>();

function fieldsByJsonKey(type: protobuf.Type): Map<string, protobuf.Field> {
  let m = fieldIndex.get(type);
  if (!m) {
    m = new Map();
    for (const f of type.fieldsArray) {
      f.resolve();
      m.set(lowerCamel(f.name), f);
    }
    for (const f of type.fieldsArray) m.set(f.name, f); // proto names win
    fieldIndex.set(type, m);
  }
  return m;
}

/** A JSON request body (already parsed) -> a plain object protobufjs can encode as `type`. */
export function messageFromJson(type: protobuf.Type, v: JsonValue): Msg {
  if (v === null) return {};
  if (!isObject(v)) throw new JsonMappingError(`json: cannot unmarshal ${kindOf(v)} into Go value of type map[string]json.RawMessage`);
  const fields = fieldsByJsonKey(type);
  const out: Msg = {};
  for (const [key, raw] of Object.entries(v)) {
    const field = fields.get(key);
    if (!field || raw === null) continue; // unknown fields are ignored, null leaves the default
    if (field.map) throw new JsonMappingError(`map fields are not supported (${type.name}.${field.name})`);
    if (field.repeated) {
      if (!Array.isArray(raw)) throw new JsonMappingError(`json: cannot unmarshal ${kindOf(raw)} into Go value of type []json.RawMessage`);
      out[field.name] = raw.map((item) => fieldValueFromJson(field, item));
    } else out[field.name] = fieldValueFromJson(field, raw);
  }
  return out;
}

// ---------------------------------------------------------------- protobuf -> JSON

function isDefaultScalar(v: unknown): boolean {
  if (v === 0 || v === false || v === '') return true;
  if (Long.isLong(v)) return (v as Long).isZero();
  // bytes: a Buffer, or protobufjs's prototype default for an absent field (an empty array)
  if (v instanceof Uint8Array || Array.isArray(v)) return v.length === 0;
  return false;
}

function scalarToJson(field: protobuf.Field, v: unknown): unknown {
  const t = field.type;
  if (t === 'bytes') return Buffer.from(v as Uint8Array).toString('base64');
  if (INT64_TYPES.has(t)) return Long.isLong(v) ? (v as Long).toString() : String(v);
  if ((t === 'double' || t === 'float') && typeof v === 'number' && !Number.isFinite(v)) return Number.isNaN(v) ? 'NaN' : v > 0 ? 'Infinity' : '-Infinity';
  return v;
}

function valueToJson(field: protobuf.Field, v: unknown): unknown {
  const rt = field.resolvedType;
  if (rt instanceof protobuf.Type) return messageToJson(rt, v as Msg);
  if (rt instanceof protobuf.Enum) return rt.valuesById[v as number] ?? v;
  return scalarToJson(field, v);
}

/** A decoded message -> the object jsonpb would write (proto names, defaults omitted). */
export function messageToJson(type: protobuf.Type, msg: Msg): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const field of type.fieldsArray) {
    field.resolve();
    const v = msg[field.name];
    if (v === null || v === undefined) continue;
    // protobufjs gives absent oneof members prototype defaults: only a set member counts.
    if (field.partOf && !Object.prototype.hasOwnProperty.call(msg, field.name)) continue;
    if (field.repeated) {
      if ((v as unknown[]).length === 0) continue;
      out[field.name] = (v as unknown[]).map((item) => valueToJson(field, item));
      continue;
    }
    // A set oneof member is written even with a zero value; plain proto3 zeros are not.
    if (!(field.resolvedType instanceof protobuf.Type) && !field.partOf && isDefaultScalar(v)) continue;
    out[field.name] = valueToJson(field, v);
  }
  return out;
}

/** JSON text as Go's encoder writes it (HTML-safe escapes of <, >, &, U+2028, U+2029). */
export function goJson(v: unknown): string {
  return JSON.stringify(v).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
