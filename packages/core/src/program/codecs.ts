import * as t from 'io-ts'
import { boundedText, ReferralAttribution } from '../referral/codecs.js'
import { CategoryRef } from '../shared/domain-types.js'
import {
  IncentiveRuleId,
  IntakeId,
  PracticeId,
  ProgramId,
  ReferralLinkId,
  ReferrerId,
  RegionId,
  SpecialtyId,
} from '../shared/ids.js'
import { Instant } from '../shared/time.js'
import { IncentiveFacts, IncentiveRefusalReason, IncentiveRule, ReferrerRef } from './incentives.js'
import { LinkCode } from './link-code.js'

const strict = <P extends t.Props>(props: P) => t.exact(t.type(props))
const optional = <P extends t.Props>(props: P) => t.exact(t.partial(props))

/** Where a program's referrals go: one practice (and optionally one of its locations) or a pool. */
export const ProgramTarget = t.union([
  t.readonly(
    t.intersection([
      strict({ kind: t.literal('direct'), practiceId: PracticeId }),
      optional({ location: boundedText('Location', 200) }),
    ]),
  ),
  t.readonly(
    strict({
      kind: t.literal('pooled'),
      regionId: RegionId,
      specialtyId: SpecialtyId,
      category: CategoryRef,
    }),
  ),
])
export type ProgramTarget = t.TypeOf<typeof ProgramTarget>

/**
 * Where a link's referrals come from: the referral attribution (channel, campaign, location,
 * service line, referring practice) plus, for person-to-person links, a pseudonymous referrer id.
 * Not PHI: no names, no contact details.
 */
export const LinkAttribution = t.readonly(
  t.intersection([ReferralAttribution, optional({ referringPersonId: ReferrerId })]),
)
export type LinkAttribution = t.TypeOf<typeof LinkAttribution>

/** Consent and disclosure wording shown on a link's intake page; no clinical detail belongs in it. */
const ConsentText = boundedText('ConsentText', 20_000)
const DisclosureText = boundedText('DisclosureText', 20_000)
const ProgramName = boundedText('ProgramName', 120)

/**
 * What the intake page tells people before they fill it in: the clinic's FAQ, insurance guidance
 * (which plans, what to bring) and scheduling guidance (how and when booking happens). Owner-written,
 * public, never clinical; replaced as a whole.
 */
export const FaqEntry = t.readonly(
  strict({ question: boundedText('FaqQuestion', 300), answer: boundedText('FaqAnswer', 2000) }),
)
export const IntakeGuidance = t.readonly(
  t.intersection([
    strict({ faq: t.readonlyArray(FaqEntry) }),
    optional({
      insuranceGuidance: boundedText('InsuranceGuidance', 4000),
      schedulingGuidance: boundedText('SchedulingGuidance', 4000),
    }),
  ]),
)
export type IntakeGuidance = t.TypeOf<typeof IntakeGuidance>
/** At most this many FAQ entries: the page stays short. */
export const MAX_FAQ_ENTRIES = 20

/** Consent versions are numbered 1, 2, 3, … in the order they are published. */
export const ConsentVersion = t.brand(
  t.number,
  (n): n is t.Branded<number, { readonly ConsentVersion: symbol }> => Number.isInteger(n) && n >= 1,
  'ConsentVersion',
)
export type ConsentVersion = t.TypeOf<typeof ConsentVersion>

// ---------------------------------------------------------------------------------------------
// Commands
// ---------------------------------------------------------------------------------------------

const command = <T extends string, D extends t.Mixed>(type: T, data: D) =>
  t.readonly(strict({ type: t.literal(type), data }))

const LinkRef = t.readonly(strict({ linkId: ReferralLinkId }))

