import { describe, expect, it } from 'vitest';
import { blockMacs, denseGmacs, initialTokens, modelGmacs, stemAndHeadMacs, type BlockTokens } from '../src/model/gmacs.js';
import { configFromDims } from '../src/model/random.js';

const deitT = configFromDims({ dim: 192, depth: 12, heads: 3 });
const deitS = configFromDims({ dim: 384, depth: 12, heads: 6 });
const deitB = configFromDims({ dim: 768, depth: 12, heads: 12 });

/** Token counts of a post-block keep-ratio schedule: after blocks `after` (1-indexed) patches → ⌈ρ·m⌉. */
function keepAfterBlocks(rho: number, after: number[]): BlockTokens[] {
  let n = 197;
  return Array.from({ length: 12 }, (_, b) => {
    const t = { attention: n, mlp: n };
    if (after.includes(b + 1)) n = 1 + Math.ceil(rho * (n - 1));
    return t;
  });
}

/** ToMe: r merged per block inside the block (between attention and MLP), capped at 50 %. */
function tomeTokens(r: number): BlockTokens[] {
  let n = 197;
  return Array.from({ length: 12 }, () => {
    const attention = n;
    n -= Math.min(r, Math.floor((n - 1) / 2));
    return { attention, mlp: n };
  });
}

/** EViT at blocks 4, 7, 10 inside the block; `fused` adds the fused token. */
function evitTokens(rho: number, fused: boolean): BlockTokens[] {
  let n = 197;
  return Array.from({ length: 12 }, (_, b) => {
    const attention = n;
    if ([4, 7, 10].includes(b + 1)) n = 1 + Math.ceil(rho * (n - 1)) + (fused ? 1 : 0);
    return { attention, mlp: n };
  });
}

describe('GMACs counter (docs/algorithms.md §7.3 check table)', () => {
  it('dense DeiT-T / S / B', () => {
    expect(denseGmacs(deitT).toFixed(4)).toBe('1.2537');
    expect(denseGmacs(deitS).toFixed(4)).toBe('4.5989');
    expect(denseGmacs(deitB).toFixed(4)).toBe('17.5638');
  });

  it('equals the paper formula 4nD² + 2n²D + 8nD² per block plus stem and head', () => {
    const D = 192;
    const n = 150;
    expect(blockMacs(deitT, { attention: n, mlp: n })).toBe(4 * n * D * D + 2 * n * n * D + 8 * n * D * D);
    expect(stemAndHeadMacs(deitT)).toBe(196 * 768 * D + D * 1000);
    expect(initialTokens(deitT)).toBe(197);
  });

  it('ToMe DeiT-S r = 8 / 13 / 16, DeiT-T r = 8 / 12 / 16, DeiT-B r = 8 / 13 / 16', () => {
    expect([8, 13, 16].map((r) => modelGmacs(deitS, tomeTokens(r)).toFixed(4))).toEqual(['3.4165', '2.7027', '2.2909']);
    expect([8, 12, 16].map((r) => modelGmacs(deitT, tomeTokens(r)).toFixed(4))).toEqual(['0.9244', '0.7690', '0.6217']);
    expect([8, 13, 16].map((r) => modelGmacs(deitB, tomeTokens(r)).toFixed(3))).toEqual(['13.104', '10.367', '8.772']);
  });

  it('EViT DeiT-S fused ρ = 0.9…0.5, top-k ρ = 0.7, DeiT-B ρ = 0.7', () => {
    expect([0.9, 0.8, 0.7, 0.6, 0.5].map((rho) => modelGmacs(deitS, evitTokens(rho, true)).toFixed(3))).toEqual(['4.022', '3.477', '3.029', '2.635', '2.309']);
    expect(modelGmacs(deitS, evitTokens(0.7, false)).toFixed(3)).toBe('2.997');
    expect(modelGmacs(deitB, evitTokens(0.7, true)).toFixed(3)).toBe('11.610');
  });

  it('post-block keep ρ after blocks 3/6/9 on DeiT-S', () => {
    expect([0.8, 0.75, 0.7].map((rho) => modelGmacs(deitS, keepAfterBlocks(rho, [3, 6, 9])).toFixed(3))).toEqual(['3.366', '3.121', '2.895']);
  });

  it('per-head q/k and v widths: hand computation for a channel-pruned block', () => {
    const cfg = configFromDims({ dim: 192, depth: 1, heads: 3, qkDim: 48, vDim: 40 });
    const n = 197;
    // QKV: n·192·(2·3·48 + 3·40); QKᵀ + PV: n²·3·(48 + 40); proj: n·3·40·192; MLP: n·2·192·768
    const hand = n * 192 * (288 + 120) + n * n * 3 * 88 + n * 120 * 192 + n * 2 * 192 * 768;
    expect(blockMacs(cfg, { attention: n, mlp: n })).toBe(hand);
  });
});
