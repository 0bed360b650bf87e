/**
 * What the thread pool needs from the runtime, in one small interface with two implementations:
 * worker_threads in Node (platform-node.ts) and Web Workers in browsers (platform-web.ts).
 * Messages carry structured-cloneable values (a WebAssembly.Module and a shared
 * WebAssembly.Memory included); the first message a thread receives is its start-up data.
 */

/** A thread this one started. */
export interface ThreadHandle {
  post(message: unknown): void;
  onMessage(listener: (message: unknown) => void): void;
  /**
   * The thread has ended or crashed: `error` is its uncaught error, or undefined for an exit.
   * Node reports both; a browser reports uncaught errors only (a worker that ends on its own
   * says so by a message first).
   */
  onEnd(listener: (error: Error | undefined) => void): void;
  terminate(): void;
  /** Whether this thread keeps the runtime alive (Node's ref/unref; nothing in browsers). */
  keepAlive(yes: boolean): void;
}

/** This thread's own link to the thread that started it. */
export interface ParentLink {
  post(message: unknown): void;
  onMessage(listener: (message: unknown) => void): void;
  /** Ends this thread. */
  close(): void;
}

export interface ThreadPlatform {
  /** Starts the module at `entry` (a sibling module of this file: .js when built, .ts from sources) in a new thread. */
  spawn(entry: URL, name: string): ThreadHandle;
  /** The link to the parent; only inside a thread started by spawn. */
  parent(): ParentLink;
  /** Logical cores the runtime reports. */
  cores(): number;
}

function isNode(): boolean {
  return typeof process !== 'undefined' && typeof process.versions?.node === 'string';
}

/**
 * The threads usable here: `asked`, or 1 on a page (or worker) that is not cross-origin isolated,
 * where memory cannot be shared with workers; a console note then says so and how to fix it.
 */
export function threadsAllowedHere(asked: number): number {
  const isolated = (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated; // undefined in Node
  if (asked <= 1 || isolated !== false) return asked;
  console.warn(
    `vitprune: running on 1 thread instead of the ${asked} asked for: this page is not cross-origin isolated, so it cannot share memory with workers ` +
      '(serve it with Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp)',
  );
  return 1;
}

/** The platform this code runs on. */
export async function currentPlatform(): Promise<ThreadPlatform> {
  if (isNode()) return (await import('./platform-node.js')).nodePlatform;
  return (await import('./platform-web.js')).webPlatform;
}

/**
 * The URL of the module `name` (a path without extension) beside the module at `base` (its
 * import.meta.url), with base's extension: .ts from sources, .js when built.
 */
export function siblingModule(base: string, name: string): URL {
  const extension = /\.[cm]?[jt]s$/.exec(new URL(base).pathname)?.[0] ?? '.js';
  return new URL(`./${name}${extension}`, base);
}
