import { SafetensorsError, TraceFormatError } from '../errors.js';
import { parseSafetensorsLayout, serializeSafetensors, type TensorToWrite } from '../model/safetensors.js';
import {
  ELEMENT_BYTES,
  MANIFEST_FILE,
  TENSORS_FILE,
  TRACE_FORMAT,
  TRACE_FORMAT_VERSION,
  type ManifestTensor,
  type TensorDtype,
  type TraceArray,
  type TraceManifest,
} from './format.js';
import { describeJson } from './json-fields.js';

/**
 * Trace bundles (format.ts, docs/trace-format.md) to and from the bytes of their two files, in
 * memory (no file system: bundle.ts reads and writes folders). A bundle in memory is its
 * manifest plus its tensors in manifest order; the manifest's `tensors` list is made from them
 * when encoding, and checked against the safetensors header when decoding.
 */

export interface BundleTensor {
  info: ManifestTensor;
  data: TraceArray; // [product(shape)], row-major
}

export interface TraceBundle {
  manifest: TraceManifest;
  tensors: Map<string, BundleTensor>; // in manifest order
}

/** The two files of a bundle, as bytes. */
export interface BundleFiles {
  manifest: Uint8Array; // manifest.json
  tensors: Uint8Array; // tensors.safetensors
}

/** The dtype of an array: F64, F32 or I32. */
export function dtypeOf(data: TraceArray): TensorDtype {
  if (data instanceof Float64Array) return 'F64';
  return data instanceof Int32Array ? 'I32' : 'F32';
}

/** The bytes of `bundle`'s manifest.json (listing its tensors) and tensors.safetensors. */
export function encodeBundle(bundle: TraceBundle): BundleFiles {
  const tensors = new Map<string, TensorToWrite>();
  for (const [name, t] of bundle.tensors) tensors.set(name, { shape: t.info.shape, data: t.data });
  const entries = [...bundle.tensors.values()].map((t) => ({ ...t.info, dtype: dtypeOf(t.data) }));
  return {
    tensors: serializeSafetensors(tensors, { format: TRACE_FORMAT }),
    manifest: new TextEncoder().encode(manifestJson({ ...bundle.manifest, tensors: entries })),
  };
}

/** The manifest as JSON: indented, one line per tensor entry. */
function manifestJson(manifest: TraceManifest): string {
  const { tensors, ...rest } = manifest;
  const head = JSON.stringify(rest, null, 1).slice(0, -2); // without the closing "\n}"
  return `${head},\n "tensors": [\n${(tensors ?? []).map((t) => `  ${JSON.stringify(t)}`).join(',\n')}\n ]\n}\n`;
}

/**
 * The bundle in `files`, validated. `where` names the bundle in messages (a folder: the files are
 * named inside it). Throws TraceFormatError naming the file and the tensor: a manifest of another
 * format or a newer version, malformed entries, tensors whose dtype or shape differ between
 * manifest and file, tensors in one but not the other. A manifest without a `tensors` list (a
 * port may write none) takes the file's header as it.
 */
export function decodeBundle(files: BundleFiles, where: string): TraceBundle {
  const manifest = decodeManifest(files.manifest, `${where}/${MANIFEST_FILE}`);
  const file = `${where}/${TENSORS_FILE}`;
  const bytes = files.tensors;
  let layout;
  try {
    layout = parseSafetensorsLayout(bytes, file, ELEMENT_BYTES);
  } catch (err) {
    if (err instanceof SafetensorsError) throw new TraceFormatError(err.message, { cause: err });
    throw err;
  }
  const inFile = new Map(layout.entries.map((e) => [e.name, e]));
  const listed = manifest.tensors ?? layout.entries.map((e) => ({ name: e.name, dtype: e.dtype as TensorDtype, shape: e.shape }));
  const tensors = new Map<string, BundleTensor>();
  for (const info of listed) {
    const entry = inFile.get(info.name);
    if (!entry) throw new TraceFormatError(`${file}: tensor "${info.name}" is listed in ${MANIFEST_FILE} but not in the file`);
    if (entry.dtype !== info.dtype || !sameShape(entry.shape, info.shape)) {
      throw new TraceFormatError(
        `${file}: tensor "${info.name}": ${MANIFEST_FILE} lists ${info.dtype} [${info.shape.join(', ')}], the file holds ${entry.dtype} [${entry.shape.join(', ')}]`,
      );
    }
    const raw = new Uint8Array(bytes.subarray(layout.dataStart + entry.begin, layout.dataStart + entry.end)).buffer; // a copy: aligned for its dtype
    tensors.set(info.name, { info, data: typedArray(info.dtype, raw) });
  }
  const unlisted = layout.entries.find((e) => !tensors.has(e.name));
  if (unlisted) throw new TraceFormatError(`${file}: tensor "${unlisted.name}" is not listed in ${MANIFEST_FILE}`);
  return { manifest, tensors };
}

function typedArray(dtype: TensorDtype, raw: ArrayBuffer): TraceArray {
  if (dtype === 'F64') return new Float64Array(raw);
  return dtype === 'I32' ? new Int32Array(raw) : new Float32Array(raw);
}

/** The manifest, checked for what readers rely on: format, version, and well-formed tensor entries. */
function decodeManifest(bytes: Uint8Array, file: string): TraceManifest {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder().decode(bytes));
  } catch (err) {
    throw new TraceFormatError(`${file}: expected JSON, ${(err as Error).message}`, { cause: err });
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    throw new TraceFormatError(`${file}: expected a JSON object, found ${describeJson(json)}`);
  const m = json as Record<string, unknown>;
  if (m.format !== TRACE_FORMAT) throw new TraceFormatError(`${file}: expected "format": "${TRACE_FORMAT}", found ${describeJson(m.format)}`);
  if (!Number.isInteger(m.version) || (m.version as number) < 1 || (m.version as number) > TRACE_FORMAT_VERSION) {
    throw new TraceFormatError(`${file}: expected "version" 1…${TRACE_FORMAT_VERSION} (the versions this vitprune reads), found ${describeJson(m.version)}`);
  }
  if (m.tensors !== undefined) {
    if (!Array.isArray(m.tensors)) throw new TraceFormatError(`${file}: expected "tensors" to be a list, found ${describeJson(m.tensors)}`);
    const names = new Set<string>();
    m.tensors.forEach((t: unknown, i) => {
      const entry = t as Partial<ManifestTensor> | null;
      const where = `${file}: tensors[${i}]`;
      if (typeof entry !== 'object' || entry === null || typeof entry.name !== 'string')
        throw new TraceFormatError(`${where}: expected an object with a "name", found ${describeJson(t)}`);
      if (!(typeof entry.dtype === 'string' && Object.hasOwn(ELEMENT_BYTES, entry.dtype))) {
        throw new TraceFormatError(`${where} ("${entry.name}"): expected "dtype" F64, F32 or I32, found ${describeJson(entry.dtype)}`);
      }
      if (!(Array.isArray(entry.shape) && entry.shape.every((d) => Number.isSafeInteger(d) && d >= 0))) {
        throw new TraceFormatError(`${where} ("${entry.name}"): expected "shape" to be a list of non-negative integers, found ${describeJson(entry.shape)}`);
      }
      if (names.has(entry.name)) throw new TraceFormatError(`${where}: tensor "${entry.name}" is listed twice`);
      names.add(entry.name);
    });
  }
  return m as unknown as TraceManifest;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}
