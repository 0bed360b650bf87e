/**
 * The "islow" integer inverse DCT, libjpeg's default (JDCT_ISLOW, jidctint.c), with the same
 * fixed-point arithmetic so that decoded samples match libjpeg-turbo bit for bit:
 * coefficients carry CONST_BITS = 13 fractional bits, the column pass keeps PASS1_BITS = 2 extra
 * bits, rounding is "add half, shift right" (DESCALE), and the output goes through libjpeg's
 * 1024-entry range-limit table (wrap to 10 bits, then clamp to 0..255 around the centre 128).
 *
 * Sums are computed in doubles (exact here, like libjpeg's 64-bit JLONG); column-pass results are
 * stored as int32 like libjpeg's int workspace.
 */

const CONST_BITS = 13;
const PASS1_BITS = 2;

// FIX(x) = round(x · 2^13)
const FIX_0_298631336 = 2446;
const FIX_0_390180644 = 3196;
const FIX_0_541196100 = 4433;
const FIX_0_765366865 = 6270;
const FIX_0_899976223 = 7373;
const FIX_1_175875602 = 9633;
const FIX_1_501321110 = 12299;
const FIX_1_847759065 = 15137;
const FIX_1_961570560 = 16069;
const FIX_2_053119869 = 16819;
const FIX_2_562915447 = 20995;
const FIX_3_072711026 = 25172;

const PASS1_SHIFT = CONST_BITS - PASS1_BITS; // 11
const PASS1_ROUND = 1 << (PASS1_SHIFT - 1);
const PASS1_SCALE = 1 / (1 << PASS1_SHIFT);
const PASS2_SHIFT = CONST_BITS + PASS1_BITS + 3; // 18: also divides by 8
const PASS2_ROUND = 1 << (PASS2_SHIFT - 1);
const PASS2_SCALE = 1 / (1 << PASS2_SHIFT);
const DC_ONLY_ROUND = 1 << (PASS1_BITS + 3 - 1);
const DC_ONLY_SCALE = 1 / (1 << (PASS1_BITS + 3));

/**
 * libjpeg's IDCT range limit: index = (centred value) & 1023, result = clamp(value + 128, 0, 255)
 * for values in −512..511 (larger values wrap first, exactly as the C table does).
 */
const RANGE_LIMIT = (() => {
  const table = new Uint8Array(1024);
  for (let i = 0; i < 1024; i++) {
    const centred = i >= 512 ? i - 1024 : i;
    table[i] = Math.min(255, Math.max(0, centred + 128));
  }
  return table;
})();

/**
 * Converts a quantisation table to the multipliers the IDCT uses: libjpeg stores them as
 * ISLOW_MULT_TYPE (int16), so 16-bit tables above 32767 wrap.
 */
export function idctMultipliers(quantNatural: Uint16Array /* [64] */): Int32Array /* [64] */ {
  const multipliers = new Int32Array(64);
  for (let i = 0; i < 64; i++) multipliers[i] = (quantNatural[i] << 16) >> 16;
  return multipliers;
}

/**
 * Dequantises and inverse-transforms one 8×8 block into `output` at `outOffset` with row stride
 * `stride`.
 */
