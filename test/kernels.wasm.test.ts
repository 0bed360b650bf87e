import { describe, expect, it } from 'vitest';
import { createReferenceKernels } from '../src/kernels/reference.js';
import { createWasmKernels, relaxedSimdSupported } from '../src/kernels/wasm.js';
import { WasmBackendError } from '../src/errors.js';

// The wasm backend's memory handling: views from `alloc` outlive memory growth, foreign or short
// buffers are refused, and the build is chosen by what the engine supports.

const linear = {
  weight: Float32Array.from({ length: 6 * 5 }, (_, i) => Math.sin(i)),
  bias: Float32Array.from({ length: 6 }, (_, i) => i / 10),
  outFeatures: 6,
  inFeatures: 5,
};

describe('wasm backend', () => {
  it('auto-selects relaxed SIMD on this engine (Node 20 behind a V8 flag it switches on)', async () => {
    expect(await relaxedSimdSupported()).toBe(true);
    const kernels = await createWasmKernels();
    expect(kernels.variant).toBe('relaxed');
    expect(kernels.name).toBe('wasm-relaxed');
  });

  it('keeps earlier views valid when the memory grows', async () => {
    const kernels = await createWasmKernels({ variant: 'simd' });
    const x = kernels.upload(Float32Array.from({ length: 3 * 5 }, (_, i) => i - 7));
    const w = kernels.prepareLinear(linear);
    const pagesBefore = kernels.memory.buffer.byteLength / 65536;
    const big = kernels.alloc(4 << 20); // 16 MiB: forces memory.grow
    expect(kernels.memory.buffer.byteLength / 65536).toBeGreaterThan(pagesBefore);
    expect(big.length).toBe(4 << 20);
    expect(x.length).toBe(15);
    expect(Array.from(x.subarray(0, 3))).toEqual([-7, -6, -5]);

    const out = kernels.alloc(3 * 6);
    kernels.linear(x, 3, w, out);
    const reference = createReferenceKernels();
    const expected = new Float32Array(3 * 6);
    reference.linear(Float32Array.from(x), 3, reference.prepareLinear(linear), expected);
    for (let i = 0; i < expected.length; i++) expect(out[i]).toBeCloseTo(expected[i], 5);
  });

  it('hands out zeroed, 16-byte aligned buffers', async () => {
    const kernels = await createWasmKernels({ variant: 'simd' });
    kernels.prepareLinear(linear); // leaves a temporary copy of the weight past the allocator's top
    for (const length of [1, 3, 30, 1000]) {
      const buf = kernels.alloc(length);
      expect(buf.byteOffset % 16).toBe(0);
      expect(buf.every((v) => v === 0)).toBe(true);
    }
  });

  it('refuses buffers and layers from elsewhere, and buffers too short for the shapes', async () => {
    const kernels = await createWasmKernels({ variant: 'simd' });
    const other = await createWasmKernels({ variant: 'simd' });
    const x = kernels.alloc(2 * 5);
    const out = kernels.alloc(2 * 6);
    const w = kernels.prepareLinear(linear);
    expect(() => kernels.linear(new Float32Array(10), 2, w, out)).toThrow(WasmBackendError);
    expect(() => kernels.linear(other.alloc(10), 2, w, out)).toThrow(/outside its memory/);
    expect(() => kernels.linear(x, 2, other.prepareLinear(linear), out)).toThrow(WasmBackendError);
    expect(() => kernels.linear(x, 3, w, out)).toThrow(/at least 15 floats, got 10/);
    expect(() => kernels.softmax(x, 3, 4)).toThrow(WasmBackendError);
    expect(() => kernels.gelu(x.subarray(1), 10)).toThrow(WasmBackendError);
    expect(() => kernels.attention(x, 2, 1, 2, 2, 1, null, kernels.alloc(1), kernels.alloc(1))).toThrow(/attention qkv/);
    expect(() => kernels.prepareLinear({ ...linear, outFeatures: 7 })).toThrow(/weight \[7, 5\]/);
  });
});
