import * as t from 'io-ts'
import type { CommandMeta } from '../shared/decider.js'
import { InsuranceNetworkId, PracticeId, ReferralId } from '../shared/ids.js'

/** FTE in integer thousandths (1..10000): the router's weight. See `fteMilli` in shared. */
export const FteMilli = t.brand(
  t.number,
  (n): n is t.Branded<number, { readonly FteMilli: symbol }> => Number.isInteger(n) && n >= 1 && n <= 10_000,
  'FteMilli',
)
export type FteMilli = t.TypeOf<typeof FteMilli>

export const ExclusionReason = t.keyof({ paused: null, not_eligible: null, insurance: null, declined: null })
export type ExclusionReason = t.TypeOf<typeof ExclusionReason>

export const Exclusion = t.readonly(t.type({ practiceId: PracticeId, reason: ExclusionReason }))
export type Exclusion = t.TypeOf<typeof Exclusion>

export const RoutingPolicyOptions = t.readonly(
  t.type({
    /** Does a direct (preferred-provider) referral to a pool member count toward its load? */
    countDirectReferrals: t.boolean,
    /** On decline/expiry: `refund` gives the decliner its count back; `keep` leaves it charged. */
    onDecline: t.keyof({ keep: null, refund: null }),
    /** How many ranked candidates a ReferralRouted event records (the chosen one first). */
    recordCandidates: t.number,
  }),
)
export type RoutingPolicyOptions = t.TypeOf<typeof RoutingPolicyOptions>

/**
 * The routing policy a decision was taken under. Version 1: the engine before issue 12 (a resumer
 * or rejoiner placed at lag 0, refunds capped at max(lag, 0), out-of-turn debt clamped at −1); kept
 * so that old streams still re-derive. Version 2: lag-preserving placement and exact refunds (see
 * `engine.ts`).
 */
export const RoutingPolicyVersion = t.union([t.literal(1), t.literal(2)])
export type RoutingPolicyVersion = t.TypeOf<typeof RoutingPolicyVersion>

export const RoutingPolicy = t.readonly(
  t.type({
    name: t.literal('weighted-virtual-time'),
    version: RoutingPolicyVersion,
    options: RoutingPolicyOptions,
  }),
)
export type RoutingPolicy = t.TypeOf<typeof RoutingPolicy>

// ---- commands --------------------------------------------------------------------------------

export const SyncPoolMemberData = t.readonly(
  t.intersection([
    t.type({
      practiceId: PracticeId,
      /** verified ∧ receives this pool's (region, specialty, category, subcategory). */
      eligible: t.boolean,
      fteMilli: FteMilli,
      insuranceNetworks: t.readonlyArray(InsuranceNetworkId),
    }),
    /** The practice's own status is `paused` (default false). */
    t.partial({ paused: t.boolean }),
  ]),
)
export type SyncPoolMemberData = t.TypeOf<typeof SyncPoolMemberData>

export const RouteRequest = t.readonly(
  t.type({
    insuranceNetworkId: t.union([InsuranceNetworkId, t.null]),
    /** Practices that already declined (or let expire) this referral. */
    excludedPracticeIds: t.readonlyArray(PracticeId),
  }),
)
export type RouteRequest = t.TypeOf<typeof RouteRequest>

export const RouteReferralData = t.readonly(
  t.intersection([t.type({ referralId: ReferralId }), RouteRequest, t.partial({ direct: t.literal(false) })]),
)
export type RouteReferralData = t.TypeOf<typeof RouteReferralData>

export const DeclineKind = t.keyof({ decline: null, expiry: null })
export type DeclineKind = t.TypeOf<typeof DeclineKind>

export const RecordDeclineData = t.readonly(
  t.type({ referralId: ReferralId, practiceId: PracticeId, kind: DeclineKind }),
)
export const RecordDirectReferralData = t.readonly(t.type({ referralId: ReferralId, practiceId: PracticeId }))
export const ReleaseReferralData = t.readonly(t.type({ referralId: ReferralId }))

const command = <T extends string, D extends t.Mixed>(type: T, data: D) =>
  t.readonly(t.type({ type: t.literal(type), data }))

/** The command body (type + data); `meta` is stamped by the application layer. */
export const PoolCommandBody = t.union([
  command('SyncPoolMember', SyncPoolMemberData),
  command('RouteReferral', RouteReferralData),
  command('RecordDecline', RecordDeclineData),
  command('RecordDirectReferral', RecordDirectReferralData),
  command('ReleaseReferral', ReleaseReferralData),
])
export type PoolCommandBody = t.TypeOf<typeof PoolCommandBody>
export type PoolCommand = PoolCommandBody & { readonly meta: CommandMeta }

// ---- events ----------------------------------------------------------------------------------

/**
 * One ranked candidate as an explanation shows it: virtual-time values are exact fractions in slot
 * units ("3/2"). Derived from the recorded numbers (`RecordedCandidate`) when explaining; it was
 * the recorded shape of schema version 1 of `ReferralRouted`.
 */
