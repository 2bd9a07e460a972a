/**
 * Delivery attempts as a pure state machine: given a delivery and the result of one attempt at
 * `nowMs`, what is its next state. Exponential backoff `base * factor^(attempt-1)` capped at
 * `max`, dead-lettered once `maxAttempts` attempts have failed or a failure is permanent.
 */
export interface RetryPolicy {
  readonly maxAttempts: number
  readonly baseDelayMs: number
  readonly factor: number
  readonly maxDelayMs: number
}

export const defaultRetryPolicy: RetryPolicy = {
  maxAttempts: 8,
  baseDelayMs: 30_000,
  factor: 2,
  maxDelayMs: 6 * 3_600_000,
}

export type DeliveryState =
  | {
      readonly status: 'pending'
      readonly attempts: number
      readonly nextAttemptAtMs: number
      readonly lastError: string | null
    }
  | { readonly status: 'delivered'; readonly attempts: number; readonly deliveredAtMs: number }
  | { readonly status: 'dead_letter'; readonly attempts: number; readonly lastError: string }

export const backoffDelayMs = (policy: RetryPolicy, failedAttempts: number): number =>
  Math.min(policy.maxDelayMs, policy.baseDelayMs * policy.factor ** Math.max(0, failedAttempts - 1))

export const afterAttempt = (
  policy: RetryPolicy,
  attemptsBefore: number,
  result:
    | { readonly ok: true }
    | { readonly ok: false; readonly retryable: boolean; readonly reason: string },
  nowMs: number,
): DeliveryState => {
  const attempts = attemptsBefore + 1
  if (result.ok) return { status: 'delivered', attempts, deliveredAtMs: nowMs }
  if (!result.retryable || attempts >= policy.maxAttempts) {
    return { status: 'dead_letter', attempts, lastError: result.reason }
  }
  return {
    status: 'pending',
    attempts,
    nextAttemptAtMs: nowMs + backoffDelayMs(policy, attempts),
    lastError: result.reason,
  }
}
