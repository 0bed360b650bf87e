/**
 * Chroma upsampling as libjpeg-turbo does it by default (jdsample.c, do_fancy_upsampling = TRUE):
 *
 * - 2:1 horizontal ("h2v1") and 2:1 both ways ("h2v2"): "fancy" triangle filter, i.e. linear
 *   interpolation between sample centres (weights 3/4 and 1/4 per direction) with libjpeg's
 *   alternating rounding biases, used when the component is more than 2 samples wide;
 * - 2:1 vertical only ("h1v2", libjpeg-turbo ≥ 2.1): the same triangle filter vertically;
 * - every other integer ratio (and h2 on components ≤ 2 samples wide): plain replication.
 *
 * Edges replicate the outermost sample (libjpeg's context rows at the top and bottom of the image
 * and its special first/last columns amount to that). The input plane is the component's
 * "downsampled" area, ceil(imageSize · factor / maxFactor) samples per direction.
 */

/** One decoded component plane. */
export interface SamplePlane {
  data: Uint8Array; // [rows, stride]
  stride: number;
  width: number; // downsampled_width: valid samples per row
  height: number; // downsampled_height: valid rows
}

/**
 * Upsamples `plane` by (hExpand, vExpand) into a full-resolution [height, width] plane,
 * cropped to the image size.
 */
export function upsamplePlane(plane: SamplePlane, hExpand: number, vExpand: number, width: number, height: number): Uint8Array /* [height, width] */ {
  const out = new Uint8Array(width * height);
  const fancyH2 = plane.width > 2;
  if (hExpand === 1 && vExpand === 1) copyPlane(plane, out, width, height);
  else if (hExpand === 2 && vExpand === 1 && fancyH2) upsampleH2V1Fancy(plane, out, width, height);
  else if (hExpand === 1 && vExpand === 2) upsampleH1V2Fancy(plane, out, width, height);
  else if (hExpand === 2 && vExpand === 2 && fancyH2) upsampleH2V2Fancy(plane, out, width, height);
  else upsampleReplicate(plane, hExpand, vExpand, out, width, height);
  return out;
}

function copyPlane(plane: SamplePlane, out: Uint8Array, width: number, height: number): void {
  for (let y = 0; y < height; y++) {
    out.set(plane.data.subarray(y * plane.stride, y * plane.stride + width), y * width);
  }
}

/** Replication (libjpeg int_upsample / h2v1_upsample / h2v2_upsample). */
function upsampleReplicate(plane: SamplePlane, hExpand: number, vExpand: number, out: Uint8Array, width: number, height: number): void {
  const data = plane.data;
  for (let y = 0; y < height; y++) {
    const inRow = Math.floor(y / vExpand) * plane.stride;
    const outRow = y * width;
    for (let x = 0; x < width; x++) out[outRow + x] = data[inRow + Math.floor(x / hExpand)];
  }
}

/**
 * h2v1 fancy: out[2i] = (3·in[i] + in[i−1] + 1) >> 2, out[2i+1] = (3·in[i] + in[i+1] + 2) >> 2;
 * the first and last outputs copy the edge sample.
 */
function upsampleH2V1Fancy(plane: SamplePlane, out: Uint8Array, width: number, height: number): void {
  const data = plane.data;
  const last = plane.width - 1;
  for (let y = 0; y < height; y++) {
    const row = y * plane.stride;
    const outRow = y * width;
    for (let i = 0; i <= last; i++) {
      const near = data[row + i] * 3;
      const x = 2 * i;
      if (x < width) out[outRow + x] = i === 0 ? data[row] : (near + data[row + i - 1] + 1) >> 2;
      if (x + 1 < width) out[outRow + x + 1] = i === last ? data[row + last] : (near + data[row + i + 1] + 2) >> 2;
    }
  }
}

/**
 * h1v2 fancy: the upper output row of each input row is (3·near + above + 1) >> 2, the lower one
 * (3·near + below + 2) >> 2.
 */
function upsampleH1V2Fancy(plane: SamplePlane, out: Uint8Array, width: number, height: number): void {
  const data = plane.data;
  const lastRow = plane.height - 1;
  for (let y = 0; y < height; y++) {
    const inRow = y >> 1;
    const isUpper = (y & 1) === 0;
    const farRow = isUpper ? Math.max(inRow - 1, 0) : Math.min(inRow + 1, lastRow);
    const bias = isUpper ? 1 : 2;
    const near = inRow * plane.stride;
    const far = farRow * plane.stride;
    const outRow = y * width;
    for (let x = 0; x < width; x++) out[outRow + x] = (data[near + x] * 3 + data[far + x] + bias) >> 2;
  }
}

/**
 * h2v2 fancy: vertical triangle first, as column sums c[i] = 3·near[i] + far[i] (far = the row
 * above for the upper output row, below for the lower one), then horizontal:
 * out[2i] = (3·c[i] + c[i−1] + 8) >> 4, out[2i+1] = (3·c[i] + c[i+1] + 7) >> 4, with
 * (4·c + 8) >> 4 and (4·c + 7) >> 4 at the first and last outputs.
 */
function upsampleH2V2Fancy(plane: SamplePlane, out: Uint8Array, width: number, height: number): void {
  const data = plane.data;
  const last = plane.width - 1;
  const lastRow = plane.height - 1;
  for (let y = 0; y < height; y++) {
    const inRow = y >> 1;
    const farRow = (y & 1) === 0 ? Math.max(inRow - 1, 0) : Math.min(inRow + 1, lastRow);
    const near = inRow * plane.stride;
    const far = farRow * plane.stride;
    const outRow = y * width;
    let thisSum = data[near] * 3 + data[far];
    let previousSum = thisSum;
    for (let i = 0; i <= last; i++) {
      const nextSum = i < last ? data[near + i + 1] * 3 + data[far + i + 1] : thisSum;
      const x = 2 * i;
      if (x < width) out[outRow + x] = (thisSum * 3 + previousSum + 8) >> 4;
      if (x + 1 < width) out[outRow + x + 1] = (thisSum * 3 + nextSum + 7) >> 4;
      previousSum = thisSum;
      thisSum = nextSum;
    }
  }
}
