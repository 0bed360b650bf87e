import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SafetensorsError } from '../src/errors.js';
import { float16ToNumber, parseSafetensors, parseSafetensorsLayout, serializeSafetensors } from '../src/model/safetensors.js';
import { readSafetensors, writeSafetensors } from '../src/model/safetensors-file.js';
import { describeWithData, SHARED_DATA } from './shared-data.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'vitprune-safetensors-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A safetensors file from a header (object or raw text) and a data area. */
function fileBytes(header: unknown, data: Uint8Array = new Uint8Array(0), headerLength?: number): Uint8Array {
  const json = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLength ?? json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

function expectError(bytes: Uint8Array, ...patterns: RegExp[]): void {
  let error: unknown;
  try {
    parseSafetensors(bytes, 'weights/test.safetensors');
  } catch (err) {
    error = err;
  }
  expect(error).toBeInstanceOf(SafetensorsError);
  const message = (error as Error).message;
  expect(message).toContain('weights/test.safetensors');
  for (const pattern of patterns) expect(message).toMatch(pattern);
}

const f32 = (values: number[]) => new Uint8Array(Float32Array.from(values).buffer);

describe('parseSafetensors validation', () => {
  it('rejects an empty file and a file shorter than the 8-byte length', () => {
    expectError(new Uint8Array(0), /at least 8 bytes/, /found 0 bytes/);
    expectError(new Uint8Array(5), /at least 8 bytes/, /found 5 bytes/);
  });

  it('rejects a header length larger than the file', () => {
    expectError(fileBytes({}, new Uint8Array(0), 1000), /header length is 1000 bytes/, /only 2 bytes follow/);
    expectError(fileBytes({}, new Uint8Array(0), 2 ** 53), /header length/);
  });

  it('rejects a header that is not JSON, or not an object', () => {
    expectError(fileBytes('{"a": '), /not valid UTF-8 JSON/);
    expectError(fileBytes(''), /not valid UTF-8 JSON/);
    expectError(fileBytes('[1, 2]'), /must be a JSON object/, /\[1,2\]/);
    expectError(fileBytes('null'), /must be a JSON object/);
  });

  it('rejects entries without dtype, shape or data_offsets', () => {
    expectError(fileBytes({ w: { shape: [1], data_offsets: [0, 4] } }, f32([1])), /tensor "w"/, /missing dtype/);
    expectError(fileBytes({ w: { dtype: 'F32', data_offsets: [0, 4] } }, f32([1])), /tensor "w"/, /missing shape/);
    expectError(fileBytes({ w: { dtype: 'F32', shape: [1] } }, f32([1])), /tensor "w"/, /missing data_offsets/);
    expectError(fileBytes({ w: 3 }), /tensor "w"/, /expected an object/);
  });

  it('rejects an unknown dtype and says which are supported', () => {
    expectError(fileBytes({ ids: { dtype: 'I64', shape: [1], data_offsets: [0, 8] } }, new Uint8Array(8)), /tensor "ids"/, /"I64"/, /F32, F16, BF16/);
  });

  it('rejects malformed shapes and offsets', () => {
    expectError(fileBytes({ w: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, f32([1])), /tensor "w"/, /non-negative integers/);
    expectError(fileBytes({ w: { dtype: 'F32', shape: [1], data_offsets: [4, 0] } }, f32([1])), /tensor "w"/, /begin ≤ end/);
    expectError(fileBytes({ w: { dtype: 'F32', shape: [1], data_offsets: [0] } }, f32([1])), /tensor "w"/, /\[begin, end\]/);
  });

  it('rejects offsets outside the data area', () => {
    expectError(fileBytes({ w: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, f32([1])), /tensor "w"/, /\[0, 8\]/, /data area \(4 bytes\)/);
  });

  it('rejects offsets that do not match dtype size × shape', () => {
    expectError(
      fileBytes({ w: { dtype: 'F32', shape: [2, 3], data_offsets: [0, 8] } }, f32([1, 2])),
      /tensor "w"/,
      /span 8 bytes, expected 24/,
      /F32 × shape \[2, 3\]/,
    );
    expectError(fileBytes({ h: { dtype: 'F16', shape: [3], data_offsets: [0, 4] } }, new Uint8Array(4)), /tensor "h"/, /expected 6/);
  });

  it('rejects overlapping tensors, gaps and trailing bytes', () => {
    const overlap = { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } };
    expectError(fileBytes(overlap, f32([1, 2, 3])), /"a" \[0, 8\]/, /"b" \[4, 12\]/, /overlap/);
    const gap = { a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] }, b: { dtype: 'F32', shape: [1], data_offsets: [8, 12] } };
    expectError(fileBytes(gap, f32([1, 2, 3])), /bytes \[4, 8\)/, /tensor "b"/);
    expectError(fileBytes({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, f32([1, 2])), /cover 4 bytes/, /holds 8 bytes/);
  });

  it('rejects metadata that is not an object of strings', () => {
    expectError(fileBytes({ __metadata__: { n: 3 } }), /"__metadata__"\."n" must be a string/);
    expectError(fileBytes({ __metadata__: [] }), /"__metadata__" must be an object/);
  });

  it('accepts an empty file (no tensors), scalars and zero-sized tensors', () => {
    expect(parseSafetensors(fileBytes({}), 'x').tensors.size).toBe(0);
    const header = {
      scalar: { dtype: 'F32', shape: [], data_offsets: [0, 4] },
      empty: { dtype: 'F32', shape: [0, 5], data_offsets: [4, 4] },
    };
    const file = parseSafetensors(fileBytes(header, f32([7])), 'x');
    expect(Array.from(file.tensors.get('scalar')!.data)).toEqual([7]);
    expect(file.tensors.get('empty')!.shape).toEqual([0, 5]);
    expect(file.tensors.get('empty')!.data.length).toBe(0);
  });
});

describe('dtype conversion', () => {
  it('converts F16, including subnormals, infinities, NaN and signed zero', () => {
    const cases: [number, number][] = [
      [0x3c00, 1],
      [0xc000, -2],
      [0x3555, 0.333251953125],
      [0x7bff, 65504], // largest finite
      [0x0400, 2 ** -14], // smallest normal
      [0x0001, 2 ** -24], // smallest subnormal
      [0x03ff, 1023 * 2 ** -24], // largest subnormal
      [0x8001, -(2 ** -24)],
      [0x7c00, Infinity],
      [0xfc00, -Infinity],
      [0x0000, 0],
    ];
    for (const [bits, value] of cases) expect(float16ToNumber(bits)).toBe(value);
    expect(Object.is(float16ToNumber(0x8000), -0)).toBe(true);
    expect(float16ToNumber(0x7e00)).toBeNaN();
    expect(float16ToNumber(0x7c01)).toBeNaN();

    const bits = Uint16Array.from(cases.map(([b]) => b));
    const file = parseSafetensors(
      fileBytes({ h: { dtype: 'F16', shape: [cases.length], data_offsets: [0, bits.byteLength] } }, new Uint8Array(bits.buffer)),
      'x',
    );
    const h = file.tensors.get('h')!;
    expect(h.dtype).toBe('F16');
    expect(Array.from(h.data)).toEqual(cases.map(([, v]) => Math.fround(v)));
  });

  it('converts BF16 (the top half of a float32)', () => {
    const bits = Uint16Array.from([0x3f80, 0xc040, 0x4049, 0x7f80, 0xff80, 0x0001, 0x8000, 0x7fc0]);
    const file = parseSafetensors(fileBytes({ b: { dtype: 'BF16', shape: [2, 4], data_offsets: [0, 16] } }, new Uint8Array(bits.buffer)), 'x');
    const data = file.tensors.get('b')!.data;
    expect(Array.from(data.subarray(0, 6))).toEqual([1, -3, 3.140625, Infinity, -Infinity, 2 ** -133]);
    expect(Object.is(data[6], -0)).toBe(true);
    expect(data[7]).toBeNaN();
  });
});

describe('serializeSafetensors / writeSafetensors', () => {
  const tensors = {
    'blocks.0.w': { shape: [2, 3], data: Float32Array.from([1, -2, 3.5, 0, -0, 1e-40]) },
    bias: { shape: [3], data: Float32Array.from([NaN, Infinity, -7]) },
    scalar: { shape: [], data: Float32Array.from([42]) },
  };

  it('round-trips names, order, shapes, metadata and bits', () => {
    const bytes = serializeSafetensors(tensors, { format: 'pt', note: 'ünïcode' });
    const file = parseSafetensors(bytes, 'x');
    expect(file.metadata).toEqual({ format: 'pt', note: 'ünïcode' });
    expect([...file.tensors.keys()]).toEqual(Object.keys(tensors));
    for (const [name, t] of Object.entries(tensors)) {
      const read = file.tensors.get(name)!;
      expect(read.dtype).toBe('F32');
      expect(read.shape).toEqual(t.shape);
      expect(new Uint8Array(read.data.buffer)).toEqual(new Uint8Array(t.data.buffer));
    }
  });

  it('pads the header with spaces to a multiple of 8 and lays tensors out in order', () => {
    const bytes = serializeSafetensors(tensors);
    const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect(headerLength % 8).toBe(0);
    const headerText = new TextDecoder().decode(bytes.subarray(8, 8 + headerLength));
    expect(headerText.trimEnd().endsWith('}')).toBe(true);
    expect(headerText.slice(headerText.trimEnd().length)).toMatch(/^ *$/);
    const header = JSON.parse(headerText);
    expect(header.__metadata__).toBeUndefined();
    expect(header['blocks.0.w']).toEqual({ dtype: 'F32', shape: [2, 3], data_offsets: [0, 24] });
    expect(header.bias.data_offsets).toEqual([24, 36]);
    expect(header.scalar.data_offsets).toEqual([36, 40]);
    expect(bytes.length).toBe(8 + headerLength + 40);
  });

  it('accepts a Map, including a parsed file, and subarray views', () => {
    const backing = Float32Array.from([9, 1, 2, 3, 9]);
    const bytes = serializeSafetensors(new Map([['v', { shape: [3], data: backing.subarray(1, 4) }]]));
    const again = serializeSafetensors(parseSafetensors(bytes, 'x').tensors);
    expect(Array.from(parseSafetensors(again, 'x').tensors.get('v')!.data)).toEqual([1, 2, 3]);
  });

  it('refuses data whose length does not match the shape', () => {
    expect(() => serializeSafetensors({ w: { shape: [2, 2], data: new Float32Array(3) } })).toThrow(/tensor "w": shape \[2, 2\] needs 4 values, found 3/);
  });

  it('writes atomically: the complete file, no temporary left behind, replacing an old file', () => {
    const dir = mkdtempSync(path.join(tmp, 'write-'));
    const file = path.join(dir, 'model.safetensors');
    writeFileSync(file, 'old contents');
    writeSafetensors(file, tensors, { format: 'pt' });
    expect(readdirSync(dir)).toEqual(['model.safetensors']);
    const read = readSafetensors(file);
    expect(read.file).toBe(file);
    expect(read.metadata).toEqual({ format: 'pt' });
    expect(Array.from(read.tensors.get('blocks.0.w')!.data)).toEqual(Array.from(tensors['blocks.0.w'].data));
    expect(readFileSync(file)).toEqual(Buffer.from(serializeSafetensors(tensors, { format: 'pt' })));
  });

  it('leaves nothing behind when the write fails', () => {
    const dir = mkdtempSync(path.join(tmp, 'fail-'));
    expect(() => writeSafetensors(path.join(dir, 'missing-subdir', 'x.safetensors'), tensors)).toThrow(/ENOENT/);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('writes F64 and I32 tensors after their array types; parseSafetensorsLayout reads them for the dtypes asked', () => {
    const bytes = serializeSafetensors({
      wide: { shape: [2], data: Float64Array.from([1 + 2 ** -40, -0.1]) },
      ids: { shape: [3], data: Int32Array.from([0, -1, 2 ** 31 - 1]) },
      narrow: { shape: [1], data: Float32Array.from([0.5]) },
    });
    const layout = parseSafetensorsLayout(bytes, 'x', { F64: 8, I32: 4, F32: 4 });
    expect(layout.entries.map((e) => [e.name, e.dtype, e.begin, e.end])).toEqual([
      ['wide', 'F64', 0, 16],
      ['ids', 'I32', 16, 28],
      ['narrow', 'F32', 28, 32],
    ]);
    const at = (name: string) => bytes.slice(layout.dataStart + layout.entries.find((e) => e.name === name)!.begin);
    expect(new Float64Array(at('wide').buffer, 0, 2)).toEqual(Float64Array.from([1 + 2 ** -40, -0.1]));
    expect(new Int32Array(at('ids').buffer, 0, 3)).toEqual(Int32Array.from([0, -1, 2 ** 31 - 1]));
    expect(() => parseSafetensors(bytes, 'weights/test.safetensors')).toThrow(/tensor "wide": unsupported dtype "F64"; supported dtypes are F32, F16, BF16/);
    expect(() => parseSafetensorsLayout(bytes, 'x', { F64: 8, F32: 4 })).toThrow(/tensor "ids": unsupported dtype "I32"; supported dtypes are F64, F32/);
  });

  it('readSafetensors names a missing file', () => {
    const missing = path.join(tmp, 'nope.safetensors');
    expect(() => readSafetensors(missing)).toThrow(SafetensorsError);
    expect(() => readSafetensors(missing)).toThrow(missing);
  });
});

describeWithData('real safetensors files', () => {
  const file = path.join(SHARED_DATA, 'deit-tiny', 'model.safetensors');

  it('reads DeiT-Tiny (23 MB) in under 200 ms', () => {
    let best = Infinity;
    for (let i = 0; i < 3; i++) {
      const start = performance.now();
      readSafetensors(file);
      best = Math.min(best, performance.now() - start);
    }
    expect(best).toBeLessThan(200);
  });

  it('has the documented tensors and parameter count', () => {
    const st = readSafetensors(file);
    expect(st.metadata.architecture).toBe('deit_tiny_patch16_224');
    expect(st.tensors.get('blocks.0.attn.qkv.weight')!.shape).toEqual([576, 192]);
    const params = [...st.tensors.values()].reduce((sum, t) => sum + t.data.length, 0);
    expect(params).toBe(5_717_416);
    expect(String(params)).toBe(st.metadata.num_params);
  });

  it('reads the golden references', () => {
    const golden = readSafetensors(path.join(SHARED_DATA, 'deit-tiny', 'golden_reference.safetensors'));
    expect(golden.tensors.get('sample0.hidden_states')!.shape).toEqual([12, 197, 192]);
    expect(golden.tensors.get('sample0.logits')!.data.length).toBe(1000);
  });
});
