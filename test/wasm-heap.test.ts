import fc from 'fast-check';
import { expect, it } from 'vitest';
import { WasmHeap } from '../src/kernels/wasm-heap.js';

// The allocator's bookkeeping on random sequences of allocations and frees: blocks never
// overlap, are 16-byte aligned and big enough; freed space is reused; freeing everything brings
// the end back to the base; repeating the same sequence after freeing it reuses the same blocks.

const BASE = 1000; // not aligned: the heap starts at the next multiple of 16

type Step = { kind: 'alloc'; bytes: number } | { kind: 'free'; pick: number };
const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ kind: fc.constant('alloc' as const), bytes: fc.integer({ min: 0, max: 5000 }) }),
  fc.record({ kind: fc.constant('free' as const), pick: fc.nat() }),
);

it('never overlaps, aligns, reuses freed space, and returns to its base when all is freed', () => {
  fc.assert(
    fc.property(fc.array(step, { maxLength: 200 }), (steps) => {
      let reservedEnd = 0;
      const heap = new WasmHeap(BASE, (end) => {
        reservedEnd = Math.max(reservedEnd, end);
      });
      const live = new Map<number, number>(); // start → bytes requested
      for (const s of steps) {
        if (s.kind === 'alloc') {
          const start = heap.allocate(s.bytes);
          expect(start % 16).toBe(0);
          expect(start).toBeGreaterThanOrEqual(1008);
          expect(start + s.bytes).toBeLessThanOrEqual(heap.end);
          expect(heap.end).toBeLessThanOrEqual(reservedEnd);
          for (const [other, bytes] of live) {
            expect(start + Math.max(s.bytes, 1) <= other || other + Math.max(bytes, 1) <= start, `block at ${start} overlaps ${other}`).toBe(true);
          }
          live.set(start, s.bytes);
        } else if (live.size > 0) {
          const starts = [...live.keys()];
          const start = starts[s.pick % starts.length];
          expect(heap.release(start)).toBe(true);
          expect(heap.release(start)).toBe(false); // twice: refused
          live.delete(start);
        }
        // Everything below the end is either allocated or free.
        expect(heap.allocatedBytes + heap.freeBytes).toBe(heap.end - 1008);
      }
      for (const start of live.keys()) heap.release(start);
      expect(heap.end).toBe(1008);
      expect(heap.freeBytes).toBe(0);
    }),
    { numRuns: 300 },
  );
});

it('gives a freed block to the next request of the same size, and reuses the same layout for the same requests', () => {
  const heap = new WasmHeap(0, () => {});
  const sizes = [4096, 64, 1 << 20, 12, 333, 4096];
  const first = sizes.map((b) => heap.allocate(b));
  const keep = heap.allocate(100); // holds the end up, so frees go to the free list
  first.forEach((start) => heap.release(start));
  expect(sizes.map((b) => heap.allocate(b))).toEqual(first);
  expect(heap.allocate(100)).toBeGreaterThan(keep);
});

it('refuses addresses that are not block starts', () => {
  const heap = new WasmHeap(0, () => {});
  const start = heap.allocate(64);
  expect(heap.release(start + 16)).toBe(false);
  expect(heap.owns(start + 16)).toBe(false);
  expect(heap.release(start)).toBe(true);
});
