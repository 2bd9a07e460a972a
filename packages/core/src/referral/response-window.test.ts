import { isLeft } from 'fp-ts/lib/Either.js'
import { describe, expect, it } from 'vitest'
import { fold } from '../shared/decider.js'
import type { Instant } from '../shared/time.js'
import type { ReferralEvent } from './codecs.js'
import { type ReferralCommand, referralDecider } from './decider.js'
import { referralFixtures as f } from './fixtures.js'
import {
  defaultResponsePolicy,
  dueDeadlines,
  nextDeadline,
  type ReferralResponsePolicy,
} from './response-window.js'

const due = (events: readonly ReferralEvent[], now: Instant, policy = defaultResponsePolicy) =>
  dueDeadlines(fold(referralDecider, events), policy, now).map((d) => ({
    id: d.id,
    kind: d.kind,
    dueAt: d.dueAt,
    deliveryNo: d.deliveryNo,
  }))

const urgentPending: readonly ReferralEvent[] = [
  f.sent({ kind: 'pooled' }, 'urgent'),
  f.delivered(f.specA, 1, f.t0, { expireAfterHours: 8 }),
]
const reminderIssued = (at: Instant): ReferralEvent => ({
  type: 'ResponseReminderIssued',
  data: { referralId: f.referralId, practiceId: f.specA, deliveryNo: 1, respondBy: f.at(48), issuedAt: at },
})

describe('defaultResponsePolicy', () => {
  it('routine 24 h / 48 h, urgent 4 h / 8 h, emergent 1 h / 2 h, patient every 72 h', () => {
    const h = 3_600_000
    expect(defaultResponsePolicy).toEqual({
      byUrgency: {
        routine: { reminderAfterMs: 24 * h, expireAfterMs: 48 * h },
        urgent: { reminderAfterMs: 4 * h, expireAfterMs: 8 * h },
        emergent: { reminderAfterMs: 1 * h, expireAfterMs: 2 * h },
      },
      patientReminderEveryMs: 72 * h,
    })
  })
})

describe('dueDeadlines: routine (reminder 24 h, expiry 48 h)', () => {
  it('nothing at 23h59', () => {
    expect(due(f.pendingPooled, f.at(23, 59))).toEqual([])
  })

  it('the recipient reminder at 24h', () => {
    expect(due(f.pendingPooled, f.at(24))).toEqual([
      {
        id: 'ref-1:recipient_reminder:1',
        kind: 'recipient_reminder',
        dueAt: '2026-01-06T09:00:00.000Z',
        deliveryNo: 1,
      },
    ])
  })

  it('at 47h59 the reminder is still due if not issued, and nothing once issued', () => {
    expect(due(f.pendingPooled, f.at(47, 59)).map((d) => d.kind)).toEqual(['recipient_reminder'])
    expect(due([...f.pendingPooled, reminderIssued(f.at(24))], f.at(47, 59))).toEqual([])
  })

  it('the expiry at 48h (an unissued reminder is superseded)', () => {
    const expiry = { id: 'ref-1:expiry:1', kind: 'expiry', dueAt: '2026-01-07T09:00:00.000Z', deliveryNo: 1 }
    expect(due(f.pendingPooled, f.at(48))).toEqual([expiry])
    expect(due([...f.pendingPooled, reminderIssued(f.at(24))], f.at(48))).toEqual([expiry])
  })

  it('carries the command the scheduler issues', () => {
    const [reminder] = dueDeadlines(fold(referralDecider, f.pendingPooled), defaultResponsePolicy, f.at(24))
    expect(reminder?.command).toEqual({ type: 'IssueResponseReminder', data: { deliveryNo: 1 } })
    const [expiry] = dueDeadlines(fold(referralDecider, f.pendingPooled), defaultResponsePolicy, f.at(48))
    expect(expiry?.command).toEqual({ type: 'ExpireResponse', data: { deliveryNo: 1 } })
  })

  it('accepting at 47h stops the expiry', () => {
    const accepted: ReferralEvent = { ...f.accepted, data: { ...f.accepted.data, acceptedAt: f.at(47) } }
    const events = [...f.pendingPooled, accepted]
    expect(due(events, f.at(48))).toEqual([])
    expect(due(events, f.at(500))).toEqual([])
    expect(nextDeadline(fold(referralDecider, events), defaultResponsePolicy)).toBeNull()
  })
})

