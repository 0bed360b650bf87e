/**
 * The distillation loss of a pruned (student) forward against the dense (teacher) one on the
 * same image, label-free:
 *
 *   KL(p ‖ q) = Σ_c p_c·(log p_c − log q_c),   p = softmax(teacher), q = softmax(student)
 *   ∂KL/∂student_c = q_c − p_c
 *
 * with log-softmax computed as z − max − log Σ exp(z − max), exact for any logit scale.
 */

function logSoftmax(logits: ArrayLike<number>): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) max = Math.max(max, logits[i]);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i] - max);
  const logNormaliser = max + Math.log(sum);
  return Float64Array.from(logits, (z) => z - logNormaliser);
}

export interface DistillationLoss {
  loss: number; // KL(teacher ‖ student), nats
  dLogits: Float64Array; // [classes] ∂loss/∂student logits
}

export function distillationLoss(teacherLogits: ArrayLike<number>, studentLogits: ArrayLike<number>): DistillationLoss {
  if (teacherLogits.length !== studentLogits.length) {
    throw new RangeError(`distillation: expected teacher and student logits of one length, got ${teacherLogits.length} and ${studentLogits.length}`);
  }
  const logP = logSoftmax(teacherLogits);
  const logQ = logSoftmax(studentLogits);
  let loss = 0;
  const dLogits = new Float64Array(logQ.length);
  for (let c = 0; c < logQ.length; c++) {
    const p = Math.exp(logP[c]);
    if (p > 0) loss += p * (logP[c] - logQ[c]);
    dLogits[c] = Math.exp(logQ[c]) - p;
  }
  return { loss, dLogits };
}
