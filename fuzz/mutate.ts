/**
 * Deterministic mutations of seed files: bit flips, byte edits, truncations, splices, range
 * deletion/duplication/insertion, and format-aware header edits (sizes, lengths, offsets) with
 * the large declared sizes that decompression bombs use. Every mutation is a function of a
 * seeded PRNG, so an input is reproduced from (seed, target, index) alone.
 */
import { crc32 } from '../src/image/png.js';

/** mulberry32: a small, fast, seeded PRNG. */
export class Random {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Integer in [0, n). */
  below(n: number): number {
    return Math.floor(this.next() * n);
  }

  pick<T>(items: readonly T[]): T {
    return items[this.below(items.length)];
  }
}

/** A seed for input `index` of `target` in a run seeded with `seed`. */
export function inputSeed(seed: number, target: string, index: number): number {
  let h = (seed ^ 0x9e3779b9) >>> 0;
  for (const c of `${target}:${index}`) h = Math.imul(h ^ c.charCodeAt(0), 0x01000193) >>> 0;
  return h;
}

/** Values that break parsers: zero, one, sign and size boundaries. */
export const INTERESTING_BYTES = [0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff];
export const INTERESTING_U16 = [0, 1, 2, 255, 256, 0x7fff, 0x8000, 0xfffe, 0xffff];
export const INTERESTING_U32 = [0, 1, 2, 0xff, 0xffff, 0x10000, 65535, 100_000, 1_000_000, 0x7fffffff, 0x80000000, 0xffffffff];

export interface Mutated {
  bytes: Uint8Array;
  what: string[]; // the mutations applied, for reports
}

export type Mutator = (bytes: Uint8Array, random: Random, seeds: readonly Uint8Array[]) => { bytes: Uint8Array; what: string };

export const bitFlips: Mutator = (bytes, random) => {
  const out = Uint8Array.from(bytes);
  const flips = 1 + random.below(8);
  for (let i = 0; i < flips && out.length > 0; i++) out[random.below(out.length)] ^= 1 << random.below(8);
  return { bytes: out, what: `${flips} bit flip(s)` };
};

export const byteEdits: Mutator = (bytes, random) => {
  const out = Uint8Array.from(bytes);
  const edits = 1 + random.below(4);
  for (let i = 0; i < edits && out.length > 0; i++) out[random.below(out.length)] = random.next() < 0.7 ? random.pick(INTERESTING_BYTES) : random.below(256);
  return { bytes: out, what: `${edits} byte edit(s)` };
};

export const truncation: Mutator = (bytes, random) => {
  // Half the cuts near the end, where a file missing its tail ends.
  const cut = random.next() < 0.5 ? random.below(bytes.length + 1) : Math.max(0, bytes.length - 1 - random.below(Math.min(bytes.length, 64)));
  return { bytes: bytes.slice(0, cut), what: `truncated to ${cut} of ${bytes.length} bytes` };
};

export const splice: Mutator = (bytes, random, seeds) => {
  const other = random.pick(seeds);
  const a = random.below(bytes.length + 1);
  const b = random.below(other.length + 1);
  const out = new Uint8Array(a + other.length - b);
  out.set(bytes.subarray(0, a), 0);
  out.set(other.subarray(b), a);
  return { bytes: out, what: `splice: first ${a} bytes + another seed from byte ${b}` };
};

export const rangeEdit: Mutator = (bytes, random) => {
  const from = random.below(bytes.length + 1);
  const length = Math.min(bytes.length - from, 1 + random.below(64));
  const kind = random.below(3);
  if (kind === 0) {
    const out = new Uint8Array(bytes.length - length);
    out.set(bytes.subarray(0, from), 0);
    out.set(bytes.subarray(from + length), from);
    return { bytes: out, what: `deleted ${length} bytes at ${from}` };
  }
  const inserted = kind === 1 ? bytes.slice(from, from + length) : Uint8Array.from({ length: 1 + random.below(64) }, () => random.below(256));
  const out = new Uint8Array(bytes.length + inserted.length);
  out.set(bytes.subarray(0, from), 0);
  out.set(inserted, from);
  out.set(bytes.subarray(from), from + inserted.length);
  return { bytes: out, what: `${kind === 1 ? 'duplicated' : 'inserted'} ${inserted.length} bytes at ${from}` };
};

export const GENERIC_MUTATORS: Mutator[] = [bitFlips, byteEdits, truncation, splice, rangeEdit];

