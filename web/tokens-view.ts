import type { Classification, RgbPixels } from './protocol.js';

/**
 * The model's input crop, once per removal stage, with every patch removed up to that stage
 * greyed out (dropped, merged into another token or fused into one: the patch no longer has a
 * token of its own). The first panel is the crop as the model sees it.
 */

const GREY = 'rgba(96, 96, 96, 0.8)';

function cropCanvas(crop: RgbPixels): HTMLCanvasElement {
  const canvas = document.createElement('canvas');
  canvas.width = crop.width;
  canvas.height = crop.height;
  const rgba = new ImageData(crop.width, crop.height);
  for (let p = 0, q = 0; p < crop.width * crop.height; p++, q += 3) {
    rgba.data[4 * p] = crop.data[q];
    rgba.data[4 * p + 1] = crop.data[q + 1];
    rgba.data[4 * p + 2] = crop.data[q + 2];
    rgba.data[4 * p + 3] = 255;
  }
  canvas.getContext('2d')!.putImageData(rgba, 0, 0);
  return canvas;
}

function panel(source: HTMLCanvasElement, caption: string, removed: Set<number>, patchSize: number): HTMLElement {
  const figure = document.createElement('figure');
  const canvas = document.createElement('canvas');
  canvas.width = source.width;
  canvas.height = source.height;
  const context = canvas.getContext('2d')!;
  context.drawImage(source, 0, 0);
  const side = Math.floor(source.width / patchSize);
  context.fillStyle = GREY;
  for (const p of removed) context.fillRect((p % side) * patchSize, Math.floor(p / side) * patchSize, patchSize, patchSize);
  const text = document.createElement('figcaption');
  text.textContent = caption;
  figure.append(canvas, text);
  return figure;
}

/** Replaces the children of `container` by one panel per stage of `result`. */
export function showStages(container: HTMLElement, result: Classification): void {
  const source = cropCanvas(result.crop);
  const side = Math.floor(result.crop.width / result.patchSize);
  const patches = side * side;
  const removed = new Set<number>();
  const panels = [panel(source, `input: ${patches} patches`, removed, result.patchSize)];
  for (const stage of result.stages) {
    for (const p of stage.removed) removed.add(p);
    const where = stage.name === 'attention' ? `in block ${stage.after}` : `after block ${stage.after}`;
    const label = stage.name === 'S' || stage.name === 'I' ? ` (${stage.name})` : '';
    panels.push(panel(source, `${where}${label}: −${stage.removed.length}, ${patches - removed.size} left`, removed, result.patchSize));
  }
  container.replaceChildren(...panels);
}
