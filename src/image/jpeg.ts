/**
 * JPEG decoder that reproduces libjpeg-turbo's default decompression as PIL uses it
 * (`Image.open(f).convert('RGB')`), so that pixels match PIL's:
 *
 * - baseline and extended sequential (SOF0/SOF1) and progressive (SOF2) Huffman-coded, 8-bit;
 * - restart intervals; 1 component (grey) or 3 (YCbCr, or RGB when an Adobe APP14 transform 0 or
 *   'R','G','B' component ids say so, with libjpeg's precedence: JFIF, then Adobe, then ids), or
 *   4 (CMYK, or YCCK with Adobe transform 2), converted to RGB as PIL does (jpeg-color.ts);
 * - any integer sampling factors; islow integer IDCT (jpeg-idct.ts); fancy upsampling
 *   (jpeg-upsample.ts); fixed-point YCbCr → RGB (jpeg-color.ts).
 *
 * Refused with an ImageError: arithmetic coding, lossless and hierarchical modes, 12-bit samples,
 * 2-component images, DNL-defined heights, and corrupt or truncated data.
 * EXIF orientation is not applied (PIL does not apply it either).
 */
import { ImageError } from '../errors.js';
import { cmykToRgb, greyToRgb, interleavePlanes, yccToRgb } from './jpeg-color.js';
import {
  buildHuffmanLookup,
  decodeBlockAcFirst,
  decodeBlockAcRefine,
  decodeBlockDcFirst,
  decodeBlockDcRefine,
  decodeBlockSequential,
  EntropyReader,
  ZIGZAG_TO_NATURAL,
  type EntropyComponent,
  type HuffmanLookup,
  type ScanState,
} from './jpeg-entropy.js';
import { idctIslowBlock, idctMultipliers } from './jpeg-idct.js';
import { upsamplePlane, type SamplePlane } from './jpeg-upsample.js';
import { createRgbImage, type RgbImage } from './rgb-image.js';

/** Header facts, available without decoding the pixels. */
export interface JpegInfo {
  width: number;
  height: number;
  components: number; // 1 (grey), 3 (YCbCr/RGB) or 4 (CMYK/YCCK)
  progressive: boolean;
  sampling: string; // per component "HxV", e.g. "2x2,1x1,1x1" for 4:2:0
}

export interface JpegDecodeOptions {
  /** Refuse images with more pixels than this (checked on the frame header, before decoding). */
  maxPixels: number;
}

interface FrameComponent extends EntropyComponent {
  id: number;
  h: number; // horizontal sampling factor
  v: number; // vertical sampling factor
  quantTable: number;
  width: number; // samples per row: ceil(imageWidth · h / maxH)
  height: number; // rows: ceil(imageHeight · v / maxV)
  blocksPerLine: number; // including MCU padding
  blocksPerColumn: number;
  scanned: boolean; // appeared in at least one scan
  quantization: Uint16Array | null; // [64] natural order, latched at the component's first scan as libjpeg does
}

interface Frame {
  width: number;
  height: number;
  progressive: boolean;
  components: FrameComponent[];
  maxH: number;
  maxV: number;
  mcusPerLine: number;
  mcusPerColumn: number;
}

const MARKER_NAMES: Record<number, string> = {
  0xc3: 'SOF3 (lossless)',
  0xc5: 'SOF5 (differential sequential)',
  0xc6: 'SOF6 (differential progressive)',
  0xc7: 'SOF7 (differential lossless)',
  0xc9: 'SOF9 (arithmetic coding)',
  0xca: 'SOF10 (progressive arithmetic coding)',
  0xcb: 'SOF11 (lossless arithmetic coding)',
  0xcd: 'SOF13 (differential arithmetic coding)',
  0xce: 'SOF14 (differential progressive arithmetic coding)',
  0xcf: 'SOF15 (differential lossless arithmetic coding)',
};

const hex = (value: number, digits = 2): string => value.toString(16).toUpperCase().padStart(digits, '0');

/** Decodes a JPEG file to 8-bit RGB exactly as PIL (libjpeg-turbo, default settings) does. */
export function decodeJpeg(bytes: Uint8Array, file: string, options: JpegDecodeOptions): RgbImage {
  const decoder = new JpegDecoder(bytes, file);
  decoder.readUntilFrame();
  decoder.checkPixelLimit(options.maxPixels);
  decoder.decodeScans();
  return decoder.toRgb();
}

