import { isLeft, isRight } from 'fp-ts/lib/Either.js'
import type * as t from 'io-ts'
import { describe, expect, it } from 'vitest'
import { decodeWith } from '../shared/decode.js'
import {
  isRedactedPhi,
  REFERRAL_PHI_EVENTS,
  REFERRAL_SCHEMA_HINTS,
  ReferralCalendarDate,
  ReferralCommandPayload,
  ReferralEvent,
  ReferralSystemCommandPayload,
  ReferralUserCommandPayload,
  type SendReferralData,
} from './codecs.js'
import { referralFixtures as f } from './fixtures.js'

const sendBody = () => ({
  type: 'SendReferral',
  data: JSON.parse(JSON.stringify(f.send().data)) as SendReferralData,
})

describe('command payload codecs', () => {
  it('decodes a SendReferral body and drops unknown fields', () => {
    const body = sendBody()
    const withExtra = { ...body, data: { ...body.data, admin: true, phi: { ...body.data.phi, extra: 1 } } }
    const decoded = ReferralUserCommandPayload.decode(withExtra)
    if (!isRight(decoded)) throw new Error('expected a valid body')
    expect(decoded.right).toEqual(body)
  })

  it('rejects system commands as user bodies, and accepts them as system payloads', () => {
    const deliver = { type: 'DeliverReferral', data: { recipientPracticeId: 'p-spec-a', route: 'pooled' } }
    expect(isLeft(ReferralUserCommandPayload.decode(deliver))).toBe(true)
    expect(isRight(ReferralSystemCommandPayload.decode(deliver))).toBe(true)
    expect(isRight(ReferralCommandPayload.decode(deliver))).toBe(true)
  })

  it.each([
    [
      'an impossible date of birth',
      (d: SendReferralData): unknown => ({
        ...d,
        phi: { ...d.phi, patient: { ...d.phi.patient, dateOfBirth: '1970-02-30' } },
      }),
    ],
    ['an empty reason', (d: SendReferralData): unknown => ({ ...d, phi: { ...d.phi, reason: '   ' } })],
    ['an unknown urgency', (d: SendReferralData): unknown => ({ ...d, urgency: 'whenever' })],
    [
      'a redacted marker from a client',
      (d: SendReferralData): unknown => ({ ...d, phi: { redacted: true } }),
    ],
    ['a bad practice id', (d: SendReferralData): unknown => ({ ...d, senderPracticeId: 'has spaces' })],
  ])('rejects %s without echoing the input', (_name, mutate) => {
    const body = sendBody()
    const result = decodeWith(ReferralUserCommandPayload, { ...body, data: mutate(body.data) })
    expect(result.ok).toBe(false)
    const text = JSON.stringify(result)
    for (const secret of ['Alex', 'HN-TEST-0001', 'meniscus', 'whenever', 'has spaces', '1970-02-30']) {
      expect(text).not.toContain(secret)
    }
  })

  it.each([
    ['size 0', { sizeBytes: 0 }],
    ['size above the limit', { sizeBytes: 60 * 1024 * 1024 }],
    ['a bad hash', { sha256: 'xyz' }],
    ['a bad content type', { contentType: 'pdf' }],
  ])('rejects an attachment with %s', (_name, change) => {
    const data = {
      attachmentId: 'att-1',
      contentType: 'application/pdf',
      sizeBytes: 10,
      sha256: 'f'.repeat(64),
      phi: { fileName: 'x.pdf' },
    }
    expect(isRight(ReferralUserCommandPayload.decode({ type: 'AddAttachment', data }))).toBe(true)
    expect(
      isLeft(ReferralUserCommandPayload.decode({ type: 'AddAttachment', data: { ...data, ...change } })),
    ).toBe(true)
  })
})

