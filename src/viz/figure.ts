import type { RgbImage } from '../image/rgb-image.js';
import { encodeRgbPng } from '../image/png-encode.js';
import type { Removal } from '../prune/method.js';
import { importOptional } from '../util/optional.js';
import type { TokenStage } from './trace.js';

/**
 * The token-pruning figure (as in the Zero-TPrune paper): the model's input crop once per
 * stage, patches removed so far greyed out, patches removed at this stage tinted red, and a last
 * panel with the patches kept. Panel pixels are computed here (nearest-neighbour zoom, then the
 * marks), embedded as PNG data URIs in an SVG that adds the captions, and the SVG is rendered
 * to PNG by resvg at 1:1, so every panel pixel reaches the file unchanged.
 *
 * resvg is an optional package, loaded when a figure is rendered.
 *
 * Text needs a font: resvg loads the system's fonts (or only `fontFile` if given) and falls back
 * to any font it found. With none at all it draws no text; `renderFigurePng` reports that
 * (`hasText: false`) and the caller should say so. Nothing is drawn with a built-in bitmap font.
 */

export const PATCH_KEPT = 0;
export const PATCH_DROPPED_EARLIER = 1;
export const PATCH_DROPPED_NOW = 2;

const GREY = 128; // dropped earlier: 75 % of the way to mid-grey
const GREY_SHARE = 0.75;
const GREY_OUTLINE = [96, 96, 96] as const;
const RED = [230, 30, 30] as const; // dropped now: 50 % of the way to red
const RED_SHARE = 0.5;
const RED_OUTLINE = [170, 0, 0] as const;

/**
 * The crop zoomed `scale`× with each patch marked: kept patches are the crop's pixels unchanged,
 * removed ones are blended (grey or red) with a thin outline on their own border pixels.
 *   crop [S, S, 3], marks [(S / patchSize)²] one of PATCH_*  →  [S·scale, S·scale, 3]
 */
export function markPatches(crop: RgbImage, patchSize: number, scale: number, marks: Uint8Array): RgbImage {
  const side = crop.width / patchSize;
  const size = crop.width * scale;
  const cell = patchSize * scale; // patch side in output pixels
  const outline = Math.max(1, Math.floor(scale / 2));
  const out = new Uint8Array(size * size * 3);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const src = (Math.floor(y / scale) * crop.width + Math.floor(x / scale)) * 3;
      const dst = (y * size + x) * 3;
      const mark = marks[Math.floor(y / cell) * side + Math.floor(x / cell)];
      if (mark === PATCH_KEPT) {
        out[dst] = crop.data[src];
        out[dst + 1] = crop.data[src + 1];
        out[dst + 2] = crop.data[src + 2];
        continue;
      }
      const cx = x % cell;
      const cy = y % cell;
      const onBorder = cx < outline || cy < outline || cx >= cell - outline || cy >= cell - outline;
      for (let c = 0; c < 3; c++) {
        const v = crop.data[src + c];
        if (mark === PATCH_DROPPED_EARLIER) out[dst + c] = onBorder ? GREY_OUTLINE[c] : Math.round(v + (GREY - v) * GREY_SHARE);
        else out[dst + c] = onBorder ? RED_OUTLINE[c] : Math.round(v + (RED[c] - v) * RED_SHARE);
      }
    }
  }
  return { width: size, height: size, data: out };
}

export interface Panel {
  caption: string;
  marks: Uint8Array; // [patches] PATCH_* per patch
}

/** How a method removes tokens: only the wording of captions and legend changes. */

/** One panel for the input, one per stage that removed patches, one for the patches kept. */
export function stagePanels(patches: number, stages: readonly TokenStage[], removal: Removal = 'dropped'): Panel[] {
  const marks = new Uint8Array(patches);
  const panels: Panel[] = [{ caption: `input: ${patches} patches`, marks: marks.slice() }];
  const verb = removal === 'dropped' ? '' : ` ${removal}`;
  for (const s of stages) {
    if (s.dropped.length === 0) continue;
    for (let p = 0; p < patches; p++) if (marks[p] === PATCH_DROPPED_NOW) marks[p] = PATCH_DROPPED_EARLIER;
    for (const p of s.dropped) marks[p] = PATCH_DROPPED_NOW;
    const where = s.hook === 'attention' ? `block ${s.after}, after attention` : `after block ${s.after}`;
    const stage = s.stage ? `, ${s.stage}-stage` : '';
    panels.push({ caption: `${where}${stage}: −${s.dropped.length}${verb}`, marks: marks.slice() });
  }
  for (let p = 0; p < patches; p++) if (marks[p] !== PATCH_KEPT) marks[p] = PATCH_DROPPED_EARLIER;
  const kept = marks.filter((m) => m === PATCH_KEPT).length;
  panels.push({ caption: removal === 'dropped' ? `kept: ${kept} of ${patches} patches` : `left: ${kept} of ${patches} patch tokens`, marks });
  return panels;
}

const MARGIN = 16;
const GAP = 16; // between panels
const MIN_CELL = 240; // a panel's column is at least this wide, for its caption
const TITLE_SIZE = 17;
const TEXT_SIZE = 14;
const LINE = 20; // text line height
const CAPTION = 22; // caption band above each panel
const LEGEND_SWATCH = 12;

export interface FigureLayout {
  width: number;
  height: number;
  panelSize: number; // side of a panel's image in pixels
  headerLines: number;
  /** Top-left corner of panel i's column (its caption starts there). */
  cellOrigin(i: number): { x: number; y: number };
  /** Top-left corner of panel i's image (centred in its column, under the caption). */
  panelOrigin(i: number): { x: number; y: number };
}

