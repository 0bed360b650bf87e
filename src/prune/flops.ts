/** GMACs counting moved to the model (model/gmacs.ts); this path stays for code written against it. */
export * from '../model/gmacs.js';
