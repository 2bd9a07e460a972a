import * as t from 'io-ts'

/**
 * Branded identifiers. Every id is a non-empty string of at most 128 characters drawn from a
 * conservative alphabet, so ids are safe in stream names, URLs, log lines and SQL identifiers.
 * The brand stops a `PracticeId` being passed where a `ReferralId` is expected.
 */
const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/

const brandedId = <B extends string>(name: B) =>
  t.brand(t.string, (s): s is t.Branded<string, { readonly [K in B]: symbol }> => ID_PATTERN.test(s), name)

export const PracticeId = brandedId('PracticeId')
export type PracticeId = t.TypeOf<typeof PracticeId>
export const UserId = brandedId('UserId')
export type UserId = t.TypeOf<typeof UserId>
export const ReferralId = brandedId('ReferralId')
export type ReferralId = t.TypeOf<typeof ReferralId>
export const PatientId = brandedId('PatientId')
export type PatientId = t.TypeOf<typeof PatientId>
export const SpecialtyId = brandedId('SpecialtyId')
export type SpecialtyId = t.TypeOf<typeof SpecialtyId>
export const CategoryId = brandedId('CategoryId')
export type CategoryId = t.TypeOf<typeof CategoryId>
export const RegionId = brandedId('RegionId')
export type RegionId = t.TypeOf<typeof RegionId>
export const InsuranceNetworkId = brandedId('InsuranceNetworkId')
export type InsuranceNetworkId = t.TypeOf<typeof InsuranceNetworkId>
export const AttachmentId = brandedId('AttachmentId')
export type AttachmentId = t.TypeOf<typeof AttachmentId>
export const MessageId = brandedId('MessageId')
export type MessageId = t.TypeOf<typeof MessageId>
export const ProgramId = brandedId('ProgramId')
export type ProgramId = t.TypeOf<typeof ProgramId>
export const ReferralLinkId = brandedId('ReferralLinkId')
export type ReferralLinkId = t.TypeOf<typeof ReferralLinkId>
export const IntakeId = brandedId('IntakeId')
export type IntakeId = t.TypeOf<typeof IntakeId>
export const IncentiveRuleId = brandedId('IncentiveRuleId')
export type IncentiveRuleId = t.TypeOf<typeof IncentiveRuleId>
/** A pseudonymous person who refers others through a link (no name: the id is all the program stores). */
export const ReferrerId = brandedId('ReferrerId')
export type ReferrerId = t.TypeOf<typeof ReferrerId>
export const EventId = brandedId('EventId')
export type EventId = t.TypeOf<typeof EventId>
export const CommandId = brandedId('CommandId')
export type CommandId = t.TypeOf<typeof CommandId>
export const CorrelationId = brandedId('CorrelationId')
export type CorrelationId = t.TypeOf<typeof CorrelationId>

/** Stream names are `<category>-<id>`, e.g. `referral-r_123`, `practice-p_1`, `pool-…`. */
export const StreamId = t.brand(
  t.string,
  (s): s is t.Branded<string, { readonly StreamId: symbol }> => /^[a-z][a-z0-9]*-.{1,400}$/.test(s),
  'StreamId',
)
export type StreamId = t.TypeOf<typeof StreamId>

/** Unsafe cast for ids the engine itself generates or has already validated. */
export const unsafeId = <T>(value: string): T => value as unknown as T
