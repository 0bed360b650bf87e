import { readFileSync } from 'node:fs';

/** vitprune's version, from its package.json (Node only). */

let version: string | undefined;

/** The version in package.json (two folders up from src/util and dist/util). */
export function packageVersion(): string {
  version ??= (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  return version;
}
