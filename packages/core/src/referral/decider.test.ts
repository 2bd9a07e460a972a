import { isLeft } from 'fp-ts/lib/Either.js'
import { describe, expect, it } from 'vitest'
import { fold } from '../shared/decider.js'
import type { Instant } from '../shared/time.js'
import { given } from '../testing/given.js'
import type { ReferralEvent } from './codecs.js'
import { type ReferralCommand, referralDecider } from './decider.js'
import { referralFixtures as f } from './fixtures.js'
import { canAccessReferral, canSeePhi, type ReferralAggregate, type ReferralState } from './state.js'

/** `given` with expected events written as plain JSON (ISO strings and ids, not branded values). */
const spec = (events: readonly ReferralEvent[]) => ({
  when: (command: ReferralCommand) => {
    const outcome = given(referralDecider)(events).when(command)
    return {
      ...outcome,
      thenEmits: (expected: readonly unknown[]) => outcome.thenEmits(expected as ReferralEvent[]),
    }
  },
})
const T0 = '2026-01-05T09:00:00.000Z'
const T0_PLUS_48H = '2026-01-07T09:00:00.000Z'

const userCmd = (
  type: ReferralCommand['type'],
  data: unknown,
  actor = f.member(f.specA),
  now: Instant = f.at(2),
  context?: unknown,
): ReferralCommand =>
  ({ type, data, meta: f.meta(actor, now), ...(context === undefined ? {} : { context }) }) as ReferralCommand
const sysCmd = (type: ReferralCommand['type'], data: unknown, now: Instant = f.at(2)): ReferralCommand =>
  userCmd(type, data, f.system, now)

const existing = (events: readonly ReferralEvent[]): ReferralAggregate => {
  const state = fold(referralDecider, events)
  if (!state.exists) throw new Error('expected a referral')
  return state
}

const declinedBy = (
  practice = f.specA,
  deliveryNo = 1,
  route: 'pooled' | 'direct' = 'pooled',
): ReferralEvent => ({
  type: 'ReferralDeclined',
  data: {
    referralId: f.referralId,
    practiceId: practice,
    deliveryNo,
    route,
    reasonCode: 'capacity',
    phi: {},
    declinedAt: f.at(1),
  },
})
const returnedDeclined: ReferralEvent = {
  type: 'ReferralReturned',
  data: { referralId: f.referralId, reason: 'declined', returnedAt: f.at(1) },
}

const noShowData = {
  referralId: f.referralId,
  practiceId: f.specA,
  appointmentAt: f.at(100),
  recordedAt: f.at(101),
}