/** Reads the frame header (SOFn) without decoding any scan. */
export function readJpegInfo(bytes: Uint8Array, file: string): JpegInfo {
  const decoder = new JpegDecoder(bytes, file);
  const frame = decoder.readUntilFrame();
  return {
    width: frame.width,
    height: frame.height,
    components: frame.components.length,
    progressive: frame.progressive,
    sampling: frame.components.map((c) => `${c.h}x${c.v}`).join(','),
  };
}

class JpegDecoder {
  private readonly bytes: Uint8Array;
  private readonly file: string;
  private pos = 2;
  private frame: Frame | null = null;
  private readonly quantTables: (Uint16Array | null)[] = [null, null, null, null]; // [64] natural order
  private readonly dcTables: (HuffmanLookup | null)[] = [null, null, null, null];
  private readonly acTables: (HuffmanLookup | null)[] = [null, null, null, null];
  private restartInterval = 0;
  private sawJfif = false;
  private adobeTransform = -1; // -1: no Adobe APP14 segment
  private scanCount = 0;
  private readonly corrupt: (message: string) => never = (message) => {
    throw new ImageError(`${this.file}: corrupt JPEG: ${message}`);
  };

  constructor(bytes: Uint8Array, file: string) {
    this.bytes = bytes;
    this.file = file;
    if (bytes.length < 2 || bytes[0] !== 0xff || bytes[1] !== 0xd8) {
      this.corrupt(`expected the SOI marker FF D8 at byte 0, found ${hex(bytes[0] ?? 0)} ${hex(bytes[1] ?? 0)}`);
    }
  }

  private unsupported(message: string): never {
    throw new ImageError(`${this.file}: unsupported JPEG: ${message}`);
  }

  private u16(at: number): number {
    return (this.bytes[at] << 8) | this.bytes[at + 1];
  }

  /**
   * Moves to the next marker at `pos` (after optional 0xFF fill bytes) and returns its code, or
   * -1 at the end of the file.
   */
  private nextMarker(): number {
    const bytes = this.bytes;
    if (this.pos >= bytes.length) return -1;
    if (bytes[this.pos] !== 0xff) {
      this.corrupt(`expected a marker (FF xx) at byte ${this.pos}, found ${hex(bytes[this.pos])}`);
    }
    while (this.pos + 1 < bytes.length && bytes[this.pos + 1] === 0xff) this.pos++;
    if (this.pos + 1 >= bytes.length) return -1;
    const code = bytes[this.pos + 1];
    if (code === 0x00) this.corrupt(`expected a marker at byte ${this.pos}, found FF 00`);
    this.pos += 2;
    return code;
  }

  /** Returns [start, end) of the current marker segment's payload and moves past it. */
  private segment(name: string): [number, number] {
    if (this.pos + 2 > this.bytes.length) this.corrupt(`file ends inside the ${name} segment length (truncated)`);
    const length = this.u16(this.pos);
    if (length < 2) this.corrupt(`${name} segment length ${length} at byte ${this.pos}; expected at least 2`);
    const start = this.pos + 2;
    const end = this.pos + length;
    if (end > this.bytes.length) {
      this.corrupt(
        `${name} segment at byte ${this.pos - 2} declares ${length} bytes but the file ends ${this.bytes.length - this.pos} bytes later (truncated)`,
      );
    }
    this.pos = end;
    return [start, end];
  }

  /** Reads markers up to and including the frame header. */
  readUntilFrame(): Frame {
    while (this.frame === null) {
      const marker = this.nextMarker();
      if (marker === -1) this.corrupt('file ends before the frame header (SOF) (truncated)');
      if (marker === 0xda) this.corrupt('scan (SOS) before the frame header (SOF)');
      if (marker === 0xd9) this.corrupt('end of image (EOI) before the frame header (SOF)');
      this.handleMarker(marker);
    }
    return this.frame;
  }

  checkPixelLimit(maxPixels: number): void {
    const frame = this.frame!;
    const pixels = frame.width * frame.height;
    if (pixels > maxPixels) {
      throw new ImageError(
        `${this.file}: image is ${frame.width}×${frame.height} = ${pixels} pixels, more than the limit of ${maxPixels} (decompression-bomb guard)`,
      );
    }
  }

