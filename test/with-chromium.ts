import { describe } from 'vitest';
import { findChromium } from '../scripts/chromium.js';

/** The Chromium the browser suites drive (scripts/chromium.ts), or null. */
export const chromium = findChromium();

/** `describe` when Chromium is installed; else skipped, with one line on stderr saying why. */
export const describeWithBrowser = (name: string, body: () => void): void => {
  if (chromium) {
    describe(name, body);
    return;
  }
  process.stderr.write(`skipped (no Chromium: apt-get install chromium, or set VITPRUNE_CHROMIUM): ${name}\n`);
  describe.skip(name, body);
};
