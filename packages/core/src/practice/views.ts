import type { RecipientProfile } from '../shared/domain-types.js'
import type { PracticeMember, PracticeState } from './decider.js'

/**
 * How senders and the router see this practice; null unless it is a specialist practice whose
 * settings have been configured. Eligibility (verified, active) is left to the reader.
 */
export const recipientProfile = (state: PracticeState): RecipientProfile | null => {
  if (!state.exists || state.kind !== 'specialist' || state.settings === null) return null
  const s = state.settings
  return {
    practiceId: state.practiceId,
    verified: state.verified,
    status: state.receiving,
    specialtyId: s.specialtyId,
    regions: s.regions,
    categories: s.categories,
    fte: s.fte,
    insuranceNetworks: s.insuranceNetworks,
    preferredProviderListed: s.preferredProviderListed,
  }
}

/** Members in the order they joined; empty for a practice that does not exist. Platform admins are never listed unless added. */
export const membersOf = (state: PracticeState): readonly PracticeMember[] =>
  state.exists ? state.members : []
