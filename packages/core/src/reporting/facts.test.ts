import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import type { ReferralEvent } from '../referral/codecs.js'
import { referralFixtures as f } from '../referral/fixtures.js'
import { type CategoryId, type PracticeId, unsafeId } from '../shared/ids.js'
import type { Instant } from '../shared/time.js'
import { evolveReferralFacts, REFERRAL_FACT_FIELDS, type ReferralFacts } from './facts.js'

/**
 * The facts projection in given/then form: `given(events).thenRow(expected fields)`. Each event's
 * envelope time is `f.at(index)` (hours after t0), as a store would stamp them in order.
 */
const given = (events: readonly ReferralEvent[]) => {
  const row = events.reduce<ReferralFacts | null>((acc, e, i) => evolveReferralFacts(acc, e, f.at(i)), null)
  return {
    thenRow: (expected: Partial<Record<keyof ReferralFacts, unknown>>) => expect(row).toMatchObject(expected),
    row: () => row,
  }
}

const rid = f.referralId
const declined = (practiceId: PracticeId, deliveryNo: number, at: Instant): ReferralEvent => ({
  type: 'ReferralDeclined',
  data: {
    referralId: rid,
    practiceId,
    deliveryNo,
    route: 'pooled',
    reasonCode: 'capacity',
    phi: { note: 'Too busy for this patient' },
    declinedAt: at,
  },
})
const expired = (practiceId: PracticeId, deliveryNo: number, at: Instant): ReferralEvent => ({
  type: 'ReferralExpired',
  data: { referralId: rid, practiceId, deliveryNo, route: 'pooled', expiredAt: at },
})
const acceptedBy = (practiceId: PracticeId, deliveryNo: number, at: Instant): ReferralEvent => ({
  type: 'ReferralAccepted',
  data: { referralId: rid, practiceId, deliveryNo, acceptedAt: at },
})
const scheduledAt = (practiceId: PracticeId, at: Instant): ReferralEvent => ({
  type: 'AppointmentScheduled',
  data: { referralId: rid, practiceId, at, phi: { location: 'Clinic room 4' } },
})
const completed = (practiceId: PracticeId, at: Instant): ReferralEvent => ({
  type: 'ReferralCompleted',
  data: { referralId: rid, practiceId, phi: { outcomeNote: 'Meniscus repaired' }, completedAt: at },
})
const cancelled = (recipient: PracticeId | null, at: Instant): ReferralEvent => ({
  type: 'ReferralCancelled',
  data: {
    referralId: rid,
    reasonCode: 'patient_request',
    phi: { note: 'Patient moved away' },
    recipientPracticeId: recipient,
    cancelledAt: at,
  },
})
const noShow = (practiceId: PracticeId, appointmentAt: Instant, at: Instant): ReferralEvent => ({
  type: 'PatientNoShowRecorded',
  data: { referralId: rid, practiceId, appointmentAt, recordedAt: at },
})
const returned = (at: Instant): ReferralEvent => ({
  type: 'ReferralReturned',
  data: { referralId: rid, reason: 'pool_exhausted', returnedAt: at },
})

