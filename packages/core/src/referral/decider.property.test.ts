import fc from 'fast-check'
import { isLeft, isRight } from 'fp-ts/lib/Either.js'
import { expect, it } from 'vitest'
import type { Actor } from '../shared/actor.js'
import { fold } from '../shared/decider.js'
import type { Urgency } from '../shared/domain-types.js'
import type { PracticeId } from '../shared/ids.js'
import { addMillis, type Instant } from '../shared/time.js'
import { ReferralEvent } from './codecs.js'
import { type ReferralCommand, referralDecider } from './decider.js'
import { referralFixtures as f } from './fixtures.js'
import {
  canSeePhi,
  REFERRAL_STATUSES,
  type ReferralAggregate,
  type ReferralState,
  type ReferralStatus,
} from './state.js'

const PRACTICES: readonly PracticeId[] = [f.sender, f.specA, f.specB, f.specC, f.outsider]
const SPECIALISTS: readonly PracticeId[] = [f.specA, f.specB, f.specC]

type Kind = ReferralCommand['type']

const ALL_KINDS: readonly Kind[] = [
  'DeliverReferral',
  'MarkReferralUnassigned',
  'ReturnReferral',
  'AcceptReferral',
  'DeclineReferral',
  'ScheduleAppointment',
  'RescheduleAppointment',
  'RecordNoShow',
  'CompleteReferral',
  'ChangeUrgency',
  'ChangeCategory',
  'CancelReferral',
  'RedirectReferral',
  'AddAttachment',
  'PostMessage',
  'IssueResponseReminder',
  'ExpireResponse',
  'IssuePatientReminder',
]

/** Commands that make sense in each status, so most generated steps are valid and runs go far. */
const LIKELY: Readonly<Record<ReferralStatus, readonly Kind[]>> = {
  unassigned: [
    'DeliverReferral',
    'DeliverReferral',
    'DeliverReferral',
    'MarkReferralUnassigned',
    'ReturnReferral',
    'RedirectReferral',
    'PostMessage',
    'AddAttachment',
    'IssuePatientReminder',
  ],
  pending: [
    'AcceptReferral',
    'AcceptReferral',
    'DeclineReferral',
    'DeclineReferral',
    'ExpireResponse',
    'IssueResponseReminder',
    'ChangeUrgency',
    'ChangeCategory',
    'PostMessage',
    'AddAttachment',
    'IssuePatientReminder',
  ],
  accepted: ['ScheduleAppointment', 'ScheduleAppointment', 'ChangeUrgency', 'ChangeCategory', 'PostMessage'],
  scheduled: ['RescheduleAppointment', 'RecordNoShow', 'CompleteReferral', 'CompleteReferral', 'PostMessage'],
  returned: ['RedirectReferral', 'RedirectReferral', 'RedirectReferral', 'PostMessage'],
  completed: ['PostMessage', 'CancelReferral'],
  cancelled: ['PostMessage', 'RedirectReferral'],
}

const step = fc.record({
  /** 0: any command at all (mostly invalid), 1: cancel, otherwise one likely in the status. */
  mode: fc.nat({ max: 24 }),
  choice: fc.nat({ max: 100 }),
  side: fc.constantFrom('natural', 'natural', 'natural', 'natural', 'system', 'any'),
  pick: fc.nat({ max: 4 }),
  flag: fc.boolean(),
  urgency: fc.constantFrom('routine', 'urgent', 'emergent'),
  advanceMinutes: fc.oneof(fc.integer({ min: 0, max: 120 }), fc.integer({ min: 0, max: 60 * 60 })),
})
type Step = typeof step extends fc.Arbitrary<infer S> ? S : never

const kindFor = (s: Step, state: ReferralAggregate): Kind => {
  if (s.mode === 0) return ALL_KINDS[s.choice % ALL_KINDS.length] as Kind
  if (s.mode === 1) return 'CancelReferral'
  const likely = LIKELY[state.status]
  return likely[s.choice % likely.length] as Kind
}

const start = fc.record({
  direct: fc.boolean(),
  urgency: fc.constantFrom('routine', 'urgent', 'emergent'),
})

