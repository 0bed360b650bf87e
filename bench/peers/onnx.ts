/**
 * vitprune's ViT/DeiT weights written as an ONNX ModelProto, without any ONNX package: a small
 * hand-written protobuf encoder (varints and length-delimited fields) and the graph below.
 *
 *   input [1, C, S, S]
 *   → Conv (kernel = stride = P) → Reshape [1, D, N] → Transpose → [1, N, D]
 *   → Concat [CLS, (DIST), patches] → Add pos_embed                           [1, T, D]
 *   per block:
 *     LayerNormalization → MatMul Wqkvᵀ + Add b → Split Q | K | V
 *     Q, V: Reshape [1, T, H, w] → Transpose [0, 2, 1, 3];  K: … → Transpose [0, 2, 3, 1]
 *     MatMul Q·Kᵀ → Mul scale → Softmax(−1) → MatMul ·V → Transpose → Reshape [1, T, H·v]
 *     → MatMul Wprojᵀ + Add b → Add residual
 *     LayerNormalization → MatMul + Add (fc1) → GELU = x·0.5·(1 + Erf(x / √2)) → MatMul + Add (fc2) → Add residual
 *   Gather prefix row(s) → LayerNormalization → MatMul Wheadᵀ + Add b → logits [1, numClasses]
 *   (distilled: the mean of head(CLS) and head_dist(DIST)).
 *
 * The final LayerNormalization runs on the gathered CLS (and DIST) rows only, as vitprune does
 * (LayerNorm is row-wise, so this is the same function as normalising every row first).
 * Weights are FLOAT initializers in raw_data (little-endian); ir_version 8, opset 17.
 */
import type { Linear, ViTModel } from '../../src/model/types.js';
import { numPatches, prefixTokens } from '../../src/model/types.js';

// ---------------------------------------------------------------- protobuf encoding

const WIRE_VARINT = 0;
const WIRE_LEN = 2;
const WIRE_FIXED32 = 5;

/** Collects encoded bytes as chunks (large tensors are kept by reference until `finish`). */
class Writer {
  private chunks: Uint8Array[] = [];
  private scratch: number[] = [];
  length = 0;

  private flush(): void {
    if (this.scratch.length) {
      this.chunks.push(Uint8Array.from(this.scratch));
      this.length += this.scratch.length;
      this.scratch = [];
    }
  }

  /** Unsigned varint of a 64-bit value; negative numbers are written as their two's complement (10 bytes), as protobuf does for int64/int32. */
  varint(value: number | bigint): this {
    let v = BigInt.asUintN(64, BigInt(value));
    if (v < 0x80n) {
      this.scratch.push(Number(v));
      return this;
    }
    while (v >= 0x80n) {
      this.scratch.push(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    this.scratch.push(Number(v));
    return this;
  }

  tag(field: number, wire: number): this {
    return this.varint((field << 3) | wire);
  }

  bytes(data: Uint8Array): this {
    this.flush();
    this.chunks.push(data);
    this.length += data.length;
    return this;
  }

  // ---- fields
  int(field: number, value: number | bigint): this {
    return this.tag(field, WIRE_VARINT).varint(value);
  }

  float(field: number, value: number): this {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, value, true);
    this.tag(field, WIRE_FIXED32);
    for (const x of b) this.scratch.push(x);
    return this;
  }

  blob(field: number, data: Uint8Array): this {
    return this.tag(field, WIRE_LEN).varint(data.length).bytes(data);
  }

  string(field: number, s: string): this {
    return this.blob(field, new TextEncoder().encode(s));
  }

  message(field: number, build: (w: Writer) => void): this {
    const sub = new Writer();
    build(sub);
    sub.flush();
    this.tag(field, WIRE_LEN).varint(sub.length);
    this.flush();
    for (const c of sub.chunks) this.chunks.push(c);
    this.length += sub.length;
    return this;
  }

  finish(): Uint8Array {
    this.flush();
    const out = new Uint8Array(this.length);
    let o = 0;
    for (const c of this.chunks) {
      out.set(c, o);
      o += c.length;
    }
    return out;
  }
}

// ---------------------------------------------------------------- onnx.proto subset

const enum DataType {
  FLOAT = 1,
  INT64 = 7,
}

const enum AttrType {
  FLOAT = 1,
  INT = 2,
  INTS = 7,
}

type Attr = { name: string; f: number } | { name: string; i: number } | { name: string; ints: number[] };

interface Node {
  op: string;
  inputs: string[];
  outputs: string[];
  attrs?: Attr[];
}

interface Initializer {
  name: string;
  dims: number[];
  type: DataType;
  raw: Uint8Array;
}

function writeTensor(w: Writer, t: Initializer): void {
  for (const d of t.dims) w.int(1, d); // dims (repeated int64)
  w.int(2, t.type); // data_type
  w.string(8, t.name); // name
  w.blob(9, t.raw); // raw_data
}

function writeAttr(w: Writer, a: Attr): void {
  w.string(1, a.name);
  if ('f' in a) w.float(2, a.f).int(20, AttrType.FLOAT);
  else if ('i' in a) w.int(3, a.i).int(20, AttrType.INT);
  else {
    for (const v of a.ints) w.int(8, v);
    w.int(20, AttrType.INTS);
  }
}

function writeNode(w: Writer, n: Node, index: number): void {
  for (const i of n.inputs) w.string(1, i);
  for (const o of n.outputs) w.string(2, o);
  w.string(3, `${n.op}_${index}`);
  w.string(4, n.op);
  for (const a of n.attrs ?? []) w.message(5, (m) => writeAttr(m, a));
}

function writeValueInfo(w: Writer, name: string, dims: number[]): void {
  w.string(1, name);
  w.message(2, (type) =>
    type.message(1, (tensor) => {
      tensor.int(1, DataType.FLOAT); // elem_type
      tensor.message(2, (shape) => {
        for (const d of dims) shape.message(1, (dim) => dim.int(1, d)); // dim_value
      });
    }),
  );
}

// ---------------------------------------------------------------- graph builder

class GraphBuilder {
  readonly nodes: Node[] = [];
  readonly initializers: Initializer[] = [];
  private counter = 0;

