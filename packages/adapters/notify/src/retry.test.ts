import { describe, expect, it } from 'vitest'
import { afterAttempt, backoffDelayMs } from './retry.js'

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
