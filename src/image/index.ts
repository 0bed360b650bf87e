/**
 * vitprune/image: images to model inputs as timm prepares them: JPEG (libjpeg-turbo exact) and
 * PNG decoding from bytes, PIL's bicubic/bilinear resize, centre crop, normalisation. Reading
 * files: vitprune/node.
 */
export { decodeImage, DEFAULT_MAX_PIXELS, readImageInfo, type DecodeOptions, type ImageFormat, type ImageInfo } from './decode.js';
export { centerCrop, modelCrop, preprocess, resizeShorterSide, toNormalizedTensor } from './preprocess.js';
export { resizePil, type ResampleFilter } from './resize.js';
export { createRgbImage, type RgbImage } from './rgb-image.js';
export { encodeRgbPng } from './png-encode.js';