describe('SendReferral', () => {
  it('pooled: records the referral only; the router delivers it', () => {
    spec([])
      .when(f.send())
      .thenEmits([{ type: 'ReferralSent', data: { ...f.send().data, sentAt: T0 } } as ReferralEvent])
  })

  it('pooled: the referral waits unassigned for the router', () => {
    const state = spec([]).when(f.send()).state() as ReferralAggregate
    expect(state.status).toBe('unassigned')
    expect(state.intake).toBe('awaiting_route')
    expect(state.route).toBe('pooled')
  })

  it('direct: is delivered at once as delivery 1 with a 48 h response window (routine)', () => {
    const command = f.send({ kind: 'direct', practiceId: f.specA })
    spec([])
      .when(command)
      .thenEmits([
        { type: 'ReferralSent', data: { ...command.data, sentAt: T0 } } as ReferralEvent,
        {
          type: 'ReferralDelivered',
          data: {
            referralId: f.referralId,
            recipientPracticeId: f.specA,
            route: 'direct',
            deliveryNo: 1,
            deliveredAt: T0,
            respondBy: T0_PLUS_48H,
          },
        } as ReferralEvent,
      ])
  })

  it('direct urgent: respondBy is 8 h after delivery', () => {
    const state = spec([])
      .when(f.send({ kind: 'direct', practiceId: f.specA }, { urgency: 'urgent' }))
      .state() as ReferralAggregate
    expect(state.status).toBe('pending')
    expect(state.recipientPracticeId).toBe(f.specA)
    const result = referralDecider.decide(
      f.send({ kind: 'direct', practiceId: f.specA }, { urgency: 'urgent' }),
      {
        exists: false,
      },
    )
    if (isLeft(result)) throw new Error('expected events')
    expect(result.right[1]?.data).toMatchObject({ respondBy: '2026-01-05T17:00:00.000Z' })
  })

  it('keeps optional insurance network and attribution', () => {
    const base = f.send()
    const command = {
      ...base,
      data: {
        ...base.data,
        insuranceNetworkId: 'net-1',
        attribution: { channel: 'web', campaign: 'spring', referringPracticeId: 'p-sender' },
      },
    } as ReferralCommand
    const result = referralDecider.decide(command, { exists: false })
    if (isLeft(result)) throw new Error('expected events')
    expect(result.right[0]?.data).toMatchObject({
      insuranceNetworkId: 'net-1',
      attribution: { channel: 'web', campaign: 'spring', referringPracticeId: 'p-sender' },
    })
  })

  it('is forbidden to a user who is not a member of the sending practice', () => {
    spec([])
      .when(f.send({ kind: 'pooled' }, { actor: f.member(f.outsider) }))
      .thenFails('referral.forbidden')
  })

  it('is forbidden to the system', () => {
    spec([])
      .when(f.send({ kind: 'pooled' }, { actor: f.system }))
      .thenFails('referral.forbidden')
  })

  it('is allowed to the public intake engine, on behalf of the practice it names', () => {
    const command = f.send({ kind: 'pooled' }, { actor: { kind: 'system', component: 'public-intake' } })
    spec([])
      .when(command)
      .thenEmits([{ type: 'ReferralSent', data: { ...command.data, sentAt: T0 } } as ReferralEvent])
  })

  it('fails when the referral id is already used', () => {
    spec([f.sent()]).when(f.send()).thenFails('referral.already_exists')
  })

  it.each([
    ['unknown category', null, 'referral.category_not_found'],
    ['proposed category', { ...f.approved(), status: 'proposed' }, 'referral.category_not_approved'],
    ['retired category', { ...f.approved(), status: 'retired' }, 'referral.category_not_approved'],
    [
      'category of another specialty',
      { ...f.approved(), specialtyId: 'cardio' },
      'referral.category_specialty_mismatch',
    ],
    ['context for another category', f.approved(f.hip), 'referral.category_not_found'],
  ])('rejects a %s', (_name, category, code) => {
    spec([])
      .when(f.send({ kind: 'pooled' }, { context: { category } as never }))
      .thenFails(code)
  })

  it('checks a subcategory against its parent category', () => {
    const base = f.send()
    const withSub = {
      ...base,
      data: { ...base.data, category: { categoryId: f.knee, subcategoryId: 'arthro' } },
    }
    spec([])
      .when({
        ...withSub,
        context: { category: { ...f.approved(), categoryId: 'arthro', parentId: f.hip } },
      } as never)
      .thenFails('referral.category_not_found')
    spec([])
      .when({
        ...withSub,
        context: { category: { ...f.approved(), categoryId: 'arthro', parentId: f.knee } },
      } as never)
      .thenEmits([{ type: 'ReferralSent', data: { ...withSub.data, sentAt: T0 } } as ReferralEvent])
  })

  it.each([
    ['unresolved recipient', undefined, 'referral.context_missing', undefined],
    ['unknown recipient', null, 'referral.recipient_not_eligible', 'not_found'],
    [
      'unverified recipient',
      f.profile(f.specA, { verified: false }),
      'referral.recipient_not_eligible',
      'not_verified',
    ],
    [
      'paused recipient',
      f.profile(f.specA, { status: 'paused' }),
      'referral.recipient_not_eligible',
      'paused',
    ],
    [
      'recipient of another specialty',
      f.profile(f.specA, { specialtyId: 'cardio' as never }),
      'referral.recipient_not_eligible',
      'specialty',
    ],
    [
      'recipient not receiving the category',
      f.profile(f.specA, { categories: [{ categoryId: f.hip }] }),
      'referral.recipient_not_eligible',
      'category',
    ],
    ['profile of another practice', f.profile(f.specB), 'referral.recipient_not_eligible', 'not_found'],
  ])('direct: rejects an %s', (_name, recipient, code, reason) => {
    const context =
      recipient === undefined ? { category: f.approved() } : { category: f.approved(), recipient }
    const result = referralDecider.decide(f.send({ kind: 'direct', practiceId: f.specA }, { context }), {
      exists: false,
    })
    if (!isLeft(result)) throw new Error('expected an error')
    expect(result.left.code).toBe(code)
    if (reason !== undefined) expect(result.left.details?.reason).toBe(reason)
  })

  it('direct: rejects a recipient outside the insurance network', () => {
    const base = f.send({ kind: 'direct', practiceId: f.specA })
    const command = { ...base, data: { ...base.data, insuranceNetworkId: 'net-1' } } as ReferralCommand
    spec([]).when(command).thenFails('referral.recipient_not_eligible')
    const accepting = {
      ...command,
      context: {
        category: f.approved(),
        recipient: f.profile(f.specA, { insuranceNetworks: ['net-1' as never] }),
      },
    } as ReferralCommand
    expect(spec([]).when(accepting).state().exists).toBe(true)
  })

  it('never echoes PHI or input values in errors', () => {
    const result = referralDecider.decide(
      f.send(
        { kind: 'direct', practiceId: f.specA },
        { context: { category: f.approved(), recipient: null } },
      ),
      { exists: false },
    )
    if (!isLeft(result)) throw new Error('expected an error')
    const text = JSON.stringify(result.left)
    for (const secret of ['Alex', 'Example', 'HN-TEST-0001', 'meniscus', 'p-spec-a', '1970-02-03']) {
      expect(text).not.toContain(secret)
    }
  })
})

describe('DeliverReferral (router)', () => {
  it('delivers a pooled referral as delivery 1 with its routing decision', () => {
    spec([f.sent()])
      .when(
        sysCmd('DeliverReferral', {
          recipientPracticeId: f.specB,
          route: 'pooled',
          routingDecisionId: 'rd-7',
        }),
      )
      .thenEmits([
        {
          type: 'ReferralDelivered',
          data: {
            referralId: f.referralId,
            recipientPracticeId: f.specB,
            route: 'pooled',
            deliveryNo: 1,
            deliveredAt: '2026-01-05T11:00:00.000Z',
            respondBy: '2026-01-07T11:00:00.000Z',
            routingDecisionId: 'rd-7',
          },
        } as ReferralEvent,
      ])
  })

  it('numbers the delivery after a decline 2 and records it', () => {
    const state = spec([...f.pendingPooled, declinedBy()])
      .when(sysCmd('DeliverReferral', { recipientPracticeId: f.specB, route: 'pooled' }))
      .state() as ReferralAggregate
    expect(state.deliveryNo).toBe(2)
    expect(state.deliveries.map((d) => [d.deliveryNo, d.practiceId])).toEqual([
      [1, 'p-spec-a'],
      [2, 'p-spec-b'],
    ])
    expect(state.status).toBe('pending')
    expect(state.recipientPracticeId).toBe('p-spec-b')
  })

  it('refuses a practice that already declined the referral', () => {
    spec([...f.pendingPooled, declinedBy()])
      .when(sysCmd('DeliverReferral', { recipientPracticeId: f.specA, route: 'pooled' }))
      .thenFails('referral.recipient_declined')
  })

  it('is only for the system', () => {
    spec([f.sent()])
      .when(userCmd('DeliverReferral', { recipientPracticeId: f.specB, route: 'pooled' }, f.member(f.sender)))
      .thenFails('referral.forbidden')
  })

  it('fails while the referral is pending elsewhere', () => {
    spec(f.pendingPooled)
      .when(sysCmd('DeliverReferral', { recipientPracticeId: f.specB, route: 'pooled' }))
      .thenFails('referral.invalid_transition')
  })

  it('fails when the route does not match the referral', () => {
    spec([f.sent()])
      .when(sysCmd('DeliverReferral', { recipientPracticeId: f.specB, route: 'direct' }))
      .thenFails('referral.invalid_transition')
  })

  it('fails on an unknown referral', () => {
    spec([])
      .when(sysCmd('DeliverReferral', { recipientPracticeId: f.specB, route: 'pooled' }))
      .thenFails('referral.not_found')
  })
})