  /** Reads the remaining markers, decoding every scan, up to EOI. */
  decodeScans(): void {
    for (;;) {
      const marker = this.nextMarker();
      if (marker === 0xd9) return;
      if (marker === -1) {
        const frame = this.frame!;
        // A missing EOI after complete sequential scans is tolerated, as libjpeg does.
        if (!frame.progressive && frame.components.every((c) => c.scanned)) return;
        this.corrupt(`file ends after ${this.scanCount} scan(s), before the end-of-image marker (truncated)`);
      }
      if (marker === 0xda) this.decodeScan();
      else this.handleMarker(marker);
    }
  }

  /** Table, frame and miscellaneous markers (everything except SOS and EOI). */
  private handleMarker(marker: number): void {
    if (marker >= 0xd0 && marker <= 0xd7) return; // stray RSTn: no payload, ignored like libjpeg
    if (marker === 0x01) return; // TEM: no payload
    switch (marker) {
      case 0xd8:
        this.corrupt(`second start-of-image marker at byte ${this.pos - 2}`);
        break;
      case 0xc0:
      case 0xc1:
      case 0xc2:
        this.readFrame(marker);
        break;
      case 0xc4:
        this.readHuffmanTables();
        break;
      case 0xdb:
        this.readQuantTables();
        break;
      case 0xdd: {
        const [start, end] = this.segment('DRI');
        if (end - start < 2) this.corrupt(`DRI segment has ${end - start} bytes; expected 2`);
        this.restartInterval = this.u16(start);
        break;
      }
      case 0xdc:
        this.unsupported('DNL marker (image height defined after the first scan)');
        break;
      case 0xcc:
        this.segment('DAC'); // arithmetic-coding conditioning; the SOF9+ frame is refused anyway
        break;
      case 0xe0: {
        const [start, end] = this.segment('APP0');
        const b = this.bytes;
        if (end - start >= 14 && b[start] === 0x4a && b[start + 1] === 0x46 && b[start + 2] === 0x49 && b[start + 3] === 0x46 && b[start + 4] === 0) {
          this.sawJfif = true; // "JFIF\0"
        }
        break;
      }
      case 0xee: {
        const [start, end] = this.segment('APP14');
        const b = this.bytes;
        if (end - start >= 12 && b[start] === 0x41 && b[start + 1] === 0x64 && b[start + 2] === 0x6f && b[start + 3] === 0x62 && b[start + 4] === 0x65) {
          this.adobeTransform = b[start + 11]; // "Adobe": 0 = RGB/CMYK, 1 = YCbCr, 2 = YCCK
        }
        break;
      }
      default:
        if (MARKER_NAMES[marker])
          this.unsupported(`${MARKER_NAMES[marker]} frames are not supported (only baseline, extended sequential and progressive Huffman)`);
        if ((marker >= 0xe1 && marker <= 0xef) || marker === 0xfe) {
          this.segment(marker === 0xfe ? 'COM' : `APP${marker - 0xe0}`);
          break;
        }
        this.corrupt(`unknown marker FF ${hex(marker)} at byte ${this.pos - 2}`);
    }
  }

  private readQuantTables(): void {
    const [start, end] = this.segment('DQT');
    const b = this.bytes;
    let p = start;
    while (p < end) {
      const precision = b[p] >> 4;
      const index = b[p] & 15;
      if (index > 3) this.corrupt(`DQT defines table ${index}; expected 0..3`);
      if (precision > 1) this.corrupt(`DQT table ${index} has precision code ${precision}; expected 0 (8-bit) or 1 (16-bit)`);
      const size = precision === 0 ? 64 : 128;
      if (p + 1 + size > end) this.corrupt(`DQT table ${index} needs ${size} bytes, the segment has ${end - p - 1}`);
      const table = new Uint16Array(64);
      for (let k = 0; k < 64; k++) {
        table[ZIGZAG_TO_NATURAL[k]] = precision === 0 ? b[p + 1 + k] : this.u16(p + 1 + 2 * k);
      }
      this.quantTables[index] = table;
      p += 1 + size;
    }
  }

  private readHuffmanTables(): void {
    const [start, end] = this.segment('DHT');
    const b = this.bytes;
    let p = start;
    while (p < end) {
      const tableClass = b[p] >> 4;
      const index = b[p] & 15;
      if (tableClass > 1 || index > 3) this.corrupt(`DHT defines class ${tableClass} table ${index}; expected class 0..1, table 0..3`);
      if (p + 17 > end) this.corrupt('DHT segment ends inside the code-length counts');
      const counts = b.subarray(p + 1, p + 17);
      let total = 0;
      for (let i = 0; i < 16; i++) total += counts[i];
      if (total > 256) this.corrupt(`DHT table declares ${total} codes; expected at most 256`);
      if (p + 17 + total > end) this.corrupt(`DHT table needs ${total} symbols, the segment has ${end - p - 17}`);
      const symbols = b.subarray(p + 17, p + 17 + total);
      const lookup = buildHuffmanLookup(counts, symbols, tableClass === 0, this.corrupt);
      (tableClass === 0 ? this.dcTables : this.acTables)[index] = lookup;
      p += 17 + total;
    }
  }

