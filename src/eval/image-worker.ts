/**
 * A thread of an ImageWorkerPool (image-workers.ts) (Node only): builds the variants once, then
 * for each image it is sent reads, decodes and preprocesses it and runs every variant on it.
 */
import { loadImageTensor } from '../image/file.js';
import { currentPlatform } from '../kernels/platform.js';
import { runVariants } from './evaluate.js';
import type { ImageWorkerAnswer, ImageWorkerRequest, VariantSetup } from './image-workers.js';

const parent = (await currentPlatform()).parent();
const reply = (answer: ImageWorkerAnswer): void => parent.post(answer);
const describe = (error: unknown) => (error instanceof Error ? { name: error.name, message: error.message } : { name: 'Error', message: String(error) });

let setup: Promise<VariantSetup> | null = null;

parent.onMessage(async (data) => {
  const request = data as ImageWorkerRequest;
  if (request.kind === 'setup') {
    setup = import(request.module).then((module) => (module[request.name] as (arg: unknown) => Promise<VariantSetup>)(request.arg));
    setup.then(
      () => reply({ kind: 'ready' }),
      (error) => reply({ kind: 'failed', error: describe(error) }),
    );
    return;
  }
  const { runner, variants } = await setup!;
  const { index, file } = request;
  let input: Float32Array;
  try {
    input = loadImageTensor(file, runner.config.preprocess);
  } catch (error) {
    reply({ kind: 'result', index, error: describe(error) });
    return;
  }
  try {
    reply({ kind: 'result', index, results: runVariants(runner, variants, input, index) });
  } catch (error) {
    // Not an unreadable image: the caller fails the evaluation with it.
    const { message } = describe(error);
    reply({ kind: 'result', index, error: { name: 'Error', message } });
  }
});
