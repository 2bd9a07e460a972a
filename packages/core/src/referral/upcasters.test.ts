import { isRight } from 'fp-ts/lib/Either.js'
import { describe, expect, it } from 'vitest'
import { upcasterChain } from '../envelope/upcast.js'
import { fold } from '../shared/decider.js'
import { ReferralEvent, referralEventSchemaVersion } from './codecs.js'
import { referralDecider } from './decider.js'
import { referralUpcasters } from './upcasters.js'

/** A `ReferralSent` as stored by schema version 1: boolean `urgent`, no attribution. */
const storedV1 = (urgent: unknown) => ({
  type: 'ReferralSent',
  schemaVersion: 1,
  data: {
    referralId: 'ref-9',
    senderPracticeId: 'p-sender',
    patientId: 'pat-9',
    phi: { redacted: true },
    specialtyId: 'ortho',
    category: { categoryId: 'knee' },
    regionId: 'region-north',
    urgent,
    target: { kind: 'pooled' },
    sentAt: '2025-06-01T08:00:00.000Z',
  },
})

const upcast = upcasterChain(referralUpcasters)

describe('ReferralSent v1 → v2', () => {
  it('ReferralSent is written at schema version 2, other events at 1', () => {
    expect(referralEventSchemaVersion('ReferralSent')).toBe(2)
    expect(referralEventSchemaVersion('ReferralAccepted')).toBe(1)
  })

  it('reads urgent: true as urgency "urgent" and drops the old field', () => {
    const event = upcast(storedV1(true))
    expect(event.schemaVersion).toBe(2)
    expect(event.data).toEqual({
      referralId: 'ref-9',
      senderPracticeId: 'p-sender',
      patientId: 'pat-9',
      phi: { redacted: true },
      specialtyId: 'ortho',
      category: { categoryId: 'knee' },
      regionId: 'region-north',
      urgency: 'urgent',
      target: { kind: 'pooled' },
      sentAt: '2025-06-01T08:00:00.000Z',
    })
  })

  it('reads urgent: false (or missing) as "routine"', () => {
    expect(upcast(storedV1(false)).data).toMatchObject({ urgency: 'routine' })
    expect(upcast(storedV1(undefined)).data).toMatchObject({ urgency: 'routine' })
  })

  it('the upcast event decodes with the current codec and folds', () => {
    const { type, data } = upcast(storedV1(true))
    const decoded = ReferralEvent.decode({ type, data })
    if (!isRight(decoded)) throw new Error('expected the current schema')
    const state = fold(referralDecider, [decoded.right])
    expect(state).toMatchObject({ exists: true, urgency: 'urgent', status: 'unassigned', route: 'pooled' })
  })

  it('leaves current-version events and non-object data alone', () => {
    const current = { ...storedV1(true), schemaVersion: 2 }
    expect(upcast(current)).toBe(current)
    expect(upcast({ type: 'ReferralSent', schemaVersion: 1, data: 'garbage' }).data).toBe('garbage')
  })
})