  private readFrame(marker: number): void {
    if (this.frame) this.corrupt('second frame header (SOF); multi-frame JPEGs are not supported');
    const [start, end] = this.segment(`SOF${marker - 0xc0}`);
    const b = this.bytes;
    if (end - start < 6) this.corrupt(`SOF segment has ${end - start} bytes; expected at least 6`);
    const precision = b[start];
    const height = this.u16(start + 1);
    const width = this.u16(start + 3);
    const count = b[start + 5];
    if (precision !== 8) this.unsupported(`${precision}-bit samples (only 8-bit)`);
    if (height === 0) this.unsupported('height 0 in the frame header (height defined by a DNL marker)');
    if (width === 0) this.corrupt('width 0 in the frame header');
    if (count !== 1 && count !== 3 && count !== 4) this.unsupported(`${count} components (only 1 = grey, 3 = colour, 4 = CMYK)`);
    if (end - start < 6 + 3 * count) this.corrupt(`SOF segment has ${end - start} bytes; expected ${6 + 3 * count} for ${count} components`);

    const raw = [];
    for (let i = 0; i < count; i++) {
      const p = start + 6 + 3 * i;
      const h = b[p + 1] >> 4;
      const v = b[p + 1] & 15;
      if (h < 1 || h > 4 || v < 1 || v > 4) this.corrupt(`component ${i} has sampling factors ${h}x${v}; expected 1..4 each`);
      if (b[p + 2] > 3) this.corrupt(`component ${i} uses quantisation table ${b[p + 2]}; expected 0..3`);
      raw.push({ id: b[p], h, v, quantTable: b[p + 2] });
    }
    const maxH = Math.max(...raw.map((c) => c.h));
    const maxV = Math.max(...raw.map((c) => c.v));
    for (const c of raw) {
      if (maxH % c.h !== 0 || maxV % c.v !== 0) {
        this.unsupported(`sampling factors ${raw.map((r) => `${r.h}x${r.v}`).join(',')} need fractional upsampling`);
      }
    }
    const mcusPerLine = Math.ceil(width / (8 * maxH));
    const mcusPerColumn = Math.ceil(height / (8 * maxV));
    const components: FrameComponent[] = raw.map((c) => {
      const blocksPerLine = mcusPerLine * c.h;
      const blocksPerColumn = mcusPerColumn * c.v;
      return {
        ...c,
        width: Math.ceil((width * c.h) / maxH),
        height: Math.ceil((height * c.v) / maxV),
        blocksPerLine,
        blocksPerColumn,
        coefficients: new Int16Array(0), // allocated once the pixel limit has been checked
        dcPredictor: 0,
        dcTable: null,
        acTable: null,
        scanned: false,
        quantization: null,
      };
    });
    this.frame = { width, height, progressive: marker === 0xc2, components, maxH, maxV, mcusPerLine, mcusPerColumn };
  }