export function idctIslowBlock(
  coefficients: Int16Array, // block at [coefOffset, coefOffset + 64), natural order
  coefOffset: number,
  multipliers: Int32Array, // [64] natural order
  output: Uint8Array, // samples, row-major with `stride`
  outOffset: number,
  stride: number,
  workspace: Int32Array, // [64] scratch
): void {
  // Pass 1: columns → workspace (scaled up by 2^PASS1_BITS).
  for (let column = 0; column < 8; column++) {
    const c = coefOffset + column;
    if (
      coefficients[c + 8] === 0 &&
      coefficients[c + 16] === 0 &&
      coefficients[c + 24] === 0 &&
      coefficients[c + 32] === 0 &&
      coefficients[c + 40] === 0 &&
      coefficients[c + 48] === 0 &&
      coefficients[c + 56] === 0
    ) {
      // AC terms all zero: the column is constant (same result as the full computation).
      const dc = coefficients[c] * multipliers[column] * (1 << PASS1_BITS);
      for (let row = 0; row < 64; row += 8) workspace[row + column] = dc;
      continue;
    }

    // Even part (rotation by sqrt(2)·c6 on inputs 2 and 6).
    let z2 = coefficients[c + 16] * multipliers[column + 16];
    let z3 = coefficients[c + 48] * multipliers[column + 48];
    let z1 = (z2 + z3) * FIX_0_541196100;
    let tmp2 = z1 - z3 * FIX_1_847759065;
    let tmp3 = z1 + z2 * FIX_0_765366865;

    z2 = coefficients[c] * multipliers[column];
    z3 = coefficients[c + 32] * multipliers[column + 32];
    let tmp0 = (z2 + z3) * (1 << CONST_BITS);
    let tmp1 = (z2 - z3) * (1 << CONST_BITS);

    const tmp10 = tmp0 + tmp3;
    const tmp13 = tmp0 - tmp3;
    const tmp11 = tmp1 + tmp2;
    const tmp12 = tmp1 - tmp2;

    // Odd part (inputs 7, 5, 3, 1).
    tmp0 = coefficients[c + 56] * multipliers[column + 56];
    tmp1 = coefficients[c + 40] * multipliers[column + 40];
    tmp2 = coefficients[c + 24] * multipliers[column + 24];
    tmp3 = coefficients[c + 8] * multipliers[column + 8];
    z1 = tmp0 + tmp3;
    z2 = tmp1 + tmp2;
    z3 = tmp0 + tmp2;
    let z4 = tmp1 + tmp3;
    const z5 = (z3 + z4) * FIX_1_175875602; // sqrt(2)·c3
    tmp0 *= FIX_0_298631336; // sqrt(2)·(−c1 + c3 + c5 − c7)
    tmp1 *= FIX_2_053119869; // sqrt(2)·( c1 + c3 − c5 + c7)
    tmp2 *= FIX_3_072711026; // sqrt(2)·( c1 + c3 + c5 − c7)
    tmp3 *= FIX_1_501321110; // sqrt(2)·( c1 + c3 − c5 − c7)
    z1 *= -FIX_0_899976223; // sqrt(2)·(c7 − c3)
    z2 *= -FIX_2_562915447; // sqrt(2)·(−c1 − c3)
    z3 = z3 * -FIX_1_961570560 + z5; // sqrt(2)·(−c3 − c5)
    z4 = z4 * -FIX_0_390180644 + z5; // sqrt(2)·(c5 − c3)
    tmp0 += z1 + z3;
    tmp1 += z2 + z4;
    tmp2 += z2 + z3;
    tmp3 += z1 + z4;

    workspace[column] = Math.floor((tmp10 + tmp3 + PASS1_ROUND) * PASS1_SCALE);
    workspace[column + 56] = Math.floor((tmp10 - tmp3 + PASS1_ROUND) * PASS1_SCALE);
    workspace[column + 8] = Math.floor((tmp11 + tmp2 + PASS1_ROUND) * PASS1_SCALE);
    workspace[column + 48] = Math.floor((tmp11 - tmp2 + PASS1_ROUND) * PASS1_SCALE);
    workspace[column + 16] = Math.floor((tmp12 + tmp1 + PASS1_ROUND) * PASS1_SCALE);
    workspace[column + 40] = Math.floor((tmp12 - tmp1 + PASS1_ROUND) * PASS1_SCALE);
    workspace[column + 24] = Math.floor((tmp13 + tmp0 + PASS1_ROUND) * PASS1_SCALE);
    workspace[column + 32] = Math.floor((tmp13 - tmp0 + PASS1_ROUND) * PASS1_SCALE);
  }

  // Pass 2: rows → samples (removes PASS1_BITS and the factor 8 of the 2-D transform).
  for (let row = 0; row < 8; row++) {
    const w = row * 8;
    const o = outOffset + row * stride;
    if (
      workspace[w + 1] === 0 &&
      workspace[w + 2] === 0 &&
      workspace[w + 3] === 0 &&
      workspace[w + 4] === 0 &&
      workspace[w + 5] === 0 &&
      workspace[w + 6] === 0 &&
      workspace[w + 7] === 0
    ) {
      const value = RANGE_LIMIT[Math.floor((workspace[w] + DC_ONLY_ROUND) * DC_ONLY_SCALE) & 1023];
      output.fill(value, o, o + 8);
      continue;
    }

    let z2 = workspace[w + 2];
    let z3 = workspace[w + 6];
    let z1 = (z2 + z3) * FIX_0_541196100;
    let tmp2 = z1 - z3 * FIX_1_847759065;
    let tmp3 = z1 + z2 * FIX_0_765366865;

    let tmp0 = (workspace[w] + workspace[w + 4]) * (1 << CONST_BITS);
    let tmp1 = (workspace[w] - workspace[w + 4]) * (1 << CONST_BITS);

    const tmp10 = tmp0 + tmp3;
    const tmp13 = tmp0 - tmp3;
    const tmp11 = tmp1 + tmp2;
    const tmp12 = tmp1 - tmp2;

    tmp0 = workspace[w + 7];
    tmp1 = workspace[w + 5];
    tmp2 = workspace[w + 3];
    tmp3 = workspace[w + 1];
    z1 = tmp0 + tmp3;
    z2 = tmp1 + tmp2;
    z3 = tmp0 + tmp2;
    let z4 = tmp1 + tmp3;
    const z5 = (z3 + z4) * FIX_1_175875602; // sqrt(2)·c3
    tmp0 *= FIX_0_298631336; // sqrt(2)·(−c1 + c3 + c5 − c7)
    tmp1 *= FIX_2_053119869; // sqrt(2)·( c1 + c3 − c5 + c7)
    tmp2 *= FIX_3_072711026; // sqrt(2)·( c1 + c3 + c5 − c7)
    tmp3 *= FIX_1_501321110; // sqrt(2)·( c1 + c3 − c5 − c7)
    z1 *= -FIX_0_899976223; // sqrt(2)·(c7 − c3)
    z2 *= -FIX_2_562915447; // sqrt(2)·(−c1 − c3)
    z3 = z3 * -FIX_1_961570560 + z5; // sqrt(2)·(−c3 − c5)
    z4 = z4 * -FIX_0_390180644 + z5; // sqrt(2)·(c5 − c3)
    tmp0 += z1 + z3;
    tmp1 += z2 + z4;
    tmp2 += z2 + z3;
    tmp3 += z1 + z4;

    output[o] = RANGE_LIMIT[Math.floor((tmp10 + tmp3 + PASS2_ROUND) * PASS2_SCALE) & 1023];
    output[o + 7] = RANGE_LIMIT[Math.floor((tmp10 - tmp3 + PASS2_ROUND) * PASS2_SCALE) & 1023];
    output[o + 1] = RANGE_LIMIT[Math.floor((tmp11 + tmp2 + PASS2_ROUND) * PASS2_SCALE) & 1023];
    output[o + 6] = RANGE_LIMIT[Math.floor((tmp11 - tmp2 + PASS2_ROUND) * PASS2_SCALE) & 1023];
    output[o + 2] = RANGE_LIMIT[Math.floor((tmp12 + tmp1 + PASS2_ROUND) * PASS2_SCALE) & 1023];
    output[o + 5] = RANGE_LIMIT[Math.floor((tmp12 - tmp1 + PASS2_ROUND) * PASS2_SCALE) & 1023];
    output[o + 3] = RANGE_LIMIT[Math.floor((tmp13 + tmp0 + PASS2_ROUND) * PASS2_SCALE) & 1023];
    output[o + 4] = RANGE_LIMIT[Math.floor((tmp13 - tmp0 + PASS2_ROUND) * PASS2_SCALE) & 1023];
  }
}
