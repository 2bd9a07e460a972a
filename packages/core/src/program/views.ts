import type { ReferralLinkId } from '../shared/ids.js'
import type { ProgramLink, ProgramState, PublishedConsent } from './decider.js'
import type { IncentiveConversion, ReferrerRef } from './incentives.js'
import type { IntakeLinkContext, IntakeState } from './intake-decider.js'

/** The consent version new intakes agree to: the latest published one, or null before the first. */
export const currentConsent = (state: ProgramState): PublishedConsent | null =>
  state.exists ? (state.consents.at(-1) ?? null) : null

export const linkOf = (state: ProgramState, linkId: ReferralLinkId): ProgramLink | null =>
  state.exists ? (state.links.find((l) => l.linkId === linkId) ?? null) : null

/**
 * What intake commands on `linkId` need to know, from the program's state: the link's status and
 * attribution and the consent version to agree to. Null when the program or the link does not exist.
 */
export const intakeLinkContext = (state: ProgramState, linkId: ReferralLinkId): IntakeLinkContext | null => {
  const link = linkOf(state, linkId)
  if (!state.exists || link === null) return null
  return {
    programId: state.programId,
    practiceId: state.practiceId,
    linkId,
    status: link.status,
    attribution: link.attribution,
    currentConsentVersion: currentConsent(state)?.version ?? null,
  }
}

/**
 * The conversion an incentive decision is made on, from the intake's own stream: its link, the
 * link's referrer (person before practice) and whether the referral completed. Whether the
 * referrer is an existing patient is the application layer's lookup. Null: no such intake.
 */
export const incentiveConversion = (
  intake: IntakeState,
  referrerIsExistingPatient: boolean,
): IncentiveConversion | null => {
  if (!intake.exists) return null
  const { referringPersonId, referringPracticeId } = intake.attribution
  const referrer: ReferrerRef | null =
    referringPersonId !== undefined
      ? { kind: 'person', referrerId: referringPersonId }
      : referringPracticeId !== undefined
        ? { kind: 'practice', practiceId: referringPracticeId }
        : null
  return {
    intakeId: intake.intakeId,
    linkId: intake.linkId,
    referrer,
    facts: { referralCompleted: intake.stage === 'completed', referrerIsExistingPatient },
  }
}
