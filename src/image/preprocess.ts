/**
 * timm's eval transform (crop_mode "center"), step by step as torchvision runs it on a PIL image:
 *
 *   Resize(floor(inputSize / cropPct))   shorter side → that size, longer side
 *                                        int(size · long / short), PIL bicubic/bilinear
 *   CenterCrop(inputSize)                offsets round((H − S) / 2), round((W − S) / 2) with
 *                                        Python's round (half to even); zero padding if the
 *                                        image is smaller than the crop
 *   ToTensor, Normalize(mean, std)       float32: (v / 255 − mean) / std, CHW
 */
import type { PreprocessConfig } from '../model/types.js';
import { resizePil, resizePilRegion } from './resize.js';
import type { RgbImage } from './rgb-image.js';

/** The shorter-side target of the resize: floor(inputSize / cropPct) (timm's scale_size). */
export function resizeTarget(cfg: Pick<PreprocessConfig, 'inputSize' | 'cropPct'>): number {
  return Math.floor(cfg.inputSize / cfg.cropPct);
}

/** torchvision's Resize(int) output size: shorter side = `shortSide`, longer side truncated. */
export function shorterSideSize(width: number, height: number, shortSide: number): { width: number; height: number } {
  if (width <= height) return { width: shortSide, height: Math.trunc((shortSide * height) / width) };
  return { width: Math.trunc((shortSide * width) / height), height: shortSide };
}

/** Resizes so that the shorter side is `shortSide` (no-op copy when already that size). */
export function resizeShorterSide(image: RgbImage, shortSide: number, filter: PreprocessConfig['interpolation']): RgbImage {
  const size = shorterSideSize(image.width, image.height, shortSide);
  return resizePil(image, size.width, size.height, filter);
}

/** Python's round(): nearest integer, ties to even. */
function roundHalfEven(x: number): number {
  const floor = Math.floor(x);
  const fraction = x - floor;
  if (fraction !== 0.5) return Math.round(x);
  return floor % 2 === 0 ? floor : floor + 1;
}

/**
 * torchvision CenterCrop offsets: (top, left) of the crop in the image; negative when the image
 * is smaller than the crop (torchvision pads with zeros: (S − W) // 2 on the left, the rest on
 * the right, likewise top/bottom).
 */
export function centerCropOffsets(width: number, height: number, size: number): { top: number; left: number } {
  const padLeft = size > width ? Math.floor((size - width) / 2) : 0;
  const padTop = size > height ? Math.floor((size - height) / 2) : 0;
  const paddedWidth = size > width ? size : width;
  const paddedHeight = size > height ? size : height;
  return {
    top: roundHalfEven((paddedHeight - size) / 2) - padTop,
    left: roundHalfEven((paddedWidth - size) / 2) - padLeft,
  };
}

/** Crops the size × size centre (pixels outside the image are black). */
export function centerCrop(image: RgbImage, size: number): RgbImage {
  const { top, left } = centerCropOffsets(image.width, image.height, size);
  return placeOnBlack(image, size, top, left);
}

/**
 * The size × size window of `image` whose top-left corner is at (top, left) in the image's
 * pixels; where the window leaves the image it is black.
 */
function placeOnBlack(image: RgbImage, size: number, top: number, left: number): RgbImage {
  const data = new Uint8Array(size * size * 3);
  for (let y = 0; y < size; y++) {
    const sy = top + y;
    if (sy < 0 || sy >= image.height) continue;
    const x0 = Math.max(0, -left);
    const x1 = Math.min(size, image.width - left);
    if (x1 <= x0) continue;
    const src = (sy * image.width + left + x0) * 3;
    data.set(image.data.subarray(src, src + (x1 - x0) * 3), (y * size + x0) * 3);
  }
  return { width: size, height: size, data };
}

/**
 * ToTensor + Normalize in float32 arithmetic like torch: x = (v / 255 − mean) / std, with each
 * operation rounded to float32.
 */
export function toNormalizedTensor(
  image: RgbImage,
  mean: readonly [number, number, number],
  std: readonly [number, number, number],
): Float32Array /* [3, height, width] */ {
  const pixels = image.width * image.height;
  const tensor = new Float32Array(3 * pixels);
  for (let c = 0; c < 3; c++) {
    const m = Math.fround(mean[c]);
    const s = Math.fround(std[c]);
    const lookup = new Float32Array(256); // value per uint8 level
    for (let v = 0; v < 256; v++) lookup[v] = Math.fround(Math.fround(v / 255) - m) / s;
    const plane = c * pixels;
    for (let i = 0; i < pixels; i++) tensor[plane + i] = lookup[image.data[i * 3 + c]];
  }
  return tensor;
}

/**
 * The eval transform up to the crop the model sees: resize of the shorter side, centre crop.
 * Only the part of the resized image that the crop keeps is computed (bit-identical to
 * resizing it whole), so a 65535×1 image costs what a 224×224 crop costs, not the
 * 16,776,960×256 resize it implies.
 */
export function modelCrop(image: RgbImage, cfg: PreprocessConfig): RgbImage /* [S, S, 3] */ {
  const size = cfg.inputSize;
  const resized = shorterSideSize(image.width, image.height, resizeTarget(cfg));
  const { top, left } = centerCropOffsets(resized.width, resized.height, size);
  const kept = {
    left: Math.max(0, left),
    top: Math.max(0, top),
    width: Math.min(resized.width, left + size) - Math.max(0, left),
    height: Math.min(resized.height, top + size) - Math.max(0, top),
  };
  const inside = resizePilRegion(image, resized.width, resized.height, cfg.interpolation, kept); // [kept.height, kept.width, 3]
  if (kept.width === size && kept.height === size) return inside;
  return placeOnBlack(inside, size, top - kept.top, left - kept.left);
}

/** The whole eval transform on a decoded image. */
export function preprocess(image: RgbImage, cfg: PreprocessConfig): Float32Array /* [3, S, S] */ {
  return toNormalizedTensor(modelCrop(image, cfg), cfg.mean, cfg.std);
}
