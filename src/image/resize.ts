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
 *
 * Each output pixel depends only on its own coefficients, so `resizePilRegion` computes a
 * rectangle of the resized image alone — the same bytes, at a cost bounded by the rectangle
 * (and by the source pixels its filter taps read), whatever the full output size.
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

/** Per output pixel (of outputs from…to − 1): the first source index, the tap count and the fixed-point weights. */
export interface ResampleCoefficients {
  tapsPerOutput: number; // ksize: row length of `weights`
  first: Int32Array; // [to − from] first source index
  count: Int32Array; // [to − from] number of taps used
  weights: Int32Array; // [to − from, tapsPerOutput] weights · 2^22, rounded
}

/** PIL's precompute_coeffs + normalize_coeffs_8bpc for one axis, for outputs from…to − 1 (default all). */
export function resampleCoefficients(inSize: number, outSize: number, filterName: ResampleFilter, from = 0, to = outSize): ResampleCoefficients {
  const filter = FILTERS[filterName];
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = filter.support * filterScale;
  const tapsPerOutput = Math.ceil(support) * 2 + 1;
  const first = new Int32Array(to - from);
  const count = new Int32Array(to - from);
  const weights = new Int32Array((to - from) * tapsPerOutput);
  const taps = new Float64Array(tapsPerOutput);
  const inverseScale = 1 / filterScale;
  for (let i = 0; i < to - from; i++) {
    const center = (from + i + 0.5) * scale;
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
  return resizePilRegion(image, width, height, filter, { left: 0, top: 0, width, height });
}

/** A rectangle of an image, in its pixels. */
export interface Region {
  left: number;
  top: number;
  width: number;
  height: number;
}

/**
 * The `region` of `resizePil(image, width, height, filter)`, bit for bit, computing only that
 * region: the horizontal pass runs for the region's columns on just the source rows that the
 * vertical pass reads for the region's rows.
 */
export function resizePilRegion(
  image: RgbImage,
  width: number,
  height: number,
  filter: ResampleFilter,
  region: Region,
): RgbImage /* [region.height, region.width, 3] */ {
  if (!(Number.isSafeInteger(width) && Number.isSafeInteger(height) && width > 0 && height > 0)) {
    throw new RangeError(`resizePil: expected positive integer size, found ${width}×${height}`);
  }
  const { left, top } = region;
  const right = left + region.width;
  const bottom = top + region.height;
  if (
    !(Number.isSafeInteger(left) && Number.isSafeInteger(top) && left >= 0 && top >= 0 && right > left && bottom > top && right <= width && bottom <= height)
  ) {
    throw new RangeError(`resizePilRegion: expected a non-empty region inside ${width}×${height}, found ${region.width}×${region.height} at (${left}, ${top})`);
  }
  const rows = height !== image.height ? resampleCoefficients(image.height, height, filter, top, bottom) : null;
  // Source rows [rowsFrom, rowsTo) that the vertical pass reads (the region's own rows without one).
  let rowsFrom = top;
  let rowsTo = bottom;
  if (rows) {
    rowsFrom = rows.first[0];
    rowsTo = rows.first[0];
    for (let i = 0; i < rows.first.length; i++) rowsTo = Math.max(rowsTo, rows.first[i] + rows.count[i]);
  }
  const columns = width !== image.width ? resampleCoefficients(image.width, width, filter, left, right) : null;
  const band = columns
    ? resampleHorizontal(image, rowsFrom, rowsTo, columns)
    : copyRegion(image, { left, top: rowsFrom, width: right - left, height: rowsTo - rowsFrom });
  return rows ? resampleVertical(band, rowsFrom, rows) : band;
}

/** The pixels of `region` as an image of their own. */
function copyRegion(image: RgbImage, region: Region): RgbImage {
  const out = createRgbImage(region.width, region.height);
  for (let y = 0; y < region.height; y++) {
    const src = ((region.top + y) * image.width + region.left) * 3;
    out.data.set(image.data.subarray(src, src + region.width * 3), y * region.width * 3);
  }
  return out;
}

/** Source rows rowsFrom…rowsTo − 1, resampled to the output columns of `coefficients`. */
function resampleHorizontal(image: RgbImage, rowsFrom: number, rowsTo: number, coefficients: ResampleCoefficients): RgbImage {
  const { first, count, weights, tapsPerOutput } = coefficients;
  const width = first.length;
  const out = createRgbImage(width, rowsTo - rowsFrom);
  const src = image.data;
  const dst = out.data;
  const rowStride = image.width * 3;
  for (let y = 0; y < out.height; y++) {
    const row = (rowsFrom + y) * rowStride;
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

/** The output rows of `coefficients` from `band`, which holds the source rows from `bandTop` on. */
function resampleVertical(band: RgbImage, bandTop: number, coefficients: ResampleCoefficients): RgbImage {
  const { first, count, weights, tapsPerOutput } = coefficients;
  const height = first.length;
  const out = createRgbImage(band.width, height);
  const src = band.data;
  const dst = out.data;
  const rowStride = band.width * 3;
  for (let y = 0; y < height; y++) {
    const k = y * tapsPerOutput;
    const base = (first[y] - bandTop) * rowStride;
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
