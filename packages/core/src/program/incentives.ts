import * as t from 'io-ts'
import { boundedText } from '../referral/codecs.js'
import { IncentiveRuleId, type IntakeId, PracticeId, type ReferralLinkId, ReferrerId } from '../shared/ids.js'
import { type Instant, millisOf } from '../shared/time.js'

const strict = <P extends t.Props>(props: P) => t.exact(t.type(props))

/**
 * The only rewards a program can offer: non-cash or service-neutral. There is deliberately no
 * cash (or cash-equivalent: gift card, discount on services) kind, and a reward has no amount:
 * a rule offering money cannot even be written down.
 */
export const IncentiveRewardKind = t.keyof({
  non_cash_gift: null,
  patient_education: null,
  community_donation: null,
  service_neutral_benefit: null,
})
export type IncentiveRewardKind = t.TypeOf<typeof IncentiveRewardKind>

export const IncentiveReward = t.readonly(
  strict({ kind: IncentiveRewardKind, description: boundedText('RewardDescription', 500) }),
)
export type IncentiveReward = t.TypeOf<typeof IncentiveReward>

/** Conditions a conversion must meet, checked in the order the rule lists them. */
export const IncentiveEligibility = t.keyof({ referral_completed: null, referrer_existing_patient: null })
export type IncentiveEligibility = t.TypeOf<typeof IncentiveEligibility>

const CapCount = t.brand(
  t.number,
  (n): n is t.Branded<number, { readonly CapCount: symbol }> => Number.isInteger(n) && n >= 1 && n <= 10_000,
  'CapCount',
)
const PeriodDays = t.brand(
  t.number,
  (n): n is t.Branded<number, { readonly PeriodDays: symbol }> => Number.isInteger(n) && n >= 1 && n <= 366,
  'PeriodDays',
)

/** Both caps are mandatory: at most `perReferrer` awards per referrer, `perPeriod.max` per rolling window. */
export const IncentiveCaps = t.readonly(
  strict({ perReferrer: CapCount, perPeriod: t.readonly(strict({ days: PeriodDays, max: CapCount })) }),
)
export type IncentiveCaps = t.TypeOf<typeof IncentiveCaps>

/** An incentive rule. Immutable once defined: every decision names the rule as it was. */
export const IncentiveRule = t.readonly(
  strict({
    ruleId: IncentiveRuleId,
    reward: IncentiveReward,
    eligibility: t.readonlyArray(IncentiveEligibility),
    caps: IncentiveCaps,
    /** Shown wherever the incentive is offered; mandatory. */
    disclosureText: boundedText('DisclosureText', 5000),
  }),
)
export type IncentiveRule = t.TypeOf<typeof IncentiveRule>

/** Who is rewarded for a conversion: the referring person (pseudonymous) or practice of the link. */
export const ReferrerRef = t.union([
  t.readonly(strict({ kind: t.literal('person'), referrerId: ReferrerId })),
  t.readonly(strict({ kind: t.literal('practice'), practiceId: PracticeId })),
])
export type ReferrerRef = t.TypeOf<typeof ReferrerRef>

const referrerKey = (r: ReferrerRef): string =>
  r.kind === 'person' ? `person:${r.referrerId}` : `practice:${r.practiceId}`

/**
 * The facts an incentive decision was made on, resolved by the application layer from the intake
 * stream (`incentiveConversion`) and the patient directory, and stored with the decision so an
 * auditor can replay it.
 */
export const IncentiveFacts = t.readonly(
  strict({ referralCompleted: t.boolean, referrerIsExistingPatient: t.boolean }),
)
export type IncentiveFacts = t.TypeOf<typeof IncentiveFacts>

export interface IncentiveConversion {
  readonly intakeId: IntakeId
  readonly linkId: ReferralLinkId
  readonly referrer: ReferrerRef | null
  readonly facts: IncentiveFacts
}

export const IncentiveRefusalReason = t.keyof({
  no_referrer: null,
  referral_not_completed: null,
  referrer_not_existing_patient: null,
  per_referrer_cap_reached: null,
  period_cap_reached: null,
})
export type IncentiveRefusalReason = t.TypeOf<typeof IncentiveRefusalReason>

/** An award already given under a rule: what the caps count. */
export interface GivenAward {
  readonly ruleId: IncentiveRuleId
  readonly referrer: ReferrerRef
  readonly awardedAt: Instant
}

const DAY_MS = 86_400_000

/**
 * Decides one conversion under one rule. Eligibility first (in the rule's order), then the caps,
 * counted over the awards the rule already gave: per referrer over all time, and over the rolling
 * window of `perPeriod.days` ending at `now`. The caps only hold if `awards` is every award of the
 * rule, which is why all awards of a program are decided on its one stream at an exact version.
 */
export const evaluateIncentive = (
  rule: IncentiveRule,
  awards: readonly GivenAward[],
  conversion: IncentiveConversion,
  now: Instant,
):
  | { readonly outcome: 'awarded'; readonly referrer: ReferrerRef }
  | {
      readonly outcome: 'refused'
      readonly reason: IncentiveRefusalReason
    } => {
  const { referrer, facts } = conversion
  if (referrer === null) return { outcome: 'refused', reason: 'no_referrer' }
  for (const condition of rule.eligibility) {
    if (condition === 'referral_completed' && !facts.referralCompleted)
      return { outcome: 'refused', reason: 'referral_not_completed' }
    if (condition === 'referrer_existing_patient' && !facts.referrerIsExistingPatient)
      return { outcome: 'refused', reason: 'referrer_not_existing_patient' }
  }
  const ofRule = awards.filter((a) => a.ruleId === rule.ruleId)
  const key = referrerKey(referrer)
  if (ofRule.filter((a) => referrerKey(a.referrer) === key).length >= rule.caps.perReferrer)
    return { outcome: 'refused', reason: 'per_referrer_cap_reached' }
  const windowStart = millisOf(now) - rule.caps.perPeriod.days * DAY_MS
  if (ofRule.filter((a) => millisOf(a.awardedAt) > windowStart).length >= rule.caps.perPeriod.max)
    return { outcome: 'refused', reason: 'period_cap_reached' }
  return { outcome: 'awarded', referrer }
}
