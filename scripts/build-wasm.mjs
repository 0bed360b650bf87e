// Compiles the AssemblyScript kernels (assembly/) into the two builds the wasm backend loads:
//   build/vitprune-relaxed.wasm  relaxed SIMD (f32x4.relaxed_madd), chosen where the engine has it
//   build/vitprune-simd.wasm     plain SIMD128 (mul + add), the fallback
// Both import a shared memory ('env.memory', up to 65536 pages = 4 GiB) that JavaScript owns.
import { fileURLToPath } from 'node:url';
import asc from 'assemblyscript/asc';

process.chdir(fileURLToPath(new URL('..', import.meta.url)));

const common = [
  'assembly/index.ts',
  '-O3',
  '--noAssert',
  '--runtime',
  'stub',
  '--enable',
  'simd',
  '--enable',
  'threads',
  '--importMemory',
  '--sharedMemory',
  '--maximumMemory',
  '65536',
  '--noExportMemory',
];

const builds = [
  { file: 'build/vitprune-relaxed.wasm', flags: ['--enable', 'relaxed-simd'] },
  { file: 'build/vitprune-simd.wasm', flags: [] },
];

for (const { file, flags } of builds) {
  const { error, stderr } = await asc.main([...common, ...flags, '--outFile', file]);
  if (error) {
    console.error(stderr.toString());
    console.error(`build-wasm: ${file} failed: ${error.message}`);
    process.exit(1);
  }
  console.log(`build-wasm: wrote ${file}`);
}