export const CreateProgramPayload = command(
  'CreateProgram',
  t.readonly(
    strict({ programId: ProgramId, practiceId: PracticeId, name: ProgramName, target: ProgramTarget }),
  ),
)
export const PublishConsentVersionPayload = command(
  'PublishConsentVersion',
  t.readonly(strict({ consentText: ConsentText, disclosureText: DisclosureText })),
)
/** `code` is drawn by the application layer from the `LinkCodeGenerator` port, never by the client. */
export const CreateReferralLinkPayload = command(
  'CreateReferralLink',
  t.readonly(strict({ linkId: ReferralLinkId, code: LinkCode, attribution: LinkAttribution })),
)
export const SetIntakeGuidancePayload = command(
  'SetIntakeGuidance',
  t.readonly(strict({ guidance: IntakeGuidance })),
)
export const PauseReferralLinkPayload = command('PauseReferralLink', LinkRef)
export const ResumeReferralLinkPayload = command('ResumeReferralLink', LinkRef)
export const RetireReferralLinkPayload = command('RetireReferralLink', LinkRef)
export const DefineIncentiveRulePayload = command(
  'DefineIncentiveRule',
  t.readonly(strict({ rule: IncentiveRule })),
)
/** Decides whether the conversion of `intakeId` earns its referrer the rule's reward (the engine or an owner). */
export const DecideIncentivePayload = command(
  'DecideIncentive',
  t.readonly(strict({ ruleId: IncentiveRuleId, intakeId: IntakeId })),
)

/** Every program command as `{ type, data }`. All but `CreateProgram` target the program's stream. */
export const ProgramCommandPayload = t.union([
  CreateProgramPayload,
  PublishConsentVersionPayload,
  CreateReferralLinkPayload,
  SetIntakeGuidancePayload,
  PauseReferralLinkPayload,
  ResumeReferralLinkPayload,
  RetireReferralLinkPayload,
  DefineIncentiveRulePayload,
  DecideIncentivePayload,
])
export type ProgramCommandPayload = t.TypeOf<typeof ProgramCommandPayload>
export type ProgramCommandType = ProgramCommandPayload['type']

// ---------------------------------------------------------------------------------------------
// Events (every event names its program)
// ---------------------------------------------------------------------------------------------

const event = <T extends string, P extends t.Props>(type: T, props: P) =>
  t.readonly(strict({ type: t.literal(type), data: t.readonly(strict({ programId: ProgramId, ...props })) }))

export const ProgramCreated = event('ProgramCreated', {
  practiceId: PracticeId,
  name: ProgramName,
  target: ProgramTarget,
  createdAt: Instant,
})
export const ConsentVersionPublished = event('ConsentVersionPublished', {
  version: ConsentVersion,
  consentText: ConsentText,
  disclosureText: DisclosureText,
  publishedAt: Instant,
})
export const ReferralLinkCreated = event('ReferralLinkCreated', {
  linkId: ReferralLinkId,
  code: LinkCode,
  attribution: LinkAttribution,
  createdAt: Instant,
})
export const IntakeGuidanceSet = event('IntakeGuidanceSet', { guidance: IntakeGuidance, setAt: Instant })
export const ReferralLinkPaused = event('ReferralLinkPaused', { linkId: ReferralLinkId, pausedAt: Instant })
export const ReferralLinkResumed = event('ReferralLinkResumed', {
  linkId: ReferralLinkId,
  resumedAt: Instant,
})
export const ReferralLinkRetired = event('ReferralLinkRetired', {
  linkId: ReferralLinkId,
  retiredAt: Instant,
})
export const IncentiveRuleDefined = event('IncentiveRuleDefined', { rule: IncentiveRule, definedAt: Instant })
/** Every decision carries the rule as it was and the facts it was decided on: an auditor replays it. */
export const IncentiveAwarded = event('IncentiveAwarded', {
  rule: IncentiveRule,
  intakeId: IntakeId,
  linkId: ReferralLinkId,
  referrer: ReferrerRef,
  facts: IncentiveFacts,
  reason: t.literal('eligible'),
  decidedAt: Instant,
})
export const IncentiveRefused = event('IncentiveRefused', {
  rule: IncentiveRule,
  intakeId: IntakeId,
  linkId: ReferralLinkId,
  referrer: t.union([ReferrerRef, t.null]),
  facts: IncentiveFacts,
  reason: IncentiveRefusalReason,
  decidedAt: Instant,
})

/** Every program event: decodes events read from `program-<programId>` streams. */
export const ProgramEvent = t.union([
  ProgramCreated,
  ConsentVersionPublished,
  ReferralLinkCreated,
  IntakeGuidanceSet,
  ReferralLinkPaused,
  ReferralLinkResumed,
  ReferralLinkRetired,
  IncentiveRuleDefined,
  IncentiveAwarded,
  IncentiveRefused,
])
export type ProgramEvent = t.TypeOf<typeof ProgramEvent>
export type ProgramEventType = ProgramEvent['type']
