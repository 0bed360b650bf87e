import { describe, expect, it } from 'vitest';
import { createProgress, formatAmount, formatDuration } from '../src/util/progress.js';

/** A stand-in for stderr that records what is written, with a settable clock. */
function fakeStream(isTTY: boolean, columns?: number) {
  const writes: string[] = [];
  const stream = { isTTY, columns, write: (s: string) => (writes.push(s), true), on: () => stream };
  return { writes, stream: stream as unknown as NodeJS.WriteStream };
}

function clock() {
  let t = 0;
  return { now: () => t, advance: (ms: number) => void (t += ms) };
}

describe('createProgress', () => {
  it('non-TTY: one line per 10 %, then the final line', () => {
    const { writes, stream } = fakeStream(false);
    const c = clock();
    const p = createProgress({ label: 'eval', total: 100, stream, now: c.now });
    for (let i = 0; i < 100; i++) {
      c.advance(10);
      p.tick();
    }
    p.done();
    expect(writes.length).toBe(10); // 10 %, ..., 90 %, final
    expect(writes.every((w) => w.endsWith('\n') && !w.includes('\r'))).toBe(true);
    expect(writes[0]).toBe('eval [##------------------]  10% 10/100 100 items/s ETA 0.9s\n');
    expect(writes[9]).toBe('eval [####################] 100% 100/100 100 items/s in 1.0s\n');
  });

  it('TTY: redraws in place at most every 100 ms, ends with a newline', () => {
    const { writes, stream } = fakeStream(true);
    const c = clock();
    const p = createProgress({ label: 'model.safetensors', total: 4_000_000, unit: 'bytes', stream, now: c.now });
    for (let i = 1; i <= 40; i++) {
      c.advance(25);
      p.update(i * 100_000);
    }
    p.done();
    expect(writes.length).toBe(11); // 1 s of updates every 25 ms → 10 redraws, + final
    expect(writes.every((w) => w.startsWith('\r'))).toBe(true);
    expect(writes[0]).toBe('\rmodel.safetensors [#-------------------]   2% 100 kB/4.00 MB 4.00 MB/s ETA 1.0s\x1b[K');
    expect(writes.at(-1)).toBe('\rmodel.safetensors [####################] 100% 4.00 MB/4.00 MB 4.00 MB/s in 1.0s\x1b[K\n');
  });

  it('TTY: cuts the line to the terminal width', () => {
    const { writes, stream } = fakeStream(true, 20);
    const p = createProgress({ label: 'a-rather-long-label', total: 10, stream });
    p.update(5);
    expect(writes[0]!.replace('\r', '').replace('\x1b[K', '').length).toBe(19);
  });

  it('unknown total: no percentage; non-TTY prints only the final line', () => {
    const { writes, stream } = fakeStream(false);
    const c = clock();
    const p = createProgress({ label: 'dl', total: 0, unit: 'bytes', stream, now: c.now });
    c.advance(2000);
    p.tick(3_500_000);
    p.done();
    expect(writes).toEqual(['dl 3.50 MB 1.75 MB/s in 2.0s\n']);
  });

  it('enabled: false writes nothing; done() is idempotent; later ticks are ignored', () => {
    const quiet = fakeStream(false);
    const q = createProgress({ label: 'x', total: 10, stream: quiet.stream, enabled: false });
    q.tick(10);
    q.done();
    expect(quiet.writes).toEqual([]);

    const { writes, stream } = fakeStream(false);
    const p = createProgress({ label: 'x', total: 10, stream });
    p.done();
    p.done();
    p.tick(5);
    expect(writes.length).toBe(1);
  });

  it('never throws, even when the stream does', () => {
    const stream = {
      isTTY: true,
      write: () => {
        throw new Error('EPIPE');
      },
      on: () => stream,
    } as unknown as NodeJS.WriteStream;
    const p = createProgress({ label: 'x', total: 10, stream });
    expect(() => {
      p.tick(NaN);
      p.update(3);
      p.done();
    }).not.toThrow();
  });
});

describe('formatting', () => {
  it('humanises bytes in decimal units and durations', () => {
    expect(formatAmount(999, 'bytes')).toBe('999 B');
    expect(formatAmount(22_884_000, 'bytes')).toBe('22.9 MB');
    expect(formatAmount(346_000_000, 'bytes')).toBe('346 MB');
    expect(formatAmount(1_234_000_000, 'bytes')).toBe('1.23 GB');
    expect(formatAmount(1234, 'items')).toBe('1234');
    expect(formatDuration(4.25)).toBe('4.3s');
    expect(formatDuration(42)).toBe('42s');
    expect(formatDuration(185)).toBe('3m05s');
    expect(formatDuration(3720)).toBe('1h02m');
    expect(formatDuration(Infinity)).toBe('?');
  });
});
