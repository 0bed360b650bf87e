/**
 * The wasm backend's memory allocator: blocks of byte addresses in [base, end), 16-byte aligned,
 * from a free list kept sorted and coalesced (no two free blocks touch, and none touches the
 * end: freeing the last block lowers the end). A request takes the smallest free block that
 * holds it (the lowest of equals), else grows the end. Pure bookkeeping: the memory itself is
 * grown by the `reserve` callback, and nothing here reads or writes it.
 */
export class WasmHeap {
  private top: number; // first byte past every block
  private readonly free: { start: number; bytes: number }[] = []; // sorted by start
  private readonly blocks = new Map<number, number>(); // start → bytes of each allocated block

  constructor(
    base: number,
    private readonly reserve: (end: number) => void,
  ) {
    this.top = align16(base);
  }

  /** First byte past the highest block: memory in use ends here. */
  get end(): number {
    return this.top;
  }

  /** Bytes in allocated blocks. */
  get allocatedBytes(): number {
    let sum = 0;
    for (const bytes of this.blocks.values()) sum += bytes;
    return sum;
  }

  /** Bytes in free blocks below the end. */
  get freeBytes(): number {
    return this.free.reduce((sum, block) => sum + block.bytes, 0);
  }

  /** The byte address of a new block of at least `bytes` bytes (≥ 0). */
  allocate(bytes: number): number {
    const size = Math.max(16, align16(bytes));
    let best = -1;
    for (let i = 0; i < this.free.length; i++) {
      const block = this.free[i];
      if (block.bytes >= size && (best < 0 || block.bytes < this.free[best].bytes)) best = i;
    }
    let start: number;
    if (best >= 0) {
      const block = this.free[best];
      start = block.start;
      if (block.bytes === size) this.free.splice(best, 1);
      else this.free[best] = { start: start + size, bytes: block.bytes - size };
    } else {
      start = this.top;
      this.reserve(start + size);
      this.top = start + size;
    }
    this.blocks.set(start, size);
    return start;
  }

  /** Whether `start` is the address of an allocated block. */
  owns(start: number): boolean {
    return this.blocks.has(start);
  }

  /** Gives the block at `start` back; false if there is none there (never allocated, or freed already). */
  release(start: number): boolean {
    const size = this.blocks.get(start);
    if (size === undefined) return false;
    this.blocks.delete(start);
    // Insert in order, then merge with the neighbours it touches.
    let i = 0;
    while (i < this.free.length && this.free[i].start < start) i++;
    let block = { start, bytes: size };
    const before = this.free[i - 1];
    if (before && before.start + before.bytes === start) {
      block = { start: before.start, bytes: before.bytes + size };
      this.free.splice(--i, 1);
    }
    const after = this.free[i];
    if (after && block.start + block.bytes === after.start) {
      block = { start: block.start, bytes: block.bytes + after.bytes };
      this.free.splice(i, 1);
    }
    if (block.start + block.bytes === this.top) this.top = block.start;
    else this.free.splice(i, 0, block);
    return true;
  }
}

function align16(bytes: number): number {
  return Math.ceil(bytes / 16) * 16;
}
