import { existsSync } from 'node:fs';
import path from 'node:path';
import { UsageError } from '../errors.js';
import { softmax, topK } from '../eval/metrics.js';
import { checkImageFile, loadImage } from '../image/file.js';
import { modelCrop } from '../image/preprocess.js';
import type { ViTConfig } from '../model/types.js';
import { numPatches } from '../model/types.js';
import { figureSvg, renderFigurePng, stagePanels } from '../viz/figure.js';
import { cropTensor, traceTokens } from '../viz/trace.js';
import { intOption, stringOption, type CommandSpec, type Parsed } from './args.js';
import { MODEL_OPTIONS, openModel, printJson, writeOutputFile } from './common.js';
import { METHOD_OPTIONS, pruningFromOptions } from './pruning.js';

export const visualizeSpec: CommandSpec = {
  name: 'visualize',
  summary: 'Draw which patches a token-pruning method removes from an image, stage by stage, as a PNG.',
  usage:
    'vitprune visualize [--model M] --method NAME --keep|--budget|--gmacs|--schedule ... --out FILE.png ' +
    '[--scale N] [--columns N] [--font FILE] [--json] IMAGE',
  options: {
    ...MODEL_OPTIONS,
    ...METHOD_OPTIONS,
    out: { type: 'string', valueName: 'FILE', help: 'the PNG to write (required)' },
    scale: { type: 'string', valueName: 'N', help: 'zoom of the input crop in each panel (default: about 448 pixels per panel)' },
    columns: { type: 'string', valueName: 'N', default: '4', help: 'panels per row' },
    font: { type: 'string', valueName: 'FILE', help: 'a TrueType/OpenType font for the text, instead of the system fonts (none found: no text)' },
  },
  positionals: { name: 'IMAGE', min: 1 },
};

interface Prediction {
  index: number;
  label: string;
  description: string;
  score: number;
}

function top1(logits: Float32Array, cfg: ViTConfig): Prediction {
  const [index] = topK(logits, 1);
  return { index, label: cfg.labels[index], description: cfg.descriptions[index], score: softmax(logits)[index] };
}

function describe(p: Prediction): string {
  return `${p.description || p.label} ${(p.score * 100).toFixed(1)} %`;
}

export async function visualizeCommand({ values, positionals }: Parsed): Promise<void> {
  if (positionals.length > 1) throw new UsageError(`'vitprune visualize' draws one image, got ${positionals.length} (see --help)`);
  const [image] = positionals;
  const out = stringOption(values, 'out');
  if (!out) throw new UsageError("'vitprune visualize' needs --out FILE.png (see --help)");
  if (values.method === undefined) {
    throw new UsageError("'vitprune visualize' needs --method NAME and one of --keep, --budget, --gmacs, --schedule (see --help)");
  }
  const columns = intOption(values, 'columns', 4)!;
  const fontFile = stringOption(values, 'font');
  if (fontFile !== undefined && !existsSync(fontFile)) throw new UsageError(`--font: no such file '${fontFile}'`);
  checkImageFile(image); // before the model is loaded (or downloaded)
  const { model, runner } = await openModel(values);
  const cfg = model.config;
  const plan = (await pruningFromOptions(values, runner))!;
  const scale = intOption(values, 'scale', Math.max(1, Math.round(448 / cfg.preprocess.inputSize)))!;

  const crop = modelCrop(loadImage(image), cfg.preprocess);
  const input = cropTensor(crop, cfg.preprocess);
  const dense = traceTokens(runner, input, null);
  const pruned = traceTokens(runner, input, plan);
  const prediction = top1(pruned.logits, cfg);
  const densePrediction = top1(dense.logits, cfg);

  const removal = plan.removal;
  const panels = stagePanels(numPatches(cfg), pruned.stages, removal);
  const { svg, layout } = figureSvg(
    crop,
    cfg.patchSize,
    scale,
    panels,
    {
      title:
        `${path.basename(image)}: ${plan.method}, ${pruned.gmacs.toFixed(3)} of ${dense.gmacs.toFixed(3)} GMACs ` +
        `(${((100 * pruned.gmacs) / dense.gmacs).toFixed(1)} % of dense)`,
      lines: [`dense:  ${describe(densePrediction)}`, `pruned: ${describe(prediction)}`],
      removal,
    },
    columns,
  );
  const { png, hasText } = await renderFigurePng(svg, fontFile);
  if (!hasText && !values.quiet) process.stderr.write('warning: no font found (system or --font): the figure has no captions\n');
  writeOutputFile('--out', out, png);

  if (values.json) {
    printJson({
      image,
      out,
      method: plan.method,
      schedule: plan.settings,
      removal,
      gmacs: pruned.gmacs,
      denseGmacs: dense.gmacs,
      prediction,
      densePrediction,
      stages: pruned.stages.map((s) => ({
        after: s.after,
        ...(s.stage ? { stage: s.stage } : { hook: s.hook }),
        dropped: s.dropped,
      })),
      kept: pruned.kept,
    });
    return;
  }
  process.stdout.write(
    `${out}: ${panels.length} panels, ${layout.width}×${layout.height} px\n` +
      `  ${plan.method}: ${pruned.gmacs.toFixed(4)} GMACs of ${dense.gmacs.toFixed(4)} dense, ${pruned.kept.length} of ${numPatches(cfg)} patches kept\n` +
      `  dense   ${describe(densePrediction)}\n` +
      `  pruned  ${describe(prediction)}\n`,
  );
}
