import * as E from 'fp-ts/lib/Either.js'
import { describe, expect, it } from 'vitest'
import { sequentialUuids } from '../shared/id-generator.js'
import { type ReferralId, unsafeId } from '../shared/ids.js'
import { HOUR_MS } from '../shared/time.js'
import { createWorld, type World } from '../testing/world.js'
import { createDeadlineScheduler, deadlineCommandId } from './deadlines.js'
import { createEngine } from './engine.js'

const MINUTE_MS = 60_000

const countEvents = async (w: World, type: string, referralId?: string): Promise<number> => {
  const all = await w.store.readAll({ streamPrefixes: ['referral-'] })()
  if (E.isLeft(all)) throw new Error(all.left.message)
  return all.right.filter(
    (e) => e.type === type && (referralId === undefined || e.streamId === `referral-${referralId}`),
  ).length
}

const setup = async () => {
  const w = await createWorld()
  const a = await w.addSpecialist('spec-a', 1)
  const b = await w.addSpecialist('spec-b', 1)
  const scheduler = createDeadlineScheduler(w.engine, { clock: w.clock })
  return { w, a, b, scheduler }
}

const accept = async (w: World, referralId: string) => {
  const holder = await w.holderOf(referralId)
  if (holder === null) throw new Error('no holder')
  await w.must(
    w.engine.referrals.execute(
      unsafeId<ReferralId>(referralId),
      { type: 'AcceptReferral', data: {} },
      await w.as(w.ownerOf(holder)),
    ),
  )
}

