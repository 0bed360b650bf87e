/**
 * Evidence that a .wasm binary is a SIMD build: walks its sections (no decoding of
 * instructions) and counts function bodies that declare v128 locals and function types with
 * v128 parameters or results. A scalar build has neither.
 */
const V128 = 0x7b;

export interface WasmSimdStats {
  functions: number; // function bodies in the code section
  bodiesWithV128Locals: number;
  typesWithV128: number;
}

export function wasmSimdStats(bytes: Uint8Array): WasmSimdStats {
  if (bytes[0] !== 0x00 || bytes[1] !== 0x61 || bytes[2] !== 0x73 || bytes[3] !== 0x6d) throw new Error('not a WebAssembly binary');
  let pos = 8;
  const u32 = (): number => {
    let result = 0;
    let shift = 0;
    for (;;) {
      const b = bytes[pos++];
      result += (b & 0x7f) * 2 ** shift;
      if (!(b & 0x80)) return result;
      shift += 7;
    }
  };
  const stats: WasmSimdStats = { functions: 0, bodiesWithV128Locals: 0, typesWithV128: 0 };
  while (pos < bytes.length) {
    const id = bytes[pos++];
    const size = u32();
    const end = pos + size;
    if (id === 1) {
      // type section: vec(functype); functype = 0x60 vec(valtype) vec(valtype)
      const count = u32();
      for (let t = 0; t < count; t++) {
        const form = bytes[pos++];
        if (form !== 0x60) break; // GC/rec types: stop counting, not needed here
        let hasV128 = false;
        for (let part = 0; part < 2; part++) {
          const n = u32();
          for (let i = 0; i < n; i++) if (bytes[pos++] === V128) hasV128 = true;
        }
        if (hasV128) stats.typesWithV128++;
      }
    } else if (id === 10) {
      // code section: vec(code); code = size (vec(locals) expr); locals = count valtype
      const count = u32();
      for (let f = 0; f < count; f++) {
        const bodySize = u32();
        const bodyEnd = pos + bodySize;
        const groups = u32();
        let hasV128 = false;
        for (let g = 0; g < groups; g++) {
          u32();
          if (bytes[pos++] === V128) hasV128 = true;
        }
        stats.functions++;
        if (hasV128) stats.bodiesWithV128Locals++;
        pos = bodyEnd;
      }
    }
    pos = end;
  }
  return stats;
}
