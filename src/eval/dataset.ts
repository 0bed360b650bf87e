import { readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { UsageError } from '../errors.js';

/** Folders of labelled images (Node only): listing, labels CSV, splits. */

/** Image file extensions the dataset lister picks up. */
const IMAGE_EXTENSIONS = /\.(jpe?g|png)$/i;

export interface LabelledImage {
  file: string; // path
  label: number | null; // class index, null when unknown
}

/** The images of a folder (not recursive), sorted by name for a reproducible order. */
export function listImages(dir: string): string[] {
  let entries: string[];
  try {
    if (!statSync(dir).isDirectory()) throw new UsageError(`expected a folder of images, '${dir}' is a file`);
    entries = readdirSync(dir);
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new UsageError(`cannot read image folder '${dir}': ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const files = entries.filter((f) => IMAGE_EXTENSIONS.test(f)).sort();
  if (files.length === 0) throw new UsageError(`no .jpg/.jpeg/.png images in '${dir}'`);
  return files.map((f) => join(dir, f));
}

/** Split one CSV line (RFC 4180 quoting). */
export function splitCsvLine(line: string): string[] {
  const cells: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i];
    if (quoted) {
      if (ch === '"' && line[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else cell += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') {
      cells.push(cell);
      cell = '';
    } else cell += ch;
  }
  cells.push(cell);
  return cells;
}

/** Labels CSV with (at least) columns `file` and `class_index`: file name → class index. */
export function readLabelsCsv(csvPath: string): Map<string, number> {
  let text: string;
  try {
    text = readFileSync(csvPath, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read labels file '${csvPath}': ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '');
  if (lines.length === 0) throw new UsageError(`labels file '${csvPath}' is empty`);
  const header = splitCsvLine(lines[0]).map((h) => h.trim());
  const fileCol = header.indexOf('file');
  const classCol = header.indexOf('class_index');
  if (fileCol < 0 || classCol < 0) {
    throw new UsageError(`labels file '${csvPath}' needs columns 'file' and 'class_index', found: ${header.join(', ')}`);
  }
  const labels = new Map<string, number>();
  for (let i = 1; i < lines.length; i++) {
    const cells = splitCsvLine(lines[i]);
    const idx = Number(cells[classCol]);
    if (!Number.isInteger(idx) || idx < 0) {
      throw new UsageError(`labels file '${csvPath}' line ${i + 1}: class_index '${cells[classCol]}' is not a non-negative integer`);
    }
    labels.set(basename(cells[fileCol].trim()), idx);
  }
  return labels;
}

/**
 * Attach a class index to every image: from the labels CSV when given, else from a WordNet-id
 * file-name prefix (`n01440764_tench.JPEG`) looked up in the model's label names.
 */
export function labelImages(files: string[], modelLabels: string[], labelsCsv?: string): LabelledImage[] {
  if (labelsCsv) {
    const labels = readLabelsCsv(labelsCsv);
    return files.map((file) => {
      const label = labels.get(basename(file));
      if (label === undefined) throw new UsageError(`image '${basename(file)}' has no row in labels file '${labelsCsv}'`);
      if (label >= modelLabels.length) {
        throw new UsageError(
          `labels file '${labelsCsv}': class_index ${label} of '${basename(file)}' is out of range; the model has ${modelLabels.length} classes (0 … ${modelLabels.length - 1})`,
        );
      }
      return { file, label };
    });
  }
  const byWnid = new Map(modelLabels.map((name, i) => [name, i]));
  return files.map((file) => {
    const wnid = /^(n\d{8})/.exec(basename(file))?.[1];
    const label = wnid !== undefined ? byWnid.get(wnid) : undefined;
    if (label === undefined) {
      throw new UsageError(
        `cannot tell the class of '${basename(file)}': no labels CSV, and its name does not start with a WordNet id among the model's labels`,
      );
    }
    return { file, label };
  });
}

export const SPLITS = ['even', 'odd'] as const;
export type Split = (typeof SPLITS)[number];

/**
 * Half of a sorted image list: the images at even (0, 2, 4, …) or odd positions. Interleaving
 * keeps both halves spread over all classes, so one half can tune what the other half reports.
 */
export function selectSplit<T>(items: T[], split: Split | undefined): T[] {
  if (split === undefined) return items;
  if (!(SPLITS as readonly string[]).includes(split)) throw new UsageError(`split: expected 'even' or 'odd', got '${split}'`);
  return items.filter((_, i) => i % 2 === (split === 'even' ? 0 : 1));
}

/** `n` items spread evenly over the list (all of them when n ≥ length): a sample across every class of a sorted folder. */
export function spreadSample<T>(items: T[], n: number): T[] {
  if (n >= items.length) return items;
  return Array.from({ length: n }, (_, i) => items[Math.floor((i * items.length) / n)]);
}
