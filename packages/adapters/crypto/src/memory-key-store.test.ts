import { PatientForgottenError, type PatientId, unsafeId } from '@referrals/core'
import { describe, expect, it } from 'vitest'
import { MasterKey } from './master-key.js'
import { createInMemoryPatientKeyStore } from './memory-key-store.js'

const patient = (n: number) => unsafeId<PatientId>(`pat-${n}`)
const failure = (promise: Promise<unknown>): Promise<unknown> =>
  promise.then(
    () => null,
    (e: unknown) => e,
  )

describe('in-memory patient key store', () => {
  it('creates one key per patient and finds it by kid', async () => {
    const store = createInMemoryPatientKeyStore({ masterKey: MasterKey.generate() })
    const first = await store.getOrCreate(patient(1))
    const again = await store.getOrCreate(patient(1))
    expect(first.key).toHaveLength(32)
    expect(again.kid).toBe(first.kid)
    expect(Buffer.from((await store.get(first.kid)) ?? []).equals(Buffer.from(first.key))).toBe(true)
    expect((await store.getOrCreate(patient(2))).kid).not.toBe(first.kid)
    expect(await store.get('k_unknown')).toBeNull()
  })

  it('forgetting lasts: after destroy the key is gone and getOrCreate refuses with PatientForgottenError', async () => {
    const store = createInMemoryPatientKeyStore({ masterKey: MasterKey.generate() })
    const { kid } = await store.getOrCreate(patient(1))
    const other = await store.getOrCreate(patient(2))
    await store.destroy(patient(1))
    expect(await store.get(kid)).toBeNull()
    const error = await failure(store.getOrCreate(patient(1)))
    expect(error).toBeInstanceOf(PatientForgottenError)
    expect((error as Error).message).not.toContain('pat-1')
    // Still refused later, and destroy stays idempotent.
    await store.destroy(patient(1))
    expect(await failure(store.getOrCreate(patient(1)))).toBeInstanceOf(PatientForgottenError)
    expect(await store.get(kid)).toBeNull()
    // Other patients are untouched.
    expect((await store.getOrCreate(patient(2))).kid).toBe(other.kid)
    expect(await store.get(other.kid)).not.toBeNull()
  })

  it('forgetting a patient who has no key yet also stops a key being created for them', async () => {
    const store = createInMemoryPatientKeyStore({ masterKey: MasterKey.generate() })
    await store.destroy(patient(3))
    expect(await failure(store.getOrCreate(patient(3)))).toBeInstanceOf(PatientForgottenError)
  })
})
