import { describe, expect, it } from 'vitest'
import { runExample } from './in-memory-referral.js'

describe('example: embedding the core with the in-memory store', () => {
  it('walks one pooled referral from send to complete and prints its history', async () => {
    const printed: string[] = []
    const lines = await runExample((l) => printed.push(l))
    expect(printed[0]).toBe('History of ref-0001 (status: completed):')
    expect(lines.map((l) => l.split(/\s+/)[2])).toEqual([
      'ReferralSent',
      'ReferralDelivered',
      'ReferralAccepted',
      'AppointmentScheduled',
      'ReferralCompleted',
    ])
    expect(lines[1]).toContain('by system:router')
    expect(lines[2]).toContain('by dr-knee')
  })
})
