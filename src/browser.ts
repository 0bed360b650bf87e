/**
 * vitprune in browsers: the package's `browser` export, bundled by scripts/build-browser.ts into
 * dist/browser/vitprune.js with the wasm builds beside it. It is the package root itself: the
 * same names as in Node, so that `import { … } from 'vitprune'` means one thing everywhere.
 * The build's check (`npm run check:browser`) fails while anything it reaches imports a Node
 * built-in.
 */
export * from './index.js';
