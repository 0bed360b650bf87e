import { describe, expect, it } from 'vitest';
import { DependencyError } from '../src/errors.js';
import { importOptional } from '../src/util/optional.js';

describe('optional packages (the plotting dependencies)', () => {
  it('an absent one is a DependencyError that names it, what needs it and the install command', async () => {
    const error = await importOptional('vitprune-test-absent-package', 'writing plots').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DependencyError);
    expect((error as Error).message).toBe(
      'writing plots needs the optional package vitprune-test-absent-package, which is not installed; expected it beside vitprune: npm install vitprune-test-absent-package@latest',
    );
  });

  it('a present one loads (the repository installs them as devDependencies)', async () => {
    const vegaLite = await importOptional<typeof import('vega-lite')>('vega-lite', 'writing plots');
    expect(typeof vegaLite.compile).toBe('function');
  });
});
