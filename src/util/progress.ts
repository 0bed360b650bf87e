/**
 * A one-line progress report on stderr for long work: downloads (bytes) and evaluations (items).
 *
 *   model.safetensors [########------------]  41% 9.4 MB/22.9 MB 5.1 MB/s ETA 3s
 *
 * On a TTY the line is redrawn in place with `\r`, at most every 100 ms. Elsewhere (CI logs,
 * pipes) a line is printed each time another 10 % of the total is done (10 %, ..., 90 %, then
 * the final line from done()), so logs stay short; with an unknown total only the final line
 * is printed. `enabled: false` (`--quiet`) silences
 * it. Reporting never throws: a broken stream must not fail the work it reports on.
 */

export type ProgressUnit = 'bytes' | 'items';

export interface ProgressOptions {
  label: string;
  /** Expected total in `unit`s; 0 (or less) when unknown: no percentage, bar or ETA. */
  total: number;
  unit?: ProgressUnit;
  stream?: NodeJS.WriteStream;
  enabled?: boolean;
  /** Clock in milliseconds; tests pass a fake one. */
  now?: () => number;
}

export interface Progress {
  /** n more units are done. */
  tick(n?: number): void;
  /** `done` units are done in all. */
  update(done: number): void;
  /** The work has ended: print the final line (elapsed time instead of ETA). Idempotent. */
  done(): void;
}

const TTY_REDRAW_MS = 100;
const LOG_STEPS = 10; // non-TTY: one line per 10 %
const BAR_WIDTH = 20;

const SILENT: Progress = { tick() {}, update() {}, done() {} };

export function createProgress(opts: ProgressOptions): Progress {
  if (opts.enabled === false) return SILENT;
  const stream = opts.stream ?? process.stderr;
  const unit = opts.unit ?? 'items';
  const total = Number.isFinite(opts.total) && opts.total > 0 ? opts.total : 0;
  const now = opts.now ?? Date.now;
  const tty = stream.isTTY === true;
  const start = now();
  let count = 0;
  let lastDraw = -Infinity; // TTY: time of the last redraw
  let lastStep = 0; // non-TTY: 10 % steps already printed
  let finished = false;

  function write(text: string): void {
    try {
      ignoreStreamErrors(stream);
      stream.write(text);
    } catch {
      // reporting must never fail the work
    }
  }

  function line(final: boolean): string {
    const elapsedS = Math.max(now() - start, 1) / 1000;
    const rate = count / elapsedS;
    const parts = [opts.label];
    if (total > 0) {
      const fraction = Math.min(count / total, 1);
      const filled = Math.round(fraction * BAR_WIDTH);
      parts.push(`[${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}]`);
      parts.push(
        `${Math.floor(fraction * 100)
          .toString()
          .padStart(3)}%`,
      );
      parts.push(`${formatAmount(count, unit)}/${formatAmount(total, unit)}`);
    } else {
      parts.push(formatAmount(count, unit));
    }
    parts.push(formatRate(rate, unit));
    if (final) parts.push(`in ${formatDuration(elapsedS)}`);
    else if (total > 0 && rate > 0) parts.push(`ETA ${formatDuration(Math.max(total - count, 0) / rate)}`);
    return parts.join(' ');
  }

  function drawTTY(final: boolean): void {
    let text = line(final);
    const columns = stream.columns;
    if (columns && text.length >= columns) text = text.slice(0, columns - 1);
    write(`\r${text}\x1b[K${final ? '\n' : ''}`);
  }

  function report(): void {
    if (tty) {
      const t = now();
      if (t - lastDraw < TTY_REDRAW_MS) return;
      lastDraw = t;
      drawTTY(false);
    } else if (total > 0 && count < total) {
      // 100 % is left to done(), which prints the final line with the elapsed time
      const step = Math.min(Math.floor((count / total) * LOG_STEPS), LOG_STEPS - 1);
      if (step <= lastStep) return;
      lastStep = step;
      write(`${line(false)}\n`);
    }
  }

  return {
    tick(n = 1) {
      if (finished || !Number.isFinite(n)) return;
      count += n;
      report();
    },
    update(done) {
      if (finished || !Number.isFinite(done)) return;
      count = done;
      report();
    },
    done() {
      if (finished) return;
      finished = true;
      if (tty) drawTTY(true);
      else write(`${line(true)}\n`);
    },
  };
}

/** Bytes in decimal units as the hub shows file sizes (22.9 MB); items as a plain count. */
export function formatAmount(n: number, unit: ProgressUnit): string {
  if (unit === 'items') return String(Math.round(n));
  if (n < 1000) return `${Math.round(n)} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let value = n / 1000;
  let i = 0;
  while (value >= 1000 && i < units.length - 1) {
    value /= 1000;
    i++;
  }
  return `${value.toFixed(value < 10 ? 2 : value < 100 ? 1 : 0)} ${units[i]}`;
}

function formatRate(perSecond: number, unit: ProgressUnit): string {
  if (unit === 'bytes') return `${formatAmount(perSecond, unit)}/s`;
  return `${perSecond.toFixed(perSecond < 10 ? 2 : perSecond < 100 ? 1 : 0)} items/s`;
}

/** 42s, 3m05s, 1h02m. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  if (seconds < 10) return `${seconds.toFixed(1)}s`;
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/**
 * A write error on stderr (EPIPE when the reader has gone) is emitted as an 'error' event,
 * which would crash the process if nobody listened. Listen once per stream and drop it.
 */
const guardedStreams = new WeakSet<NodeJS.WriteStream>();
function ignoreStreamErrors(stream: NodeJS.WriteStream): void {
  if (guardedStreams.has(stream) || typeof stream.on !== 'function') return;
  guardedStreams.add(stream);
  stream.on('error', () => {});
}
