import { ImageError } from '../errors.js';
import { DEFAULT_MAX_PIXELS } from './decode.js';
import { createRgbImage, type RgbImage } from './rgb-image.js';

/**
 * Images a browser has already decoded — ImageData, and what a canvas can draw: ImageBitmap,
 * <img>, <canvas>, OffscreenCanvas — to 8-bit RGB. ImageData is read directly; the others are
 * drawn at their natural size on an OffscreenCanvas (or a <canvas> where there is none) and read
 * back as sRGB. Alpha is dropped, as PIL's `convert('RGB')` drops it. The browser's decoder (and
 * its colour management) made these pixels: for results equal to Node's, give the file's bytes,
 * which our decoders read.
 *
 * The DOM types are declared here by their shape: this file compiles without the DOM library.
 */

/** An ImageData: RGBA, 4 bytes a pixel. */
export interface ImageDataLike {
  readonly width: number;
  readonly height: number;
  readonly data: Uint8ClampedArray; // [height, width, 4]
  readonly colorSpace?: string;
}

/** An ImageBitmap, <img>, <canvas> or OffscreenCanvas: a source `drawImage` takes. */
export interface DrawableImage {
  readonly width: number;
  readonly height: number;
  readonly naturalWidth?: number; // <img>: the image's own size (width/height are the element's)
  readonly naturalHeight?: number;
  readonly complete?: boolean; // <img>: done loading
}

export type WebImage = ImageDataLike | DrawableImage;

export function isImageData(image: object): image is ImageDataLike {
  return 'data' in image && image.data instanceof Uint8ClampedArray;
}

/** RGB of an ImageData. */
export function rgbFromImageData(image: ImageDataLike, where = 'image'): RgbImage {
  const { width, height, data } = image;
  checkSize(width, height, where);
  if (data.length !== width * height * 4) {
    throw new ImageError(`${where}: expected ImageData of ${width}×${height} to hold ${width * height * 4} RGBA bytes, found ${data.length}`);
  }
  if (image.colorSpace !== undefined && image.colorSpace !== 'srgb') {
    throw new ImageError(`${where}: expected ImageData in the srgb colour space (the models' inputs are sRGB), found ${image.colorSpace}`);
  }
  const rgb = createRgbImage(width, height);
  for (let pixel = 0, n = width * height; pixel < n; pixel++) {
    rgb.data[3 * pixel] = data[4 * pixel];
    rgb.data[3 * pixel + 1] = data[4 * pixel + 1];
    rgb.data[3 * pixel + 2] = data[4 * pixel + 2];
  }
  return rgb;
}

/** The parts of a 2D canvas used here. */
interface Canvas2d {
  drawImage(image: DrawableImage, dx: number, dy: number): void;
  getImageData(x: number, y: number, width: number, height: number, settings?: { colorSpace: string }): ImageDataLike;
}
interface CanvasLike {
  width: number;
  height: number;
  getContext(kind: '2d', options?: { willReadFrequently: boolean }): Canvas2d | null;
}

/** RGB of an ImageBitmap, <img>, <canvas> or OffscreenCanvas, drawn on a canvas at its natural size. */
export function rgbFromDrawable(image: DrawableImage, where = 'image'): RgbImage {
  if (image.complete === false) throw new ImageError(`${where}: expected a loaded <img>, this one is still loading (await img.decode() first)`);
  const width = image.naturalWidth ?? image.width;
  const height = image.naturalHeight ?? image.height;
  checkSize(width, height, where);
  const canvas = createCanvas(width, height, where);
  const context = canvas.getContext('2d', { willReadFrequently: true });
  if (!context) throw new ImageError(`${where}: expected a 2D canvas context to draw the image on, the browser gave none`);
  let pixels: ImageDataLike;
  try {
    context.drawImage(image, 0, 0);
    pixels = context.getImageData(0, 0, width, height, { colorSpace: 'srgb' });
  } catch (cause) {
    const reason =
      (cause as Error).name === 'SecurityError'
        ? 'it comes from another origin without CORS, so its pixels cannot be read (serve it with CORS and set crossOrigin)'
        : (cause as Error).message;
    throw new ImageError(`${where}: expected an ImageBitmap, <img>, <canvas> or OffscreenCanvas whose pixels can be read: ${reason}`, { cause });
  }
  return rgbFromImageData(pixels, where);
}

function createCanvas(width: number, height: number, where: string): CanvasLike {
  const scope = globalThis as {
    OffscreenCanvas?: new (width: number, height: number) => CanvasLike;
    document?: { createElement(tag: 'canvas'): CanvasLike };
  };
  if (scope.OffscreenCanvas) return new scope.OffscreenCanvas(width, height);
  if (scope.document) {
    const canvas = scope.document.createElement('canvas');
    canvas.width = width;
    canvas.height = height;
    return canvas;
  }
  throw new ImageError(
    `${where}: drawing an image to read its pixels needs OffscreenCanvas or a document, this runtime has neither; give the file's bytes or an RgbImage`,
  );
}

function checkSize(width: number, height: number, where: string): void {
  if (!(Number.isInteger(width) && Number.isInteger(height) && width > 0 && height > 0)) {
    throw new ImageError(`${where}: expected an image of at least 1×1 pixels, found ${width}×${height}`);
  }
  if (width * height > DEFAULT_MAX_PIXELS) {
    throw new ImageError(`${where}: expected at most ${DEFAULT_MAX_PIXELS} pixels, found ${width}×${height} = ${width * height}`);
  }
}
