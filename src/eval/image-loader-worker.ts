/** The thread of a BackgroundImageLoader of image-loader.ts (Node only): reads, decodes and preprocesses one image per request. */
import { loadImageTensor } from '../image/file.js';
import { currentPlatform } from '../kernels/platform.js';
import type { LoadAnswer, LoadRequest } from './image-loader.js';

const parent = (await currentPlatform()).parent();

parent.onMessage((data) => {
  const { id, file, preprocess } = data as LoadRequest;
  let answer: LoadAnswer;
  try {
    answer = { id, tensor: loadImageTensor(file, preprocess) };
  } catch (error) {
    const { name, message } = error instanceof Error ? error : { name: 'Error', message: String(error) };
    answer = { id, error: { name, message } };
  }
  parent.post(answer);
});