  fresh(prefix: string): string {
    return `${prefix}_${this.counter++}`;
  }

  floats(name: string, dims: number[], data: Float32Array): string {
    const expected = dims.reduce((a, b) => a * b, 1);
    if (data.length !== expected) throw new Error(`initializer ${name}: expected ${expected} floats for [${dims}], got ${data.length}`);
    const copy = Float32Array.from(data); // own, aligned, little-endian on every platform Node runs on
    this.initializers.push({ name, dims, type: DataType.FLOAT, raw: new Uint8Array(copy.buffer) });
    return name;
  }

  int64s(name: string, dims: number[], values: number[]): string {
    const data = new BigInt64Array(values.map((v) => BigInt(v)));
    this.initializers.push({ name, dims, type: DataType.INT64, raw: new Uint8Array(data.buffer) });
    return name;
  }

  scalar(name: string, value: number): string {
    return this.floats(name, [], Float32Array.of(value));
  }

  op(op: string, inputs: string[], attrs?: Attr[], outputs = 1): string[] {
    const outs = Array.from({ length: outputs }, () => this.fresh(op.toLowerCase()));
    this.nodes.push({ op, inputs, outputs: outs, attrs });
    return outs;
  }

  op1(op: string, inputs: string[], attrs?: Attr[]): string {
    return this.op(op, inputs, attrs)[0];
  }

  /** y = x·Wᵀ + b as MatMul with the transposed weight [in, out] and Add. */
  linear(x: string, lin: Linear, name: string): string {
    const { outFeatures: o, inFeatures: i } = lin;
    const wt = new Float32Array(i * o);
    for (let r = 0; r < o; r++) for (let c = 0; c < i; c++) wt[c * o + r] = lin.weight[r * i + c];
    const mm = this.op1('MatMul', [x, this.floats(`${name}.weight_t`, [i, o], wt)]);
    return this.op1('Add', [mm, this.floats(`${name}.bias`, [o], lin.bias)]);
  }

