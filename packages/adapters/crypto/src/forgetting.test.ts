import {
  type MessageId,
  PatientForgottenError,
  type PatientId,
  type ReferralId,
  type StoredEvent,
  unsafeId,
} from '@referrals/core'
import { createWorld } from '@referrals/core/testing'
import * as E from 'fp-ts/lib/Either.js'
import { describe, expect, it } from 'vitest'
import { MasterKey } from './master-key.js'
import { createInMemoryPatientKeyStore } from './memory-key-store.js'
import { createAesGcmPhiCipher } from './phi-cipher.js'

// The whole engine with the real AES-GCM cipher and key store: forgetting a patient must last.
const setup = async () => {
  const keys = createInMemoryPatientKeyStore({ masterKey: MasterKey.generate() })
  const cipher = createAesGcmPhiCipher({ keys })
  const w = await createWorld({ cipher })
  const specialist = await w.addSpecialist('spec-a', 1)
  await w.send('r1', { kind: 'direct', practiceId: specialist })
  return { w, keys, cipher, specialist, referralId: unsafeId<ReferralId>('r1') }
}

const referralEvents = async (w: Awaited<ReturnType<typeof setup>>['w']): Promise<readonly StoredEvent[]> => {
  const read = await w.store.readStream(unsafeId('referral-r1'))()
  if (E.isLeft(read)) throw new Error(read.left.message)
  return read.right
}

describe('forgetting a patient through the engine (AES-GCM cipher, in-memory key store)', () => {
  it('refuses new PHI for a forgotten patient with patient.forgotten and stores nothing', async () => {
    const { w, cipher, specialist, referralId } = await setup()
    await cipher.forgetPatient(unsafeId<PatientId>('pat-r1'))
    const before = (await referralEvents(w)).length

    const posted = await w.engine.referrals.execute(
      referralId,
      {
        type: 'PostMessage',
        data: { messageId: unsafeId<MessageId>('m-1'), phi: { body: 'Canary message after forgetting' } },
      },
      await w.as(w.ownerOf(specialist)),
    )()
    expect(E.isLeft(posted) && posted.left).toEqual({
      _tag: 'DomainError',
      code: 'patient.forgotten',
      message: 'This patient was forgotten; new patient data cannot be recorded',
    })
    expect(JSON.stringify(posted)).not.toContain('Canary')
    const after = await referralEvents(w)
    expect(after).toHaveLength(before)
    expect(after.map((e) => e.type)).not.toContain('MessagePosted')
    // Everything already recorded reads as redacted.
    const loaded = await w.must(w.engine.referrals.load(referralId))
    const sent = loaded.events.find((e) => e.type === 'ReferralSent')
    expect(sent?.data.phi).toEqual({ redacted: true })
  })

  it('a new referral for the forgotten patient id is refused too (no new key, nothing searchable)', async () => {
    const { w, keys, cipher } = await setup()
    await cipher.forgetPatient(unsafeId<PatientId>('pat-r1'))
    const again = await w.engine.referrals.execute(
      unsafeId<ReferralId>('r2'),
      { type: 'SendReferral', data: { ...w.sendData('r2'), patientId: unsafeId<PatientId>('pat-r1') } },
      await w.as(w.ownerOf('clinic')),
    )()
    expect(E.isLeft(again) && again.left).toMatchObject({ code: 'patient.forgotten' })
    const stream = await w.store.readStream(unsafeId('referral-r2'))()
    expect(E.isRight(stream) && stream.right).toEqual([])
    await expect(keys.getOrCreate(unsafeId<PatientId>('pat-r1'))).rejects.toBeInstanceOf(
      PatientForgottenError,
    )
  })

  it('commands without PHI still work on the forgotten patient referral; their empty phi is stored redacted', async () => {
    const { w, cipher, specialist, referralId } = await setup()
    await cipher.forgetPatient(unsafeId<PatientId>('pat-r1'))
    await w.must(
      w.engine.referrals.execute(
        referralId,
        { type: 'AcceptReferral', data: {} },
        await w.as(w.ownerOf(specialist)),
      ),
    )
    expect(await w.statusOf('r1')).toBe('accepted')
    await w.must(
      w.engine.referrals.execute(
        referralId,
        { type: 'CancelReferral', data: { reasonCode: 'no_longer_needed' } },
        await w.as(w.ownerOf('clinic')),
      ),
    )
    expect(await w.statusOf('r1')).toBe('cancelled')
    const cancelled = (await referralEvents(w)).find((e) => e.type === 'ReferralCancelled')
    expect(cancelled?.data).toMatchObject({ phi: { redacted: true } })
  })

  it('a cancellation with a note (PHI) is refused for a forgotten patient', async () => {
    const { w, cipher, referralId } = await setup()
    await cipher.forgetPatient(unsafeId<PatientId>('pat-r1'))
    const cancelled = await w.engine.referrals.execute(
      referralId,
      { type: 'CancelReferral', data: { reasonCode: 'no_longer_needed', phi: { note: 'Canary note' } } },
      await w.as(w.ownerOf('clinic')),
    )()
    expect(E.isLeft(cancelled) && cancelled.left).toMatchObject({ code: 'patient.forgotten' })
    expect(await w.statusOf('r1')).not.toBe('cancelled')
  })

  it('other patients are unaffected', async () => {
    const { w, cipher, specialist } = await setup()
    await w.send('r3', { kind: 'direct', practiceId: specialist })
    await cipher.forgetPatient(unsafeId<PatientId>('pat-r1'))
    await w.must(
      w.engine.referrals.execute(
        unsafeId<ReferralId>('r3'),
        { type: 'PostMessage', data: { messageId: unsafeId<MessageId>('m-3'), phi: { body: 'hello' } } },
        await w.as(w.ownerOf(specialist)),
      ),
    )
    const loaded = await w.must(w.engine.referrals.load(unsafeId<ReferralId>('r3')))
    expect(loaded.events.find((e) => e.type === 'MessagePosted')?.data.phi).toEqual({ body: 'hello' })
  })
})
