import type { ReferralLinkId } from '../shared/ids.js'
import type { ProgramLink, ProgramState, PublishedConsent } from './decider.js'

/** The consent version new intakes agree to: the latest published one, or null before the first. */
export const currentConsent = (state: ProgramState): PublishedConsent | null =>
  state.exists ? (state.consents.at(-1) ?? null) : null

export const linkOf = (state: ProgramState, linkId: ReferralLinkId): ProgramLink | null =>
  state.exists ? (state.links.find((l) => l.linkId === linkId) ?? null) : null
