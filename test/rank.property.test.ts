import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { rankDescending, rankedRange } from '../src/prune/rank.js';

describe('rankDescending', () => {
  it('orders as the comparator (p, q) => v[q] − v[p] || p − q: any count, ties, ±0, ±∞ (property)', () => {
    const value = fc.oneof(fc.constantFrom(0, -0, 1, -1, Infinity, -Infinity, 0.5), fc.double({ noNaN: true }));
    fc.assert(
      fc.property(fc.array(value, { maxLength: 300 }), fc.nat(), (values, shift) => {
        const count = values.length;
        const indices = Int32Array.from({ length: count }, (_, k) => (k + shift) % count); // any starting order
        const expected = Array.from(indices).sort((p, q) => {
          if (values[p] > values[q]) return -1;
          if (values[p] < values[q]) return 1;
          return p - q;
        });
        rankDescending(values, indices, count);
        expect(Array.from(indices)).toEqual(expected);
      }),
      { numRuns: 300 },
    );
  });

  it('ranks a range of indices, and sorts only the first count entries', () => {
    expect(Array.from(rankedRange([5, 1, 3, 3, 9], 1, 5))).toEqual([4, 2, 3, 1]);
    const indices = Int32Array.of(0, 1, 2, 3);
    rankDescending([1, 2, 3, 4], indices, 2);
    expect(Array.from(indices)).toEqual([1, 0, 2, 3]);
  });
});
