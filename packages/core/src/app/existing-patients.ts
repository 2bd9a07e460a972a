import * as E from 'fp-ts/lib/Either.js'
import * as t from 'io-ts'
import type { ReferrerRef } from '../program/index.js'
import type { PracticeId } from '../shared/ids.js'
import type { EventStore, GlobalPosition } from '../store/port.js'
import { serializedRefresh } from './catch-up.js'

/** The only fields read from a `ReferralSent`: ids, never the sealed PHI. */
const SentIds = t.type({ senderPracticeId: t.string, patientId: t.string })

/**
 * The patient id under which a practice records its own patient `localId`: the practice-scoped
 * form the HTTP API stores (`<practiceId>:<localId>`, see `scopedPatientId` in `@referrals/http`).
 */
export const practicePatientId = (practiceId: PracticeId, localId: string): string =>
  `${practiceId}:${localId}`

export interface ExistingPatientLookup {
  /**
   * Is the referrer an existing patient of the practice (eligibility `referrer_existing_patient`)?
   * A referring *person* is named on a link by a pseudonymous id that the practice chose: its own
   * local patient id for that person. They are an existing patient when the practice has sent a
   * referral for that patient (stored as `practicePatientId(practiceId, referrerId)`). A referring
   * practice is never a patient.
   */
  readonly isExistingPatient: (referrer: ReferrerRef, practiceId: PracticeId) => Promise<boolean>
}

/**
 * The existing-patient lookup of the incentive rules, over the referral streams: an in-memory set
 * of (sending practice, patient id) pairs, caught up on `referral-` streams in global order (only
 * `ReferralSent` counts) when an id is not in it yet, so a referral sent before the decision is
 * always seen. It reads two ids of each `ReferralSent` and nothing else: no PHI is opened, no key
 * touched, and the answer is a yes or no that the decision records as a fact
 * (`referrerIsExistingPatient`). Forgetting a patient destroys their PHI, not these pseudonymous
 * ids, so a forgotten patient who was referred before still counts as having been a patient.
 */
export const createExistingPatientLookup = (options: {
  readonly store: EventStore
}): ExistingPatientLookup => {
  const known = new Set<string>()
  const key = (practiceId: string, patientId: string) => `${practiceId}\u0000${patientId}`
  let position: GlobalPosition = 0n
  const PAGE = 500
  const refresh = serializedRefresh(async () => {
    for (;;) {
      const page = await options.store.readAll({
        after: position,
        maxCount: PAGE,
        streamPrefixes: ['referral-'],
      })()
      if (E.isLeft(page)) throw new Error(`existing patients: reading referrals: ${page.left.message}`)
      for (const stored of page.right) {
        if (stored.type === 'ReferralSent') {
          const ids = SentIds.decode(stored.data)
          if (E.isRight(ids)) known.add(key(ids.right.senderPracticeId, ids.right.patientId))
        }
        position = stored.globalPosition
      }
      if (page.right.length < PAGE) return
    }
  })
  return {
    isExistingPatient: async (referrer, practiceId) => {
      if (referrer.kind !== 'person') return false
      const wanted = key(practiceId, practicePatientId(practiceId, referrer.referrerId))
      if (known.has(wanted)) return true
      await refresh()
      return known.has(wanted)
    },
  }
}
