import { SafetensorsError } from '../errors.js';

/**
 * The safetensors format (https://github.com/huggingface/safetensors):
 *
 *   [8 bytes]  N, little-endian u64: length of the header
 *   [N bytes]  UTF-8 JSON: { "<name>": { "dtype": "F32", "shape": [..], "data_offsets": [begin, end] },
 *                            "__metadata__": { "<key>": "<string>" } }
 *   [rest]     the data area; offsets are relative to its start, tensors are row-major, little-endian.
 *
 * Bytes in, bytes out: safetensors-file.ts reads and writes files.
 * Reading converts every tensor to float32 eagerly (one copy per tensor; the 23 MB DeiT-Tiny file
 * loads in a few milliseconds). The copies never alias the file's bytes, so callers may modify them.
 * Byte order: the data is little-endian and is copied as is into Float32Arrays, which assumes a
 * little-endian host (every platform Node and the browsers run on).
 */

/** Element types we read; all are converted to float32. */
export const SUPPORTED_DTYPES = ['F32', 'F16', 'BF16'] as const;
export type SafetensorsDtype = (typeof SUPPORTED_DTYPES)[number];

const DTYPE_BYTES: Record<SafetensorsDtype, number> = { F32: 4, F16: 2, BF16: 2 };

export interface SafetensorsTensor {
  dtype: SafetensorsDtype; // dtype in the file; `data` is always float32
  shape: number[];
  data: Float32Array; // [product(shape)]
}

export interface SafetensorsFile {
  file: string; // path (or label) used in messages
  metadata: Record<string, string>; // the header's "__metadata__", {} when absent
  tensors: Map<string, SafetensorsTensor>; // in header order
}

/** A tensor to write: data of `shape`, stored as F32, F64 or I32 after its array type. */
export interface TensorToWrite {
  shape: number[];
  data: Float32Array | Float64Array | Int32Array; // [product(shape)]
}

export type TensorsToWrite = Record<string, TensorToWrite> | Map<string, TensorToWrite>;

/** Where a tensor lies in a safetensors file. */
export interface SafetensorsEntry {
  name: string;
  dtype: string; // one of the dtypes the header was parsed for
  shape: number[];
  begin: number; // byte offset in the data area
  end: number;
}

/** A validated header: every tensor's dtype, shape and bytes. */
export interface SafetensorsLayout {
  metadata: Record<string, string>; // the header's "__metadata__", {} when absent
  dataStart: number; // byte offset of the data area in the file
  entries: SafetensorsEntry[]; // in header order
}

/** Parse and validate safetensors bytes into float32 tensors; `file` names the source in messages. */
export function parseSafetensors(bytes: Uint8Array, file: string): SafetensorsFile {
  const { metadata, dataStart, entries } = parseSafetensorsLayout(bytes, file, DTYPE_BYTES);
  const tensors = new Map<string, SafetensorsTensor>();
  for (const e of entries) {
    const raw = bytes.subarray(dataStart + e.begin, dataStart + e.end);
    const dtype = e.dtype as SafetensorsDtype;
    tensors.set(e.name, { dtype, shape: e.shape, data: toFloat32(raw, dtype) });
  }
  return { file, metadata, tensors };
}

/**
 * Parse and validate the header of safetensors bytes, for tensors of the dtypes that
 * `elementBytes` lists (dtype → bytes per element): lengths, offsets, coverage of the data area.
 */
export function parseSafetensorsLayout(bytes: Uint8Array, file: string, elementBytes: Readonly<Record<string, number>>): SafetensorsLayout {
  if (bytes.length < 8) {
    throw new SafetensorsError(`${file}: expected at least 8 bytes (the header length), found ${bytes.length} bytes`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = view.getBigUint64(0, true);
  if (headerLength > BigInt(bytes.length - 8)) {
    throw new SafetensorsError(
      `${file}: header length is ${headerLength} bytes, but only ${bytes.length - 8} bytes follow the 8-byte length (truncated file?)`,
    );
  }
  const dataStart = 8 + Number(headerLength);
  const dataLength = bytes.length - dataStart;

  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, dataStart)));
  } catch (err) {
    throw new SafetensorsError(`${file}: header is not valid UTF-8 JSON (${(err as Error).message})`, { cause: err });
  }
  if (!isPlainObject(header)) {
    throw new SafetensorsError(`${file}: header must be a JSON object, found ${describeJson(header)}`);
  }

  const metadata = parseMetadata(header.__metadata__, file);
  const entries: SafetensorsEntry[] = [];
  for (const [name, value] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    entries.push(parseEntry(name, value, file, dataLength, elementBytes));
  }
  checkCoverage(entries, file, dataLength);
  return { metadata, dataStart, entries };
}

function parseMetadata(value: unknown, file: string): Record<string, string> {
  if (value === undefined) return {};
  if (!isPlainObject(value)) {
    throw new SafetensorsError(`${file}: "__metadata__" must be an object of strings, found ${describeJson(value)}`);
  }
  for (const [key, v] of Object.entries(value)) {
    if (typeof v !== 'string') {
      throw new SafetensorsError(`${file}: "__metadata__"."${key}" must be a string, found ${describeJson(v)}`);
    }
  }
  return value as Record<string, string>;
}

