import { attentionPackKeys, attentionPackValues, attentionRows } from './attention';
import { f32_gemm_packed_wasmsimd, PACKED_PANEL } from './gemm';
import { f32_gelu_wasmsimd } from './gelu';
import { f32_layernorm_rows_wasmsimd } from './norm';
import { f32_softmax_rows_wasmsimd } from './softmax';

// The thread pool's side in wasm. The caller's thread (JavaScript: src/kernels/pool.ts) publishes
// a job into a control block in the shared memory; the workers, each in pool_worker_run (which
// returns to JavaScript only to sleep), and the caller, in pool_run, claim the job's chunks one
// at a time and run them. A chunk is a fixed part of the output (column panels × rows of a GEMM,
// query rows of one head, rows of a LayerNorm…), computed by exactly the code and in exactly the
// order the one-thread kernel uses for those elements: which thread takes which chunk changes
// no bit of the result.
//
// Protocol. CLAIM holds generation << 32 | chunk count << 16 | next chunk, and a chunk is claimed
// by a compare-exchange that expects the generation the claimer read before: a worker that wakes
// late and reads a finished job's generation cannot claim a chunk of the next one, and the
// arguments it reads after a successful claim are stable (the caller rewrites them only when
// every chunk is done).
//
// Sleeping and waking happen in JavaScript (Atomics.wait and Atomics.notify in pool.ts and
// pool-worker.ts), not with atomic.wait/notify here: in Node 20's V8 (11.3), Liftoff code that
// ran atomic.wait lost a local kept in a register (a worker's slot address read back as 0), and a
// wasm function that never returns is never replaced by optimised code. So a worker returns here
// after each job it took part in (its JavaScript then notifies DONE) and when no job came.

/** Control block offsets (bytes), read by JavaScript through these exported globals. */
export const POOL_GENERATION: i32 = 0; // i32: bumped for every job; idle workers wait on it
export const POOL_STOP: i32 = 4; // i32: 1 makes the workers stop
export const POOL_SLEEPERS: i32 = 8; // i32: workers asleep (or about to sleep) on POOL_GENERATION (JavaScript)
export const POOL_DONE: i32 = 12; // i32: chunks of the current job finished
export const POOL_CLAIM: i32 = 16; // i64: generation << 32 | chunk count << 16 | next chunk
export const POOL_FAULTS: i32 = 24; // i32: bumped by the supervisor when a worker dies (JavaScript only)
export const POOL_JOB: i32 = 32; // i32 job kind, f32 scalar, then 14 i32 arguments
// One slot per thread (0 = the caller), a cache line each, with these fields (byte offsets):
export const POOL_SLOTS: i32 = 128;
export const POOL_SLOT_BYTES: i32 = 64;
export const POOL_SLOT_STATE: i32 = 0; // i32: a POOL_STATE_* (JavaScript)
export const POOL_SLOT_HELD: i32 = 4; // i32: generation of the job whose chunks it runs now, 0 when none
export const POOL_SLOT_CHUNKS: i32 = 8; // i32: chunks it has run
export const POOL_SLOT_SLEEPS: i32 = 12; // i32: times it went to sleep (JavaScript)
export const POOL_SLOT_LOST: i32 = 16; // i32: generation it held when it last died, 0 if none (JavaScript)
export const POOL_MAX_THREADS: i32 = 64;
export const POOL_MESSAGE: i32 = POOL_SLOTS + POOL_SLOT_BYTES * POOL_MAX_THREADS; // UTF-8: the last worker fault (JavaScript only)
export const POOL_MESSAGE_BYTES: i32 = 512;
export const POOL_CONTROL_BYTES: i32 = POOL_MESSAGE + POOL_MESSAGE_BYTES;
/** At most chunks per job (the 16 bits of CLAIM's count). */
export const POOL_MAX_CHUNKS: i32 = 0xffff;

/** Slot states, written by JavaScript (src/kernels/pool-worker.ts and pool-supervisor.ts). */
export const POOL_STATE_STARTING: i32 = 0; // being spawned
export const POOL_STATE_READY: i32 = 1; // taking jobs
export const POOL_STATE_DEAD: i32 = 2; // exited or crashed
export const POOL_STATE_STOPPED: i32 = 3; // stopped after POOL_STOP

