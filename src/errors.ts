/**
 * Typed errors. Every message says what was expected, what was found, and where
 * (file, tensor, URL). The CLI prints `error: <message>` and exits with code 1.
 */
export class VitpruneError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A safetensors file is malformed (header, offsets, dtype, truncation). */
export class SafetensorsError extends VitpruneError {}

/** A model folder is inconsistent: missing tensor, shape mismatch, unknown architecture. */
export class ModelFormatError extends VitpruneError {}

/** An image cannot be decoded or is refused (corrupt, unsupported, too many pixels). */
export class ImageError extends VitpruneError {}

/** A hub download failed (unreachable endpoint, HTTP error, interrupted transfer). */
export class HubError extends VitpruneError {}

/** An argument is wrong: a command-line option, or a value given to a library function. */
export class UsageError extends VitpruneError {}

/** An optional package that a feature needs (plots: vega, vega-lite, @resvg/resvg-js) is not installed. */
export class DependencyError extends VitpruneError {}

/** A trace bundle (manifest.json + tensors.safetensors) is malformed or does not fit its manifest. */
export class TraceFormatError extends VitpruneError {}

/** A pruning schedule or a method's settings are malformed, cannot run on a model, or miss a GMACs budget. */
export class ScheduleError extends VitpruneError {}

/** The wasm backend cannot be used here (build missing, relaxed SIMD or shared memory unsupported) or was misused. */
export class WasmBackendError extends VitpruneError {}

/** A worker thread of the wasm backend died or failed to start (the pool restarts dead workers). */
export class ThreadPoolError extends VitpruneError {}