describe('MarkReferralUnassigned / ReturnReferral (router)', () => {
  const mark = sysCmd('MarkReferralUnassigned', { reason: 'no_candidate' })

  it('records that no candidate was found', () => {
    spec([f.sent()])
      .when(mark)
      .thenEmits([
        {
          type: 'ReferralUnassigned',
          data: { referralId: f.referralId, reason: 'no_candidate', at: '2026-01-05T11:00:00.000Z' },
        },
      ])
  })

  it('is idempotent', () => {
    const unassigned: ReferralEvent = {
      type: 'ReferralUnassigned',
      data: { referralId: f.referralId, reason: 'no_candidate', at: f.at(1) },
    }
    spec([f.sent(), unassigned]).when(mark).thenEmits([])
  })

  it('fails when the referral is pending', () => {
    spec(f.pendingPooled).when(mark).thenFails('referral.invalid_transition')
  })

  it('is only for the system', () => {
    spec([f.sent()])
      .when(userCmd('MarkReferralUnassigned', { reason: 'no_candidate' }, f.member(f.sender)))
      .thenFails('referral.forbidden')
  })

  it('returns an exhausted pool to the sender', () => {
    const state = spec([...f.pendingPooled, declinedBy()])
      .when(sysCmd('ReturnReferral', { reason: 'pool_exhausted' }))
      .state() as ReferralAggregate
    expect(state.status).toBe('returned')
    expect(state.returnedReason).toBe('pool_exhausted')
    spec([f.sent()])
      .when(sysCmd('ReturnReferral', { reason: 'pool_exhausted' }))
      .thenEmits([
        {
          type: 'ReferralReturned',
          data: {
            referralId: f.referralId,
            reason: 'pool_exhausted',
            returnedAt: '2026-01-05T11:00:00.000Z',
          },
        },
      ])
  })

  it('cannot return a pending referral, and only the system may return', () => {
    spec(f.pendingPooled)
      .when(sysCmd('ReturnReferral', { reason: 'pool_exhausted' }))
      .thenFails('referral.invalid_transition')
    spec([f.sent()])
      .when(userCmd('ReturnReferral', { reason: 'pool_exhausted' }, f.member(f.sender)))
      .thenFails('referral.forbidden')
  })
})

describe('AcceptReferral', () => {
  const accept = userCmd('AcceptReferral', {})

  it('the recipient accepts a pending referral', () => {
    spec(f.pendingPooled)
      .when(accept)
      .thenEmits([
        {
          type: 'ReferralAccepted',
          data: {
            referralId: f.referralId,
            practiceId: f.specA,
            deliveryNo: 1,
            acceptedAt: '2026-01-05T11:00:00.000Z',
          },
        },
      ])
  })

  it.each([
    ['the sender', f.member(f.sender)],
    ['an outsider', f.member(f.outsider)],
    ['another specialist', f.member(f.specB)],
    ['the system', f.system],
  ])('is forbidden to %s', (_name, actor) => {
    spec(f.pendingPooled)
      .when(userCmd('AcceptReferral', {}, actor))
      .thenFails('referral.forbidden')
  })

  it('is forbidden to a former recipient after its decline', () => {
    spec([...f.pendingPooled, declinedBy()])
      .when(accept)
      .thenFails('referral.forbidden')
  })

  it('fails when already accepted', () => {
    spec([...f.pendingPooled, f.accepted])
      .when(accept)
      .thenFails('referral.invalid_transition')
  })

  it('fails on an unknown referral', () => {
    spec([]).when(accept).thenFails('referral.not_found')
  })
})

