import type { Upcaster } from '../envelope/upcast.js'

/**
 * `ReferralSent` v1 → v2. Version 1 stored urgency as a boolean `urgent` (there was no
 * `emergent`) and had no attribution. v2 names the urgency; `urgent: true` becomes `'urgent'`,
 * anything else `'routine'`. Attribution stays absent (it was never collected). Data that is not
 * an object is passed through untouched: the event codec then rejects it with a typed error.
 */
export const referralSentV1ToV2: Upcaster = {
  type: 'ReferralSent',
  fromVersion: 1,
  upcast: (data) => {
    if (typeof data !== 'object' || data === null || Array.isArray(data)) return data
    const { urgent, ...rest } = data as Record<string, unknown>
    return { ...rest, urgency: urgent === true ? 'urgent' : 'routine' }
  },
}

export const referralUpcasters: readonly Upcaster[] = [referralSentV1ToV2]
