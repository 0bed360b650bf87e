import { DependencyError } from '../errors.js';

/**
 * Optional packages: peer dependencies marked optional in package.json, so a library install
 * leaves them out and the repository's `npm ci` (as devDependencies) brings them. They are
 * imported only when a feature that needs them runs.
 */
export async function importOptional<T>(name: string, purpose: string): Promise<T> {
  try {
    return (await import(name)) as T;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'ERR_MODULE_NOT_FOUND' && code !== 'MODULE_NOT_FOUND') throw error;
    throw new DependencyError(
      `${purpose} needs the optional package ${name}, which is not installed; expected it beside vitprune: npm install ${name}@${await declaredRange(name)}`,
      {
        cause: error,
      },
    );
  }
}

/**
 * The version range package.json declares for an optional peer, or "latest" if it cannot be read
 * (node:fs is imported here only, so that the modules using optional packages need no Node).
 */
async function declaredRange(name: string): Promise<string> {
  try {
    const { readFileSync } = await import('node:fs');
    const manifest = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { peerDependencies?: Record<string, string> };
    return manifest.peerDependencies?.[name] ?? 'latest';
  } catch {
    return 'latest';
  }
}