describe('DeclineReferral', () => {
  const decline = userCmd('DeclineReferral', { reasonCode: 'out_of_scope', phi: { note: 'Not my area' } })

  it('pooled: the referral waits for re-routing; the decliner is excluded and loses PHI access', () => {
    spec(f.pendingPooled)
      .when(decline)
      .thenEmits([
        {
          type: 'ReferralDeclined',
          data: {
            referralId: f.referralId,
            practiceId: f.specA,
            deliveryNo: 1,
            route: 'pooled',
            reasonCode: 'out_of_scope',
            phi: { note: 'Not my area' },
            declinedAt: '2026-01-05T11:00:00.000Z',
          },
        },
      ])
    const state = spec(f.pendingPooled).when(decline).state() as ReferralAggregate
    expect(state.status).toBe('unassigned')
    expect(state.intake).toBe('awaiting_route')
    expect(state.declinedBy).toEqual(['p-spec-a'])
    expect(state.formerRecipients).toEqual(['p-spec-a'])
    expect(state.recipientPracticeId).toBeNull()
    expect(canSeePhi(state, f.specA)).toBe(false)
    expect(canAccessReferral(state, f.specA)).toBe(true)
    expect(canSeePhi(state, f.sender)).toBe(true)
    expect(canAccessReferral(state, f.outsider)).toBe(false)
  })

  it('direct: the referral is returned to the sender', () => {
    spec(f.pendingDirect)
      .when(userCmd('DeclineReferral', { reasonCode: 'capacity' }))
      .thenEmits([
        {
          type: 'ReferralDeclined',
          data: {
            referralId: f.referralId,
            practiceId: f.specA,
            deliveryNo: 1,
            route: 'direct',
            reasonCode: 'capacity',
            phi: {},
            declinedAt: '2026-01-05T11:00:00.000Z',
          },
        },
        {
          type: 'ReferralReturned',
          data: { referralId: f.referralId, reason: 'declined', returnedAt: '2026-01-05T11:00:00.000Z' },
        },
      ])
    const state = spec(f.pendingDirect).when(decline).state() as ReferralAggregate
    expect(state.status).toBe('returned')
    expect(state.returnedReason).toBe('declined')
  })

  it('is forbidden to anyone but the recipient', () => {
    spec(f.pendingPooled)
      .when(userCmd('DeclineReferral', { reasonCode: 'capacity' }, f.member(f.sender)))
      .thenFails('referral.forbidden')
  })

  it('fails after acceptance', () => {
    spec([...f.pendingPooled, f.accepted])
      .when(decline)
      .thenFails('referral.invalid_transition')
  })
})

describe('appointments and completion', () => {
  const acceptedEvents = [...f.pendingPooled, f.accepted]
  const scheduledEvents = [...acceptedEvents, f.scheduled]

  it('schedules an accepted referral', () => {
    spec(acceptedEvents)
      .when(userCmd('ScheduleAppointment', { at: f.at(100), phi: { location: 'Room 4' } }))
      .thenEmits([
        {
          type: 'AppointmentScheduled',
          data: {
            referralId: f.referralId,
            practiceId: f.specA,
            at: '2026-01-09T13:00:00.000Z',
            phi: { location: 'Room 4' },
          },
        },
      ])
  })

  it('cannot schedule a pending referral or for another practice', () => {
    spec(f.pendingPooled)
      .when(userCmd('ScheduleAppointment', { at: f.at(100) }))
      .thenFails('referral.invalid_transition')
    spec(acceptedEvents)
      .when(userCmd('ScheduleAppointment', { at: f.at(100) }, f.member(f.sender)))
      .thenFails('referral.forbidden')
  })

  it('reschedules and records the previous time', () => {
    spec(scheduledEvents)
      .when(userCmd('RescheduleAppointment', { at: f.at(120) }))
      .thenEmits([
        {
          type: 'AppointmentRescheduled',
          data: {
            referralId: f.referralId,
            practiceId: f.specA,
            at: '2026-01-10T09:00:00.000Z',
            previousAt: '2026-01-09T13:00:00.000Z',
            phi: {},
          },
        },
      ])
    const state = spec(scheduledEvents)
      .when(userCmd('RescheduleAppointment', { at: f.at(120) }))
      .state() as ReferralAggregate
    expect(state.appointment).toEqual({
      at: '2026-01-10T09:00:00.000Z',
      durationMinutes: null,
      previousAt: '2026-01-09T13:00:00.000Z',
      noShow: false,
    })
  })

  it('given an accepted referral, when scheduled with a duration, then the event and the state carry it', () => {
    const scheduleWithDuration = userCmd('ScheduleAppointment', { at: f.at(100), durationMinutes: 30 })
    spec(acceptedEvents)
      .when(scheduleWithDuration)
      .thenEmits([
        {
          type: 'AppointmentScheduled',
          data: {
            referralId: f.referralId,
            practiceId: f.specA,
            at: '2026-01-09T13:00:00.000Z',
            durationMinutes: 30,
            phi: {},
          },
        },
      ])
    const state = spec(acceptedEvents).when(scheduleWithDuration).state() as ReferralAggregate
    expect(state.appointment?.durationMinutes).toBe(30)
  })

  it('given an appointment scheduled without a duration (an old event), when folded, then the duration is null', () => {
    const state = spec(acceptedEvents)
      .when(userCmd('ScheduleAppointment', { at: f.at(100) }))
      .state() as ReferralAggregate
    expect(state.appointment?.durationMinutes).toBeNull()
  })

  it('given a scheduled appointment, when rescheduled at the same time with a new duration, then it is a change; the same time and duration is refused', () => {
    spec(scheduledEvents)
      .when(userCmd('RescheduleAppointment', { at: f.at(100), durationMinutes: 20 }))
      .thenEmits([
        {
          type: 'AppointmentRescheduled',
          data: {
            referralId: f.referralId,
            practiceId: f.specA,
            at: '2026-01-09T13:00:00.000Z',
            previousAt: '2026-01-09T13:00:00.000Z',
            durationMinutes: 20,
            phi: {},
          },
        },
      ])
    spec([...scheduledEvents])
      .when(userCmd('RescheduleAppointment', { at: f.at(100) }))
      .thenFails('referral.unchanged')
  })

  it('reschedule: rejects the same time, an unscheduled referral and other practices', () => {
    spec(scheduledEvents)
      .when(userCmd('RescheduleAppointment', { at: f.at(100) }))
      .thenFails('referral.unchanged')
    spec(acceptedEvents)
      .when(userCmd('RescheduleAppointment', { at: f.at(120) }))
      .thenFails('referral.invalid_transition')
    spec(scheduledEvents)
      .when(userCmd('RescheduleAppointment', { at: f.at(120) }, f.member(f.outsider)))
      .thenFails('referral.forbidden')
  })

  it('records a no-show once the appointment time has passed, once per appointment', () => {
    const noShow = userCmd('RecordNoShow', {}, f.member(f.specA), f.at(101))
    spec(scheduledEvents)
      .when(noShow)
      .thenEmits([
        {
          type: 'PatientNoShowRecorded',
          data: {
            referralId: f.referralId,
            practiceId: f.specA,
            appointmentAt: '2026-01-09T13:00:00.000Z',
            recordedAt: '2026-01-09T14:00:00.000Z',
          },
        },
      ])
    const recorded = spec(scheduledEvents).when(noShow).state() as ReferralAggregate
    expect(recorded.noShowCount).toBe(1)
    expect(recorded.status).toBe('scheduled')
    spec([...scheduledEvents, { type: 'PatientNoShowRecorded', data: { ...noShowData } }])
      .when(noShow)
      .thenFails('referral.no_show_already_recorded')
    spec(scheduledEvents)
      .when(userCmd('RecordNoShow', {}, f.member(f.specA), f.at(99)))
      .thenFails('referral.appointment_not_due')
    spec(acceptedEvents).when(noShow).thenFails('referral.invalid_transition')
    spec(scheduledEvents)
      .when(userCmd('RecordNoShow', {}, f.member(f.sender), f.at(101)))
      .thenFails('referral.forbidden')
  })

  it('a rescheduled appointment after a no-show can be recorded again', () => {
    const events: ReferralEvent[] = [
      ...scheduledEvents,
      { type: 'PatientNoShowRecorded', data: { ...noShowData } },
      {
        type: 'AppointmentRescheduled',
        data: {
          referralId: f.referralId,
          practiceId: f.specA,
          at: f.at(150),
          previousAt: f.at(100),
          phi: {},
        },
      },
    ]
    const state = spec(events)
      .when(userCmd('RecordNoShow', {}, f.member(f.specA), f.at(151)))
      .state() as ReferralAggregate
    expect(state.noShowCount).toBe(2)
  })

  it('completes a scheduled referral with an outcome note', () => {
    spec(scheduledEvents)
      .when(userCmd('CompleteReferral', { phi: { outcomeNote: 'Physiotherapy advised' } }))
      .thenEmits([
        {
          type: 'ReferralCompleted',
          data: {
            referralId: f.referralId,
            practiceId: f.specA,
            phi: { outcomeNote: 'Physiotherapy advised' },
            completedAt: '2026-01-05T11:00:00.000Z',
          },
        },
      ])
  })

  it('complete: rejects an unscheduled referral and other practices', () => {
    spec(acceptedEvents).when(userCmd('CompleteReferral', {})).thenFails('referral.invalid_transition')
    spec(scheduledEvents)
      .when(userCmd('CompleteReferral', {}, f.member(f.sender)))
      .thenFails('referral.forbidden')
  })
})