export const RankedCandidate = t.readonly(
  t.type({
    practiceId: PracticeId,
    count: t.number,
    fteMilli: FteMilli,
    eligible: t.boolean,
    virtualStart: t.string,
    virtualFinish: t.string,
    lag: t.string,
  }),
)
export type RankedCandidate = t.TypeOf<typeof RankedCandidate>

const SafeInteger = t.refinement(t.number, Number.isSafeInteger, 'SafeInteger')
const PositiveSafeInteger = t.refinement(
  t.number,
  (n) => Number.isSafeInteger(n) && n >= 1,
  'PositiveSafeInteger',
)

/**
 * One ranked candidate as `ReferralRouted` (schema version 2) records it: integers only.
 * `startUnits` is the member's virtual start times its FTE (the engine's p): virtual start =
 * startUnits / fteMilli slots, virtual finish = (startUnits + totalWeight) / fteMilli, lag =
 * (virtualTime.num · fteMilli − startUnits · virtualTime.den) / (virtualTime.den · totalWeight).
 */
export const RecordedCandidate = t.readonly(
  t.type({
    practiceId: PracticeId,
    count: t.number,
    fteMilli: FteMilli,
    eligible: t.boolean,
    startUnits: SafeInteger,
  }),
)
export type RecordedCandidate = t.TypeOf<typeof RecordedCandidate>

/** An exact fraction num/den (den ≥ 1), reduced. */
export const Fraction = t.readonly(t.type({ num: SafeInteger, den: PositiveSafeInteger }))
export type Fraction = t.TypeOf<typeof Fraction>

const event = <T extends string, D extends t.Mixed>(type: T, data: D) =>
  t.readonly(t.type({ type: t.literal(type), data }))

const MemberJoined = event(
  'MemberJoined',
  t.readonly(
    t.type({
      practiceId: PracticeId,
      fteMilli: FteMilli,
      insuranceNetworks: t.readonlyArray(InsuranceNetworkId),
    }),
  ),
)
const MemberLeft = event('MemberLeft', t.readonly(t.type({ practiceId: PracticeId })))
const MemberPaused = event('MemberPaused', t.readonly(t.type({ practiceId: PracticeId })))
const MemberResumed = event('MemberResumed', t.readonly(t.type({ practiceId: PracticeId })))
const MemberFteChanged = event(
  'MemberFteChanged',
  t.readonly(t.type({ practiceId: PracticeId, fromFteMilli: FteMilli, toFteMilli: FteMilli })),
)
const MemberNetworksChanged = event(
  'MemberNetworksChanged',
  t.readonly(t.type({ practiceId: PracticeId, insuranceNetworks: t.readonlyArray(InsuranceNetworkId) })),
)
const ReferralRouted = event(
  'ReferralRouted',
  t.readonly(
    t.type({
      decisionId: t.string,
      referralId: ReferralId,
      chosenPracticeId: PracticeId,
      request: RouteRequest,
      /** The pool's virtual time (slots since the last re-placement) at which the decision was taken. */
      virtualTime: Fraction,
      /** Σ FTE (thousandths) of the active members: the slot length of a member is totalWeight / fteMilli. */
      totalWeight: PositiveSafeInteger,
      candidateCount: t.number,
      candidates: t.readonlyArray(RecordedCandidate),
      exclusions: t.readonlyArray(Exclusion),
      policy: RoutingPolicy,
    }),
  ),
)
const RoutingFoundNoCandidate = event(
  'RoutingFoundNoCandidate',
  t.readonly(
    t.type({
      decisionId: t.string,
      referralId: ReferralId,
      request: RouteRequest,
      exclusions: t.readonlyArray(Exclusion),
      policy: RoutingPolicy,
    }),
  ),
)
const DeclineRecorded = event(
  'DeclineRecorded',
  t.readonly(
    t.type({ referralId: ReferralId, practiceId: PracticeId, kind: DeclineKind, refunded: t.boolean }),
  ),
)
const DirectReferralRecorded = event(
  'DirectReferralRecorded',
  t.readonly(t.type({ referralId: ReferralId, practiceId: PracticeId, counted: t.boolean })),
)
const ReferralReleased = event(
  'ReferralReleased',
  t.readonly(t.type({ referralId: ReferralId, practiceId: PracticeId, refunded: t.boolean })),
)

export const PoolEvent = t.union([
  MemberJoined,
  MemberLeft,
  MemberPaused,
  MemberResumed,
  MemberFteChanged,
  MemberNetworksChanged,
  ReferralRouted,
  RoutingFoundNoCandidate,
  DeclineRecorded,
  DirectReferralRecorded,
  ReferralReleased,
])
export type PoolEvent = t.TypeOf<typeof PoolEvent>
export type ReferralRoutedEvent = t.TypeOf<typeof ReferralRouted>
export type RoutingFoundNoCandidateEvent = t.TypeOf<typeof RoutingFoundNoCandidate>
export type PoolEventType = PoolEvent['type']
