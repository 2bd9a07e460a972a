import { describe, expect, it } from 'vitest'
import { PatientForgottenError, type PhiCipher, type SealedPhi } from '../privacy/port.js'
import { type EventId, type PatientId, type StreamId, unsafeId } from '../shared/ids.js'
import { phiSealer, REDACTED, redactingSealer } from './phi-sealer.js'

// A transparent stand-in cipher that records what it was asked to do; the AES-GCM cipher itself is
// tested in @referrals/crypto. This checks the sealer's routing of PHI, not cryptography.
const recordingCipher = () => {
  const forgotten = new Set<string>()
  const calls: { patientId: string; streamId: string; eventId: string }[] = []
  const cipher: PhiCipher = {
    seal: async (ctx, patientId, phi) => {
      if (forgotten.has(patientId)) throw new PatientForgottenError()
      calls.push({ patientId, streamId: ctx.streamId, eventId: ctx.eventId })
      const ct = Buffer.from(JSON.stringify(phi)).toString('base64url')
      return { sealed: { v: 1, alg: 'A256GCM', kid: patientId, iv: 'aXY', ct, tag: 'dGFn' } }
    },
    open: async (_ctx, sealed: SealedPhi) =>
      forgotten.has(sealed.sealed.kid)
        ? { kind: 'forgotten' }
        : { kind: 'plain', phi: JSON.parse(Buffer.from(sealed.sealed.ct, 'base64url').toString()) },
    forgetPatient: async (p) => {
      forgotten.add(p)
    },
  }
  return { cipher, calls }
}

const ctx = {
  streamId: unsafeId<StreamId>('referral-1'),
  eventId: unsafeId<EventId>('e-1'),
  type: 'ReferralSent',
}
const patient = unsafeId<PatientId>('pat-1')

describe('phiSealer', () => {
  it('seals only the phi property, with the patient found from the event, bound to stream and event', async () => {
    const { cipher, calls } = recordingCipher()
    const sealer = phiSealer<null>(cipher, (_s, d) => (d as { patientId: PatientId }).patientId)
    const data = { patientId: patient, urgency: 'urgent', phi: { name: 'Canary Person' } }
    const sealed = (await sealer.seal(ctx, data, null)) as Record<string, unknown>
    expect(sealed.urgency).toBe('urgent')
    expect(JSON.stringify(sealed)).not.toContain('Canary Person')
    expect(calls).toEqual([{ patientId: 'pat-1', streamId: 'referral-1', eventId: 'e-1' }])
    expect(await sealer.open(ctx, sealed)).toEqual(data)
  })

  it('reads a forgotten patient as the redacted placeholder', async () => {
    const { cipher } = recordingCipher()
    const sealer = phiSealer<PatientId>(cipher, (s) => s)
    const sealed = await sealer.seal(ctx, { phi: { body: 'hello' } }, patient)
    await cipher.forgetPatient(patient)
    expect(await sealer.open(ctx, sealed)).toEqual({ phi: REDACTED })
  })

  it('refuses new PHI of a forgotten patient (PatientForgottenError), but stores an empty phi as redacted', async () => {
    const { cipher } = recordingCipher()
    const sealer = phiSealer<PatientId>(cipher, (s) => s)
    await cipher.forgetPatient(patient)
    await expect(sealer.seal(ctx, { phi: { body: 'Canary Person' } }, patient)).rejects.toBeInstanceOf(
      PatientForgottenError,
    )
    expect(await sealer.seal(ctx, { reasonCode: 'capacity', phi: {} }, patient)).toEqual({
      reasonCode: 'capacity',
      phi: REDACTED,
    })
    // Another patient is still sealed as usual.
    const other = unsafeId<PatientId>('pat-2')
    expect(await sealer.seal(ctx, { phi: {} }, other)).toMatchObject({ phi: { sealed: { kid: 'pat-2' } } })
  })

  it('leaves events without PHI, and already redacted PHI, untouched', async () => {
    const { cipher, calls } = recordingCipher()
    const sealer = phiSealer<PatientId>(cipher, (s) => s)
    expect(await sealer.seal(ctx, { reasonCode: 'capacity' }, patient)).toEqual({ reasonCode: 'capacity' })
    expect(await sealer.seal(ctx, { phi: REDACTED }, patient)).toEqual({ phi: REDACTED })
    expect(calls).toHaveLength(0)
  })

  it('refuses to store PHI in the clear when no patient is known', async () => {
    const { cipher } = recordingCipher()
    const sealer = phiSealer<null>(cipher, () => null)
    await expect(sealer.seal(ctx, { phi: { name: 'Canary Person' } }, null)).rejects.toThrow(/no patient/)
    await expect(sealer.seal(ctx, { phi: { name: 'Canary Person' } }, null)).rejects.not.toThrow(/Canary/)
  })

  it('redactingSealer reads sealed PHI as redacted without the cipher, and refuses to seal', async () => {
    const { cipher } = recordingCipher()
    const sealed = await phiSealer<PatientId>(cipher, (s) => s).seal(
      ctx,
      { phi: { body: 'Canary' }, n: 1 },
      patient,
    )
    const reader = redactingSealer<null>()
    expect(await reader.open(ctx, sealed)).toEqual({ phi: REDACTED, n: 1 })
    expect(await reader.open(ctx, { n: 2 })).toEqual({ n: 2 })
    await expect(reader.seal(ctx, { phi: {} }, null)).rejects.toThrow(/cannot write/)
  })
})
