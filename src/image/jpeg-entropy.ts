/**
 * JPEG entropy decoding (ITU T.81 Annex F and G): Huffman tables, the bit reader over
 * byte-stuffed scan data, and the per-block decoders of sequential and progressive scans.
 *
 * Coefficients are stored as int16 in natural (row-major) order, as libjpeg's JCOEF blocks are,
 * so that overflow in corrupt data wraps the same way.
 */
/**
 * Zig-zag index → natural index, followed by 16 extra entries of 63 so that a corrupt run length
 * that pushes k past 63 lands on the last coefficient instead of outside the block (libjpeg-turbo
 * pads jpeg_natural_order the same way).
 */
export const ZIGZAG_TO_NATURAL = new Uint8Array([
  0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22,
  15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63,
]);

/**
 * A Huffman decoding table as a 16-bit look-ahead: entry = (code length << 8) | symbol for every
 * 16-bit window that starts with a code; 0 where no code matches.
 */
export type HuffmanLookup = Uint16Array; // [65536]

/**
 * Builds the look-ahead table from a DHT definition: `counts[i]` codes of length i + 1, the
 * `symbols` in code order. Throws (via `fail`) when the counts overflow the code space, as
 * libjpeg's jpeg_make_d_derived_tbl does.
 */
export function buildHuffmanLookup(
  counts: Uint8Array, // [16]
  symbols: Uint8Array, // [sum(counts)]
  isDc: boolean,
  fail: (message: string) => never,
): HuffmanLookup {
  const lookup = new Uint16Array(65536);
  let code = 0;
  let symbolIndex = 0;
  for (let length = 1; length <= 16; length++) {
    const count = counts[length - 1];
    for (let i = 0; i < count; i++) {
      const symbol = symbols[symbolIndex++];
      if (isDc && symbol > 15) fail(`DC Huffman table has symbol ${symbol}; expected a bit count 0..15`);
      const shift = 16 - length;
      const first = code << shift;
      lookup.fill((length << 8) | symbol, first, first + (1 << shift));
      code++;
    }
    if (code >= 1 << length) fail(`Huffman table has more codes of length ≤ ${length} than fit in ${length} bits`);
    code <<= 1;
  }
  return lookup;
}

/**
 * Reads bits from entropy-coded data: un-stuffs 0xFF 0x00, stops in front of any marker, and
 * from there (or past the end of the file) supplies zero bits, as libjpeg does. Zero bits that
 * are actually consumed mean the scan data ran short; `overran()` reports that.
 */
export class EntropyReader {
  private readonly data: Uint8Array;
  /** Position of the next unread byte; parked on the 0xFF of a marker once one is reached. */
  pos: number;
  private bitBuffer = 0; // the low `bitCount` bits are pending, most significant first
  private bitCount = 0;
  private paddingBytes = 0; // zero bytes supplied after a marker or the end of the data
  private readonly fail: (message: string) => never;

  constructor(data: Uint8Array, pos: number, fail: (message: string) => never) {
    this.data = data;
    this.pos = pos;
    this.fail = fail;
  }

  /** Tops the buffer up to at least 25 pending bits. */
  private fill(): void {
    const data = this.data;
    while (this.bitCount <= 24) {
      let byte = 0;
      let pos = this.pos;
      if (pos >= data.length) {
        this.paddingBytes++;
      } else if (data[pos] !== 0xff) {
        byte = data[pos];
        this.pos = pos + 1;
      } else {
        // 0xFF: skip fill bytes (0xFF 0xFF …); 0xFF 0x00 is a stuffed 0xFF, anything else a marker.
        let next = pos + 1;
        while (next < data.length && data[next] === 0xff) next++;
        if (next < data.length && data[next] === 0x00) {
          byte = 0xff;
          this.pos = next + 1;
        } else {
          this.pos = next - 1; // park on the last 0xFF before the marker code
          this.paddingBytes++;
        }
      }
      this.bitBuffer = (this.bitBuffer << 8) | byte;
      this.bitCount += 8;
    }
  }

  /** True once bits past the end of this entropy-coded segment have been consumed. */
  overran(): boolean {
    return this.paddingBytes * 8 > this.bitCount;
  }

  /** Drops pending bits (at a restart marker or the end of a scan). */
  reset(): void {
    this.bitBuffer = 0;
    this.bitCount = 0;
    this.paddingBytes = 0;
  }

  /** Decodes one Huffman symbol. */
  decode(lookup: HuffmanLookup): number {
    if (this.bitCount < 16) this.fill();
    const entry = lookup[(this.bitBuffer >>> (this.bitCount - 16)) & 0xffff];
    if (entry === 0) this.fail(`bad Huffman code in scan data near byte ${this.pos}`);
    this.bitCount -= entry >> 8;
    return entry & 0xff;
  }

  /** Reads `n` (0..16) raw bits as an unsigned number. */
  bits(n: number): number {
    if (n === 0) return 0;
    if (this.bitCount < n) this.fill();
    this.bitCount -= n;
    return (this.bitBuffer >>> this.bitCount) & ((1 << n) - 1);
  }

  bit(): number {
    if (this.bitCount < 1) this.fill();
    this.bitCount--;
    return (this.bitBuffer >>> this.bitCount) & 1;
  }

  /** Reads an `n`-bit magnitude and sign-extends it (T.81 EXTEND). */
  receiveExtend(n: number): number {
    if (n === 0) return 0;
    const value = this.bits(n);
    return value < 1 << (n - 1) ? value - (1 << n) + 1 : value;
  }
}

