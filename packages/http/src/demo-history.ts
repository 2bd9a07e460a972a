import {
  type Actor,
  type Clock,
  type CorrelationId,
  type Engine,
  type Instant,
  type PracticeId,
  type ReferralId,
  type ReferralUserCommandPayload,
  type UserId,
  unsafeId,
} from '@referrals/core'
import * as E from 'fp-ts/lib/Either.js'
import { DEMO } from './demo.js'

/**
 * A few weeks of made-up referral history over the demo dataset (`seedDemo` first), so the reports
 * and the dashboard have something to show: referrals from the demo clinic to the four pools
 * (north/south × knee/hip) and a few direct ones, answered within hours, some declined (and
 * re-routed), most booked days later, the appointments that fall before `end` completed or missed,
 * and a few sent to a region no specialist covers (the unassigned backlog). Deterministic: the
 * same `end` always writes the same history. The made-up patients carry no real data.
 *
 * The engine's clock must be the `clock` given here: each event happens at its own time, in time
 * order, from `weeks` weeks before `end` up to `end`.
 */
export interface DemoHistoryClock {
  readonly set: (at: Instant) => void
}

const HOUR = 3_600_000
const DAY = 24 * HOUR

/** When the demo world begins for a history up to `end`: a day before its first referral. */
export const demoHistoryStart = (end: Instant, weeks = 6): Instant =>
  new Date(Date.parse(end) - (weeks * 7 + 1) * DAY).toISOString() as Instant

/**
 * `serve --demo`'s clock: the system clock, except while it is set (the demo dataset and its
 * history are written at their own past times), until `release`.
 */
export const settableClock = (system: Clock) => {
  let pinned: Instant | undefined
  return {
    now: (): Instant => pinned ?? system.now(),
    set: (at: Instant): void => {
      pinned = at
    },
    release: (): void => {
      pinned = undefined
    },
  }
}

/** Each specialist's typical days from booking to appointment: the pools' wait-time dispersion. */
const TYPICAL_WAIT_DAYS: Readonly<Record<string, number>> = {
  'ortho-north-a': 9,
  'ortho-north-b': 21,
  'ortho-both-c': 14,
  'ortho-south-d': 6,
}

/** A small deterministic generator (mulberry32): the same history on every run. */
const generator = (seed: number) => {
  let a = seed >>> 0
  return (): number => {
    a = (a + 0x6d2b79f5) >>> 0
    let x = Math.imul(a ^ (a >>> 15), 1 | a)
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
    return ((x ^ (x >>> 14)) >>> 0) / 4_294_967_296
  }
}

interface Step {
  readonly at: number
  readonly run: () => Promise<void>
}