describe('ChangeUrgency / ChangeCategory (recipient)', () => {
  it('changes urgency and records the previous value', () => {
    spec(f.pendingPooled)
      .when(userCmd('ChangeUrgency', { urgency: 'urgent', phi: { reason: 'Worsening' } }))
      .thenEmits([
        {
          type: 'ReferralUrgencyChanged',
          data: {
            referralId: f.referralId,
            practiceId: f.specA,
            urgency: 'urgent',
            previousUrgency: 'routine',
            phi: { reason: 'Worsening' },
          },
        },
      ])
    const state = spec(f.pendingPooled)
      .when(userCmd('ChangeUrgency', { urgency: 'emergent' }))
      .state() as ReferralAggregate
    expect([state.urgency, state.previousUrgency]).toEqual(['emergent', 'routine'])
  })

  it('urgency: rejects no change, the sender and closed referrals', () => {
    spec(f.pendingPooled)
      .when(userCmd('ChangeUrgency', { urgency: 'routine' }))
      .thenFails('referral.unchanged')
    spec(f.pendingPooled)
      .when(userCmd('ChangeUrgency', { urgency: 'urgent' }, f.member(f.sender)))
      .thenFails('referral.forbidden')
    const completed: ReferralEvent = {
      type: 'ReferralCompleted',
      data: { referralId: f.referralId, practiceId: f.specA, phi: {}, completedAt: f.at(101) },
    }
    spec([...f.pendingPooled, f.accepted, f.scheduled, completed])
      .when(userCmd('ChangeUrgency', { urgency: 'urgent' }))
      .thenFails('referral.invalid_transition')
  })

  it('changes category with previous value and the pool facts the router re-files counts with', () => {
    spec(f.pendingPooled)
      .when(
        userCmd('ChangeCategory', { category: { categoryId: f.hip } }, f.member(f.specA), f.at(2), {
          category: f.approved(f.hip),
        }),
      )
      .thenEmits([
        {
          type: 'ReferralCategoryChanged',
          data: {
            referralId: f.referralId,
            practiceId: f.specA,
            specialtyId: f.specialtyId,
            regionId: f.regionId,
            route: 'pooled',
            category: { categoryId: f.hip },
            previousCategory: { categoryId: f.knee },
          },
        } as ReferralEvent,
      ])
  })

  it.each([
    [
      'an unapproved category',
      { ...f.approved(f.hip), status: 'proposed' },
      'referral.category_not_approved',
    ],
    ['a retired category', { ...f.approved(f.hip), status: 'retired' }, 'referral.category_not_approved'],
    [
      'a category of another specialty',
      { ...f.approved(f.hip), specialtyId: 'cardio' },
      'referral.category_specialty_mismatch',
    ],
    ['an unknown category', null, 'referral.category_not_found'],
  ])('category: rejects %s', (_name, category, code) => {
    spec(f.pendingPooled)
      .when(
        userCmd('ChangeCategory', { category: { categoryId: f.hip } }, f.member(f.specA), f.at(2), {
          category,
        }),
      )
      .thenFails(code)
  })

  it('category: rejects no change and the sender', () => {
    spec(f.pendingPooled)
      .when(
        userCmd('ChangeCategory', { category: { categoryId: f.knee } }, f.member(f.specA), f.at(2), {
          category: f.approved(),
        }),
      )
      .thenFails('referral.unchanged')
    spec(f.pendingPooled)
      .when(
        userCmd('ChangeCategory', { category: { categoryId: f.hip } }, f.member(f.sender), f.at(2), {
          category: f.approved(f.hip),
        }),
      )
      .thenFails('referral.forbidden')
  })
})