/** Job kinds and their arguments (i32 unless marked; `chunk` is the claimed chunk index). */
// m, n, k, a, lda, b, bias, c, ldc, epilogue, rowsPerChunk, panelsPerChunk, panelChunks:
// f32_gemm_packed_wasmsimd on rows [r·rowsPerChunk, …) and column panels [p·panelsPerChunk, …),
// chunk = r·panelChunks + p.
export const POOL_JOB_GEMM: i32 = 1;
// qkv, rowStride, n, heads, qkDim, vDim, scratch, scratchBytes; scalar = scale: chunk 2h packs
// head h's keys, 2h + 1 its values into scratch + h·scratchBytes.
export const POOL_JOB_ATTENTION_PACK: i32 = 2;
// qkv, rowStride, n, heads, qkDim, vDim, scratch, scratchBytes, logSizes, probs, out,
// rowsPerChunk, rowChunks: chunk = h·rowChunks + r runs query rows [r·rowsPerChunk, …) of head h.
export const POOL_JOB_ATTENTION_ROWS: i32 = 3;
// x, m, d, gamma, beta, out, rowsPerChunk; scalar = eps.
export const POOL_JOB_LAYERNORM: i32 = 4;
// x, rows, cols, rowsPerChunk.
export const POOL_JOB_SOFTMAX: i32 = 5;
// x, length, floatsPerChunk (a multiple of 4).
export const POOL_JOB_GELU: i32 = 6;

// @ts-ignore: decorator
@inline
function arg(control: usize, i: i32): i32 {
  return load<i32>(control + POOL_JOB + 8 + (<usize>i << 2));
}

// @ts-ignore: decorator
@inline
function scalar(control: usize): f32 {
  return load<f32>(control + POOL_JOB + 4);
}

/**
 * Publishes a job of `chunks` chunks (1 … POOL_MAX_CHUNKS); returns its generation. The caller
 * must have seen every chunk of the previous job done, and wakes sleeping workers afterwards.
 */
export function pool_publish(
  control: usize, kind: i32, chunks: i32, s: f32,
  a0: i32, a1: i32, a2: i32, a3: i32, a4: i32, a5: i32, a6: i32, a7: i32, a8: i32, a9: i32,
  a10: i32, a11: i32, a12: i32, a13: i32,
): i32 {
  const job = control + POOL_JOB;
  store<i32>(job, kind);
  store<f32>(job, s, 4);
  store<i32>(job, a0, 8); store<i32>(job, a1, 12); store<i32>(job, a2, 16); store<i32>(job, a3, 20);
  store<i32>(job, a4, 24); store<i32>(job, a5, 28); store<i32>(job, a6, 32); store<i32>(job, a7, 36);
  store<i32>(job, a8, 40); store<i32>(job, a9, 44); store<i32>(job, a10, 48); store<i32>(job, a11, 52);
  store<i32>(job, a12, 56); store<i32>(job, a13, 60);
  const generation = atomic.load<i32>(control + POOL_GENERATION) + 1;
  atomic.store<i32>(control + POOL_DONE, 0);
  atomic.store<i64>(control + POOL_CLAIM, (<i64>generation << 32) | (<i64>chunks << 16));
  atomic.store<i32>(control + POOL_GENERATION, generation);
  return generation;
}

/** No chunk of job `generation` can be claimed any more (after a fault); chunks already claimed still finish. */
export function pool_seal(control: usize, generation: i32): void {
  for (;;) {
    const claim = atomic.load<i64>(control + POOL_CLAIM);
    if (<i32>(claim >>> 32) != generation) return;
    const count = (claim >>> 16) & 0xffff;
    if (atomic.cmpxchg<i64>(control + POOL_CLAIM, claim, (claim & ~0xffff) | count) == claim) return;
  }
}

/** The caller's share of the current job: claims and runs chunks until none is left (slot 0). */
export function pool_run(control: usize): void {
  runChunks(control, atomic.load<i32>(control + POOL_GENERATION), control + POOL_SLOTS);
}

/**
 * A worker's turn: reads POOL_GENERATION up to `spin` times until it differs from `seen`; then,
 * unless POOL_STOP is set, runs chunks of that job. Returns the generation read: `seen` when no
 * job came (the worker sleeps until POOL_GENERATION changes from it), else the job's.
 */
export function pool_worker_run(control: usize, worker: i32, seen: i32, spin: i32): i32 {
  const generationAt = control + POOL_GENERATION;
  let generation = atomic.load<i32>(generationAt);
  for (let i = 0; i < spin && generation == seen; i++) generation = atomic.load<i32>(generationAt);
  if (generation != seen && !atomic.load<i32>(control + POOL_STOP)) {
    runChunks(control, generation, control + POOL_SLOTS + <usize>worker * POOL_SLOT_BYTES);
  }
  return generation;
}

/** Claims and runs chunks of job `generation`, with the slot's held generation set meanwhile. */
function runChunks(control: usize, generation: i32, slot: usize): void {
  const claimAt = control + POOL_CLAIM;
  atomic.store<i32>(slot + POOL_SLOT_HELD, generation);
  for (;;) {
    const claim = atomic.load<i64>(claimAt);
    if (<i32>(claim >>> 32) != generation) break;
    const next = <i32>(claim & 0xffff);
    const count = <i32>((claim >>> 16) & 0xffff);
    if (next >= count) break;
    if (atomic.cmpxchg<i64>(claimAt, claim, claim + 1) != claim) continue;
    runChunk(control, next);
    atomic.add<i32>(slot + POOL_SLOT_CHUNKS, 1);
    atomic.add<i32>(control + POOL_DONE, 1);
  }
  atomic.store<i32>(slot + POOL_SLOT_HELD, 0);
}

