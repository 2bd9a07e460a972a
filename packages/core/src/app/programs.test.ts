import * as E from 'fp-ts/lib/Either.js'
import { describe, expect, it } from 'vitest'
import {
  canaryPhi,
  intakeId,
  linkA,
  linkAContext,
  metaAt,
  owner,
  patientId,
  practiceId,
  programId,
  publicIntake,
  referralId,
  T0,
  T1,
} from '../program/fixtures.js'
import {
  type ConsentVersion,
  type IncentiveRule,
  type IntakeCommand,
  intakeStreamId,
  type ProgramCommand,
  programStreamId,
} from '../program/index.js'
import { sequentialIds } from '../shared/id-generator.js'
import {
  type IncentiveRuleId,
  type IntakeId,
  type ReferrerId,
  type StreamId,
  unsafeId,
} from '../shared/ids.js'
import { createInMemoryEventStore } from '../store/in-memory.js'
import type { EventStore } from '../store/port.js'
import { tombstoneCipher } from '../testing/tombstone-cipher.js'
import { executeCommand, loadAggregate } from './command-handler.js'
import { REDACTED } from './phi-sealer.js'
import { intakeAggregate, programAggregate } from './programs.js'

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

describe('incentive caps under concurrent conversions (one program stream, exact expected version)', () => {
  /**
   * Holds the first `n` reads of `streamId` until all `n` have been asked for, so `n` commands are
   * certainly decided on the same version, and counts the appends the store refused as conflicts.
   */
  const racingStore = (inner: EventStore, streamId: StreamId, n: number) => {
    let waiting: (() => void)[] = []
    let held = 0
    let conflicts = 0
    const store: EventStore = {
      ...inner,
      readStream: (id, options) => async () => {
        if (id === streamId && held < n) {
          held++
          await new Promise<void>((resolve) => {
            waiting.push(resolve)
            if (waiting.length === n) {
              for (const release of waiting) release()
              waiting = []
            }
          })
        }
        return inner.readStream(id, options)()
      },
      append: (request) => async () => {
        const result = await inner.append(request)()
        if (E.isLeft(result) && result.left._tag === 'WrongExpectedVersion') conflicts++
        return result
      },
    }
    return { store, conflicts: () => conflicts }
  }

  const ruleId = unsafeId<IncentiveRuleId>('thanks')
  const engine = { kind: 'system', component: 'incentives' } as const

  const setupProgram = async (caps: { perReferrer: number; perPeriod: { days: number; max: number } }) => {
    const inner = createInMemoryEventStore()
    const streamId = programStreamId(programId)
    const ids = sequentialIds('ev')
    const run = (store: EventStore, command: ProgramCommand, maxRetries?: number) =>
      executeCommand(
        programAggregate,
        { store, ids },
        streamId,
        command,
        maxRetries === undefined ? {} : { maxRetries },
      )()
    const setupCommands = [
      {
        type: 'CreateProgram',
        data: { programId, practiceId, name: 'Friends', target: { kind: 'direct', practiceId } },
      },
      {
        type: 'CreateReferralLink',
        data: { linkId: linkA, code: 'FRND000001', attribution: { referringPersonId: 'ann' } },
      },
      {
        type: 'DefineIncentiveRule',
        data: {
          rule: {
            ruleId,
            reward: { kind: 'community_donation', description: 'A donation to the food bank' },
            eligibility: ['referral_completed'],
            caps,
            disclosureText: 'Donations are made whatever the care received.',
          } as unknown as IncentiveRule,
        },
      },
    ]
    for (const payload of setupCommands) {
      const r = await run(inner, { ...payload, meta: metaAt(owner, T0) } as ProgramCommand)
      if (E.isLeft(r)) throw new Error(r.left.message)
    }
    const decide = (intake: string, referrer: string): ProgramCommand => ({
      type: 'DecideIncentive',
      data: { ruleId, intakeId: unsafeId<IntakeId>(intake) },
      context: {
        conversion: {
          intakeId: unsafeId<IntakeId>(intake),
          linkId: linkA,
          referrer: { kind: 'person', referrerId: unsafeId<ReferrerId>(referrer) },
          facts: { referralCompleted: true, referrerIsExistingPatient: false },
        },
      },
      meta: metaAt(engine, T1),
    })
    const decisions = async () => {
      const r = await inner.readStream(streamId)()
      if (E.isLeft(r)) throw new Error(r.left.message)
      return r.right.filter((e) => e.type === 'IncentiveAwarded' || e.type === 'IncentiveRefused')
    }
    return { inner, streamId, run, decide, decisions }
  }

  it('two concurrent conversions of one referrer with a per-referrer cap of 1: one award, one refusal', async () => {
    const p = await setupProgram({ perReferrer: 1, perPeriod: { days: 30, max: 100 } })
    const race = racingStore(p.inner, p.streamId, 2)
    const results = await Promise.all([
      p.run(race.store, p.decide('i1', 'ann')),
      p.run(race.store, p.decide('i2', 'ann')),
    ])
    expect(results.every(E.isRight)).toBe(true)
    expect(race.conflicts()).toBe(1) // both decided on the same version; the second was decided again
    const stored = await p.decisions()
    expect(stored.map((e) => e.type).sort()).toEqual(['IncentiveAwarded', 'IncentiveRefused'])
    const refusal = stored.find((e) => e.type === 'IncentiveRefused')
    expect(refusal?.data).toMatchObject({ reason: 'per_referrer_cap_reached', rule: { ruleId: 'thanks' } })
  })

  it('ten concurrent conversions against a period cap of 3: exactly 3 awards, 7 refusals', async () => {
    const p = await setupProgram({ perReferrer: 5, perPeriod: { days: 30, max: 3 } })
    const race = racingStore(p.inner, p.streamId, 10)
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) => p.run(race.store, p.decide(`c${i}`, `person-${i}`), 20)),
    )
    expect(results.filter(E.isLeft)).toEqual([])
    expect(race.conflicts()).toBeGreaterThan(0)
    const stored = await p.decisions()
    expect(stored.filter((e) => e.type === 'IncentiveAwarded')).toHaveLength(3)
    expect(
      stored
        .filter((e) => e.type === 'IncentiveRefused')
        .map((e) => (e.data as { readonly reason?: unknown }).reason),
    ).toEqual(Array(7).fill('period_cap_reached'))
  })
})