describe('CancelReferral (sender)', () => {
  it('cancels a pending referral; the recipient holding it is recorded', () => {
    spec(f.pendingPooled)
      .when(
        userCmd(
          'CancelReferral',
          { reasonCode: 'patient_request', phi: { note: 'Moved away' } },
          f.member(f.sender),
        ),
      )
      .thenEmits([
        {
          type: 'ReferralCancelled',
          data: {
            referralId: f.referralId,
            reasonCode: 'patient_request',
            phi: { note: 'Moved away' },
            recipientPracticeId: f.specA,
            cancelledAt: '2026-01-05T11:00:00.000Z',
          },
        },
      ])
  })

  it('cancels an unassigned referral', () => {
    const state = spec([f.sent()])
      .when(userCmd('CancelReferral', { reasonCode: 'duplicate' }, f.member(f.sender)))
      .state() as ReferralAggregate
    expect(state.status).toBe('cancelled')
  })

  it('is forbidden to the recipient and fails once closed', () => {
    spec(f.pendingPooled)
      .when(userCmd('CancelReferral', { reasonCode: 'other' }))
      .thenFails('referral.forbidden')
    const cancelled: ReferralEvent = {
      type: 'ReferralCancelled',
      data: {
        referralId: f.referralId,
        reasonCode: 'other',
        phi: {},
        recipientPracticeId: null,
        cancelledAt: f.at(1),
      },
    }
    spec([f.sent(), cancelled])
      .when(userCmd('CancelReferral', { reasonCode: 'other' }, f.member(f.sender)))
      .thenFails('referral.invalid_transition')
  })
})

describe('RedirectReferral (sender)', () => {
  const returned = [...f.pendingDirect, declinedBy(f.specA, 1, 'direct'), returnedDeclined]

  it('redirects a returned referral to the pool', () => {
    spec(returned)
      .when(userCmd('RedirectReferral', { target: { kind: 'pooled' } }, f.member(f.sender)))
      .thenEmits([
        {
          type: 'ReferralRedirected',
          data: { referralId: f.referralId, target: { kind: 'pooled' }, previousRoute: 'direct' },
        },
      ])
    const state = spec(returned)
      .when(userCmd('RedirectReferral', { target: { kind: 'pooled' } }, f.member(f.sender)))
      .state() as ReferralAggregate
    expect(state.status).toBe('unassigned')
    expect(state.intake).toBe('awaiting_route')
    expect(state.route).toBe('pooled')
    expect(state.declinedBy).toEqual(['p-spec-a'])
  })

  it('redirects a returned referral to another specialist: delivered at once as delivery 2', () => {
    spec(returned)
      .when(
        userCmd(
          'RedirectReferral',
          { target: { kind: 'direct', practiceId: f.specB } },
          f.member(f.sender),
          f.at(2),
          {
            recipient: f.profile(f.specB),
          },
        ),
      )
      .thenEmits([
        {
          type: 'ReferralRedirected',
          data: {
            referralId: f.referralId,
            target: { kind: 'direct', practiceId: f.specB },
            previousRoute: 'direct',
          },
        },
        {
          type: 'ReferralDelivered',
          data: {
            referralId: f.referralId,
            recipientPracticeId: f.specB,
            route: 'direct',
            deliveryNo: 2,
            deliveredAt: '2026-01-05T11:00:00.000Z',
            respondBy: '2026-01-07T11:00:00.000Z',
          },
        },
      ])
  })

  it('keeps declinedBy: a practice that declined cannot be chosen again', () => {
    spec(returned)
      .when(
        userCmd(
          'RedirectReferral',
          { target: { kind: 'direct', practiceId: f.specA } },
          f.member(f.sender),
          f.at(2),
          {
            recipient: f.profile(f.specA),
          },
        ),
      )
      .thenFails('referral.recipient_declined')
  })

  it('redirects an unassigned pooled referral to a specialist', () => {
    const state = spec([f.sent()])
      .when(
        userCmd(
          'RedirectReferral',
          { target: { kind: 'direct', practiceId: f.specB } },
          f.member(f.sender),
          f.at(2),
          {
            recipient: f.profile(f.specB),
          },
        ),
      )
      .state() as ReferralAggregate
    expect([state.status, state.route, state.recipientPracticeId]).toEqual(['pending', 'direct', 'p-spec-b'])
  })

  it('rejects pooled → pooled while waiting, a pending referral, an ineligible target and non-senders', () => {
    spec([f.sent()])
      .when(userCmd('RedirectReferral', { target: { kind: 'pooled' } }, f.member(f.sender)))
      .thenFails('referral.unchanged')
    spec(f.pendingPooled)
      .when(userCmd('RedirectReferral', { target: { kind: 'pooled' } }, f.member(f.sender)))
      .thenFails('referral.invalid_transition')
    spec(returned)
      .when(
        userCmd(
          'RedirectReferral',
          { target: { kind: 'direct', practiceId: f.specB } },
          f.member(f.sender),
          f.at(2),
          {
            recipient: f.profile(f.specB, { verified: false }),
          },
        ),
      )
      .thenFails('referral.recipient_not_eligible')
    spec(returned)
      .when(userCmd('RedirectReferral', { target: { kind: 'pooled' } }, f.member(f.specA)))
      .thenFails('referral.forbidden')
  })
})