function runChunk(control: usize, chunk: i32): void {
  const kind = load<i32>(control + POOL_JOB);
  if (kind == POOL_JOB_GEMM) gemmChunk(control, chunk);
  else if (kind == POOL_JOB_ATTENTION_PACK) attentionPackChunk(control, chunk);
  else if (kind == POOL_JOB_ATTENTION_ROWS) attentionRowsChunk(control, chunk);
  else if (kind == POOL_JOB_LAYERNORM) layerNormChunk(control, chunk);
  else if (kind == POOL_JOB_SOFTMAX) softmaxChunk(control, chunk);
  else if (kind == POOL_JOB_GELU) geluChunk(control, chunk);
  else unreachable();
}

function gemmChunk(control: usize, chunk: i32): void {
  const m = arg(control, 0), n = arg(control, 1), k = arg(control, 2);
  const a = <usize>arg(control, 3), lda = arg(control, 4), b = <usize>arg(control, 5), bias = <usize>arg(control, 6);
  const c = <usize>arg(control, 7), ldc = arg(control, 8), epilogue = arg(control, 9);
  const rowsPerChunk = arg(control, 10), panelsPerChunk = arg(control, 11), panelChunks = arg(control, 12);
  const row = (chunk / panelChunks) * rowsPerChunk;
  const col = (chunk % panelChunks) * panelsPerChunk * PACKED_PANEL;
  const rows = min(rowsPerChunk, m - row);
  const cols = min(panelsPerChunk * PACKED_PANEL, n - col);
  f32_gemm_packed_wasmsimd(
    rows, cols, k, a + (<usize>row * lda << 2), lda, b + (<usize>col * k << 2), bias ? bias + (<usize>col << 2) : 0,
    c + ((<usize>row * ldc + col) << 2), ldc, epilogue,
  );
}

function attentionPackChunk(control: usize, chunk: i32): void {
  const qkv = <usize>arg(control, 0), rowStride = arg(control, 1), n = arg(control, 2), heads = arg(control, 3);
  const qkDim = arg(control, 4), vDim = arg(control, 5), scratch = <usize>arg(control, 6), scratchBytes = <usize>arg(control, 7);
  const head = chunk >> 1;
  const headScratch = scratch + <usize>head * scratchBytes;
  if (chunk & 1) attentionPackValues(qkv + (<usize>(2 * heads * qkDim + head * vDim) << 2), rowStride, n, qkDim, vDim, headScratch);
  else attentionPackKeys(qkv + (<usize>(heads + head) * qkDim << 2), rowStride, n, qkDim, scalar(control), headScratch);
}

function attentionRowsChunk(control: usize, chunk: i32): void {
  const qkv = <usize>arg(control, 0), rowStride = arg(control, 1), n = arg(control, 2);
  const qkDim = arg(control, 4), vDim = arg(control, 5), scratch = <usize>arg(control, 6), scratchBytes = <usize>arg(control, 7);
  const logSizes = <usize>arg(control, 8), probs = <usize>arg(control, 9), out = <usize>arg(control, 10);
  const outStride = arg(control, 11), rowsPerChunk = arg(control, 12), rowChunks = arg(control, 13);
  const head = chunk / rowChunks;
  const rowStart = (chunk % rowChunks) * rowsPerChunk;
  attentionRows(
    qkv + (<usize>head * qkDim << 2), rowStride, n, qkDim, vDim, logSizes, probs + (<usize>head * n * n << 2),
    out + (<usize>head * vDim << 2), outStride, scratch + <usize>head * scratchBytes, rowStart, min(n, rowStart + rowsPerChunk),
  );
}

function layerNormChunk(control: usize, chunk: i32): void {
  const x = <usize>arg(control, 0), m = arg(control, 1), d = arg(control, 2);
  const gamma = <usize>arg(control, 3), beta = <usize>arg(control, 4), out = <usize>arg(control, 5), rowsPerChunk = arg(control, 6);
  const row = chunk * rowsPerChunk;
  const offset = <usize>row * d << 2;
  f32_layernorm_rows_wasmsimd(x + offset, min(rowsPerChunk, m - row), d, gamma, beta, scalar(control), out + offset);
}

function softmaxChunk(control: usize, chunk: i32): void {
  const x = <usize>arg(control, 0), rows = arg(control, 1), cols = arg(control, 2), rowsPerChunk = arg(control, 3);
  const row = chunk * rowsPerChunk;
  f32_softmax_rows_wasmsimd(x + (<usize>row * cols << 2), min(rowsPerChunk, rows - row), cols);
}

function geluChunk(control: usize, chunk: i32): void {
  const x = <usize>arg(control, 0), length = arg(control, 1), floatsPerChunk = arg(control, 2);
  const start = chunk * floatsPerChunk;
  f32_gelu_wasmsimd(x + (<usize>start << 2), min(floatsPerChunk, length - start));
}