  layerNorm(x: string, gamma: Float32Array, beta: Float32Array, eps: number, name: string): string {
    const d = gamma.length;
    return this.op1('LayerNormalization', [x, this.floats(`${name}.weight`, [d], gamma), this.floats(`${name}.bias`, [d], beta)], [
      { name: 'axis', i: -1 },
      { name: 'epsilon', f: eps },
    ]);
  }
}

export interface OnnxModel {
  bytes: Uint8Array;
  inputName: string;
  outputName: string;
  inputShape: number[];
  nodeCount: number;
}

/** The ModelProto of `model` (batch 1, fixed shapes). */
export function vitToOnnx(model: ViTModel): OnnxModel {
  const cfg = model.config;
  const w = model.weights;
  const { dim: D, heads: H, qkDim: QK, vDim: V, patchSize: P, imageSize: S, inChannels: C } = cfg;
  const N = numPatches(cfg);
  const prefix = prefixTokens(cfg);
  const T = prefix + N;
  const g = new GraphBuilder();
  const inputName = 'pixel_values';
  const outputName = 'logits';
  const inputShape = [1, C, S, S];

  // Patch embedding: vitprune's [D, C·P·P] over (c, y, x) is exactly the Conv weight [D, C, P, P].
  const conv = g.op1('Conv', [inputName, g.floats('patch_embed.weight', [D, C, P, P], w.patchEmbed.weight), g.floats('patch_embed.bias', [D], w.patchEmbed.bias)], [
    { name: 'kernel_shape', ints: [P, P] },
    { name: 'strides', ints: [P, P] },
  ]);
  const flat = g.op1('Reshape', [conv, g.int64s('shape_1_D_N', [3], [1, D, N])]);
  const patches = g.op1('Transpose', [flat], [{ name: 'perm', ints: [0, 2, 1] }]);
  const tokens = [g.floats('cls_token', [1, 1, D], w.clsToken)];
  if (prefix === 2) {
    if (!w.distToken) throw new Error('distilled model without a distillation token');
    tokens.push(g.floats('dist_token', [1, 1, D], w.distToken));
  }
  const cat = g.op1('Concat', [...tokens, patches], [{ name: 'axis', i: 1 }]);
  let x = g.op1('Add', [cat, g.floats('pos_embed', [1, T, D], w.posEmbed.subarray(0, T * D))]);

  const scale = g.scalar('attn_scale', 1 / Math.sqrt(QK));
  const splitSizes = g.int64s('qkv_split', [3], [H * QK, H * QK, H * V]);
  const shapeQK = g.int64s('shape_1_T_H_qk', [4], [1, T, H, QK]);
  const shapeV = g.int64s('shape_1_T_H_v', [4], [1, T, H, V]);
  const shapeOut = g.int64s('shape_1_T_Hv', [3], [1, T, H * V]);
  const sqrt2 = g.scalar('sqrt2', Math.SQRT2);
  const one = g.scalar('one', 1);
  const half = g.scalar('half', 0.5);

  w.blocks.forEach((b, i) => {
    const p = `blocks.${i}`;
    // x = x + proj(MHSA(LN1(x)))
    const n1 = g.layerNorm(x, b.norm1.weight, b.norm1.bias, cfg.eps, `${p}.norm1`);
    const qkv = g.linear(n1, b.qkv, `${p}.attn.qkv`);
    const [q, k, v] = g.op('Split', [qkv, splitSizes], [{ name: 'axis', i: -1 }], 3);
    const qh = g.op1('Transpose', [g.op1('Reshape', [q, shapeQK])], [{ name: 'perm', ints: [0, 2, 1, 3] }]); // [1, H, T, qk]
    const kt = g.op1('Transpose', [g.op1('Reshape', [k, shapeQK])], [{ name: 'perm', ints: [0, 2, 3, 1] }]); // [1, H, qk, T]
    const vh = g.op1('Transpose', [g.op1('Reshape', [v, shapeV])], [{ name: 'perm', ints: [0, 2, 1, 3] }]); // [1, H, T, v]
    const scores = g.op1('Mul', [g.op1('MatMul', [qh, kt]), scale]);
    const probs = g.op1('Softmax', [scores], [{ name: 'axis', i: -1 }]);
    const ctx = g.op1('MatMul', [probs, vh]); // [1, H, T, v]
    const merged = g.op1('Reshape', [g.op1('Transpose', [ctx], [{ name: 'perm', ints: [0, 2, 1, 3] }]), shapeOut]);
    x = g.op1('Add', [x, g.linear(merged, b.proj, `${p}.attn.proj`)]);
    // x = x + fc2(GELU(fc1(LN2(x))))
    const n2 = g.layerNorm(x, b.norm2.weight, b.norm2.bias, cfg.eps, `${p}.norm2`);
    const h = g.linear(n2, b.fc1, `${p}.mlp.fc1`);
    const erf = g.op1('Erf', [g.op1('Div', [h, sqrt2])]);
    const gelu = g.op1('Mul', [g.op1('Mul', [h, g.op1('Add', [erf, one])]), half]);
    x = g.op1('Add', [x, g.linear(gelu, b.fc2, `${p}.mlp.fc2`)]);
  });

  const headOf = (row: number, lin: Linear, name: string): string => {
    const tok = g.op1('Gather', [x, g.int64s(`index_${row}`, [], [row])], [{ name: 'axis', i: 1 }]); // [1, D]
    const normed = g.layerNorm(tok, w.norm.weight, w.norm.bias, cfg.eps, row === 0 ? 'norm' : `norm_row${row}`);
    return g.linear(normed, lin, name);
  };
  let logits = headOf(0, w.head, 'head');
  if (prefix === 2) {
    if (!w.headDist) throw new Error('distilled model without head_dist');
    logits = g.op1('Mul', [g.op1('Add', [logits, headOf(1, w.headDist, 'head_dist')]), half]);
  }
  g.nodes.push({ op: 'Identity', inputs: [logits], outputs: [outputName] });

  const proto = new Writer();
  proto.int(1, 8); // ir_version
  proto.string(2, 'vitprune-bench-peers'); // producer_name
  proto.string(3, '0'); // producer_version
  proto.message(7, (graph) => {
    g.nodes.forEach((n, i) => graph.message(1, (m) => writeNode(m, n, i)));
    graph.string(2, cfg.architecture || 'vit');
    for (const t of g.initializers) graph.message(5, (m) => writeTensor(m, t));
    graph.message(11, (m) => writeValueInfo(m, inputName, inputShape));
    graph.message(12, (m) => writeValueInfo(m, outputName, [1, cfg.numClasses]));
  });
  proto.message(8, (op) => op.string(1, '').int(2, 17)); // opset_import: default domain, 17

  return { bytes: proto.finish(), inputName, outputName, inputShape, nodeCount: g.nodes.length };
}
