import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ImageError } from '../src/errors.js';
import { decodeImage } from '../src/image/decode.js';
import { crc32 } from '../src/image/png.js';
import { encodePng, pngChunk, testPattern } from './image-writers.js';
import { pngCases } from './png-cases.js';

const FIXTURE_IMAGES = path.resolve(import.meta.dirname, '../fixtures/images');
const digest = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex').slice(0, 16);

function refusal(bytes: Uint8Array, file = 'bad.png'): string {
  try {
    decodeImage(bytes, file);
  } catch (error) {
    expect(error).toBeInstanceOf(ImageError);
    return (error as Error).message;
  }
  throw new Error(`${file} decoded; expected an ImageError`);
}

/** sha256 (16 hex digits) of `Image.open(f).convert('RGB').tobytes()` with Pillow 9.4 (Debian bookworm), in pngCases() order. */
const PIL_DIGESTS = [
  'b66645a0a2b09538',
  'f23996825656ca43',
  'c98a60d5e737690c',
  '8acbe0c92e9b0a53',
  'e0b93f2ef4b04dbc',
  '4164f10233651e6c',
  'cf8dd50d8a2d9c84',
  '8acbe0c92e9b0a53',
  '5861623c7b90cb85',
  '4164f10233651e6c',
  'cf8dd50d8a2d9c84',
  '7821e5300c9f546e',
  '6fc86d30a5db3f44',
  '785ac03fb2f8c95e',
  'e8164b39e8266711',
  'c5cf75c89e8463ee',
  '70e2f53f616f00f7',
  'b66645a0a2b09538',
  'f23996825656ca43',
  'c98a60d5e737690c',
  '8acbe0c92e9b0a53',
  'e0b93f2ef4b04dbc',
  '4164f10233651e6c',
  'cf8dd50d8a2d9c84',
  '8acbe0c92e9b0a53',
  '5861623c7b90cb85',
  '4164f10233651e6c',
  'cf8dd50d8a2d9c84',
  '7821e5300c9f546e',
  '6fc86d30a5db3f44',
  '785ac03fb2f8c95e',
  'e8164b39e8266711',
  'c5cf75c89e8463ee',
  '70e2f53f616f00f7',
  'bc71c09ecba8497f',
  'bc71c09ecba8497f',
  'bea62a6667b4ed4d',
  'bc71c09ecba8497f',
];

describe('PNG decoder (png.ts) against PIL', () => {
  const cases = pngCases();

  it('has a PIL digest for every case', () => {
    expect(cases.length).toBe(PIL_DIGESTS.length);
  });

  it.each(cases.map((c, i) => [c.name, i] as const))('%s: the RGB bytes of PIL', (name, i) => {
    const image = decodeImage(cases[i].bytes, `${name}.png`);
    if (name.includes('colour type 0, 16-bit')) {
      // The known difference: PIL opens 16-bit grey as mode "I" and clips it in I → RGB; we
      // take the high byte, as for every other 16-bit type. It must then equal the 8-bit grey
      // case's high bytes, which PIL checks above.
      expect(digest(image.data)).not.toBe(PIL_DIGESTS[i]);
      return;
    }
    expect(digest(image.data)).toBe(PIL_DIGESTS[i]);
  });

  it('decodes the sample photos as PIL does (chelsea.png, coffee.png)', () => {
    for (const [name, expected] of [
      ['chelsea.png', '416b729128bfb2c3'],
      ['coffee.png', '0ce2b51640b9c95f'],
    ]) {
      const file = path.join(FIXTURE_IMAGES, name);
      expect(digest(decodeImage(readFileSync(file), file).data), name).toBe(expected);
    }
  });
});