describe('AddAttachment (sender)', () => {
  const sha = 'a'.repeat(64)
  const data = {
    attachmentId: 'att-1',
    contentType: 'application/pdf',
    sizeBytes: 1234,
    sha256: sha,
    phi: { fileName: 'mri.pdf' },
  }

  it('adds an attachment', () => {
    spec(f.pendingPooled)
      .when(userCmd('AddAttachment', data, f.member(f.sender)))
      .thenEmits([{ type: 'AttachmentAdded', data: { referralId: f.referralId, ...data } } as ReferralEvent])
  })

  it('rejects a duplicate id, the recipient and closed referrals', () => {
    const added = { type: 'AttachmentAdded', data: { referralId: f.referralId, ...data } } as ReferralEvent
    spec([...f.pendingPooled, added])
      .when(userCmd('AddAttachment', data, f.member(f.sender)))
      .thenFails('referral.duplicate_attachment')
    spec(f.pendingPooled).when(userCmd('AddAttachment', data)).thenFails('referral.forbidden')
    const cancelled: ReferralEvent = {
      type: 'ReferralCancelled',
      data: {
        referralId: f.referralId,
        reasonCode: 'other',
        phi: {},
        recipientPracticeId: null,
        cancelledAt: f.at(1),
      },
    }
    spec([f.sent(), cancelled])
      .when(userCmd('AddAttachment', data, f.member(f.sender)))
      .thenFails('referral.invalid_transition')
  })
})

describe('PostMessage (both sides)', () => {
  const message = (actor = f.member(f.sender), id = 'msg-1') =>
    userCmd('PostMessage', { messageId: id, phi: { body: 'Please call the patient.' } }, actor)

  it('the sender and the current recipient can post', () => {
    spec(f.pendingPooled)
      .when(message())
      .thenEmits([
        {
          type: 'MessagePosted',
          data: {
            referralId: f.referralId,
            messageId: 'msg-1',
            fromPracticeId: f.sender,
            phi: { body: 'Please call the patient.' },
            postedAt: '2026-01-05T11:00:00.000Z',
          },
        } as ReferralEvent,
      ])
    const state = spec(f.pendingPooled)
      .when(message(f.member(f.specA)))
      .state() as ReferralAggregate
    expect(state.messageIds).toEqual(['msg-1'])
  })

  it('outsiders and former recipients cannot post; ids are unique', () => {
    spec(f.pendingPooled)
      .when(message(f.member(f.outsider)))
      .thenFails('referral.forbidden')
    spec([...f.pendingPooled, declinedBy()])
      .when(message(f.member(f.specA)))
      .thenFails('referral.forbidden')
    const posted = {
      type: 'MessagePosted',
      data: {
        referralId: f.referralId,
        messageId: 'msg-1',
        fromPracticeId: f.sender,
        phi: { body: 'x' },
        postedAt: f.at(1),
      },
    } as ReferralEvent
    spec([...f.pendingPooled, posted])
      .when(message())
      .thenFails('referral.duplicate_message')
  })
})

