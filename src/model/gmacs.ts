import type { ViTConfig } from './types.js';
import { blockConfig, numPatches, prefixTokens } from './types.js';

/**
 * The one MAC counter (docs: docs/algorithms.md §7.3), in the fvcore convention the papers use:
 * one multiply-accumulate = one "FLOP". Counted: patch embedding, QKV, QKᵀ, PV, output
 * projection, the two MLP linears, the classifier. Not counted: softmax, LayerNorm, GELU,
 * residual adds, biases, pruning overhead.
 *
 * Generalised to per-head q/k width `qkDim` and v width `vDim` (channel pruning):
 *   block = n_in·D·(2H·qk + H·v)  +  n_in²·H·(qk + v)  +  n_in·H·v·D  +  n_out·2·D·mlp
 * which for qk = v = D/H and mlp = 4D is the paper's 4·n_in·D² + 2·n_in²·D + 8·n_out·D².
 */

/** Token counts of one executed block: entering attention, and entering the MLP. */
export interface BlockTokens {
  attention: number; // tokens of the QKV projection and the attention
  projection?: number; // tokens of the output projection, when a reduction ran before it (MCTF's one-step-ahead); else `attention`
  mlp: number;
}

export function blockMacs(cfg: ViTConfig, t: BlockTokens): number {
  const { dim: D, heads: H, qkDim, vDim, mlpDim } = cfg;
  const n = t.attention;
  const qkv = n * D * (2 * H * qkDim + H * vDim);
  const attention = n * n * H * (qkDim + vDim);
  const proj = (t.projection ?? n) * H * vDim * D;
  const mlp = t.mlp * 2 * D * mlpDim;
  return qkv + attention + proj + mlp;
}

/** Patch embedding (a conv of stride = kernel = P) and the classifier head(s). */
export function stemAndHeadMacs(cfg: ViTConfig): number {
  const patchEmbed = numPatches(cfg) * cfg.inChannels * cfg.patchSize * cfg.patchSize * cfg.dim;
  const heads = cfg.distilled ? 2 : 1;
  return patchEmbed + heads * cfg.dim * cfg.numClasses;
}

/** Total GMACs for the executed token counts of every block. */
export function modelGmacs(cfg: ViTConfig, blocks: BlockTokens[]): number {
  let macs = stemAndHeadMacs(cfg);
  blocks.forEach((t, b) => (macs += blockMacs(blockConfig(cfg, b), t)));
  return macs / 1e9;
}

/** Token count entering the first block: prefix tokens + patches. */
export function initialTokens(cfg: ViTConfig): number {
  return prefixTokens(cfg) + numPatches(cfg);
}

/** GMACs of the unpruned model. */
export function denseGmacs(cfg: ViTConfig): number {
  const n = initialTokens(cfg);
  return modelGmacs(
    cfg,
    Array.from({ length: cfg.depth }, () => ({ attention: n, mlp: n })),
  );
}