/** What a block decoder needs to know about its component. */
export interface EntropyComponent {
  coefficients: Int16Array; // [blocksPerColumn · blocksPerLine · 64], natural order per block
  dcPredictor: number;
  dcTable: HuffmanLookup | null;
  acTable: HuffmanLookup | null;
}

/** Scan parameters shared by the block decoders; `eobRun` is state carried between blocks. */
export interface ScanState {
  spectralStart: number; // Ss
  spectralEnd: number; // Se
  approxHigh: number; // Ah
  approxLow: number; // Al
  eobRun: number;
}

/** Sequential (baseline / extended) block: DC difference then run-length AC (T.81 F.2.2). */
export function decodeBlockSequential(reader: EntropyReader, component: EntropyComponent, offset: number): void {
  const block = component.coefficients;
  const dcSize = reader.decode(component.dcTable!);
  component.dcPredictor += reader.receiveExtend(dcSize);
  block[offset] = component.dcPredictor;
  const acTable = component.acTable!;
  for (let k = 1; k < 64; k++) {
    const rs = reader.decode(acTable);
    const run = rs >> 4;
    const size = rs & 15;
    if (size !== 0) {
      k += run;
      block[offset + ZIGZAG_TO_NATURAL[k]] = reader.receiveExtend(size);
    } else if (run === 15) {
      k += 15;
    } else {
      break; // EOB
    }
  }
}

/** Progressive DC scan, first pass (T.81 G.1.2.1). */
export function decodeBlockDcFirst(reader: EntropyReader, component: EntropyComponent, offset: number, scan: ScanState): void {
  const dcSize = reader.decode(component.dcTable!);
  component.dcPredictor += reader.receiveExtend(dcSize);
  component.coefficients[offset] = component.dcPredictor * (1 << scan.approxLow);
}

/** Progressive DC scan, refinement: one more bit of the DC value. */
export function decodeBlockDcRefine(reader: EntropyReader, component: EntropyComponent, offset: number, scan: ScanState): void {
  if (reader.bit()) component.coefficients[offset] |= 1 << scan.approxLow;
}

/** Progressive AC scan, first pass over band Ss..Se, with end-of-band runs (T.81 G.1.2.2). */
export function decodeBlockAcFirst(reader: EntropyReader, component: EntropyComponent, offset: number, scan: ScanState): void {
  if (scan.eobRun > 0) {
    scan.eobRun--;
    return;
  }
  const block = component.coefficients;
  const acTable = component.acTable!;
  const scale = 1 << scan.approxLow;
  for (let k = scan.spectralStart; k <= scan.spectralEnd; k++) {
    const rs = reader.decode(acTable);
    const run = rs >> 4;
    const size = rs & 15;
    if (size !== 0) {
      k += run;
      block[offset + ZIGZAG_TO_NATURAL[k]] = reader.receiveExtend(size) * scale;
    } else if (run === 15) {
      k += 15;
    } else {
      scan.eobRun = (1 << run) - 1; // this block ends the first band of the run
      if (run > 0) scan.eobRun += reader.bits(run);
      break;
    }
  }
}

/**
 * Progressive AC scan, refinement pass (T.81 G.1.2.3): newly non-zero coefficients are ±1 at
 * bit Al; every already non-zero coefficient passed over gets one correction bit.
 */
export function decodeBlockAcRefine(reader: EntropyReader, component: EntropyComponent, offset: number, scan: ScanState): void {
  const block = component.coefficients;
  const plusOne = 1 << scan.approxLow;
  const minusOne = -1 << scan.approxLow;
  const end = scan.spectralEnd;
  let k = scan.spectralStart;

  if (scan.eobRun === 0) {
    const acTable = component.acTable!;
    for (; k <= end; k++) {
      const rs = reader.decode(acTable);
      let run = rs >> 4;
      const size = rs & 15;
      let newValue = 0;
      if (size !== 0) {
        // size must be 1; libjpeg only warns otherwise and reads one sign bit regardless
        newValue = reader.bit() ? plusOne : minusOne;
      } else if (run !== 15) {
        scan.eobRun = 1 << run;
        if (run > 0) scan.eobRun += reader.bits(run);
        break; // the rest of this block is handled by the end-of-band code below
      }
      // Skip `run` zero coefficients, refining the non-zero ones on the way.
      while (k <= end) {
        const position = offset + ZIGZAG_TO_NATURAL[k];
        const coefficient = block[position];
        if (coefficient !== 0) {
          if (reader.bit() && (coefficient & plusOne) === 0) {
            block[position] = coefficient >= 0 ? coefficient + plusOne : coefficient + minusOne;
          }
        } else {
          if (run === 0) break;
          run--;
        }
        k++;
      }
      if (newValue !== 0) block[offset + ZIGZAG_TO_NATURAL[k]] = newValue;
    }
  }

  if (scan.eobRun > 0) {
    // Inside an end-of-band run: only correction bits for the non-zero coefficients left.
    for (; k <= end; k++) {
      const position = offset + ZIGZAG_TO_NATURAL[k];
      const coefficient = block[position];
      if (coefficient !== 0 && reader.bit() && (coefficient & plusOne) === 0) {
        block[position] = coefficient >= 0 ? coefficient + plusOne : coefficient + minusOne;
      }
    }
    scan.eobRun--;
  }
}