describe('PNG decoder: leniency and refusals', () => {
  const width = 13;
  const height = 9;
  const good = encodePng({ width, height, colorType: 2, bitDepth: 8, samples: testPattern(width, height), filters: [0, 1, 2, 3, 4] });
  const expected = decodeImage(good, 'good.png');
  const ihdrEnd = 8 + 25;
  const idatStart = ihdrEnd;
  const idatLength = new DataView(good.buffer).getUint32(idatStart);
  const idatData = good.subarray(idatStart + 8, idatStart + 8 + idatLength);

  it('joins IDAT chunks split anywhere, even around other chunks', () => {
    const split = Uint8Array.from([
      ...good.subarray(0, ihdrEnd),
      ...pngChunk('IDAT', idatData.subarray(0, 5)),
      ...pngChunk('tEXt', new TextEncoder().encode('Comment\0between IDATs')),
      ...pngChunk('IDAT', idatData.subarray(5, 6)),
      ...pngChunk('IDAT', idatData.subarray(6)),
      ...pngChunk('IEND', new Uint8Array(0)),
    ]);
    expect(decodeImage(split, 'split.png')).toEqual(expected);
  });

  it('leaves rows black when the zlib stream ends cleanly before them (as PIL)', () => {
    const twoRows = encodePng({ width, height: 2, colorType: 2, bitDepth: 8, samples: testPattern(width, 2) });
    const header = Uint8Array.from(twoRows);
    new DataView(header.buffer).setUint32(20, height); // IHDR height 2 → 9
    new DataView(header.buffer).setUint32(29, crc32(header.subarray(12, 29)));
    const image = decodeImage(header, 'short.png');
    expect(image.data.subarray(0, width * 2 * 3)).toEqual(testPattern(width, 2));
    expect(image.data.subarray(width * 2 * 3).every((v) => v === 0)).toBe(true);
  });

  it('refuses a bad IHDR CRC, filter type, interlace or filter method, zlib header and damaged deflate data, saying what was expected', () => {
    const flipped = (at: number, value?: number) => {
      const copy = Uint8Array.from(good);
      copy[at] = value ?? copy[at] ^ 0x10;
      return copy;
    };
    expect(refusal(flipped(17))).toMatch(/bad\.png: corrupt PNG: the IHDR chunk at byte 8 has CRC [0-9A-F]{8}, its data gives [0-9A-F]{8}/);
    const withIhdr = (edit: (ihdr: Uint8Array) => void) => {
      const copy = Uint8Array.from(good);
      edit(copy.subarray(16, 29));
      new DataView(copy.buffer).setUint32(29, crc32(copy.subarray(12, 29)));
      return copy;
    };
    expect(refusal(withIhdr((h) => (h[12] = 2)))).toMatch(/interlace method 2; expected 0 \(none\) or 1 \(Adam7\)/);
    expect(refusal(withIhdr((h) => (h[11] = 1)))).toMatch(/filter method 1; expected 0/);
    expect(refusal(withIhdr((h) => (h[8] = 3)))).toMatch(/colour type 2 with bit depth 3 is not a valid combination; expected 0 \(grey\): 1\/2\/4\/8\/16/);
    expect(refusal(withIhdr((h) => new DataView(h.buffer, h.byteOffset).setUint32(0, 0)))).toMatch(/IHDR gives the size 0×9; expected sides from 1/);
    expect(refusal(flipped(idatStart + 8, 0x79))).toMatch(/does not start with a zlib header .*found 79/);
    const badFilter = encodePng({ width: 2, height: 2, colorType: 0, bitDepth: 8, samples: [1, 2, 3, 4], filters: [0] });
    const raw = Uint8Array.of(0, 1, 2, 7, 3, 4); // row 1 has filter type 7
    const refiltered = Uint8Array.from([...badFilter.subarray(0, 33), ...pngChunk('IDAT', zlibStored(raw)), ...pngChunk('IEND', new Uint8Array(0))]);
    expect(refusal(refiltered)).toMatch(/corrupt PNG: row 1 has filter type 7; expected 0–4/);
    expect(
      refusal(
        Uint8Array.from([
          ...good.subarray(0, ihdrEnd),
          ...pngChunk('IDAT', Uint8Array.of(0x78, 0x9c, 0xff, 0xff, 0xff)),
          ...pngChunk('IEND', new Uint8Array(0)),
        ]),
      ),
    ).toMatch(/corrupt PNG: the compressed image data is damaged \(deflate: [a-z /]+\) after 0 of 9 rows/);
    expect(refusal(good.subarray(0, ihdrEnd))).toMatch(/expected image data \(IDAT chunks\), found none/);
    expect(refusal(good.subarray(0, idatStart + 8 + 10))).toMatch(/truncated PNG: the file ends inside the image data; 0 of 9 rows were decoded/);
  });

  it('refuses damaged files with our own messages only (deterministic fuzz, 500 files)', () => {
    let seed = 99;
    const random = (n: number) => {
      seed = (Math.imul(seed, 1103515245) + 12345) & 0x7fffffff;
      return seed % n;
    };
    let refused = 0;
    for (let trial = 0; trial < 500; trial++) {
      const bytes = Uint8Array.from(trial % 2 ? good : pngCases()[20 + (trial % 10)].bytes);
      for (let k = 0; k <= random(3); k++) bytes[8 + random(bytes.length - 8)] ^= 1 << random(8);
      try {
        decodeImage(trial % 3 ? bytes : bytes.subarray(0, random(bytes.length)), 'fuzz.png');
      } catch (error) {
        expect(error).toBeInstanceOf(ImageError);
        expect((error as Error).message).toMatch(/^fuzz\.png: ((corrupt|truncated) PNG: |not a JPEG or PNG image)/);
        refused++;
      }
    }
    expect(refused).toBeGreaterThan(100);
  });
});

/** The deflate "stored" encoding of `raw` in a zlib stream (no compression). */
function zlibStored(raw: Uint8Array): Uint8Array {
  return Uint8Array.from([0x78, 0x01, 0x01, raw.length & 0xff, raw.length >> 8, ~raw.length & 0xff, (~raw.length >> 8) & 0xff, ...raw, 0, 0, 0, 0]);
}