function parseEntry(name: string, value: unknown, file: string, dataLength: number, elementBytes: Readonly<Record<string, number>>): SafetensorsEntry {
  const where = `${file}: tensor "${name}"`;
  if (!isPlainObject(value)) throw new SafetensorsError(`${where}: expected an object {dtype, shape, data_offsets}, found ${describeJson(value)}`);
  const { dtype, shape, data_offsets: offsets } = value;
  if (dtype === undefined || shape === undefined || offsets === undefined) {
    const missing = ['dtype', 'shape', 'data_offsets'].filter((k) => value[k] === undefined);
    throw new SafetensorsError(`${where}: expected fields dtype, shape and data_offsets, missing ${missing.join(', ')}`);
  }
  if (typeof dtype !== 'string' || !Object.hasOwn(elementBytes, dtype)) {
    throw new SafetensorsError(`${where}: unsupported dtype ${describeJson(dtype)}; supported dtypes are ${Object.keys(elementBytes).join(', ')}`);
  }
  if (!Array.isArray(shape) || !shape.every(isNonNegativeInteger)) {
    throw new SafetensorsError(`${where}: shape must be an array of non-negative integers, found ${describeJson(shape)}`);
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isNonNegativeInteger) || offsets[0] > offsets[1]) {
    throw new SafetensorsError(`${where}: data_offsets must be [begin, end] with 0 ≤ begin ≤ end, found ${describeJson(offsets)}`);
  }
  const [begin, end] = offsets as [number, number];
  if (end > dataLength) {
    throw new SafetensorsError(`${where}: data_offsets [${begin}, ${end}] run past the end of the data area (${dataLength} bytes)`);
  }
  const expectedBytes = elementBytes[dtype] * product(shape);
  if (end - begin !== expectedBytes) {
    throw new SafetensorsError(
      `${where}: data_offsets [${begin}, ${end}] span ${end - begin} bytes, expected ${expectedBytes} (${dtype} × shape ${formatShape(shape)})`,
    );
  }
  return { name, dtype, shape: shape as number[], begin, end };
}

/** Tensors must tile the data area exactly: no overlap, no gap, no trailing bytes. */
function checkCoverage(entries: SafetensorsEntry[], file: string, dataLength: number): void {
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let covered = 0; // the data area [0, covered) is tiled by the tensors seen so far
  let previous: SafetensorsEntry | null = null;
  for (const e of sorted) {
    if (e.begin < covered) {
      throw new SafetensorsError(`${file}: tensors "${previous!.name}" [${previous!.begin}, ${previous!.end}] and "${e.name}" [${e.begin}, ${e.end}] overlap`);
    }
    if (e.begin > covered) {
      throw new SafetensorsError(`${file}: bytes [${covered}, ${e.begin}) of the data area belong to no tensor (before tensor "${e.name}")`);
    }
    covered = e.end;
    previous = e;
  }
  if (covered !== dataLength) {
    throw new SafetensorsError(`${file}: the tensors cover ${covered} bytes of the data area, but it holds ${dataLength} bytes (trailing bytes)`);
  }
}

function toFloat32(raw: Uint8Array, dtype: SafetensorsDtype): Float32Array {
  const count = raw.length / DTYPE_BYTES[dtype];
  const out = new Float32Array(count);
  if (dtype === 'F32') {
    new Uint8Array(out.buffer).set(raw);
    return out;
  }
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  if (dtype === 'BF16') {
    // bfloat16 is the top half of a float32: shift the 16 bits into place.
    const bits = new Uint32Array(out.buffer);
    for (let i = 0; i < count; i++) bits[i] = view.getUint16(2 * i, true) << 16;
    return out;
  }
  for (let i = 0; i < count; i++) out[i] = float16ToNumber(view.getUint16(2 * i, true));
  return out;
}

/** IEEE 754 binary16 bits → number: sign, 5 exponent bits (bias 15), 10 mantissa bits. */
export function float16ToNumber(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24; // zero and subnormals: 0.m × 2^-14
  if (exponent === 0x1f) return mantissa === 0 ? sign * Infinity : NaN;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

/**
 * The bytes of a safetensors file (F32, F64 or I32 tensors after their array types). The header
 * keeps the given tensor order, and is padded with spaces to a multiple of 8 bytes so that the
 * data area starts 8-byte aligned.
 */
export function serializeSafetensors(tensors: TensorsToWrite, metadata?: Record<string, string>): Uint8Array {
  const entries = tensors instanceof Map ? [...tensors] : Object.entries(tensors);
  const header: Record<string, unknown> = {};
  if (metadata !== undefined) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, t] of entries) {
    if (name === '__metadata__') throw new SafetensorsError('cannot write a tensor named "__metadata__" (reserved for the metadata)');
    if (!t.shape.every(isNonNegativeInteger) || t.data.length !== product(t.shape)) {
      throw new SafetensorsError(`cannot write tensor "${name}": shape ${formatShape(t.shape)} needs ${product(t.shape)} values, found ${t.data.length}`);
    }
    header[name] = { dtype: dtypeOf(t.data), shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const headerLength = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + headerLength + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLength), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + headerLength); // spaces
  let position = 8 + headerLength;
  for (const [, t] of entries) {
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), position);
    position += t.data.byteLength;
  }
  return out;
}

/** The safetensors dtype of an array type. */
function dtypeOf(data: TensorToWrite['data']): 'F32' | 'F64' | 'I32' {
  if (data instanceof Float64Array) return 'F64';
  return data instanceof Int32Array ? 'I32' : 'F32';
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isNonNegativeInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function product(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function formatShape(shape: readonly unknown[]): string {
  return `[${shape.join(', ')}]`;
}

function describeJson(value: unknown): string {
  const text = JSON.stringify(value);
  if (text === undefined) return String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}
