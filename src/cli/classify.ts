import { loadImageTensor } from '../image/file.js';
import { softmax, topK } from '../eval/metrics.js';
import { intOption, type CommandSpec, type Parsed } from './args.js';
import { MODEL_OPTIONS, openModel, printJson } from './common.js';
import { METHOD_OPTIONS, pruningFromOptions } from './pruning.js';

export const classifySpec: CommandSpec = {
  name: 'classify',
  summary: 'Classify images with a ViT/DeiT model and print the top predictions.',
  usage: 'vitprune classify [--model M] [--top K] [--method NAME --keep|--budget|--gmacs|--schedule ...] [--json] IMAGE...',
  options: {
    ...MODEL_OPTIONS,
    top: { type: 'string', valueName: 'K', default: '5', help: 'number of predictions per image' },
    ...METHOD_OPTIONS,
  },
  positionals: { name: 'IMAGE', min: 1 },
};

export async function classifyCommand({ values, positionals }: Parsed): Promise<void> {
  const k = intOption(values, 'top', 5)!;
  const { model, runner } = await openModel(values);
  const { labels, descriptions, preprocess } = model.config;
  const plan = await pruningFromOptions(values, runner);
  const results = positionals.map((file, i) => {
    const { logits, gmacs } = runner.forward(loadImageTensor(file, preprocess), plan?.hooks(i));
    const probs = softmax(logits);
    const predictions = topK(logits, k).map((index) => ({
      index,
      label: labels[index],
      description: descriptions[index],
      score: probs[index],
    }));
    return { file, ...(plan && { method: plan.method, gmacs }), predictions };
  });
  if (values.json) {
    printJson(results);
    return;
  }
  for (const { file, predictions, gmacs } of results) {
    process.stdout.write(`${file}${plan ? ` (${plan.method}, ${gmacs!.toFixed(4)} GMACs)` : ''}\n`);
    for (const p of predictions) {
      const name = p.description ? `${p.label} (${p.description})` : p.label;
      process.stdout.write(`  ${(p.score * 100).toFixed(2).padStart(6)} %  ${String(p.index).padStart(4)}  ${name}\n`);
    }
  }
}