/** 1–3 mutations, chosen from `mutators`, applied in turn to a seed chosen at random. */
export function mutate(seeds: readonly Uint8Array[], mutators: readonly Mutator[], random: Random): Mutated {
  let bytes = random.pick(seeds);
  const what: string[] = [];
  const count = 1 + random.below(3);
  for (let i = 0; i < count; i++) {
    const step = random.pick(mutators)(bytes, random, seeds);
    bytes = step.bytes;
    what.push(step.what);
  }
  return { bytes, what };
}

// ---------------------------------------------------------------------------------------------
// Format-aware edits

/** The PNG chunks of a file: offset of each length field, declared length, type. */
function pngChunks(bytes: Uint8Array): { at: number; length: number; type: string }[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const chunks = [];
  for (let at = 8; at + 12 <= bytes.length; ) {
    const length = view.getUint32(at);
    chunks.push({ at, length, type: String.fromCharCode(...bytes.subarray(at + 4, at + 8)) });
    if (at + 12 + length > bytes.length) break;
    at += 12 + length;
  }
  return chunks;
}

/** PNG: IHDR fields set to large or invalid values (CRC recomputed, so the edit is what is tested), or a chunk length lied about. */
export const pngHeaderEdit: Mutator = (bytes, random) => {
  const out = Uint8Array.from(bytes);
  const view = new DataView(out.buffer);
  const chunks = pngChunks(out);
  const ihdr = chunks.find((c) => c.type === 'IHDR' && c.length === 13 && c.at + 25 <= out.length);
  if (!ihdr || random.next() < 0.25) {
    const chunk = chunks.length ? random.pick(chunks) : undefined;
    if (!chunk) return { bytes: out, what: 'no chunk to edit' };
    const length = random.pick(INTERESTING_U32);
    view.setUint32(chunk.at, length);
    return { bytes: out, what: `${chunk.type} length → ${length}` };
  }
  const field = random.below(4);
  const data = ihdr.at + 8;
  let what: string;
  if (field === 0) {
    const [width, height] = random.pick([
      [random.pick(INTERESTING_U32), view.getUint32(data + 4)],
      [view.getUint32(data), random.pick(INTERESTING_U32)],
      [65535, 65535],
      [89_478_485, 1],
      [1, 89_478_485],
      [9459, 9459],
      [random.pick(INTERESTING_U32), random.pick(INTERESTING_U32)],
    ]);
    view.setUint32(data, width);
    view.setUint32(data + 4, height);
    what = `IHDR size → ${width}×${height}`;
  } else if (field === 1) {
    out[data + 8] = random.pick([1, 2, 4, 8, 16, 0, 3, 32]);
    what = `IHDR bit depth → ${out[data + 8]}`;
  } else if (field === 2) {
    out[data + 9] = random.pick([0, 2, 3, 4, 6, 1, 7]);
    what = `IHDR colour type → ${out[data + 9]}`;
  } else {
    out[data + 12] = random.pick([0, 1, 2]);
    what = `IHDR interlace → ${out[data + 12]}`;
  }
  view.setUint32(data + 13, crc32(out.subarray(ihdr.at + 4, data + 13)));
  return { bytes: out, what };
};

/** JPEG: a marker segment's length, a frame's size, component count or sampling, a table id, set to edge values. */
export const jpegHeaderEdit: Mutator = (bytes, random) => {
  const out = Uint8Array.from(bytes);
  const view = new DataView(out.buffer);
  const markers: { at: number; code: number }[] = [];
  for (let i = 2; i + 3 < out.length; i++) {
    if (out[i] !== 0xff || out[i + 1] === 0x00 || out[i + 1] === 0xff || (out[i + 1] >= 0xd0 && out[i + 1] <= 0xd9)) continue;
    markers.push({ at: i, code: out[i + 1] });
    if (out[i + 1] === 0xda) break; // scan data follows
  }
  if (markers.length === 0) return { bytes: out, what: 'no marker to edit' };
  const sof = markers.find((m) => m.code >= 0xc0 && m.code <= 0xcf && m.code !== 0xc4 && m.code !== 0xc8 && m.code !== 0xcc);
  if (sof && sof.at + 10 < out.length && random.next() < 0.6) {
    const kind = random.below(4);
    if (kind === 0) {
      const height = random.pick(INTERESTING_U16);
      const width = random.pick(INTERESTING_U16);
      view.setUint16(sof.at + 5, height);
      view.setUint16(sof.at + 7, width);
      return { bytes: out, what: `SOF size → ${width}×${height}` };
    }
    if (kind === 1) {
      out[sof.at + 9] = random.pick([0, 1, 2, 3, 4, 5, 255]);
      return { bytes: out, what: `SOF component count → ${out[sof.at + 9]}` };
    }
    if (kind === 2 && sof.at + 11 < out.length) {
      out[sof.at + 11] = random.pick([0x00, 0x11, 0x22, 0x44, 0x41, 0x14, 0xff, 0x0f, 0xf0]);
      return { bytes: out, what: `SOF first sampling factors → ${out[sof.at + 11].toString(16)}` };
    }
    out[sof.at + 4] = random.pick([8, 12, 16, 0, 255]);
    return { bytes: out, what: `SOF precision → ${out[sof.at + 4]}` };
  }
  const marker = random.pick(markers);
  if (random.next() < 0.5) {
    const length = random.pick(INTERESTING_U16);
    view.setUint16(marker.at + 2, length);
    return { bytes: out, what: `FF ${marker.code.toString(16)} length → ${length}` };
  }
  const at = marker.at + 4 + random.below(8);
  if (at < out.length) out[at] = random.pick([...INTERESTING_BYTES, 0x10, 0x11, 0x04, 0x03]);
  return { bytes: out, what: `FF ${marker.code.toString(16)} field at +${at - marker.at} edited` };
};

