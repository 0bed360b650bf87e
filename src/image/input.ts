import { ImageError } from '../errors.js';
import { decodeImage } from './decode.js';
import type { RgbImage } from './rgb-image.js';
import { isImageData, rgbFromDrawable, rgbFromImageData, type WebImage } from './web-image.js';

/**
 * An image as the library takes it: a JPEG or PNG file's bytes (read by our decoders, so that
 * results equal Node's everywhere), an image decoded to 8-bit RGB, or, in browsers, an
 * ImageData, ImageBitmap, <img>, <canvas> or OffscreenCanvas (web-image.ts).
 */
export type ImageInput = Uint8Array | ArrayBuffer | RgbImage | WebImage;

/** The 8-bit RGB pixels of `image`; `where` names it in messages. */
export function rgbOfInput(image: ImageInput, where = 'image'): RgbImage {
  if (image instanceof Uint8Array) return decodeImage(image, where);
  if (image instanceof ArrayBuffer) return decodeImage(new Uint8Array(image), where);
  if (typeof image !== 'object' || image === null || !('width' in image) || !('height' in image)) {
    throw new ImageError(
      `${where}: expected a JPEG/PNG file's bytes, an RgbImage, ImageData, ImageBitmap, <img>, <canvas> or OffscreenCanvas, found ${describe(image)}`,
    );
  }
  if (isImageData(image)) return rgbFromImageData(image, where);
  if ('data' in image && image.data instanceof Uint8Array) return image as RgbImage;
  return rgbFromDrawable(image, where);
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value !== 'object') return typeof value;
  return value.constructor?.name ?? 'an object';
}
