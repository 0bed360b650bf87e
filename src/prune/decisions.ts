/**
 * What a token-reduction method decided (its scores, the heads it used, the pairs it matched,
 * the tokens it dropped), recorded for trace bundles (src/oracle). A method calls
 * `recordDecision` at the points its algorithm names; nothing is recorded, and nothing costs
 * more than a test of one variable, unless a recorder is installed around a forward pass by
 * `recordingDecisions`. The recorder gets views that are valid during the call only.
 *
 * Conventions, so that every method's records read alike: integer tensors (Int32Array) hold
 * positions in the token sequence that entered the reduction (0 = CLS) or 0/1 flags; float
 * tensors hold scores in the method's own units.
 */

export type DecisionData = Float32Array | Float64Array | Int32Array;

export type DecisionRecorder = (name: string, data: DecisionData, shape: readonly number[]) => void;

let active: DecisionRecorder | null = null;

/** Run `run` with `recorder` receiving every decision recorded meanwhile (calls do not nest). */
export function recordingDecisions<T>(recorder: DecisionRecorder, run: () => T): T {
  if (active) throw new Error('recordingDecisions: a recorder is already installed (calls do not nest)');
  active = recorder;
  try {
    return run();
  } finally {
    active = null;
  }
}

/** Whether decisions are being recorded: for records that cost work to prepare. */
export function isRecordingDecisions(): boolean {
  return active !== null;
}

/** Record one decision tensor of `shape` (a no-op unless recording). */
export function recordDecision(name: string, data: DecisionData, shape: readonly number[]): void {
  active?.(name, data, shape);
}
