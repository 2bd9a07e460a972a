import { PatientForgottenError, type PhiCipher } from '../privacy/port.js'

/**
 * A test cipher that models the key store contract: a forgotten patient's values open as
 * `forgotten` and sealing anything new for them throws `PatientForgottenError`. Not
 * cryptography (`@referrals/crypto` tests that): the "ciphertext" is base64url JSON.
 */
export const tombstoneCipher = (): PhiCipher => {
  const forgotten = new Set<string>()
  return {
    seal: async (_ctx, patientId, phi) => {
      if (forgotten.has(patientId)) throw new PatientForgottenError()
      const ct = Buffer.from(JSON.stringify(phi)).toString('base64url')
      return { sealed: { v: 1, alg: 'A256GCM', kid: patientId, iv: 'aXY', ct, tag: 'dGFn' } }
    },
    open: async (_ctx, sealed) =>
      forgotten.has(sealed.sealed.kid)
        ? { kind: 'forgotten' }
        : { kind: 'plain', phi: JSON.parse(Buffer.from(sealed.sealed.ct, 'base64url').toString()) },
    forgetPatient: async (p) => {
      forgotten.add(p)
    },
  }
}
