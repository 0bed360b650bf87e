import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

/**
 * Headless Chromium for the browser tests and benchmark: Debian's package (/usr/bin/chromium,
 * installed by .ci/run when missing), driven by playwright-core. No browser is ever downloaded.
 * Playwright starts it with a fresh temporary profile; the flags keep it from reaching out to
 * the network (this machine has none but the package registries) and from using a GPU.
 */

/** Where Chromium may be: $VITPRUNE_CHROMIUM first. */
const CANDIDATES = [process.env.VITPRUNE_CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'];

export const CHROMIUM_FLAGS = [
  '--headless=new',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** The Chromium executable, or null when none is installed. */
export function findChromium(): string | null {
  return CANDIDATES.find((c): c is string => !!c && existsSync(c)) ?? null;
}

export async function launchChromium(executablePath: string): Promise<Browser> {
  return chromium.launch({ executablePath, headless: true, args: CHROMIUM_FLAGS, timeout: 60_000 });
}
