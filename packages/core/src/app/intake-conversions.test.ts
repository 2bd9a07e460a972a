import fc from 'fast-check'
import * as E from 'fp-ts/lib/Either.js'
import { describe, expect, it } from 'vitest'
import type { IncentiveRule } from '../program/index.js'
import { referralStreamId } from '../referral/index.js'
import { sequentialIds } from '../shared/id-generator.js'
import {
  type CommandId,
  type CorrelationId,
  type EventId,
  type IncentiveRuleId,
  type IntakeId,
  type PatientId,
  type PracticeId,
  type ProgramId,
  type ReferralId,
  type ReferralLinkId,
  type ReferrerId,
  unsafeId,
} from '../shared/ids.js'
import { type Instant, manualClock } from '../shared/time.js'
import { createInMemoryEventStore } from '../store/in-memory.js'
import { expected, type GlobalPosition, type StoredEvent } from '../store/port.js'
import { programWorld } from '../testing/program-world.js'
import { tombstoneCipher } from '../testing/tombstone-cipher.js'
import {
  conversionCommandId,
  createIntakeConversions,
  INTAKE_CONVERSION_ACTOR,
} from './intake-conversions.js'

const practiceId = unsafeId<PracticeId>('clinic-1')
const programId = unsafeId<ProgramId>('prog-1')
const linkId = unsafeId<ReferralLinkId>('link-ann')
const ruleId = unsafeId<IncentiveRuleId>('thanks')
const T0 = '2026-03-01T09:00:00.000Z' as Instant
const AT1 = '2026-03-10T14:00:00.000Z' as Instant
const AT2 = '2026-03-12T10:30:00.000Z' as Instant

const rule = (perReferrer: number): IncentiveRule =>
  ({
    ruleId,
    reward: { kind: 'community_donation', description: 'A donation to the food bank' },
    eligibility: ['referral_completed'],
    caps: { perReferrer, perPeriod: { days: 30, max: 100 } },
    disclosureText: 'Donations are made whatever the care received.',
  }) as unknown as IncentiveRule

const phi = { patient: { givenName: 'Canaryname', familyName: 'Phisurname', email: 'canary@example.org' } }

/** A referral event as the referral stream stores it; the process reads only its type and time. */
type ReferralFact = 'scheduled' | 'rescheduled' | 'completed' | 'no_show'

const setup = async (options: { readonly perReferrer?: number } = {}) => {
  const store = createInMemoryEventStore()
  const ids = sequentialIds('ev')
  const clock = manualClock(T0)
  const cipher = tombstoneCipher()
  const world = programWorld({ store, ids, clock, cipher })
  await world.createProgram({
    programId,
    practiceId,
    links: [
      {
        linkId,
        code: 'ANNF000001',
        attribution: { channel: 'word-of-mouth', referringPersonId: unsafeId<ReferrerId>('ann') },
      },
    ],
    rules: [rule(options.perReferrer ?? 5)],
  })
  const conversions = createIntakeConversions({ store, ids, clock, cipher })
  let n = 0
  const referralVersions = new Map<string, number>()
  /** Appends one referral fact (as the referral aggregate would have written it). */
  const referral = async (referralId: ReferralId, fact: ReferralFact, at: Instant = AT1) => {
    const version = referralVersions.get(referralId) ?? 0
    n++
    const type = {
      scheduled: 'AppointmentScheduled',
      rescheduled: 'AppointmentRescheduled',
      completed: 'ReferralCompleted',
      no_show: 'PatientNoShowRecorded',
    }[fact]
    const r = await store.append({
      streamId: referralStreamId(referralId),
      expected: version === 0 ? expected.any : expected.exact(version),
      events: [
        {
          id: unsafeId<EventId>(`r-${referralId}-${n}`),
          type,
          schemaVersion: 1,
          data: { referralId, practiceId, at, appointmentAt: at, previousAt: at, completedAt: at },
          metadata: {
            actor: { kind: 'system', component: 'test' },
            correlationId: unsafeId<CorrelationId>('c'),
            commandId: unsafeId<CommandId>(`rc-${n}`),
            occurredAt: T0,
          },
        },
      ],
    })()
    if (E.isLeft(r)) throw new Error(r.left.message)
    referralVersions.set(referralId, r.right.version)
  }
  /** What a checkpointed subscription does: every event after `from`, in order, to `handle`. */
  let checkpoint: GlobalPosition = 0n
  const drive = async (): Promise<StoredEvent[]> => {
    const page = await store.readAll({ after: checkpoint, streamPrefixes: ['referral-', 'intake-'] })()
    if (E.isLeft(page)) throw new Error(page.left.message)
    for (const stored of page.right) {
      await conversions.handle(stored)
      checkpoint = stored.globalPosition
    }
    return [...page.right]
  }
  const intakeTypes = async (intakeId: IntakeId) =>
    (await world.loadIntake(intakeId)).stored.map((s) => s.type)
  const decisions = async () =>
    (await world.loadProgram(programId)).stored.filter(
      (s) => s.type === 'IncentiveAwarded' || s.type === 'IncentiveRefused',
    )
  const submit = (i: number, referralId?: ReferralId) =>
    world.submitIntake({
      programId,
      linkId,
      intakeId: unsafeId<IntakeId>(`in-${i}`),
      patientId: unsafeId<PatientId>(`pat-${i}`),
      phi,
      communication: { email: true, sms: false, phone: false, mail: false },
      ...(referralId === undefined ? {} : { referralId }),
    })
  return { store, world, conversions, referral, drive, intakeTypes, decisions, submit, cipher }
}

