import type { PhiCipher } from '../privacy/port.js'
import { isPatientForgottenError, isSealedPhi } from '../privacy/port.js'
import type { PatientId } from '../shared/ids.js'
import type { EventDataSealer } from './command-handler.js'

/** The placeholder every reader sees in place of a forgotten patient's PHI. */
export const REDACTED = { redacted: true } as const

const phiOf = (data: unknown): { readonly phi: unknown } | null =>
  typeof data === 'object' && data !== null && 'phi' in data ? (data as { readonly phi: unknown }) : null

const isRedacted = (phi: unknown): boolean =>
  typeof phi === 'object' && phi !== null && (phi as { redacted?: unknown }).redacted === true

/** `{}`: a PHI slot with nothing in it (e.g. a cancellation without a note). */
const isEmptyObject = (phi: unknown): boolean =>
  typeof phi === 'object' && phi !== null && !Array.isArray(phi) && Object.keys(phi).length === 0

/**
 * Seals the `phi` property of every event that has one (the referral module keeps all PHI of an
 * event under that single property) with the patient's data key, binding stream and event ids.
 * On read, a sealed value is opened; once the patient's key is destroyed it reads as
 * `{ redacted: true }`, which every referral codec and decider accepts, so history still replays.
 * `patientIdOf` finds the patient from the state before the event, or from the event itself.
 *
 * Once the patient is forgotten, sealing throws `PatientForgottenError` (no new PHI is recorded;
 * `executeCommand` reports `patient.forgotten`), except for an empty `phi` (`{}`: the command
 * carried no PHI, e.g. a cancellation without a note), which is stored as `{ redacted: true }`,
 * exactly what readers see for every other event of that patient, so such commands still work.
 */
export const phiSealer = <S>(
  cipher: PhiCipher,
  patientIdOf: (stateBefore: S, data: unknown) => PatientId | null,
): EventDataSealer<S> => ({
  seal: async (ctx, data, stateBefore) => {
    const withPhi = phiOf(data)
    if (withPhi === null || isRedacted(withPhi.phi) || isSealedPhi(withPhi.phi)) return data
    const patientId = patientIdOf(stateBefore, data)
    if (patientId === null) throw new Error(`cannot seal PHI of a ${ctx.type} event: no patient is known`)
    try {
      return { ...withPhi, phi: await cipher.seal(ctx, patientId, withPhi.phi) }
    } catch (error) {
      if (isPatientForgottenError(error) && isEmptyObject(withPhi.phi)) return { ...withPhi, phi: REDACTED }
      throw error
    }
  },
  open: async (ctx, data) => {
    const withPhi = phiOf(data)
    if (withPhi === null || !isSealedPhi(withPhi.phi)) return data
    const opened = await cipher.open(ctx, withPhi.phi)
    return { ...withPhi, phi: opened.kind === 'plain' ? opened.phi : REDACTED }
  },
})

/**
 * A sealer for readers that must not decrypt (replay, verification tooling): sealed PHI reads as
 * `{ redacted: true }` without touching any key, so folding reads no PHI. It never seals.
 */
export const redactingSealer = <S>(): EventDataSealer<S> => ({
  seal: async (ctx) => {
    throw new Error(`a redacting sealer cannot write events (${ctx.type})`)
  },
  open: async (_ctx, data) => {
    const withPhi = phiOf(data)
    return withPhi !== null && isSealedPhi(withPhi.phi) ? { ...withPhi, phi: REDACTED } : data
  },
})