describe('PHI layout', () => {
  it('lists exactly the event types whose data has phi', () => {
    expect([...REFERRAL_PHI_EVENTS].sort()).toEqual([
      'AppointmentRescheduled',
      'AppointmentScheduled',
      'AttachmentAdded',
      'MessagePosted',
      'ReferralCancelled',
      'ReferralCompleted',
      'ReferralDeclined',
      'ReferralSent',
      'ReferralUrgencyChanged',
    ])
  })

  it('a redacted phi decodes as the redaction marker, even for all-optional payloads', () => {
    const declined = {
      type: 'ReferralDeclined',
      data: {
        referralId: 'ref-1',
        practiceId: 'p-spec-a',
        deliveryNo: 1,
        route: 'pooled',
        reasonCode: 'capacity',
        phi: { redacted: true },
        declinedAt: '2026-01-05T09:00:00.000Z',
      },
    }
    const decoded = ReferralEvent.decode(declined)
    if (!isRight(decoded)) throw new Error('expected a valid event')
    expect(decoded.right.data).toEqual(declined.data)
    expect(isRedactedPhi((decoded.right.data as { phi: unknown }).phi)).toBe(true)
  })

  it('a plaintext phi decodes as the payload', () => {
    const event = JSON.parse(JSON.stringify(f.sent()))
    const decoded = ReferralEvent.decode(event)
    if (!isRight(decoded)) throw new Error('expected a valid event')
    expect(decoded.right).toEqual(event)
    expect(isRedactedPhi((decoded.right.data as { phi: unknown }).phi)).toBe(false)
  })
})

describe('introspection (OpenAPI generation)', () => {
  /** Every codec reachable from a union is an io-ts combinator with a `_tag`, never an opaque `t.Type`. */
  const untagged = (codec: t.Any, seen = new Set<t.Any>()): string[] => {
    if (seen.has(codec)) return []
    seen.add(codec)
    const c = codec as t.Any & {
      _tag?: string
      type?: t.Any
      types?: t.Any[]
      props?: t.Props
    }
    if (c._tag === undefined) return [c.name]
    const children = [
      ...(c.type === undefined ? [] : [c.type]),
      ...(c.types ?? []),
      ...Object.values(c.props ?? {}),
    ]
    return children.flatMap((child) => untagged(child, seen))
  }

  it('command and event codecs are made of introspectable combinators', () => {
    expect(untagged(ReferralCommandPayload)).toEqual([])
    expect(untagged(ReferralEvent)).toEqual([])
  })

  it('schema hints describe the refined scalars', () => {
    const hints = new Map(REFERRAL_SCHEMA_HINTS)
    expect(hints.get(ReferralCalendarDate)).toEqual({ format: 'date' })
    expect([...hints.values()]).toContainEqual({ minLength: 1, maxLength: 8000 })
  })
})

describe('appointment duration', () => {
  const scheduled = {
    type: 'AppointmentScheduled',
    data: { referralId: 'ref-1', practiceId: 'p-spec-a', at: '2026-01-05T09:00:00.000Z', phi: {} },
  }
  it('an AppointmentScheduled written before durations existed still decodes, without a duration', () => {
    const decoded = ReferralEvent.decode(scheduled)
    expect(isRight(decoded) && decoded.right.data).toEqual(scheduled.data)
  })
  it('a duration decodes when 1 … 1440 whole minutes and is refused otherwise', () => {
    const withDuration = (d: unknown) =>
      ReferralEvent.decode({ ...scheduled, data: { ...scheduled.data, durationMinutes: d } })
    expect(isRight(withDuration(1))).toBe(true)
    expect(isRight(withDuration(1440))).toBe(true)
    for (const bad of [0, -5, 1441, 12.5, '30', null]) expect(isLeft(withDuration(bad))).toBe(true)
    const command = (d: unknown) =>
      ReferralUserCommandPayload.decode({
        type: 'ScheduleAppointment',
        data: { at: '2026-01-05T09:00:00.000Z', durationMinutes: d },
      })
    expect(isRight(command(45))).toBe(true)
    expect(isLeft(command(0))).toBe(true)
  })
})
