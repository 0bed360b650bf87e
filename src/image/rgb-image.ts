/** An 8-bit RGB image, row-major and interleaved (what PIL's `Image.convert('RGB')` holds). */
export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array; // [height, width, 3]
}

/** Allocates a black image. */
export function createRgbImage(width: number, height: number): RgbImage {
  return { width, height, data: new Uint8Array(width * height * 3) };
}
