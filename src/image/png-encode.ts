import { PNG } from 'pngjs';
import type { RgbImage } from './rgb-image.js';

/** Encode an 8-bit RGB image as a PNG file (colour type 2, 8 bits, no alpha). */
export function encodeRgbPng(image: RgbImage): Uint8Array {
  const { width, height, data } = image;
  const png = new PNG({ width, height });
  const rgba = png.data; // [height, width, 4]
  for (let i = 0; i < width * height; i++) {
    rgba[i * 4] = data[i * 3];
    rgba[i * 4 + 1] = data[i * 3 + 1];
    rgba[i * 4 + 2] = data[i * 3 + 2];
    rgba[i * 4 + 3] = 255;
  }
  return PNG.sync.write(png, { colorType: 2 });
}