describe('deadline scheduler (simulated time)', () => {
  it('reminds a routine pending referral at 24 h and auto-declines and re-routes it at 48 h', async () => {
    const { w, scheduler } = await setup()
    await w.send('r1')
    const first = await w.holderOf('r1')
    expect(first).not.toBeNull()

    w.clock.advance(24 * HOUR_MS - MINUTE_MS)
    expect((await scheduler.tick()).issued).toBe(0)
    expect(await countEvents(w, 'ResponseReminderIssued')).toBe(0)

    w.clock.advance(MINUTE_MS)
    expect(await scheduler.tick()).toEqual({ issued: 1, skipped: 0, failures: [] })
    expect(await countEvents(w, 'ResponseReminderIssued')).toBe(1)
    expect((await scheduler.tick()).issued).toBe(0)

    w.clock.advance(24 * HOUR_MS - MINUTE_MS)
    expect((await scheduler.tick()).issued).toBe(0)
    expect(await w.holderOf('r1')).toBe(first)

    w.clock.advance(MINUTE_MS)
    expect((await scheduler.tick()).issued).toBe(1)
    expect(await countEvents(w, 'ReferralExpired')).toBe(1)
    // Re-routed through the routing hooks to the other specialist, never back to the one that let it expire.
    expect(await w.statusOf('r1')).toBe('pending')
    const second = await w.holderOf('r1')
    expect(second).not.toBeNull()
    expect(second).not.toBe(first)
    expect(await countEvents(w, 'ReferralDelivered')).toBe(2)
  })

  it('uses the shorter window of an urgent referral (reminder at 4 h, expiry at 8 h)', async () => {
    const { w, scheduler } = await setup()
    await w.send('u1', { kind: 'pooled' }, { urgency: 'urgent' })
    w.clock.advance(4 * HOUR_MS - 1)
    expect((await scheduler.tick()).issued).toBe(0)
    w.clock.advance(1)
    expect((await scheduler.tick()).issued).toBe(1)
    expect(await countEvents(w, 'ResponseReminderIssued')).toBe(1)
    w.clock.advance(4 * HOUR_MS - 1)
    expect((await scheduler.tick()).issued).toBe(0)
    w.clock.advance(1)
    expect((await scheduler.tick()).issued).toBe(1)
    expect(await countEvents(w, 'ReferralExpired')).toBe(1)
  })

  it('issues no expiry (and no later reminder) once the referral is accepted at 47 h', async () => {
    const { w, scheduler } = await setup()
    await w.send('r2')
    const holder = await w.holderOf('r2')
    w.clock.advance(24 * HOUR_MS)
    expect((await scheduler.tick()).issued).toBe(1)
    w.clock.advance(23 * HOUR_MS)
    await accept(w, 'r2')
    w.clock.advance(10 * HOUR_MS)
    expect((await scheduler.tick()).issued).toBe(0)
    expect(await countEvents(w, 'ReferralExpired')).toBe(0)
    expect(await countEvents(w, 'ResponseReminderIssued')).toBe(1)
    expect(await w.statusOf('r2')).toBe('accepted')
    expect(await w.holderOf('r2')).toBe(holder)
  })

  it('stops both deadlines when accepted before the reminder', async () => {
    const { w, scheduler } = await setup()
    await w.send('r3')
    w.clock.advance(HOUR_MS)
    await accept(w, 'r3')
    w.clock.advance(100 * HOUR_MS)
    expect((await scheduler.tick()).issued).toBe(0)
    expect(await countEvents(w, 'ResponseReminderIssued')).toBe(0)
    expect(await countEvents(w, 'ReferralExpired')).toBe(0)
  })

  it('returns a direct referral to the sender when it expires', async () => {
    const { w, a, scheduler } = await setup()
    await w.send('d1', { kind: 'direct', practiceId: a })
    w.clock.advance(48 * HOUR_MS)
    expect((await scheduler.tick()).issued).toBe(1)
    expect(await w.statusOf('d1')).toBe('returned')
    // The recipient reminder is not sent together with the expiry.
    expect(await countEvents(w, 'ResponseReminderIssued')).toBe(0)
  })

  it('fires every deadline exactly once with two schedulers ticking at once and a restart', async () => {
    const { w, scheduler } = await setup()
    const ids = ['c1', 'c2', 'c3', 'c4', 'c5']
    for (const id of ids) await w.send(id)
    const other = createDeadlineScheduler(w.engine, { clock: w.clock })

    const both = async (x: typeof scheduler, y: typeof scheduler) => {
      const [rx, ry] = await Promise.all([x.tick(), y.tick()])
      expect(rx.failures).toEqual([])
      expect(ry.failures).toEqual([])
      return rx.issued + ry.issued
    }

    w.clock.advance(24 * HOUR_MS)
    expect(await both(scheduler, other)).toBe(ids.length)
    expect(await both(scheduler, other)).toBe(0)

    // Restart: a new engine (fresh read models) and a new scheduler on the same store and clock.
    const engine2 = createEngine({ store: w.store, clock: w.clock, ids: sequentialUuids(7) })
    const restarted = createDeadlineScheduler(engine2, { clock: w.clock })
    expect(await both(restarted, other)).toBe(0)

    w.clock.advance(24 * HOUR_MS)
    expect(await both(restarted, scheduler)).toBe(ids.length)
    expect(await both(restarted, other)).toBe(0)

    for (const id of ids) {
      expect(await countEvents(w, 'ResponseReminderIssued', id)).toBe(1)
      expect(await countEvents(w, 'ReferralExpired', id)).toBe(1)
      // Re-routed once each: the second delivery is pending with the other specialist.
      expect(await countEvents(w, 'ReferralDelivered', id)).toBe(2)
      expect(await w.statusOf(id)).toBe('pending')
    }
  })

  it('stamps the scheduler actor and a deterministic command id on the events it causes', async () => {
    const { w, scheduler } = await setup()
    await w.send('m1')
    w.clock.advance(24 * HOUR_MS)
    await scheduler.tick()
    const all = await w.store.readAll({ streamPrefixes: ['referral-m1'] })()
    if (E.isLeft(all)) throw new Error(all.left.message)
    const reminder = all.right.find((e) => e.type === 'ResponseReminderIssued')
    expect(reminder?.metadata.actor).toEqual({ kind: 'system', component: 'scheduler' })
    expect(reminder?.metadata.commandId).toBe('deadline:m1:recipient_reminder:1')
  })

  it('issues patient reminders while the referral waits, one per period', async () => {
    const w = await createWorld()
    const scheduler = createDeadlineScheduler(w.engine, { clock: w.clock })
    // No specialist: the pooled referral waits unassigned, so only patient reminders fall due.
    await w.send('p1')
    expect(await w.statusOf('p1')).toBe('unassigned')
    w.clock.advance(72 * HOUR_MS)
    expect((await scheduler.tick()).issued).toBe(1)
    expect((await scheduler.tick()).issued).toBe(0)
    w.clock.advance(72 * HOUR_MS)
    expect((await scheduler.tick()).issued).toBe(1)
    expect(await countEvents(w, 'PatientReminderIssued')).toBe(2)
  })

  it('shortens an over-long command id deterministically within the id alphabet', () => {
    const referralId = unsafeId<ReferralId>(`r${'x'.repeat(127)}`)
    const deadline = {
      id: 'x',
      referralId,
      kind: 'expiry' as const,
      dueAt: '2026-01-01T00:00:00.000Z' as never,
      deliveryNo: 3,
      sequence: null,
      command: { type: 'ExpireResponse' as const, data: { deliveryNo: 3 } },
    }
    const id = deadlineCommandId(deadline)
    expect(id.length).toBeLessThanOrEqual(128)
    expect(id).toMatch(/^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/)
    expect(deadlineCommandId(deadline)).toBe(id)
    expect(deadlineCommandId({ ...deadline, deliveryNo: 4 })).not.toBe(id)
  })
})
