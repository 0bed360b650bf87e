/**
 * PIL-compatible resampling (Pillow ≥ 7, `Image.resize` with BICUBIC or BILINEAR, no box, no
 * reducing_gap), reproducing libImaging/Resample.c on 8-bit RGB:
 *
 * - separable: a horizontal pass (when the width changes) then a vertical pass (when the height
 *   changes), each rounding to uint8;
 * - for output pixel i the source centre is (i + 0.5) · scale with scale = inSize / outSize;
 *   the kernel is stretched by max(scale, 1) (antialiasing when shrinking), so its support is
 *   filterSupport · max(scale, 1); taps run over [trunc(centre − support + 0.5),
 *   trunc(centre + support + 0.5)) clipped to the image, with weights
 *   filter((x − centre + 0.5) / max(scale, 1)) normalised to sum 1;
 * - weights become fixed point with PRECISION_BITS = 32 − 8 − 2 = 22 fractional bits (rounded
 *   half away from zero), the accumulator starts at 2^21 (rounding) and the result is clipped to
 *   0..255.
 *
 * Filters: bicubic = Keys cubic with a = −0.5 (support 2); bilinear = triangle (support 1).
 */
import { createRgbImage, type RgbImage } from './rgb-image.js';

export type ResampleFilter = 'bicubic' | 'bilinear';

const PRECISION_BITS = 32 - 8 - 2;
const ROUNDING = 1 << (PRECISION_BITS - 1);
const OVERFLOW = 1 << (PRECISION_BITS + 8); // 255.5+ in fixed point → 255

interface Filter {
  support: number;
  weight(x: number): number;
}

const BICUBIC_A = -0.5;

const FILTERS: Record<ResampleFilter, Filter> = {
  bicubic: {
    support: 2,
    weight(x: number): number {
      const a = BICUBIC_A;
      if (x < 0) x = -x;
      if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
      if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
      return 0;
    },
  },
  bilinear: {
    support: 1,
    weight(x: number): number {
      if (x < 0) x = -x;
      return x < 1 ? 1 - x : 0;
    },
  },
};

/** Per output pixel: the first source index, the tap count and the fixed-point weights. */
export interface ResampleCoefficients {
  tapsPerOutput: number; // ksize: row length of `weights`
  first: Int32Array; // [outSize] first source index
  count: Int32Array; // [outSize] number of taps used
  weights: Int32Array; // [outSize, tapsPerOutput] weights · 2^22, rounded
}

/** PIL's precompute_coeffs + normalize_coeffs_8bpc for one axis. */
export function resampleCoefficients(inSize: number, outSize: number, filterName: ResampleFilter): ResampleCoefficients {
  const filter = FILTERS[filterName];
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = filter.support * filterScale;
  const tapsPerOutput = Math.ceil(support) * 2 + 1;
  const first = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Int32Array(outSize * tapsPerOutput);
  const taps = new Float64Array(tapsPerOutput);
  const inverseScale = 1 / filterScale;
  for (let i = 0; i < outSize; i++) {
    const center = (i + 0.5) * scale;
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const n = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    let sum = 0;
    for (let x = 0; x < n; x++) {
      const w = filter.weight((x + xmin - center + 0.5) * inverseScale);
      taps[x] = w;
      sum += w;
    }
    for (let x = 0; x < n; x++) {
      const w = sum !== 0 ? taps[x] / sum : taps[x];
      weights[i * tapsPerOutput + x] = w < 0 ? Math.trunc(-0.5 + w * (1 << PRECISION_BITS)) : Math.trunc(0.5 + w * (1 << PRECISION_BITS));
    }
    first[i] = xmin;
    count[i] = Math.max(n, 0);
  }
  return { tapsPerOutput, first, count, weights };
}

const clip8 = (sum: number): number => (sum >= OVERFLOW ? 255 : sum <= 0 ? 0 : sum >> PRECISION_BITS);

/** Resizes an RGB image to width × height exactly as PIL's `Image.resize(size, filter)`. */
export function resizePil(image: RgbImage, width: number, height: number, filter: ResampleFilter): RgbImage {
  if (!(Number.isInteger(width) && Number.isInteger(height) && width > 0 && height > 0)) {
    throw new RangeError(`resizePil: expected positive integer size, found ${width}×${height}`);
  }
  let current = image;
  if (width !== image.width) current = resampleHorizontal(current, width, resampleCoefficients(image.width, width, filter));
  if (height !== image.height) current = resampleVertical(current, height, resampleCoefficients(image.height, height, filter));
  if (current === image) current = { width, height, data: image.data.slice() };
  return current;
}

function resampleHorizontal(image: RgbImage, width: number, coefficients: ResampleCoefficients): RgbImage {
  const out = createRgbImage(width, image.height);
  const { first, count, weights, tapsPerOutput } = coefficients;
  const src = image.data;
  const dst = out.data;
  const rowStride = image.width * 3;
  for (let y = 0; y < image.height; y++) {
    const row = y * rowStride;
    let o = y * width * 3;
    for (let x = 0; x < width; x++, o += 3) {
      let r = ROUNDING;
      let g = ROUNDING;
      let b = ROUNDING;
      const k = x * tapsPerOutput;
      let s = row + first[x] * 3;
      for (let t = 0; t < count[x]; t++, s += 3) {
        const w = weights[k + t];
        r += src[s] * w;
        g += src[s + 1] * w;
        b += src[s + 2] * w;
      }
      dst[o] = clip8(r);
      dst[o + 1] = clip8(g);
      dst[o + 2] = clip8(b);
    }
  }
  return out;
}

function resampleVertical(image: RgbImage, height: number, coefficients: ResampleCoefficients): RgbImage {
  const out = createRgbImage(image.width, height);
  const { first, count, weights, tapsPerOutput } = coefficients;
  const src = image.data;
  const dst = out.data;
  const rowStride = image.width * 3;
  for (let y = 0; y < height; y++) {
    const k = y * tapsPerOutput;
    const base = first[y] * rowStride;
    const taps = count[y];
    let o = y * rowStride;
    for (let i = 0; i < rowStride; i++, o++) {
      let sum = ROUNDING;
      let s = base + i;
      for (let t = 0; t < taps; t++, s += rowStride) sum += src[s] * weights[k + t];
      dst[o] = clip8(sum);
    }
  }
  return out;
}