const SYSTEM_KINDS: readonly Kind[] = [
  'DeliverReferral',
  'MarkReferralUnassigned',
  'ReturnReferral',
  'IssueResponseReminder',
  'ExpireResponse',
  'IssuePatientReminder',
]
const SENDER_KINDS: readonly Kind[] = ['CancelReferral', 'RedirectReferral', 'AddAttachment']

/** Usually the actor the command is meant for; sometimes the system or any practice's member. */
const actorFor = (s: Step, kind: Kind, state: ReferralAggregate): Actor => {
  if (s.side === 'system') return f.system
  if (s.side === 'any') return f.member(PRACTICES[s.pick] as PracticeId)
  if (SYSTEM_KINDS.includes(kind)) return f.system
  const recipient = state.recipientPracticeId ?? (SPECIALISTS[s.pick % 3] as PracticeId)
  if (SENDER_KINDS.includes(kind) || (kind === 'PostMessage' && s.flag))
    return f.member(state.senderPracticeId)
  return f.member(recipient)
}

/** A plausible command for the current state; the generator aims for valid ones but not always. */
const commandFor = (s: Step, state: ReferralAggregate, now: Instant, n: number): ReferralCommand => {
  const specialist = SPECIALISTS[s.pick % 3] as PracticeId
  const kind = kindFor(s, state)
  const actor = actorFor(s, kind, state)
  const meta = f.meta(actor, now)
  const later = addMillis(now, (s.pick + 1) * 86_400_000)
  const command = (type: ReferralCommand['type'], data: unknown, context?: unknown) =>
    ({ type, data, meta, ...(context === undefined ? {} : { context }) }) as ReferralCommand
  switch (kind) {
    case 'DeliverReferral':
      return command('DeliverReferral', {
        recipientPracticeId: specialist,
        route: s.flag ? state.route : 'pooled',
      })
    case 'MarkReferralUnassigned':
      return command('MarkReferralUnassigned', { reason: 'no_candidate' })
    case 'ReturnReferral':
      return command('ReturnReferral', { reason: 'pool_exhausted' })
    case 'AcceptReferral':
    case 'RecordNoShow':
      return command(kind, {})
    case 'DeclineReferral':
      return command('DeclineReferral', { reasonCode: 'capacity', phi: { note: 'full' } })
    case 'ScheduleAppointment':
    case 'RescheduleAppointment':
      return command(kind, { at: s.flag ? later : now })
    case 'CompleteReferral':
      return command('CompleteReferral', {})
    case 'ChangeUrgency':
      return command('ChangeUrgency', { urgency: s.urgency })
    case 'ChangeCategory': {
      const categoryId = s.flag ? f.hip : f.knee
      return command('ChangeCategory', { category: { categoryId } }, { category: f.approved(categoryId) })
    }
    case 'CancelReferral':
      return command('CancelReferral', { reasonCode: 'other' })
    case 'SendReferral':
      return f.send()
    case 'RedirectReferral':
      return s.flag
        ? command('RedirectReferral', { target: { kind: 'pooled' } })
        : command(
            'RedirectReferral',
            { target: { kind: 'direct', practiceId: specialist } },
            { recipient: f.profile(specialist) },
          )
    case 'AddAttachment':
      return command('AddAttachment', {
        attachmentId: `att-${n % 3}`,
        contentType: 'application/pdf',
        sizeBytes: 10,
        sha256: '0'.repeat(64),
        phi: { fileName: 'a.pdf' },
      })
    case 'PostMessage':
      return command('PostMessage', { messageId: `msg-${n % 5}`, phi: { body: 'hello' } })
    case 'IssueResponseReminder':
    case 'ExpireResponse':
      return command(kind, { deliveryNo: s.flag ? Math.max(1, state.deliveryNo) : s.pick + 1 })
    case 'IssuePatientReminder':
      return command('IssuePatientReminder', {
        sequence: s.flag ? state.patientReminderSequence + 1 : s.pick + 1,
      })
  }
}

const reached = new Set<ReferralStatus>()

