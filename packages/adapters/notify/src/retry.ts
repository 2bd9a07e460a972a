import type { DeliveryResult } from './notification.js'

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
  /**
   * What happens to an `uncertain` delivery (submitted, never answered) whose window ends with no
   * receipt that settles it: `dead_letter` (default) parks it for a person, who can see whether the
   * text arrived; `resend` submits it again (a new attempt, within `maxAttempts`), accepting that
   * the recipient may get the text twice.
   */
  readonly uncertain?: 'dead_letter' | 'resend'
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
  | {
      /** Submitted (`attempts` counts it); waiting for the receipt of every message id until the deadline. */
      readonly status: 'awaiting_receipt'
      readonly attempts: number
      readonly messageIds: readonly string[]
      readonly receiptDeadlineMs: number
      /** Receipt `stat` by message id, for the ids whose receipt has arrived (filled by the store). */
      readonly receipts: Readonly<Record<string, string>>
    }
  | {
      /**
       * Submitted with no answer (see `DeliveryResult` `uncertain`): `attempts` counts it; never
       * resubmitted before `receiptDeadlineMs` (the end of the window). Only receipts received at or
       * after `sinceMs` count (a client reference is 16 bits and recurs).
       */
      readonly status: 'uncertain'
      readonly attempts: number
      readonly messageIds: readonly string[]
      readonly sinceMs: number
      readonly receiptDeadlineMs: number
      readonly receipts: Readonly<Record<string, string>>
      readonly lastError: string
    }
  | { readonly status: 'delivered'; readonly attempts: number; readonly deliveredAtMs: number }
  | { readonly status: 'dead_letter'; readonly attempts: number; readonly lastError: string }

/** Final receipt states (SMPP 3.4 appendix B `stat:`): delivered, and failures never worth a resend. */
const RECEIPT_DELIVERED = 'DELIVRD'
const RECEIPT_PERMANENT: ReadonlySet<string> = new Set(['UNDELIV', 'REJECTD', 'DELETED'])
/** The reason recorded when the receipts do not come in time: the message was sent and is not resent. */
export const NO_RECEIPT_REASON = 'SMPP no delivery receipt (submitted, not resent)'
/** The reason recorded when an unanswered submit's window ends unsettled under `uncertain: 'dead_letter'`. */
export const UNCERTAIN_REASON =
  'SMPP submit unanswered, delivery unknown (not resent: check with the recipient)'

/**
 * The next state of a message awaiting its delivery receipts, or null while it still waits (pure).
 * Any failed part decides: UNDELIV/REJECTD/DELETED → dead letter; another failure (EXPIRED,
 * UNKNOWN, …: the carrier says it was not delivered) → retried per `policy` (a new submit), or
 * dead-lettered when the attempts are spent. Every part DELIVRD → delivered. The deadline passed
 * with receipts missing → dead letter `NO_RECEIPT_REASON`: never a resend, since the message may
 * well have arrived. For an `uncertain` entry (unanswered submit) the same receipts settle it; a
 * window that ends unsettled → dead letter `UNCERTAIN_REASON`, or with `policy.uncertain:
 * 'resend'` a new attempt at once (dead letter when the attempts are spent).
 */
export const afterReceipts = (
  policy: RetryPolicy,
  state: Extract<DeliveryState, { status: 'awaiting_receipt' | 'uncertain' }>,
  nowMs: number,
): DeliveryState | null => {
  const stats = state.messageIds.map((id) => state.receipts[id])
  const failed = stats.find((stat) => stat !== undefined && stat !== RECEIPT_DELIVERED)
  if (failed !== undefined)
    return afterAttempt(
      policy,
      state.attempts - 1,
      { ok: false, retryable: !RECEIPT_PERMANENT.has(failed), reason: `SMPP receipt stat:${failed}` },
      nowMs,
    )
  if (stats.every((stat) => stat === RECEIPT_DELIVERED))
    return { status: 'delivered', attempts: state.attempts, deliveredAtMs: nowMs }
  if (nowMs < state.receiptDeadlineMs) return null
  if (state.status === 'awaiting_receipt')
    return { status: 'dead_letter', attempts: state.attempts, lastError: NO_RECEIPT_REASON }
  // An unanswered submit whose window ended unsettled: a person decides, or (opt-in) one more attempt.
  if (policy.uncertain === 'resend' && state.attempts < policy.maxAttempts)
    return { status: 'pending', attempts: state.attempts, nextAttemptAtMs: nowMs, lastError: state.lastError }
  return {
    status: 'dead_letter',
    attempts: state.attempts,
    lastError: policy.uncertain === 'resend' ? state.lastError : UNCERTAIN_REASON,
  }
}

export const backoffDelayMs = (policy: RetryPolicy, failedAttempts: number): number =>
  Math.min(policy.maxDelayMs, policy.baseDelayMs * policy.factor ** Math.max(0, failedAttempts - 1))

export const afterAttempt = (
  policy: RetryPolicy,
  attemptsBefore: number,
  result: DeliveryResult,
  nowMs: number,
): DeliveryState => {
  const attempts = attemptsBefore + 1
  if (result.ok && 'awaitingReceipt' in result)
    return {
      status: 'awaiting_receipt',
      attempts,
      messageIds: result.awaitingReceipt.messageIds,
      receiptDeadlineMs: nowMs + result.awaitingReceipt.timeoutMs,
      receipts: {},
    }
  if (result.ok) return { status: 'delivered', attempts, deliveredAtMs: nowMs }
  if ('uncertain' in result)
    return {
      status: 'uncertain',
      attempts,
      messageIds: result.uncertain.messageIds,
      sinceMs: nowMs,
      receiptDeadlineMs: nowMs + result.uncertain.windowMs,
      receipts: {},
      lastError: result.reason,
    }
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