const in1 = unsafeId<IntakeId>('in-1')
const ref1 = unsafeId<ReferralId>('ref-1')

describe('intake conversions: following the referral of an intake', () => {
  it('given a referred intake, when its appointment is scheduled and completed, then the intake records both and the referrer is awarded', async () => {
    const s = await setup()
    await s.submit(1, ref1)
    await s.referral(ref1, 'scheduled', AT1)
    await s.referral(ref1, 'completed')
    await s.drive()
    expect(await s.intakeTypes(in1)).toEqual([
      'ReferralLinkOpened',
      'IntakeSubmitted',
      'IntakeReferralSent',
      'IntakeAppointmentScheduled',
      'IntakeAppointmentCompleted',
    ])
    const intake = await s.world.loadIntake(in1)
    expect(intake.stored[3]?.data).toMatchObject({ appointmentAt: AT1 })
    expect(intake.stored[3]?.metadata.actor).toEqual(INTAKE_CONVERSION_ACTOR)
    const decided = await s.decisions()
    expect(decided.map((d) => d.type)).toEqual(['IncentiveAwarded'])
    expect(decided[0]?.data).toMatchObject({
      intakeId: 'in-1',
      referrer: { kind: 'person', referrerId: 'ann' },
      rule: { ruleId: 'thanks' },
      facts: { referralCompleted: true },
    })
    expect(decided[0]?.metadata.actor).toEqual(INTAKE_CONVERSION_ACTOR)
  })

  it('given a scheduled intake, when the patient does not come and books again, then no-show and the new time are recorded', async () => {
    const s = await setup()
    await s.submit(1, ref1)
    await s.referral(ref1, 'scheduled', AT1)
    await s.referral(ref1, 'no_show', AT1)
    await s.referral(ref1, 'scheduled', AT2)
    await s.drive()
    const intake = await s.world.loadIntake(in1)
    expect(
      intake.stored.slice(3).map((e) => [e.type, (e.data as { appointmentAt?: string }).appointmentAt]),
    ).toEqual([
      ['IntakeAppointmentScheduled', AT1],
      ['IntakeNoShowRecorded', undefined],
      ['IntakeAppointmentScheduled', AT2],
    ])
    expect(intake.state.exists && intake.state.stage).toBe('scheduled')
    expect(await s.decisions()).toEqual([])
  })

  it('ignores referrals that came from no intake, and non-conversion referral events', async () => {
    const s = await setup()
    await s.submit(1, ref1)
    const other = unsafeId<ReferralId>('ref-other')
    await s.referral(other, 'scheduled')
    await s.referral(other, 'completed')
    await s.drive()
    expect(await s.intakeTypes(in1)).toHaveLength(3)
    expect(await s.conversions.intakeOf(other)).toBeNull()
    expect(await s.decisions()).toEqual([])
  })

  it('given the referral moved on before the intake named it, when IntakeReferralSent is handled, then the earlier facts are recorded', async () => {
    const s = await setup()
    await s.submit(1)
    await s.referral(ref1, 'scheduled', AT1)
    await s.referral(ref1, 'completed')
    await s.drive() // nothing links ref-1 to an intake yet
    expect(await s.intakeTypes(in1)).toHaveLength(2)
    await s.world.recordReferralSent(in1, ref1)
    await s.drive()
    expect((await s.intakeTypes(in1)).slice(3)).toEqual([
      'IntakeAppointmentScheduled',
      'IntakeAppointmentCompleted',
    ])
    expect((await s.decisions()).map((d) => d.type)).toEqual(['IncentiveAwarded'])
  })

  it('redelivering every event (a crash before each checkpoint) records nothing twice and awards once', async () => {
    const s = await setup()
    await s.submit(1, ref1)
    await s.referral(ref1, 'scheduled', AT1)
    await s.referral(ref1, 'completed')
    const events = await s.drive()
    for (const e of events) await s.conversions.handle(e)
    // A second process, started afresh, re-running the whole log.
    const fresh = createIntakeConversions({
      store: s.store,
      ids: sequentialIds('fresh'),
      clock: manualClock(T0),
      cipher: s.cipher,
    })
    for (const e of events) await fresh.handle(e)
    expect((await s.intakeTypes(in1)).slice(3)).toEqual([
      'IntakeAppointmentScheduled',
      'IntakeAppointmentCompleted',
    ])
    expect((await s.decisions()).map((d) => d.type)).toEqual(['IncentiveAwarded'])
  })

  it('a crash between the completion and the incentive decision is repaired by the redelivery', async () => {
    const s = await setup()
    await s.submit(1, ref1)
    await s.referral(ref1, 'scheduled', AT1)
    await s.referral(ref1, 'completed')
    const all = await s.store.readAll({ streamPrefixes: ['referral-'] })()
    if (E.isLeft(all)) throw new Error(all.left.message)
    const completed = all.right.find((e) => e.type === 'ReferralCompleted') as StoredEvent
    // The completion was recorded on the intake by a process that died before deciding.
    const intake = await s.world.loadIntake(in1)
    expect(intake.state.exists && intake.state.stage).toBe('referred')
    await s.conversions.handle(all.right[0] as StoredEvent)
    const r = await s.store.append({
      streamId: intake.streamId,
      expected: expected.exact(4),
      events: [
        {
          id: unsafeId<EventId>('done-1'),
          type: 'IntakeAppointmentCompleted',
          schemaVersion: 1,
          data: { intakeId: in1, completedAt: T0 },
          metadata: {
            actor: INTAKE_CONVERSION_ACTOR,
            correlationId: unsafeId<CorrelationId>('c'),
            commandId: conversionCommandId(completed.id),
            occurredAt: T0,
          },
        },
      ],
    })()
    expect(E.isRight(r)).toBe(true)
    expect(await s.decisions()).toEqual([])
    const steps = await s.conversions.handle(completed)
    expect(steps).toEqual([
      { outcome: 'already_recorded', intakeId: in1, incentives: [{ ruleId, outcome: 'awarded' }] },
    ])
    expect((await s.intakeTypes(in1)).filter((t) => t === 'IntakeAppointmentCompleted')).toHaveLength(1)
    expect((await s.decisions()).map((d) => d.type)).toEqual(['IncentiveAwarded'])
  })

  it('a fact the intake has moved past (rescheduled after completion) is skipped as stale, not an error', async () => {
    const s = await setup()
    await s.submit(1, ref1)
    await s.referral(ref1, 'scheduled', AT1)
    await s.referral(ref1, 'completed')
    await s.drive()
    await s.referral(ref1, 'rescheduled', AT2)
    const all = await s.store.readStream(referralStreamId(ref1))()
    if (E.isLeft(all)) throw new Error(all.left.message)
    const steps = await s.conversions.handle(all.right.at(-1) as StoredEvent)
    expect(steps).toEqual([
      { outcome: 'stale', intakeId: in1, incentives: [{ ruleId, outcome: 'already_decided' }] },
    ])
    expect((await s.intakeTypes(in1)).slice(3)).toEqual([
      'IntakeAppointmentScheduled',
      'IntakeAppointmentCompleted',
    ])
  })

  it('the per-referrer cap refuses the second completed referral of the same referrer, naming the rule', async () => {
    const s = await setup({ perReferrer: 1 })
    const ref2 = unsafeId<ReferralId>('ref-2')
    await s.submit(1, ref1)
    await s.submit(2, ref2)
    for (const ref of [ref1, ref2]) {
      await s.referral(ref, 'scheduled')
      await s.referral(ref, 'completed')
    }
    await s.drive()
    const decided = await s.decisions()
    expect(decided.map((d) => [d.type, (d.data as { intakeId: string }).intakeId])).toEqual([
      ['IncentiveAwarded', 'in-1'],
      ['IncentiveRefused', 'in-2'],
    ])
    expect(decided[1]?.data).toMatchObject({ reason: 'per_referrer_cap_reached', rule: { ruleId: 'thanks' } })
  })

  it('a forgotten patient’s intake still follows its referral (the funnel holds no PHI to open)', async () => {
    const s = await setup()
    await s.submit(1, ref1)
    await s.cipher.forgetPatient(unsafeId<PatientId>('pat-1'))
    await s.referral(ref1, 'scheduled')
    await s.referral(ref1, 'completed')
    await s.drive()
    expect((await s.intakeTypes(in1)).slice(3)).toEqual([
      'IntakeAppointmentScheduled',
      'IntakeAppointmentCompleted',
    ])
  })
})