describe('referral facts projection', () => {
  it('given a sent referral, then one unassigned row with its dimensions and no milestones', () => {
    given([f.sent()]).thenRow({
      referralId: rid,
      senderPracticeId: f.sender,
      receivingPracticeId: null,
      regionId: f.regionId,
      specialtyId: f.specialtyId,
      categoryId: f.knee,
      subcategoryId: null,
      urgency: 'routine',
      route: 'pooled',
      status: 'unassigned',
      sentAt: f.t0,
      unassignedSince: f.t0,
      firstDeliveredAt: null,
      acceptedAt: null,
      deliveryCount: 0,
      channel: null,
      campaign: null,
      location: null,
      serviceLine: null,
      referringPracticeId: null,
    })
  })

  it('given source attribution on the sent event, then the row carries it', () => {
    const sent = f.sent()
    const withAttribution: ReferralEvent = {
      ...sent,
      data: {
        ...sent.data,
        attribution: {
          channel: 'web',
          campaign: 'spring',
          location: 'Main St',
          serviceLine: 'MSK',
          referringPracticeId: f.outsider,
        },
      },
    }
    given([withAttribution]).thenRow({
      channel: 'web',
      campaign: 'spring',
      location: 'Main St',
      serviceLine: 'MSK',
      referringPracticeId: f.outsider,
    })
  })

  it('given a decline, an expiry and an acceptance, then both counts and the accepting practice', () => {
    given([
      f.sent(),
      f.delivered(f.specA, 1, f.at(1)),
      declined(f.specA, 1, f.at(2)),
      f.delivered(f.specB, 2, f.at(3)),
      expired(f.specB, 2, f.at(51)),
      f.delivered(f.specC, 3, f.at(52)),
      acceptedBy(f.specC, 3, f.at(53)),
    ]).thenRow({
      status: 'accepted',
      receivingPracticeId: f.specC,
      firstDeliveredAt: f.at(1),
      deliveredAt: f.at(52),
      acceptedAt: f.at(53),
      deliveryCount: 3,
      declineCount: 1,
      expiryCount: 1,
      unassignedSince: null,
    })
  })

  it('given a decline, then it waits in the intake queue from the decline on', () => {
    given([f.sent(), f.delivered(f.specA, 1, f.at(1)), declined(f.specA, 1, f.at(5))]).thenRow({
      status: 'unassigned',
      receivingPracticeId: null,
      unassignedSince: f.at(5),
    })
  })

  it('given a booking, a reschedule, a no-show and completion, then booked-at is the first booking', () => {
    // envelope times: index 3 (first booking) and 4 (reschedule)
    given([
      f.sent(),
      f.delivered(f.specA, 1, f.at(0)),
      acceptedBy(f.specA, 1, f.at(2)),
      scheduledAt(f.specA, f.at(100)),
      {
        type: 'AppointmentRescheduled',
        data: { referralId: rid, practiceId: f.specA, at: f.at(120), previousAt: f.at(100), phi: {} },
      },
      noShow(f.specA, f.at(120), f.at(121)),
      completed(f.specA, f.at(200)),
    ]).thenRow({
      status: 'completed',
      scheduledAt: f.at(3),
      appointmentAt: f.at(120),
      noShowCount: 1,
      completedAt: f.at(200),
      receivingPracticeId: f.specA,
    })
  })

  it('given a cancellation while held, then the holder stays the receiving practice', () => {
    given([f.sent(), f.delivered(f.specA, 1, f.at(0)), cancelled(f.specA, f.at(4))]).thenRow({
      status: 'cancelled',
      cancelledAt: f.at(4),
      receivingPracticeId: f.specA,
      unassignedSince: null,
    })
  })

  it('given a return and a redirect, then returned-at is kept and it waits again', () => {
    given([
      f.sent(),
      returned(f.at(1)),
      {
        type: 'ReferralRedirected',
        data: { referralId: rid, target: { kind: 'pooled' }, previousRoute: 'pooled' },
      },
    ]).thenRow({
      status: 'unassigned',
      returnedAt: f.at(1),
      returnReason: 'pool_exhausted',
      unassignedSince: f.at(2),
    })
  })

  it('given an urgency and a category change, then the row is re-filed', () => {
    const sub = unsafeId<CategoryId>('arthroplasty')
    given([
      f.sent(),
      {
        type: 'ReferralUrgencyChanged',
        data: {
          referralId: rid,
          practiceId: f.specA,
          urgency: 'urgent',
          previousUrgency: 'routine',
          phi: {},
        },
      },
      {
        type: 'ReferralCategoryChanged',
        data: {
          referralId: rid,
          practiceId: f.specA,
          specialtyId: f.specialtyId,
          regionId: f.regionId,
          route: 'pooled',
          category: { categoryId: f.hip, subcategoryId: sub },
          previousCategory: f.category,
        },
      },
    ]).thenRow({ urgency: 'urgent', categoryId: f.hip, subcategoryId: sub })
  })

  it('given events before ReferralSent, then no row', () => {
    expect(given([acceptedBy(f.specA, 1, f.at(1))]).row()).toBeNull()
  })

  // Every PHI value of the fixtures (patient identity and contact, reason, notes, appointment
  // place, outcome, message body, attachment file name) and the patient id.
  const PHI_VALUES = [
    f.phi.patient.givenName,
    f.phi.patient.familyName,
    f.phi.patient.dateOfBirth,
    f.phi.patient.healthNumber,
    f.phi.patient.email,
    f.phi.reason,
    'pat-1',
    'Too busy for this patient',
    'Clinic room 4',
    'Meniscus repaired',
    'Patient moved away',
    'Secret message body',
    'scan-of-knee.pdf',
  ]
  // The keys PHI lives under in commands and events (`location` is attribution there, not the
  // appointment place, which lives under `phi`).
  const PHI_KEYS =
    /^(patient.*|phi|.*name|dateOfBirth|healthNumber|email|phone|address|reason|.*note|body|communication|consent)$/i

  it('no PHI field or value ever reaches a row, whatever the history', () => {
    const tail: readonly ReferralEvent[] = [
      f.delivered(f.specA, 1, f.at(1)),
      declined(f.specA, 1, f.at(2)),
      expired(f.specB, 2, f.at(3)),
      acceptedBy(f.specA, 1, f.at(4)),
      scheduledAt(f.specA, f.at(90)),
      noShow(f.specA, f.at(90), f.at(91)),
      completed(f.specA, f.at(95)),
      cancelled(f.specA, f.at(96)),
      returned(f.at(97)),
      {
        type: 'MessagePosted',
        data: {
          referralId: rid,
          messageId: unsafeId('m-1'),
          fromPracticeId: f.sender,
          phi: { body: 'Secret message body' },
          postedAt: f.at(5),
        },
      },
      {
        type: 'AttachmentAdded',
        data: {
          referralId: rid,
          attachmentId: unsafeId('a-1'),
          contentType: 'application/pdf',
          sizeBytes: 10,
          sha256: 'a'.repeat(64),
          phi: { fileName: 'scan-of-knee.pdf' },
        },
      },
      {
        type: 'PatientReminderIssued',
        data: { referralId: rid, patientId: f.sent().data.patientId, sequence: 1, issuedAt: f.at(6) },
      },
    ]
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...tail), { maxLength: 15 }), (events) => {
        const row = given([f.sent(), ...events]).row()
        expect(row).not.toBeNull()
        expect(Object.keys(row ?? {}).sort()).toEqual([...REFERRAL_FACT_FIELDS].sort())
        expect(Object.keys(row ?? {}).filter((k) => PHI_KEYS.test(k))).toEqual([])
        const text = JSON.stringify(row)
        for (const value of PHI_VALUES) expect(text).not.toContain(value)
      }),
    )
  })
})