/** safetensors: the header length, or a number inside the header JSON (offsets, shape), set to a large or wrong value. */
export const safetensorsHeaderEdit: Mutator = (bytes, random) => {
  const out = Uint8Array.from(bytes);
  const view = new DataView(out.buffer);
  if (out.length < 8 || random.next() < 0.3) {
    const value = random.pick([0n, 1n, 2n ** 31n, 2n ** 32n, 2n ** 53n, 2n ** 63n, 2n ** 64n - 1n, 100_000_000n]);
    if (out.length >= 8) view.setBigUint64(0, value, true);
    return { bytes: out, what: `header length → ${value}` };
  }
  const headerLength = Number(view.getBigUint64(0, true));
  const header = new TextDecoder().decode(out.subarray(8, Math.min(out.length, 8 + headerLength)));
  const numbers = [...header.matchAll(/\d+/g)];
  if (numbers.length === 0) return { bytes: out, what: 'no number in the header' };
  const target = random.pick(numbers);
  const replacement = String(random.pick([0, 1, 7, 2 ** 31, 2 ** 32, 2 ** 53, 1e20, 99999999999]));
  const edited = header.slice(0, target.index) + replacement + header.slice(target.index! + target[0].length);
  const encoded = new TextEncoder().encode(edited);
  const result = new Uint8Array(8 + encoded.length + Math.max(0, out.length - 8 - headerLength));
  new DataView(result.buffer).setBigUint64(0, BigInt(random.next() < 0.8 ? encoded.length : headerLength), true);
  result.set(encoded, 8);
  result.set(out.subarray(8 + headerLength), 8 + encoded.length);
  return { bytes: result, what: `header number ${target[0]} → ${replacement}` };
};

const JSON_VALUES: unknown[] = [0, -1, 1, 0.5, 1e-300, 1e300, 2 ** 53, -(2 ** 31), 3.5, '', 'x', 'NaN', true, false, null, [], {}, [0, 0, 0], [1e300, 1, 1], [3, 0, 0]];

/** JSON text: one value (found by walking the parsed document) replaced, deleted or duplicated into a long array. */
export const jsonEdit: Mutator = (bytes, random) => {
  let doc: unknown;
  try {
    doc = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return bitFlips(bytes, random, []);
  }
  const slots: { parent: Record<string, unknown> | unknown[]; key: string | number; path: string }[] = [];
  const walk = (value: unknown, path: string) => {
    if (Array.isArray(value)) value.forEach((v, i) => (slots.push({ parent: value, key: i, path: `${path}[${i}]` }), walk(v, `${path}[${i}]`)));
    else if (value && typeof value === 'object') {
      for (const [k, v] of Object.entries(value)) {
        slots.push({ parent: value as Record<string, unknown>, key: k, path: `${path}.${k}` });
        walk(v, `${path}.${k}`);
      }
    }
  };
  walk(doc, '$');
  if (slots.length === 0) return { bytes: new TextEncoder().encode(JSON.stringify(random.pick(JSON_VALUES))), what: 'document replaced' };
  const slot = random.pick(slots);
  const container = slot.parent as Record<string | number, unknown>;
  const kind = random.below(4);
  let what: string;
  if (kind === 0 && !Array.isArray(slot.parent)) {
    delete container[slot.key];
    what = `deleted ${slot.path}`;
  } else if (kind === 1) {
    container[slot.key] = Array.from({ length: 1 + random.below(2000) }, () => random.pick(JSON_VALUES));
    what = `${slot.path} → a long array`;
  } else {
    const value = random.pick(JSON_VALUES);
    container[slot.key] = value;
    what = `${slot.path} → ${JSON.stringify(value)}`;
  }
  return { bytes: new TextEncoder().encode(JSON.stringify(doc)), what };
};