  private decodeScan(): void {
    const frame = this.frame;
    if (!frame) this.corrupt('scan (SOS) before the frame header (SOF)');
    const [start, end] = this.segment('SOS');
    const b = this.bytes;
    const count = b[start];
    if (count < 1 || count > 4 || end - start !== 4 + 2 * count) {
      this.corrupt(`SOS segment with ${count} components has ${end - start} bytes; expected 1..4 components and ${4 + 2 * count} bytes`);
    }
    const scan: ScanState = {
      spectralStart: b[start + 1 + 2 * count],
      spectralEnd: b[start + 2 + 2 * count],
      approxHigh: b[start + 3 + 2 * count] >> 4,
      approxLow: b[start + 3 + 2 * count] & 15,
      eobRun: 0,
    };
    const isDcScan = scan.spectralStart === 0;
    const components: FrameComponent[] = [];
    for (let i = 0; i < count; i++) {
      const id = b[start + 1 + 2 * i];
      const component = frame.components.find((c) => c.id === id);
      if (!component) this.corrupt(`scan refers to component id ${id}; the frame has ids ${frame.components.map((c) => c.id).join(', ')}`);
      if (components.includes(component)) this.corrupt(`scan lists component id ${id} twice`);
      const dcIndex = b[start + 2 + 2 * i] >> 4;
      const acIndex = b[start + 2 + 2 * i] & 15;
      if (dcIndex > 3 || acIndex > 3) this.corrupt(`scan selects Huffman tables DC ${dcIndex} / AC ${acIndex}; expected 0..3`);
      const needsDc = !frame.progressive || (isDcScan && scan.approxHigh === 0);
      const needsAc = !frame.progressive || !isDcScan;
      component.dcTable = needsDc ? this.dcTables[dcIndex] : null;
      component.acTable = needsAc ? this.acTables[acIndex] : null;
      if (needsDc && !component.dcTable) this.corrupt(`scan uses DC Huffman table ${dcIndex}, which is not defined`);
      if (needsAc && !component.acTable) this.corrupt(`scan uses AC Huffman table ${acIndex}, which is not defined`);
      if (!this.quantTables[component.quantTable]) this.corrupt(`component id ${id} uses quantisation table ${component.quantTable}, which is not defined`);
      components.push(component);
    }
    if (frame.progressive) this.checkProgression(scan, count);
    if (count > 1 && components.reduce((n, c) => n + c.h * c.v, 0) > 10) {
      this.corrupt(`interleaved scan has ${components.reduce((n, c) => n + c.h * c.v, 0)} blocks per MCU; at most 10 are allowed`);
    }

    for (const component of components) {
      if (component.coefficients.length === 0) {
        component.coefficients = new Int16Array(component.blocksPerLine * component.blocksPerColumn * 64);
      }
      component.dcPredictor = 0;
      component.scanned = true;
      component.quantization ??= this.quantTables[component.quantTable]!.slice();
    }
    this.scanCount++;

    let decodeBlock: (r: EntropyReader, c: EntropyComponent, offset: number, s: ScanState) => void = decodeBlockSequential;
    if (frame.progressive) {
      if (isDcScan) decodeBlock = scan.approxHigh === 0 ? decodeBlockDcFirst : decodeBlockDcRefine;
      else decodeBlock = scan.approxHigh === 0 ? decodeBlockAcFirst : decodeBlockAcRefine;
    }

    const reader = new EntropyReader(b, this.pos, this.corrupt);
    const single = components.length === 1 ? components[0] : null;
    const mcusPerLine = single ? Math.ceil(single.width / 8) : frame.mcusPerLine;
    const mcusPerColumn = single ? Math.ceil(single.height / 8) : frame.mcusPerColumn;
    const restartInterval = this.restartInterval;
    let mcu = 0;
    let expectedRestart = 0;
    const totalMcus = mcusPerLine * mcusPerColumn;
    for (let mcuY = 0; mcuY < mcusPerColumn; mcuY++) {
      for (let mcuX = 0; mcuX < mcusPerLine; mcuX++, mcu++) {
        if (restartInterval > 0 && mcu > 0 && mcu % restartInterval === 0) {
          this.readRestartMarker(reader, expectedRestart);
          expectedRestart = (expectedRestart + 1) & 7;
          for (const component of components) component.dcPredictor = 0;
          scan.eobRun = 0;
        }
        if (single) {
          decodeBlock(reader, single, (mcuY * single.blocksPerLine + mcuX) * 64, scan);
        } else {
          for (const component of components) {
            for (let v = 0; v < component.v; v++) {
              const rowOffset = (mcuY * component.v + v) * component.blocksPerLine + mcuX * component.h;
              for (let h = 0; h < component.h; h++) decodeBlock(reader, component, (rowOffset + h) * 64, scan);
            }
          }
        }
        if (reader.overran()) this.scanDataMissing(reader, mcu, totalMcus);
      }
    }

    // Skip to the marker after the scan data (libjpeg skips stray bytes with a warning).
    let p = reader.pos;
    while (p + 1 < b.length && !(b[p] === 0xff && b[p + 1] !== 0x00 && b[p + 1] !== 0xff && !(b[p + 1] >= 0xd0 && b[p + 1] <= 0xd7))) p++;
    this.pos = p + 1 < b.length ? p : b.length;
  }