export const seedDemoHistory = async (
  engine: Engine,
  clock: DemoHistoryClock,
  options: { readonly end: Instant; readonly weeks?: number },
): Promise<{ readonly referrals: number }> => {
  const end = Date.parse(options.end)
  const weeks = options.weeks ?? 6
  const random = generator(20_260_401)
  const between = (low: number, high: number) => low + (high - low) * random()
  const actors = new Map<string, Actor>()
  const ctx = async (userId: string) => {
    let actor = actors.get(userId)
    if (actor === undefined) {
      actor = (await engine.directory.resolveActor(unsafeId<UserId>(userId), [])) as Actor
      actors.set(userId, actor)
    }
    return { actor, correlationId: unsafeId<CorrelationId>('demo-history') }
  }
  const ownerOf = (practiceId: PracticeId | null) =>
    DEMO.specialists.find((s) => s.practiceId === practiceId)?.owner

  // Steps run in time order: each step may schedule later ones (the answer after the delivery).
  const steps: Step[] = []
  const schedule = (at: number, run: () => Promise<void>) => {
    if (at > end) return
    steps.push({ at, run })
    steps.sort((x, y) => x.at - y.at)
  }
  const execute = async (referralId: ReferralId, userId: string, command: ReferralUserCommandPayload) => {
    const r = await engine.referrals.execute(referralId, command, await ctx(userId))()
    if (E.isLeft(r)) throw new Error(`demo history (${command.type}): ${r.left.message}`)
    return r.right.state
  }

  /** The recipient's answer to the current delivery, and what follows from it. */
  const answer = (referralId: ReferralId, practiceId: PracticeId, deliveredAt: number) => {
    const owner = ownerOf(practiceId)
    if (owner === undefined) return
    if (random() < 0.15) {
      schedule(deliveredAt + between(2, 20) * HOUR, async () => {
        const state = await execute(referralId, owner, {
          type: 'DeclineReferral',
          data: { reasonCode: 'capacity' },
        })
        if (state.exists && state.status === 'pending' && state.recipientPracticeId !== null)
          answer(referralId, state.recipientPracticeId, Date.parse(state.deliveredAt ?? options.end))
      })
      return
    }
    const acceptedAt = deliveredAt + between(1, 30) * HOUR
    schedule(acceptedAt, async () => {
      await execute(referralId, owner, { type: 'AcceptReferral', data: {} })
    })
    const bookedAt = acceptedAt + between(4, 60) * HOUR
    const wait = (TYPICAL_WAIT_DAYS[practiceId] ?? 10) * between(0.6, 1.4) * DAY
    const appointmentAt = Math.round((bookedAt + wait) / HOUR) * HOUR
    schedule(bookedAt, async () => {
      await execute(referralId, owner, {
        type: 'ScheduleAppointment',
        data: { at: new Date(appointmentAt).toISOString() as Instant },
      })
    })
    const noShow = random() < 0.08
    schedule(appointmentAt + 2 * HOUR, async () => {
      await execute(
        referralId,
        owner,
        noShow ? { type: 'RecordNoShow', data: {} } : { type: 'CompleteReferral', data: {} },
      )
    })
  }

  let count = 0
  const send = (at: number, regionId: string, categoryId: string, direct: PracticeId | undefined) => {
    if (at > end) return
    count += 1
    const n = count
    schedule(at, async () => {
      const referralId = unsafeId<ReferralId>(`demo-referral-${String(n).padStart(4, '0')}`)
      const state = await execute(referralId, DEMO.clinic.owner, {
        type: 'SendReferral',
        data: {
          referralId,
          senderPracticeId: unsafeId(DEMO.clinic.practiceId),
          patientId: unsafeId(`${DEMO.clinic.practiceId}:demo-patient-${n}`),
          phi: {
            patient: {
              givenName: 'Sample',
              familyName: `Patient ${n}`,
              dateOfBirth: '1970-01-01',
              healthNumber: '9999-999-999',
            },
            reason: 'Made-up demo referral: joint pain, not improving with physiotherapy.',
          },
          specialtyId: unsafeId(DEMO.specialty),
          category: { categoryId: unsafeId(categoryId) },
          regionId: unsafeId(regionId),
          urgency: random() < 0.2 ? 'urgent' : 'routine',
          target: direct === undefined ? { kind: 'pooled' } : { kind: 'direct', practiceId: direct },
        },
      } as ReferralUserCommandPayload)
      if (state.exists && state.status === 'pending' && state.recipientPracticeId !== null)
        answer(referralId, state.recipientPracticeId, Date.parse(state.deliveredAt ?? state.sentAt))
    })
  }

  // Working days from `weeks` weeks back: each morning a few referrals to each region.
  const start = Date.parse(`${new Date(end - weeks * 7 * DAY).toISOString().slice(0, 10)}T00:00:00.000Z`)
  for (let day = start; day < end; day += DAY) {
    const weekday = new Date(day).getUTCDay()
    if (weekday === 0 || weekday === 6) continue
    const perDay = 4 + Math.floor(random() * 4)
    for (let i = 0; i < perDay; i++) {
      const at = day + (8 + i * 1.5 + between(0, 1)) * HOUR
      const regionId = random() < 0.6 ? 'north' : 'south'
      const categoryId = random() < 0.55 ? 'knee' : 'hip'
      const direct = random() < 0.1 ? unsafeId<PracticeId>('ortho-north-a') : undefined
      send(at, direct === undefined ? regionId : 'north', categoryId, direct)
    }
  }
  // The last days: a few referrals to a region nobody covers yet, waiting in the intake queue.
  for (const daysBack of [4, 2, 1]) send(end - daysBack * DAY, 'east', 'knee', undefined)

  while (steps.length > 0) {
    const step = steps.shift() as Step
    clock.set(new Date(step.at).toISOString() as Instant)
    await step.run()
  }
  clock.set(options.end)
  return { referrals: count }
}