describe('dueDeadlines: urgent (reminder 4 h, expiry 8 h)', () => {
  it('nothing at 3h59, reminder at 4h and 7h59, expiry at 8h', () => {
    expect(due(urgentPending, f.at(3, 59))).toEqual([])
    expect(due(urgentPending, f.at(4))).toEqual([
      {
        id: 'ref-1:recipient_reminder:1',
        kind: 'recipient_reminder',
        dueAt: '2026-01-05T13:00:00.000Z',
        deliveryNo: 1,
      },
    ])
    expect(due(urgentPending, f.at(7, 59)).map((d) => d.kind)).toEqual(['recipient_reminder'])
    expect(due(urgentPending, f.at(8))).toEqual([
      { id: 'ref-1:expiry:1', kind: 'expiry', dueAt: '2026-01-05T17:00:00.000Z', deliveryNo: 1 },
    ])
  })

  it('at the routine marks 23h59/24h/47h59/48h an urgent delivery is already expired', () => {
    for (const now of [f.at(23, 59), f.at(24), f.at(47, 59), f.at(48)]) {
      expect(due(urgentPending, now).map((d) => d.kind)).toEqual(['expiry'])
    }
  })

  it('a later change of urgency does not move the current window (it applies from the next delivery)', () => {
    const raised: ReferralEvent = {
      type: 'ReferralUrgencyChanged',
      data: {
        referralId: f.referralId,
        practiceId: f.specA,
        urgency: 'urgent',
        previousUrgency: 'routine',
        phi: {},
      },
    }
    expect(due([...f.pendingPooled, raised], f.at(8)).map((d) => d.kind)).toEqual([])
    expect(due([...f.pendingPooled, raised], f.at(48)).map((d) => d.kind)).toContain('expiry')
  })
})

describe('dueDeadlines: a new delivery restarts the window', () => {
  it('uses the latest delivery number and time', () => {
    const declined: ReferralEvent = {
      type: 'ReferralDeclined',
      data: {
        referralId: f.referralId,
        practiceId: f.specA,
        deliveryNo: 1,
        route: 'pooled',
        reasonCode: 'capacity',
        phi: {},
        declinedAt: f.at(10),
      },
    }
    const events = [...f.pendingPooled, declined, f.delivered(f.specB, 2, f.at(10))]
    expect(due(events, f.at(33, 59))).toEqual([])
    expect(due(events, f.at(34))).toEqual([
      {
        id: 'ref-1:recipient_reminder:2',
        kind: 'recipient_reminder',
        dueAt: '2026-01-06T19:00:00.000Z',
        deliveryNo: 2,
      },
    ])
  })
})

describe('patient reminders', () => {
  it('every 72 h while unassigned; missed ones collapse into the latest', () => {
    expect(due([f.sent()], f.at(71, 59))).toEqual([])
    expect(due([f.sent()], f.at(72))).toEqual([
      {
        id: 'ref-1:patient_reminder:1',
        kind: 'patient_reminder',
        dueAt: '2026-01-08T09:00:00.000Z',
        deliveryNo: 0,
      },
    ])
    expect(due([f.sent()], f.at(150))).toEqual([
      {
        id: 'ref-1:patient_reminder:2',
        kind: 'patient_reminder',
        dueAt: '2026-01-11T09:00:00.000Z',
        deliveryNo: 0,
      },
    ])
  })

  it('stop once a specialist accepted', () => {
    expect(due([...f.pendingPooled, f.accepted], f.at(72))).toEqual([])
  })

  it('can be switched off', () => {
    const policy: ReferralResponsePolicy = { ...defaultResponsePolicy, patientReminderEveryMs: 0 }
    expect(due([f.sent()], f.at(500), policy)).toEqual([])
    expect(nextDeadline(fold(referralDecider, [f.sent()]), policy)).toBeNull()
  })
})