  /** Fails for a scan whose data ran out (truncated file or early marker) inside MCU `mcu` (0-based). */
  private scanDataMissing(reader: EntropyReader, mcu: number, totalMcus: number): never {
    const where =
      reader.pos + 1 >= this.bytes.length // at the end, or on a last lone FF
        ? `the file ends inside the scan data (truncated) at byte ${this.bytes.length}`
        : `the scan data stops at the marker FF ${hex(this.bytes[reader.pos + 1])} at byte ${reader.pos}`;
    const missing =
      mcu + 1 === totalMcus
        ? `the last MCU (${totalMcus} of ${totalMcus}) is incomplete`
        : `MCUs ${mcu + 1}–${totalMcus} of ${totalMcus} are incomplete or missing`;
    this.corrupt(`scan ${this.scanCount}: ${where}: ${missing}`);
  }

  private readRestartMarker(reader: EntropyReader, expected: number): void {
    reader.reset();
    const b = this.bytes;
    let p = reader.pos;
    while (p + 1 < b.length && !(b[p] === 0xff && b[p + 1] !== 0x00 && b[p + 1] !== 0xff)) p++;
    if (p + 1 >= b.length) this.corrupt(`scan ${this.scanCount}: the file ends where restart marker RST${expected} was expected (truncated)`);
    if (b[p + 1] !== 0xd0 + expected) {
      this.corrupt(`scan ${this.scanCount}: expected restart marker RST${expected} (FF ${hex(0xd0 + expected)}) at byte ${p}, found FF ${hex(b[p + 1])}`);
    }
    reader.pos = p + 2;
  }

  private checkProgression(scan: ScanState, count: number): void {
    const { spectralStart: ss, spectralEnd: se, approxHigh: ah, approxLow: al } = scan;
    let bad = false;
    if (ss === 0) bad = se !== 0;
    else bad = se < ss || se > 63 || count !== 1;
    if (ah !== 0 && al !== ah - 1) bad = true;
    if (al > 13) bad = true;
    if (bad) this.corrupt(`progressive scan ${this.scanCount + 1} has invalid parameters Ss=${ss} Se=${se} Ah=${ah} Al=${al} over ${count} component(s)`);
  }

  /** Inverse DCT, upsampling and colour conversion of the decoded coefficients. */
  toRgb(): RgbImage {
    const frame = this.frame!;
    const { width, height } = frame;
    const planes = frame.components.map((component) => {
      if (!component.scanned) this.corrupt(`component id ${component.id} never appears in a scan`);
      const plane = this.inverseTransform(component);
      return upsamplePlane(plane, frame.maxH / component.h, frame.maxV / component.v, width, height);
    });
    const image = createRgbImage(width, height);
    if (planes.length === 1) {
      greyToRgb(planes[0], image.data);
    } else if (planes.length === 4) {
      cmykToRgb(planes[0], planes[1], planes[2], planes[3], this.isYcck(), image.data);
    } else if (this.isRgbColorSpace()) {
      interleavePlanes(planes[0], planes[1], planes[2], image.data);
    } else {
      yccToRgb(planes[0], planes[1], planes[2], image.data);
    }
    return image;
  }

  /** libjpeg's colour-space guess for 3 components (jdapimin.c default_decompress_parms). */
  private isRgbColorSpace(): boolean {
    if (this.sawJfif) return false;
    if (this.adobeTransform >= 0) return this.adobeTransform === 0;
    const [a, b, c] = this.frame!.components.map((component) => component.id);
    return a === 0x52 && b === 0x47 && c === 0x42; // 'R', 'G', 'B'
  }

  /** libjpeg's guess for 4 components: CMYK without an Adobe segment or with transform 0, else YCCK. */
  private isYcck(): boolean {
    return this.adobeTransform > 0;
  }

  private inverseTransform(component: FrameComponent): SamplePlane {
    const blocksWide = Math.ceil(component.width / 8);
    const blocksHigh = Math.ceil(component.height / 8);
    const stride = blocksWide * 8;
    const data = new Uint8Array(stride * blocksHigh * 8);
    const multipliers = idctMultipliers(component.quantization!);
    const workspace = new Int32Array(64);
    for (let by = 0; by < blocksHigh; by++) {
      for (let bx = 0; bx < blocksWide; bx++) {
        const coefOffset = (by * component.blocksPerLine + bx) * 64;
        idctIslowBlock(component.coefficients, coefOffset, multipliers, data, by * 8 * stride + bx * 8, stride, workspace);
      }
    }
    return { data, stride, width: component.width, height: component.height };
  }
}
