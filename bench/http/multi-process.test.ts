import { createTestDatabase, type TestDatabase } from '@referrals/postgres/testing'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runMultiProcess } from './multi-process.js'

/**
 * Issue 11, bounded: four service processes on one PostgreSQL database take concurrent
 * choose-for-me sends to one pool. The pool stream's expected version serializes their decisions
 * (a process that loses re-plans on the new pool state), so nothing is lost or decided twice,
 * every decision re-derives (`verifyRouting`), and every member stays within one referral of its
 * FTE share. The full run (1,000 sends) is `npx tsx bench/http/multi-process.ts`.
 */
describe('four service processes, one database, one pool', () => {
  let db: TestDatabase
  beforeAll(async () => {
    db = await createTestDatabase()
  })
  afterAll(async () => {
    await db?.drop()
  })

  it('300 concurrent sends: none lost or duplicated, verifyRouting re-derives every decision, |lag| < 1', async () => {
    const sends = 300
    const r = await runMultiProcess({ processes: 4, sends, inFlight: 64 }, db.url)
    expect(r.failures).toEqual([])
    expect(r.answered).toEqual({ 201: sends })
    expect(r.referralsStored).toBe(sends)
    expect(r.referralsWithOneSent).toBe(sends)
    expect(r.routedToMember).toBe(sends)
    expect(r.poolDecisions).toBe(sends)
    expect([r.lost, r.duplicated]).toEqual([0, 0])
    expect(r.verifyRouting).toEqual({ ok: true, decisions: expect.any(Number), mismatches: 0 })
    expect(r.verifyRouting.decisions).toBeGreaterThanOrEqual(sends)
    // The demo pool: FTE 1, 0.5, 0.8 — shares 300 × fte / 2.3, each member within one referral of it.
    const shares = r.members.map((m) => [m.practiceId, m.received, (sends * m.fte) / 2.3])
    for (const [practiceId, received, share] of shares)
      expect([practiceId, Math.abs((received as number) - (share as number)) < 1]).toEqual([practiceId, true])
    expect(r.members.reduce((a, m) => a + m.received, 0)).toBe(sends)
  }, 300_000)
})
