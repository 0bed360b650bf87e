/**
 * YCbCr → RGB with libjpeg's fixed-point tables (jdcolor.c, SCALEBITS = 16):
 *   R = Y + round(1.40200 · (Cr − 128))
 *   G = Y + ((−0.34414 · 2^16 · (Cb − 128) − 0.71414 · 2^16 · (Cr − 128) + 2^15) >> 16)
 *   B = Y + round(1.77200 · (Cb − 128))
 * each clamped to 0..255, every constant rounded to 16 fractional bits as libjpeg's FIX() does.
 */

const SCALE_BITS = 16;
const ONE_HALF = 1 << (SCALE_BITS - 1);
const fix = (x: number): number => Math.floor(x * (1 << SCALE_BITS) + 0.5);

const crToR = new Int32Array(256);
const cbToB = new Int32Array(256);
const crToG = new Int32Array(256); // scaled by 2^16
const cbToG = new Int32Array(256); // scaled by 2^16, includes the rounding half
for (let i = 0; i < 256; i++) {
  const x = i - 128;
  crToR[i] = (fix(1.402) * x + ONE_HALF) >> SCALE_BITS;
  cbToB[i] = (fix(1.772) * x + ONE_HALF) >> SCALE_BITS;
  crToG[i] = -fix(0.71414) * x;
  cbToG[i] = -fix(0.34414) * x + ONE_HALF;
}

const clamp255 = (v: number): number => (v < 0 ? 0 : v > 255 ? 255 : v);

/** Interleaves full-resolution Y, Cb, Cr planes into RGB. */
export function yccToRgb(
  y: Uint8Array, // [pixels]
  cb: Uint8Array, // [pixels]
  cr: Uint8Array, // [pixels]
  rgb: Uint8Array, // [pixels · 3]
): void {
  for (let i = 0, o = 0; i < y.length; i++, o += 3) {
    const luma = y[i];
    const blue = cb[i];
    const red = cr[i];
    rgb[o] = clamp255(luma + crToR[red]);
    rgb[o + 1] = clamp255(luma + ((cbToG[blue] + crToG[red]) >> SCALE_BITS));
    rgb[o + 2] = clamp255(luma + cbToB[blue]);
  }
}

/** Interleaves three planes unchanged (JPEGs stored as RGB, e.g. Adobe transform 0). */
export function interleavePlanes(r: Uint8Array, g: Uint8Array, b: Uint8Array, rgb: Uint8Array): void {
  for (let i = 0, o = 0; i < r.length; i++, o += 3) {
    rgb[o] = r[i];
    rgb[o + 1] = g[i];
    rgb[o + 2] = b[i];
  }
}

/** Replicates a grey plane to RGB. */
export function greyToRgb(grey: Uint8Array, rgb: Uint8Array): void {
  for (let i = 0, o = 0; i < grey.length; i++, o += 3) {
    const v = grey[i];
    rgb[o] = v;
    rgb[o + 1] = v;
    rgb[o + 2] = v;
  }
}

/** Pillow's MULDIV255: a · b / 255, rounded, in integers. */
const mulDiv255 = (a: number, b: number): number => {
  const t = a * b + 128;
  return ((t >> 8) + t) >> 8;
};

/**
 * 4-component JPEGs as PIL reads them: libjpeg outputs CMYK (converting YCCK first when the
 * Adobe transform is 2: C = 255 − R(Y, Cb, Cr) etc., K unchanged), PIL's "CMYK;I" raw mode
 * inverts every channel (Adobe's convention), and `convert('RGB')` computes
 * R = 255 − K − C·(255 − K)/255 with C, K the inverted values (Pillow's cmyk2rgb).
 */
export function cmykToRgb(
  c: Uint8Array, // [pixels] first component (C, or Y for YCCK)
  m: Uint8Array, // [pixels] (M, or Cb)
  y: Uint8Array, // [pixels] (Y, or Cr)
  k: Uint8Array, // [pixels] K
  isYcck: boolean,
  rgb: Uint8Array, // [pixels · 3]
): void {
  for (let i = 0, o = 0; i < c.length; i++, o += 3) {
    let cyan = c[i];
    let magenta = m[i];
    let yellow = y[i];
    if (isYcck) {
      const luma = cyan;
      const blue = magenta;
      const red = yellow;
      cyan = 255 - clamp255(luma + crToR[red]);
      magenta = 255 - clamp255(luma + ((cbToG[blue] + crToG[red]) >> SCALE_BITS));
      yellow = 255 - clamp255(luma + cbToB[blue]);
    }
    // PIL's "CMYK;I" unpacking inverts; then cmyk2rgb with nk = 255 − K.
    const notK = k[i]; // 255 − (255 − K)
    rgb[o] = clamp255(notK - mulDiv255(255 - cyan, notK));
    rgb[o + 1] = clamp255(notK - mulDiv255(255 - magenta, notK));
    rgb[o + 2] = clamp255(notK - mulDiv255(255 - yellow, notK));
  }
}