describe('response window commands (scheduler)', () => {
  const remind = (deliveryNo: number, now: Instant) => sysCmd('IssueResponseReminder', { deliveryNo }, now)
  const expire = (deliveryNo: number, now: Instant) => sysCmd('ExpireResponse', { deliveryNo }, now)
  const reminded: ReferralEvent = {
    type: 'ResponseReminderIssued',
    data: {
      referralId: f.referralId,
      practiceId: f.specA,
      deliveryNo: 1,
      respondBy: f.at(48),
      issuedAt: f.at(24),
    },
  }

  it('issues the recipient reminder at 24 h, once per delivery', () => {
    spec(f.pendingPooled)
      .when(remind(1, f.at(24)))
      .thenEmits([
        {
          type: 'ResponseReminderIssued',
          data: {
            referralId: f.referralId,
            practiceId: f.specA,
            deliveryNo: 1,
            respondBy: T0_PLUS_48H,
            issuedAt: '2026-01-06T09:00:00.000Z',
          },
        },
      ])
    spec([...f.pendingPooled, reminded])
      .when(remind(1, f.at(25)))
      .thenEmits([])
  })

  it('a reminder that is early, stale, superseded by the expiry, or for a referral no longer pending emits nothing', () => {
    spec(f.pendingPooled)
      .when(remind(1, f.at(23, 59)))
      .thenEmits([])
    spec(f.pendingPooled)
      .when(remind(2, f.at(24)))
      .thenEmits([])
    spec(f.pendingPooled)
      .when(remind(1, f.at(48)))
      .thenEmits([])
    spec([...f.pendingPooled, f.accepted])
      .when(remind(1, f.at(24)))
      .thenEmits([])
  })

  it('expires a pooled delivery at 48 h: back to unassigned, the practice excluded and without PHI', () => {
    spec(f.pendingPooled)
      .when(expire(1, f.at(48)))
      .thenEmits([
        {
          type: 'ReferralExpired',
          data: {
            referralId: f.referralId,
            practiceId: f.specA,
            deliveryNo: 1,
            route: 'pooled',
            expiredAt: T0_PLUS_48H,
          },
        },
      ])
    const state = spec(f.pendingPooled)
      .when(expire(1, f.at(48)))
      .state() as ReferralAggregate
    expect(state.status).toBe('unassigned')
    expect(state.declinedBy).toEqual(['p-spec-a'])
    expect(state.formerRecipients).toEqual(['p-spec-a'])
    expect(canSeePhi(state, f.specA)).toBe(false)
  })

  it('expires a direct delivery: returned to the sender', () => {
    spec(f.pendingDirect)
      .when(expire(1, f.at(48)))
      .thenEmits([
        {
          type: 'ReferralExpired',
          data: {
            referralId: f.referralId,
            practiceId: f.specA,
            deliveryNo: 1,
            route: 'direct',
            expiredAt: T0_PLUS_48H,
          },
        },
        {
          type: 'ReferralReturned',
          data: { referralId: f.referralId, reason: 'expired', returnedAt: T0_PLUS_48H },
        },
      ])
  })

  it('an expiry that is early, stale, repeated or after acceptance emits nothing', () => {
    spec(f.pendingPooled)
      .when(expire(1, f.at(47, 59)))
      .thenEmits([])
    spec(f.pendingPooled)
      .when(expire(0, f.at(48)))
      .thenEmits([])
    const expired: ReferralEvent = {
      type: 'ReferralExpired',
      data: {
        referralId: f.referralId,
        practiceId: f.specA,
        deliveryNo: 1,
        route: 'pooled',
        expiredAt: f.at(48),
      },
    }
    spec([...f.pendingPooled, expired])
      .when(expire(1, f.at(49)))
      .thenEmits([])
    spec([...f.pendingPooled, { ...f.accepted, data: { ...f.accepted.data, acceptedAt: f.at(47) } }])
      .when(expire(1, f.at(48)))
      .thenEmits([])
  })

  it('follows the current urgency: urgent expires at 8 h', () => {
    const urgentPending = [
      f.sent({ kind: 'pooled' }, 'urgent'),
      f.delivered(f.specA, 1, f.t0, { expireAfterHours: 8 }),
    ]
    spec(urgentPending)
      .when(expire(1, f.at(7, 59)))
      .thenEmits([])
    expect(
      (
        spec(urgentPending)
          .when(expire(1, f.at(8)))
          .state() as ReferralAggregate
      ).status,
    ).toBe('unassigned')
  })

  it('issues patient reminders every 72 h while waiting, each sequence once', () => {
    const patient = (sequence: number, now: Instant) => sysCmd('IssuePatientReminder', { sequence }, now)
    spec([f.sent()])
      .when(patient(1, f.at(72)))
      .thenEmits([
        {
          type: 'PatientReminderIssued',
          data: {
            referralId: f.referralId,
            patientId: 'pat-1',
            sequence: 1,
            issuedAt: '2026-01-08T09:00:00.000Z',
          },
        } as ReferralEvent,
      ])
    spec([f.sent()])
      .when(patient(1, f.at(71, 59)))
      .thenEmits([])
    const first: ReferralEvent = {
      type: 'PatientReminderIssued',
      data: { referralId: f.referralId, patientId: 'pat-1' as never, sequence: 1, issuedAt: f.at(72) },
    }
    spec([f.sent(), first])
      .when(patient(1, f.at(80)))
      .thenEmits([])
    spec([...f.pendingPooled, f.accepted])
      .when(patient(1, f.at(72)))
      .thenEmits([])
  })

  it('scheduler commands are only for the system', () => {
    spec(f.pendingPooled)
      .when(userCmd('ExpireResponse', { deliveryNo: 1 }, f.member(f.specA), f.at(48)))
      .thenFails('referral.forbidden')
    spec(f.pendingPooled)
      .when(userCmd('IssueResponseReminder', { deliveryNo: 1 }, f.member(f.specA), f.at(24)))
      .thenFails('referral.forbidden')
    spec([f.sent()])
      .when(userCmd('IssuePatientReminder', { sequence: 1 }, f.member(f.sender), f.at(72)))
      .thenFails('referral.forbidden')
  })
})

describe('forgotten patient (redacted PHI)', () => {
  const redact = (event: ReferralEvent): ReferralEvent =>
    'phi' in event.data
      ? ({ ...event, data: { ...event.data, phi: { redacted: true } } } as ReferralEvent)
      : event

  it('folds to the same state and the decider still works', () => {
    const history: ReferralEvent[] = [
      ...f.pendingPooled,
      declinedBy(),
      f.delivered(f.specB, 2, f.at(3)),
      { ...f.accepted, data: { ...f.accepted.data, practiceId: f.specB, deliveryNo: 2 } },
      { ...f.scheduled, data: { ...f.scheduled.data, practiceId: f.specB } },
      {
        type: 'MessagePosted',
        data: {
          referralId: f.referralId,
          messageId: 'm1',
          fromPracticeId: f.sender,
          phi: { body: 'hi' },
          postedAt: f.at(4),
        },
      } as ReferralEvent,
    ]
    const redacted = history.map(redact)
    expect(redacted[0]?.data).toMatchObject({ phi: { redacted: true } })
    const state: ReferralState = fold(referralDecider, redacted)
    expect(state).toEqual(fold(referralDecider, history))
    spec(redacted)
      .when(userCmd('CompleteReferral', {}, f.member(f.specB)))
      .thenEmits([
        {
          type: 'ReferralCompleted',
          data: {
            referralId: f.referralId,
            practiceId: f.specB,
            phi: {},
            completedAt: '2026-01-05T11:00:00.000Z',
          },
        },
      ])
  })

  it('evolve ignores events for a referral that was never sent', () => {
    expect(fold(referralDecider, [f.accepted, f.scheduled])).toEqual({ exists: false })
    expect(existing([f.sent(), f.sent()]).status).toBe('unassigned')
  })
})

it('status is exposed with the documented time of the first delivery', () => {
  expect(existing(f.pendingPooled).deliveredAt).toBe(T0)
})
