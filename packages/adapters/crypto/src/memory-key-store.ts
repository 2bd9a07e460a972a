import { PatientForgottenError, type PatientId, type PatientKeyStore } from '@referrals/core'
import { type MasterKey, newDataKey, unwrapDataKey, wrapDataKey } from './master-key.js'

interface KeyRecord {
  readonly patientId: PatientId
  readonly kid: string
  readonly wrapped: Buffer
}

/**
 * Patient data keys in process memory, wrapped under the master key exactly as the PostgreSQL
 * store keeps them. For tests, simulations and single-process embedding: keys vanish with the
 * process, so PHI sealed with them does too. A forgotten patient leaves a tombstone (the id only),
 * so `getOrCreate` refuses them with `PatientForgottenError` for the life of the store.
 */
export const createInMemoryPatientKeyStore = (options: {
  readonly masterKey: MasterKey
}): PatientKeyStore => {
  const byPatient = new Map<PatientId, KeyRecord>()
  const byKid = new Map<string, KeyRecord>()
  const forgotten = new Set<PatientId>()
  const unwrap = (record: KeyRecord): Uint8Array =>
    unwrapDataKey(options.masterKey, record.kid, record.patientId, record.wrapped)

  return {
    getOrCreate: async (patientId) => {
      if (forgotten.has(patientId)) throw new PatientForgottenError()
      const existing = byPatient.get(patientId)
      if (existing !== undefined) return { kid: existing.kid, key: unwrap(existing) }
      const { kid, key } = newDataKey()
      const record = { patientId, kid, wrapped: wrapDataKey(options.masterKey, kid, patientId, key) }
      byPatient.set(patientId, record)
      byKid.set(kid, record)
      return { kid, key }
    },
    get: async (kid) => {
      const record = byKid.get(kid)
      return record === undefined ? null : unwrap(record)
    },
    destroy: async (patientId) => {
      forgotten.add(patientId)
      const record = byPatient.get(patientId)
      if (record === undefined) return
      byPatient.delete(patientId)
      byKid.delete(record.kid)
      record.wrapped.fill(0)
    },
  }
}