const checkInvariants = (state: ReferralState): void => {
  if (!state.exists) throw new Error('the referral must exist after it was sent')
  expect(REFERRAL_STATUSES).toContain(state.status)
  reached.add(state.status)
  expect(state.deliveryNo).toBe(state.deliveries.length)
  for (const former of state.formerRecipients) {
    expect(former).not.toBe(state.recipientPracticeId)
    expect(canSeePhi(state, former)).toBe(false)
  }
  const holdsRecipient = ['pending', 'accepted', 'scheduled', 'completed'].includes(state.status)
  if (holdsRecipient) expect(state.recipientPracticeId).not.toBeNull()
  if (state.status === 'unassigned' || state.status === 'returned')
    expect(state.recipientPracticeId).toBeNull()
  // A practice that declined (or let the window expire) can never be delivered to again.
  for (const declined of state.declinedBy) {
    const deliver = referralDecider.decide(
      {
        type: 'DeliverReferral',
        data: { recipientPracticeId: declined, route: state.route },
        meta: f.meta(f.system),
      } as ReferralCommand,
      state,
    )
    expect(isLeft(deliver)).toBe(true)
    const redirect = referralDecider.decide(
      {
        type: 'RedirectReferral',
        data: { target: { kind: 'direct', practiceId: declined } },
        meta: f.meta(f.member(state.senderPracticeId)),
        context: { recipient: f.profile(declined) },
      } as ReferralCommand,
      state,
    )
    expect(isLeft(redirect)).toBe(true)
  }
}

let accepted = 0

/** Runs one generated sequence, checking the invariants after every step; returns the history. */
const simulate = (first: { direct: boolean; urgency: Urgency }, steps: readonly Step[]): ReferralEvent[] => {
  const events: ReferralEvent[] = []
  let now = f.t0
  const send = f.send(first.direct ? { kind: 'direct', practiceId: f.specA } : { kind: 'pooled' }, {
    urgency: first.urgency,
  })
  let state: ReferralState = referralDecider.initialState
  const sent = referralDecider.decide(send, state)
  if (isLeft(sent)) throw new Error(sent.left.code)
  events.push(...sent.right)
  state = sent.right.reduce(referralDecider.evolve, state)
  checkInvariants(state)
  steps.forEach((s, n) => {
    now = addMillis(now, s.advanceMinutes * 60_000)
    if (!state.exists) throw new Error('unreachable')
    const result = referralDecider.decide(commandFor(s, state, now, n), state)
    if (isRight(result)) {
      accepted += result.right.length > 0 ? 1 : 0
      for (const event of result.right) {
        if (event.type === 'ReferralDelivered' && state.exists)
          expect(state.declinedBy).not.toContain(event.data.recipientPracticeId)
        const decoded = ReferralEvent.decode(JSON.parse(JSON.stringify(event)))
        expect(isRight(decoded) && decoded.right).toEqual(event)
        state = referralDecider.evolve(state, event)
      }
      events.push(...result.right)
    }
    checkInvariants(state)
  })
  expect(fold(referralDecider, events)).toEqual(state)
  return events
}

it('random command sequences: decide/evolve never throw, status stays in the table, decliners never get the referral again, events match their codec', () => {
  fc.assert(
    fc.property(start, fc.array(step, { minLength: 1, maxLength: 60 }), (first, steps) => {
      simulate(first, steps)
    }),
    { numRuns: 400 },
  )
  // The generator must exercise the lifecycle, not only produce rejected commands.
  expect(accepted).toBeGreaterThan(1000)
  expect([...reached].sort()).toEqual([...REFERRAL_STATUSES].sort())
})

it('evolve is total: reordered and repeated histories fold without throwing to a status of the table', () => {
  fc.assert(
    fc.property(
      start,
      fc.array(step, { minLength: 1, maxLength: 40 }),
      fc.array(fc.nat(), { minLength: 1, maxLength: 20 }),
      (first, steps, keys) => {
        const events = simulate(first, steps)
        const reordered = events
          .map((event, i) => ({ event, key: keys[i % keys.length] ?? 0, i }))
          .sort((x, y) => x.key - y.key || x.i - y.i)
          .map((x) => x.event)
        for (const history of [reordered, [...reordered, ...events], events.slice(1)]) {
          const state = fold(referralDecider, history)
          if (state.exists) expect(REFERRAL_STATUSES).toContain(state.status)
        }
      },
    ),
    { numRuns: 200 },
  )
})
