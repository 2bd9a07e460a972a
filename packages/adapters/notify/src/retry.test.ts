import { describe, expect, it } from 'vitest'
import { afterAttempt, afterReceipts, backoffDelayMs, UNCERTAIN_REASON } from './retry.js'

const policy = { maxAttempts: 4, baseDelayMs: 1_000, factor: 3, maxDelayMs: 5_000 }

describe('retry policy', () => {
  it('backs off exponentially and caps the delay', () => {
    expect([1, 2, 3, 4].map((n) => backoffDelayMs(policy, n))).toEqual([1_000, 3_000, 5_000, 5_000])
  })
  it('schedules the next attempt after a retryable failure', () => {
    expect(afterAttempt(policy, 1, { ok: false, retryable: true, reason: 'HTTP 503' }, 10_000)).toEqual({
      status: 'pending',
      attempts: 2,
      nextAttemptAtMs: 13_000,
      lastError: 'HTTP 503',
    })
  })
  it('dead-letters a permanent failure at once and a retryable one at the budget', () => {
    expect(afterAttempt(policy, 0, { ok: false, retryable: false, reason: 'HTTP 410' }, 0).status).toBe(
      'dead_letter',
    )
    expect(afterAttempt(policy, 3, { ok: false, retryable: true, reason: 'timeout' }, 0)).toEqual({
      status: 'dead_letter',
      attempts: 4,
      lastError: 'timeout',
    })
  })
  it('marks a success delivered', () => {
    expect(afterAttempt(policy, 2, { ok: true }, 7)).toEqual({
      status: 'delivered',
      attempts: 3,
      deliveredAtMs: 7,
    })
  })
})

describe('delivery receipts', () => {
  const awaiting = (receipts: Record<string, string>, attempts = 1) =>
    ({
      status: 'awaiting_receipt',
      attempts,
      messageIds: ['p1', 'p2'],
      receiptDeadlineMs: 60_000,
      receipts,
    }) as const

  it('records a submit as awaiting its receipts until the deadline', () => {
    expect(
      afterAttempt(
        policy,
        0,
        { ok: true, awaitingReceipt: { messageIds: ['p1', 'p2'], timeoutMs: 50_000 } },
        10_000,
      ),
    ).toEqual(awaiting({}))
  })
  it('waits while a part has no receipt and the deadline has not passed', () => {
    expect(afterReceipts(policy, awaiting({ p1: 'DELIVRD' }), 59_999)).toBeNull()
  })
  it('delivers when every part is DELIVRD', () => {
    expect(afterReceipts(policy, awaiting({ p1: 'DELIVRD', p2: 'DELIVRD' }), 20_000)).toEqual({
      status: 'delivered',
      attempts: 1,
      deliveredAtMs: 20_000,
    })
  })
  it('dead-letters UNDELIV at once, retries EXPIRED with backoff until the attempts are spent', () => {
    expect(afterReceipts(policy, awaiting({ p2: 'UNDELIV' }), 20_000)).toEqual({
      status: 'dead_letter',
      attempts: 1,
      lastError: 'SMPP receipt stat:UNDELIV',
    })
    expect(afterReceipts(policy, awaiting({ p1: 'DELIVRD', p2: 'EXPIRED' }, 2), 20_000)).toEqual({
      status: 'pending',
      attempts: 2,
      nextAttemptAtMs: 23_000,
      lastError: 'SMPP receipt stat:EXPIRED',
    })
    expect(afterReceipts(policy, awaiting({ p1: 'EXPIRED' }, 4), 20_000)).toEqual({
      status: 'dead_letter',
      attempts: 4,
      lastError: 'SMPP receipt stat:EXPIRED',
    })
  })
  it('ends a missing receipt at the deadline as unconfirmed, never a resend', () => {
    expect(afterReceipts(policy, awaiting({ p1: 'DELIVRD' }), 60_000)).toEqual({
      status: 'dead_letter',
      attempts: 1,
      lastError: 'SMPP no delivery receipt (submitted, not resent)',
    })
  })
})

describe('uncertain submits (sent, never answered)', () => {
  const uncertain = (receipts: Record<string, string>, attempts = 1) =>
    ({
      status: 'uncertain',
      attempts,
      messageIds: ['ref:9', 'unsent:1'],
      sinceMs: 0,
      receiptDeadlineMs: 10_000,
      receipts,
      lastError: 'SMPP submit_sm_resp timeout',
    }) as const
  it('an unanswered submit is parked as uncertain, not retried', () => {
    const result = {
      ok: false,
      uncertain: { messageIds: ['ref:9'], windowMs: 500 },
      reason: 'SMPP x',
    } as const
    expect(afterAttempt(policy, 0, result, 100)).toEqual({
      status: 'uncertain',
      attempts: 1,
      messageIds: ['ref:9'],
      sinceMs: 100,
      receiptDeadlineMs: 600,
      receipts: {},
      lastError: 'SMPP x',
    })
  })
  it('a part never submitted (unsent:) keeps it from counting as delivered', () => {
    expect(afterReceipts(policy, uncertain({ 'ref:9': 'DELIVRD' }), 9_999)).toBeNull()
    expect(afterReceipts(policy, uncertain({ 'ref:9': 'DELIVRD' }), 10_000)).toEqual({
      status: 'dead_letter',
      attempts: 1,
      lastError: UNCERTAIN_REASON,
    })
  })
  it('resend policy: pending at the window end, dead letter once the attempts are spent', () => {
    const resend = { ...policy, uncertain: 'resend' } as const
    expect(afterReceipts(resend, uncertain({}), 10_000)).toEqual({
      status: 'pending',
      attempts: 1,
      nextAttemptAtMs: 10_000,
      lastError: 'SMPP submit_sm_resp timeout',
    })
    expect(afterReceipts(resend, uncertain({}, 4), 10_000)).toEqual({
      status: 'dead_letter',
      attempts: 4,
      lastError: 'SMPP submit_sm_resp timeout',
    })
  })
})