describe('intake conversions: property — any order of delivery, any redelivery, same outcome', () => {
  const factArb = fc.constantFrom<ReferralFact>('scheduled', 'rescheduled', 'no_show', 'completed')

  it('each referral event is recorded at most once, the final stage follows the referral, at most one award per intake', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(factArb, { minLength: 1, maxLength: 6 }),
        fc.nat({ max: 6 }),
        fc.array(fc.nat({ max: 20 }), { maxLength: 8 }),
        async (facts, linkAfter, redeliveries) => {
          const s = await setup()
          await s.submit(1)
          // A valid referral life: scheduled first; nothing after completion.
          const life: ReferralFact[] = ['scheduled']
          for (const f of facts) {
            if (life.at(-1) === 'completed') break
            if ((f === 'no_show' || f === 'completed') && life.at(-1) === 'no_show') life.push('scheduled')
            else life.push(f)
          }
          const times = life.map(
            (_, i) => `2026-04-${String(i + 1).padStart(2, '0')}T10:00:00.000Z` as Instant,
          )
          let linked = false
          for (let i = 0; i < life.length; i++) {
            if (i === Math.min(linkAfter, life.length)) {
              await s.world.recordReferralSent(in1, ref1)
              linked = true
            }
            const fact = life[i] as ReferralFact
            await s.referral(
              ref1,
              fact,
              fact === 'no_show' ? (times[i - 1] as Instant) : (times[i] as Instant),
            )
          }
          if (!linked) await s.world.recordReferralSent(in1, ref1)
          const events = await s.drive()
          for (const k of redeliveries) {
            const e = events[k % events.length]
            if (e !== undefined) await s.conversions.handle(e)
          }
          const intake = await s.world.loadIntake(in1)
          const commandIds = intake.stored.map((e) => e.metadata.commandId)
          expect(new Set(commandIds).size).toBe(commandIds.length)
          const last = life.at(-1)
          const expectedStage = {
            scheduled: 'scheduled',
            rescheduled: 'scheduled',
            no_show: 'no_show',
            completed: 'completed',
          }[last as ReferralFact]
          expect(intake.state.exists && intake.state.stage).toBe(expectedStage)
          const awards = (await s.decisions()).filter((d) => d.type === 'IncentiveAwarded')
          expect(awards).toHaveLength(last === 'completed' ? 1 : 0)
        },
      ),
      { numRuns: 40 },
    )
  })
})
