import * as E from 'fp-ts/lib/Either.js'
import { describe, expect, it } from 'vitest'
import { referralEventCatalog } from '../app/engine.js'
import type { ReferralEvent } from '../referral/codecs.js'
import { referralFixtures as f } from '../referral/fixtures.js'
import { evolveReferralFacts, type ReferralFacts } from './facts.js'
import { decodeFactsEvent, FACTS_IGNORED_EVENT_TYPES, factsNeedEventType } from './facts-events.js'

const rid = f.referralId
// A history touching every kind of fact: sent, delivered, declined, re-delivered, accepted,
// scheduled, rescheduled, a no-show, a reminder and a message (ignored), completed.
const history: readonly ReferralEvent[] = [
  f.sent({ kind: 'pooled' }, 'urgent'),
  f.delivered(f.specA, 1, f.at(1)),
  {
    type: 'ReferralDeclined',
    data: {
      referralId: rid,
      practiceId: f.specA,
      deliveryNo: 1,
      route: 'pooled',
      reasonCode: 'capacity',
      phi: { note: 'Canary note' },
      declinedAt: f.at(2),
    },
  },
  f.delivered(f.specB, 2, f.at(3)),
  {
    type: 'ResponseReminderIssued',
    data: { referralId: rid, practiceId: f.specB, deliveryNo: 2, respondBy: f.at(9), issuedAt: f.at(4) },
  },
  {
    type: 'ReferralAccepted',
    data: { referralId: rid, practiceId: f.specB, deliveryNo: 2, acceptedAt: f.at(5) },
  },
  { ...f.scheduled, data: { ...f.scheduled.data, practiceId: f.specB } },
  {
    type: 'AppointmentRescheduled',
    data: {
      referralId: rid,
      practiceId: f.specB,
      at: f.at(120),
      previousAt: f.at(100),
      phi: { location: 'Room 5' },
    },
  },
  {
    type: 'PatientNoShowRecorded',
    data: { referralId: rid, practiceId: f.specB, appointmentAt: f.at(120), recordedAt: f.at(121) },
  },
]

const stored = (e: ReferralEvent) => ({
  ...referralEventCatalog.encode(e),
})

const foldFull = (events: readonly ReferralEvent[]) =>
  events.reduce<ReferralFacts | null>((acc, e, i) => {
    const d = referralEventCatalog.decode(stored(e))
    if (E.isLeft(d)) throw new Error(d.left.message)
    return evolveReferralFacts(acc, d.right, f.at(10 + i))
  }, null)

const foldNarrow = (events: readonly { type: string; schemaVersion: number; data: unknown }[]) =>
  events.reduce<ReferralFacts | null>((acc, e, i) => {
    const d = decodeFactsEvent(e)
    if (E.isLeft(d)) throw new Error(d.left.message)
    return d.right === null ? acc : evolveReferralFacts(acc, d.right, f.at(10 + i))
  }, null)

describe('decodeFactsEvent (the facts projection’s narrow decoder)', () => {
  it('folds to the same row as the full catalog decode of every event', () => {
    const full = foldFull(history)
    expect(full).toMatchObject({ status: 'scheduled', declineCount: 1, deliveryCount: 2, noShowCount: 1 })
    expect(foldNarrow(history.map(stored))).toEqual(full)
  })

  it('skips the ignored types by name, whatever their data (never parsed)', () => {
    for (const type of FACTS_IGNORED_EVENT_TYPES) {
      expect(factsNeedEventType(type)).toBe(false)
      expect(decodeFactsEvent({ type, schemaVersion: 1, data: null })).toEqual(E.right(null))
    }
    expect(factsNeedEventType('ReferralSent')).toBe(true)
  })

  it('does not open or need the PHI: sealed, redacted or missing alike', () => {
    const sent = stored(history[0] as ReferralEvent)
    const sealed = { ...(sent.data as object), phi: { sealed: 'opaque-ciphertext' } }
    const d = decodeFactsEvent({ ...sent, data: sealed })
    expect(E.isRight(d) && d.right?.type).toBe('ReferralSent')
  })

  it('upcasts ReferralSent v1 (boolean urgent) like the catalog', () => {
    const { urgency: _u, ...v2 } = stored(history[0] as ReferralEvent).data as Record<string, unknown>
    const v1 = { type: 'ReferralSent', schemaVersion: 1, data: { ...v2, urgent: true } }
    const d = decodeFactsEvent(v1)
    expect(E.isRight(d) && d.right?.type === 'ReferralSent' && d.right.data.urgency).toBe('urgent')
    expect(decodeFactsEvent({ ...v1, schemaVersion: 9 })).toMatchObject({
      left: { code: 'event.unknown_schema_version' },
    })
  })

  it('rejects bad input with a typed error naming paths, never values', () => {
    const delivered = stored(history[1] as ReferralEvent)
    const bad = decodeFactsEvent({
      ...delivered,
      data: { ...(delivered.data as object), deliveredAt: 'Canary' },
    })
    expect(bad).toMatchObject({ left: { code: 'event.undecodable' } })
    expect(JSON.stringify(bad)).not.toMatch(/Canary/)
    expect(decodeFactsEvent({ type: 'NoSuchEvent', schemaVersion: 1, data: {} })).toMatchObject({
      left: { code: 'event.undecodable' },
    })
    expect(decodeFactsEvent({ type: 'ReferralAccepted', schemaVersion: 1, data: 'garbage' })).toMatchObject({
      left: { code: 'event.undecodable' },
    })
  })
})