/**
 * Where everything goes: a header (title, `headerLines` lines, legend), then panels in rows of
 * `columns`; the figure is at least `minWidth` wide (for the header text).
 */
export function figureLayout(panels: number, panelSize: number, columns: number, headerLines: number, minWidth = 0): FigureLayout {
  const cols = Math.max(1, Math.min(columns, panels));
  const rows = Math.ceil(panels / cols);
  const cell = Math.max(panelSize, MIN_CELL);
  const header = MARGIN + LINE * (1 + headerLines) + LINE + GAP / 2; // title, lines, legend
  return {
    width: Math.max(2 * MARGIN + cols * cell + (cols - 1) * GAP, Math.ceil(minWidth)),
    height: header + rows * (CAPTION + panelSize) + (rows - 1) * GAP + MARGIN,
    panelSize,
    headerLines,
    cellOrigin(i) {
      return { x: MARGIN + (i % cols) * (cell + GAP), y: header + Math.floor(i / cols) * (CAPTION + panelSize + GAP) };
    },
    panelOrigin(i) {
      const { x, y } = this.cellOrigin(i);
      return { x: x + Math.floor((cell - panelSize) / 2), y: y + CAPTION };
    },
  };
}

export interface FigureText {
  title: string;
  lines: string[]; // under the title (predictions, GMACs)
  removal?: Removal; // the legend's verb (default "dropped")
}

/** The SVG document of the figure: panel images as PNG data URIs, captions as text. */
export function figureSvg(
  crop: RgbImage,
  patchSize: number,
  scale: number,
  panels: readonly Panel[],
  text: FigureText,
  columns: number,
): { svg: string; layout: FigureLayout } {
  // DejaVu Sans advances average ≈ 0.62 em (bold ≈ 0.68 em): enough room for the header text.
  const textWidth = Math.max(text.title.length * 0.68 * TITLE_SIZE, ...text.lines.map((l) => l.length * 0.62 * TEXT_SIZE));
  const layout = figureLayout(panels.length, crop.width * scale, columns, text.lines.length, 2 * MARGIN + textWidth);
  const font = `font-family="DejaVu Sans, Liberation Sans, Arial, Helvetica, sans-serif"`;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${layout.width}" height="${layout.height}" viewBox="0 0 ${layout.width} ${layout.height}">`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    `<g ${font} fill="#222222">`,
    `<text x="${MARGIN}" y="${MARGIN + TITLE_SIZE}" font-size="${TITLE_SIZE}" font-weight="bold">${escapeXml(text.title)}</text>`,
    ...text.lines.map((line, i) => `<text x="${MARGIN}" y="${MARGIN + TITLE_SIZE + LINE * (i + 1)}" font-size="${TEXT_SIZE}">${escapeXml(line)}</text>`),
  ];
  const verb = text.removal ?? 'dropped';
  const legendY = MARGIN + TITLE_SIZE + LINE * (text.lines.length + 1);
  const legend: [readonly number[], readonly number[], string][] = [
    [RED.map((c) => Math.round(c + (255 - c) * 0.3)), RED_OUTLINE, `${verb} at this stage`],
    [[GREY + 32, GREY + 32, GREY + 32], GREY_OUTLINE, `${verb} earlier`],
  ];
  legend.forEach(([fill, stroke, label], i) => {
    const x = MARGIN + i * 200;
    parts.push(
      `<rect x="${x + 0.5}" y="${legendY - LEGEND_SWATCH + 1.5}" width="${LEGEND_SWATCH - 1}" height="${LEGEND_SWATCH - 1}" fill="${rgb(fill)}" stroke="${rgb(stroke)}"/>`,
      `<text x="${x + LEGEND_SWATCH + 6}" y="${legendY}" font-size="${TEXT_SIZE}">${escapeXml(label)}</text>`,
    );
  });
  panels.forEach((panel, i) => {
    const caption = layout.cellOrigin(i);
    const { x, y } = layout.panelOrigin(i);
    const image = markPatches(crop, patchSize, scale, panel.marks);
    const data = Buffer.from(encodeRgbPng(image)).toString('base64');
    parts.push(
      `<text x="${caption.x}" y="${caption.y + CAPTION - 7}" font-size="${TEXT_SIZE}">${escapeXml(panel.caption)}</text>`,
      `<image x="${x}" y="${y}" width="${image.width}" height="${image.height}" href="data:image/png;base64,${data}"/>`,
    );
  });
  parts.push('</g>', '</svg>');
  return { svg: parts.join('\n'), layout };
}

/**
 * Render the SVG at 1:1 to PNG, with the system fonts or only `fontFile`. `hasText` is false when
 * no font was found (the text is then missing).
 */
export async function renderFigurePng(svg: string, fontFile?: string): Promise<{ png: Uint8Array; hasText: boolean }> {
  const { Resvg } = await importOptional<typeof import('@resvg/resvg-js')>('@resvg/resvg-js', 'drawing the figure');
  const font = fontFile ? { loadSystemFonts: false, fontFiles: [fontFile] } : { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' };
  const png = new Resvg(svg, { font, logLevel: 'off' }).render().asPng();
  const probe = new Resvg('<svg xmlns="http://www.w3.org/2000/svg" width="40" height="20"><text x="2" y="15" font-size="12">Ag</text></svg>', {
    font,
    logLevel: 'off',
  });
  return { png, hasText: probe.innerBBox() !== undefined };
}

function rgb(c: readonly number[]): string {
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}

function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}
