import type { Actor } from '../shared/actor.js'
import type { CommandMeta } from '../shared/decider.js'
import type { CategoryRef, CategoryStatus, RecipientProfile, Urgency } from '../shared/domain-types.js'
import {
  type CategoryId,
  type CommandId,
  type CorrelationId,
  type PatientId,
  type PracticeId,
  type ReferralId,
  type RegionId,
  type SpecialtyId,
  type UserId,
  unsafeId,
} from '../shared/ids.js'
import { addMillis, HOUR_MS, type Instant } from '../shared/time.js'
import type { ReferralEvent, ReferralEventOf, ReferralTarget, SendReferralData } from './codecs.js'
import type { ReferralCommand, ReferralCommandContexts } from './decider.js'

/**
 * Sample values for referral tests (this package's and the adapters'/HTTP's). Nothing here is
 * real patient data.
 */
export const referralFixtures = (() => {
  const practice = (id: string) => unsafeId<PracticeId>(id)
  const referralId = unsafeId<ReferralId>('ref-1')
  const sender = practice('p-sender')
  const specA = practice('p-spec-a')
  const specB = practice('p-spec-b')
  const specC = practice('p-spec-c')
  const outsider = practice('p-outsider')
  const specialtyId = unsafeId<SpecialtyId>('ortho')
  const regionId = unsafeId<RegionId>('region-north')
  const knee = unsafeId<CategoryId>('knee')
  const hip = unsafeId<CategoryId>('hip')
  const category: CategoryRef = { categoryId: knee }
  const t0 = '2026-01-05T09:00:00.000Z' as Instant

  const member = (practiceId: PracticeId, user = `u-${practiceId}`): Actor => ({
    kind: 'user',
    userId: unsafeId<UserId>(user),
    platformRoles: [],
    memberships: [{ practiceId, role: 'staff' }],
  })
  const system: Actor = { kind: 'system', component: 'test' }

  const meta = (actor: Actor, now: Instant = t0): CommandMeta => ({
    commandId: unsafeId<CommandId>('cmd-1'),
    actor,
    now,
    correlationId: unsafeId<CorrelationId>('corr-1'),
  })
  const at = (hours: number, minutes = 0): Instant => addMillis(t0, hours * HOUR_MS + minutes * 60_000)

  const approved = (categoryId: CategoryId = knee, parentId: CategoryId | null = null): CategoryStatus => ({
    specialtyId,
    categoryId,
    parentId,
    status: 'approved',
  })
  const profile = (practiceId: PracticeId, overrides: Partial<RecipientProfile> = {}): RecipientProfile => ({
    practiceId,
    verified: true,
    status: 'active',
    specialtyId,
    regions: [regionId],
    categories: [{ categoryId: knee }, { categoryId: hip }],
    fte: null,
    insuranceNetworks: [],
    preferredProviderListed: true,
    ...overrides,
  })

  const phi = {
    patient: {
      givenName: 'Alex',
      familyName: 'Example',
      dateOfBirth: '1970-02-03',
      healthNumber: 'HN-TEST-0001',
      email: 'alex@example.test',
      consent: { email: true, sms: false, phone: true },
    },
    reason: 'Knee pain after a fall, suspected meniscus tear.',
  }

  const sendData = (target: ReferralTarget, urgency: Urgency = 'routine'): SendReferralData => ({
    referralId,
    senderPracticeId: sender,
    patientId: unsafeId<PatientId>('pat-1'),
    phi,
    specialtyId,
    category,
    regionId,
    urgency,
    target,
  })

  const send = (
    target: ReferralTarget = { kind: 'pooled' },
    options: {
      readonly urgency?: Urgency
      readonly actor?: Actor
      readonly context?: ReferralCommandContexts['SendReferral']
      readonly now?: Instant
    } = {},
  ): ReferralCommand => ({
    type: 'SendReferral',
    data: sendData(target, options.urgency),
    meta: meta(options.actor ?? member(sender), options.now ?? t0),
    context: options.context ?? {
      category: approved(),
      ...(target.kind === 'direct' ? { recipient: profile(target.practiceId) } : {}),
    },
  })

  const sent = (
    target: ReferralTarget = { kind: 'pooled' },
    urgency: Urgency = 'routine',
    sentAt: Instant = t0,
  ): ReferralEventOf<'ReferralSent'> => ({
    type: 'ReferralSent',
    data: { ...sendData(target, urgency), sentAt },
  })

  const delivered = (
    recipientPracticeId: PracticeId,
    deliveryNo: number,
    deliveredAt: Instant,
    options: { readonly route?: 'pooled' | 'direct'; readonly expireAfterHours?: number } = {},
  ): ReferralEventOf<'ReferralDelivered'> => ({
    type: 'ReferralDelivered',
    data: {
      referralId,
      recipientPracticeId,
      route: options.route ?? 'pooled',
      deliveryNo,
      deliveredAt,
      respondBy: addMillis(deliveredAt, (options.expireAfterHours ?? 48) * HOUR_MS),
    },
  })

  /** A pooled referral sent at t0 and delivered to specA at t0 (delivery 1). */
  const pendingPooled: readonly ReferralEvent[] = [sent(), delivered(specA, 1, t0)]
  const pendingDirect: readonly ReferralEvent[] = [
    sent({ kind: 'direct', practiceId: specA }),
    delivered(specA, 1, t0, { route: 'direct' }),
  ]
  const accepted: ReferralEventOf<'ReferralAccepted'> = {
    type: 'ReferralAccepted',
    data: { referralId, practiceId: specA, deliveryNo: 1, acceptedAt: at(1) },
  }
  const scheduled: ReferralEventOf<'AppointmentScheduled'> = {
    type: 'AppointmentScheduled',
    data: { referralId, practiceId: specA, at: at(100), phi: { location: 'Clinic room 4' } },
  }

  return {
    referralId,
    sender,
    specA,
    specB,
    specC,
    outsider,
    specialtyId,
    regionId,
    knee,
    hip,
    category,
    t0,
    at,
    member,
    system,
    meta,
    approved,
    profile,
    phi,
    send,
    sent,
    delivered,
    pendingPooled,
    pendingDirect,
    accepted,
    scheduled,
  }
})()