describe('nextDeadline', () => {
  const next = (events: readonly ReferralEvent[]) => {
    const d = nextDeadline(fold(referralDecider, events), defaultResponsePolicy)
    return d === null ? null : [d.kind, d.dueAt]
  }

  it('is the earliest deadline not yet acted on', () => {
    expect(next([])).toBeNull()
    expect(next([f.sent()])).toEqual(['patient_reminder', '2026-01-08T09:00:00.000Z'])
    expect(next(f.pendingPooled)).toEqual(['recipient_reminder', '2026-01-06T09:00:00.000Z'])
    expect(next([...f.pendingPooled, reminderIssued(f.at(24))])).toEqual([
      'expiry',
      '2026-01-07T09:00:00.000Z',
    ])
    expect(next(urgentPending)).toEqual(['recipient_reminder', '2026-01-05T13:00:00.000Z'])
  })
})

describe('a scheduler driving the decider', () => {
  const run = (events: ReferralEvent[], now: Instant): number => {
    let emitted = 0
    for (const deadline of dueDeadlines(fold(referralDecider, events), defaultResponsePolicy, now)) {
      const command = { ...deadline.command, meta: f.meta(f.system, now) } as ReferralCommand
      const result = referralDecider.decide(command, fold(referralDecider, events))
      if (isLeft(result)) throw new Error(result.left.code)
      events.push(...result.right)
      emitted += result.right.length
    }
    return emitted
  }

  it('issues each deadline once, however often it runs', () => {
    const events: ReferralEvent[] = [...f.pendingPooled]
    expect(run(events, f.at(24))).toBe(1)
    expect(run(events, f.at(24))).toBe(0)
    expect(run(events, f.at(30))).toBe(0)
    expect(run(events, f.at(48))).toBe(1)
    expect(run(events, f.at(48))).toBe(0)
    expect(events.map((e) => e.type)).toEqual([
      'ReferralSent',
      'ReferralDelivered',
      'ResponseReminderIssued',
      'ReferralExpired',
    ])
    expect(run(events, f.at(72))).toBe(1)
    expect(events.at(-1)?.type).toBe('PatientReminderIssued')
  })

  it('a stale deadline computed before a decline emits nothing after it', () => {
    const before = dueDeadlines(fold(referralDecider, f.pendingPooled), defaultResponsePolicy, f.at(48))
    const declined: ReferralEvent = {
      type: 'ReferralDeclined',
      data: {
        referralId: f.referralId,
        practiceId: f.specA,
        deliveryNo: 1,
        route: 'pooled',
        reasonCode: 'capacity',
        phi: {},
        declinedAt: f.at(47),
      },
    }
    const after = fold(referralDecider, [...f.pendingPooled, declined, f.delivered(f.specB, 2, f.at(47))])
    const [expiry] = before
    if (expiry === undefined) throw new Error('expected an expiry')
    const result = referralDecider.decide(
      { ...expiry.command, meta: f.meta(f.system, f.at(48)) } as ReferralCommand,
      after,
    )
    expect(result).toEqual({ _tag: 'Right', right: [] })
  })
})

describe('an urgency change while pending', () => {
  it('never shortens the window the recipient was given (it applies from the next delivery)', () => {
    const routinePending: readonly ReferralEvent[] = [
      f.sent({ kind: 'pooled' }, 'routine'),
      f.delivered(f.specA, 1, f.t0),
      {
        type: 'ReferralUrgencyChanged',
        data: {
          referralId: f.referralId,
          practiceId: f.specA,
          urgency: 'emergent',
          previousUrgency: 'routine',
          phi: {},
        },
      },
    ]
    // Emergent would expire after 2 h: at 3 h nothing is due, the routine window (24 h / 48 h) holds.
    expect(due(routinePending, f.at(3))).toEqual([])
    expect(due(routinePending, f.at(24)).map((d) => d.kind)).toEqual(['recipient_reminder'])
    expect(due(routinePending, f.at(48)).map((d) => d.kind)).toContain('expiry')
  })
})
