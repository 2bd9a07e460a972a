import * as E from 'fp-ts/lib/Either.js'
import { describe, expect, it } from 'vitest'
import { PatientForgottenError, type PhiCipher } from '../privacy/port.js'
import {
  canaryPhi,
  intakeId,
  linkA,
  linkAContext,
  metaAt,
  patientId,
  publicIntake,
  referralId,
  T0,
  T1,
} from '../program/fixtures.js'
import type { ConsentVersion, IntakeCommand } from '../program/index.js'
import { intakeStreamId } from '../program/index.js'
import { sequentialIds } from '../shared/id-generator.js'
import { createInMemoryEventStore } from '../store/in-memory.js'
import { executeCommand, loadAggregate } from './command-handler.js'
import { REDACTED } from './phi-sealer.js'
import { intakeAggregate } from './programs.js'

// Models the key store contract (forgotten values open as `forgotten`, sealing for a forgotten
// patient throws); not cryptography, which @referrals/crypto tests.
const tombstoneCipher = (): PhiCipher => {
  const forgotten = new Set<string>()
  return {
    seal: async (_ctx, patient, phi) => {
      if (forgotten.has(patient)) throw new PatientForgottenError()
      const ct = Buffer.from(JSON.stringify(phi)).toString('base64url')
      return { sealed: { v: 1, alg: 'A256GCM', kid: patient, iv: 'aXY', ct, tag: 'dGFn' } }
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

const CANARY = /Canaryname|Phisurname|canary@example/

const open: IntakeCommand = {
  type: 'OpenReferralLink',
  data: { intakeId, linkId: linkA },
  context: { link: linkAContext },
  meta: metaAt(publicIntake, T0),
}
const submit: IntakeCommand = {
  type: 'SubmitIntake',
  data: {
    patientId,
    submittedBy: { kind: 'patient' },
    consentVersion: 1 as ConsentVersion,
    communication: { email: true, sms: false, phone: false, mail: false },
    phi: canaryPhi,
  },
  context: { link: linkAContext },
  meta: metaAt(publicIntake, T1),
}

const setup = async () => {
  const store = createInMemoryEventStore()
  const cipher = tombstoneCipher()
  const aggregate = intakeAggregate(cipher)
  const deps = { store, ids: sequentialIds('ev') }
  const streamId = intakeStreamId(intakeId)
  const run = async (command: IntakeCommand) => executeCommand(aggregate, deps, streamId, command)()
  const rawStream = async () => {
    const r = await store.readStream(streamId)()
    if (E.isLeft(r)) throw new Error(r.left.message)
    return r.right
  }
  return { store, cipher, aggregate, streamId, run, rawStream }
}

describe('intake PHI through the engine', () => {
  it('is sealed with the patient key in its own intake- stream, and opens again on read', async () => {
    const { store, aggregate, streamId, run, rawStream } = await setup()
    expect(E.isRight(await run(open))).toBe(true)
    expect(E.isRight(await run(submit))).toBe(true)
    const stored = await rawStream()
    expect(stored.map((e) => e.type)).toEqual(['ReferralLinkOpened', 'IntakeSubmitted'])
    expect(JSON.stringify(stored.map((e) => e.data))).not.toMatch(CANARY)
    expect(stored[1]?.data).toMatchObject({ phi: { sealed: { kid: patientId } } })
    const loaded = await loadAggregate(aggregate, store, streamId)()
    expect(E.isRight(loaded) && loaded.right.events[1]).toMatchObject({ data: { phi: canaryPhi } })
  })

  it('forgetting the patient redacts the intake; the funnel still replays and continues', async () => {
    const { store, cipher, aggregate, streamId, run } = await setup()
    await run(open)
    await run(submit)
    await cipher.forgetPatient(patientId)
    const loaded = await loadAggregate(aggregate, store, streamId)()
    if (E.isLeft(loaded)) throw new Error(loaded.left.message)
    expect(loaded.right.events[1]).toMatchObject({
      data: { phi: REDACTED, consent: { version: 1, agreedAt: T1 } },
    })
    expect(loaded.right.state.exists && loaded.right.state.stage).toBe('submitted')
    const sent = await run({
      type: 'RecordIntakeReferralSent',
      data: { referralId },
      meta: metaAt({ kind: 'system', component: 'program-funnel' }, T1),
    })
    expect(E.isRight(sent) && sent.right.state.exists && sent.right.state.stage).toBe('referred')
  })

  it('refuses a new intake for a forgotten patient and writes nothing', async () => {
    const { cipher, run, rawStream } = await setup()
    await run(open)
    await cipher.forgetPatient(patientId)
    const result = await run(submit)
    expect(E.isLeft(result) && result.left).toMatchObject({ code: 'patient.forgotten' })
    expect((await rawStream()).map((e) => e.type)).toEqual(['ReferralLinkOpened'])
  })
})
