import {
  defaultIntakeReminderPolicy,
  type IncentiveRule,
  type IntakeCommand,
  type IntakeId,
  type PatientId,
  type PracticeId,
  type ProgramEvent,
  type ProgramId,
  type ReferralId,
  type ReferralLinkId,
  type ReferrerId,
  unsafeId,
} from '@referrals/core'
import { programWorld } from '@referrals/core/testing'
import { inMemoryOutbox } from '@referrals/notify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildRoutesTestApp, type RoutesTestApp } from '../routes/testing-routes.js'
import { createIntakeProcesses } from './intakes.js'

const RULE = {
  ruleId: 'patients-thanks',
  reward: { kind: 'patient_education', description: 'A free knee-health class' },
  eligibility: ['referral_completed', 'referrer_existing_patient'],
  caps: { perReferrer: 5, perPeriod: { days: 30, max: 50 } },
  disclosureText: 'Only for existing patients; never tied to the care received.',
} as unknown as IncentiveRule

/**
 * The service's conversion process (`createIntakeProcesses`) answers `referrer_existing_patient`
 * from the referral streams: a referring person named on a link by the practice's own patient id
 * is an existing patient once the practice has sent a referral for that patient.
 */
describe('incentive rule referrer_existing_patient in the service', () => {
  let t: RoutesTestApp
  beforeAll(async () => {
    t = await buildRoutesTestApp()
  })
  afterAll(async () => {
    await t.app.close()
  })

  it('awards a referrer who is a patient of the program’s practice, refuses anyone else, and records the rule and the fact', async () => {
    const world = programWorld({ store: t.eventStore, ids: t.engine.ids, clock: t.clock })
    const processes = createIntakeProcesses({
      store: t.eventStore,
      engine: t.engine,
      clock: t.clock,
      outbox: inMemoryOutbox(),
      settings: { policy: defaultIntakeReminderPolicy, schedulingUrl: undefined },
      publicBase: 'https://referrals.example',
      patientChannels: new Set(),
    })
    // `clinic` (dr-gp) will refer its patient `pat-r1` (stored as `clinic:pat-r1`).
    const person = (id: string) => unsafeId<ReferrerId>(id)
    const links = [
      {
        linkId: unsafeId<ReferralLinkId>('by-patient'),
        code: 'PATN000001',
        attribution: { referringPersonId: person('pat-r1') },
      },
      {
        linkId: unsafeId<ReferralLinkId>('by-stranger'),
        code: 'STRN000002',
        attribution: { referringPersonId: person('zed') },
      },
    ]
    const clinicProgram = unsafeId<ProgramId>('prog-clinic')
    const specProgram = unsafeId<ProgramId>('prog-spec')
    await world.createProgram({
      programId: clinicProgram,
      practiceId: unsafeId<PracticeId>('clinic'),
      links,
      rules: [RULE],
    })
    // The same local id on another practice's program: a patient of `clinic`, not of `spec-a`.
    await world.createProgram({
      programId: specProgram,
      practiceId: unsafeId<PracticeId>('spec-a'),
      links: [{ ...links[0]!, code: 'PATN000003' }],
      rules: [RULE],
    })
    const completed = async (programId: ProgramId, linkId: ReferralLinkId, n: string) => {
      const intakeId = unsafeId<IntakeId>(`in-${n}`)
      await world.submitIntake({
        programId,
        linkId,
        intakeId,
        patientId: unsafeId<PatientId>(`intake-pat-${n}`),
        phi: { patient: { givenName: 'Canaryname', familyName: 'Phisurname', phone: '+15550100' } },
        communication: { email: false, sms: false, phone: true, mail: false },
        referralId: unsafeId<ReferralId>(`ref-${n}`),
      })
      for (const command of [
        { type: 'RecordIntakeAppointmentScheduled', data: { appointmentAt: '2026-05-01T10:00:00.000Z' } },
        { type: 'RecordIntakeAppointmentCompleted', data: {} },
      ])
        await world.recordIntake(intakeId, command as Omit<IntakeCommand, 'meta'>)
      return intakeId
    }

    // Decided before the practice ever referred `pat-r1`: not (yet) an existing patient.
    const early = await completed(clinicProgram, links[0]!.linkId, 'early')
    expect(await processes.conversions.decideIncentives(early)).toEqual([
      { ruleId: 'patients-thanks', outcome: 'refused' },
    ])
    await t.ok('gp', 'POST', '/referrals', t.referral('r1'))

    const byPatient = await completed(clinicProgram, links[0]!.linkId, 'a')
    const byStranger = await completed(clinicProgram, links[1]!.linkId, 'b')
    const elsewhere = await completed(specProgram, links[0]!.linkId, 'c')
    expect(await processes.conversions.decideIncentives(byPatient)).toEqual([
      { ruleId: 'patients-thanks', outcome: 'awarded' },
    ])
    expect(await processes.conversions.decideIncentives(byStranger)).toEqual([
      { ruleId: 'patients-thanks', outcome: 'refused' },
    ])
    expect(await processes.conversions.decideIncentives(elsewhere)).toEqual([
      { ruleId: 'patients-thanks', outcome: 'refused' },
    ])

    const decisions = async (programId: ProgramId) =>
      (await world.loadProgram(programId)).events.filter(
        (e): e is Extract<ProgramEvent, { type: 'IncentiveAwarded' | 'IncentiveRefused' }> =>
          e.type === 'IncentiveAwarded' || e.type === 'IncentiveRefused',
      )
    const clinic = await decisions(clinicProgram)
    expect(clinic.map((e) => [e.data.intakeId, e.type, e.data.reason, e.data.facts])).toEqual([
      [
        'in-early',
        'IncentiveRefused',
        'referrer_not_existing_patient',
        { referralCompleted: true, referrerIsExistingPatient: false },
      ],
      ['in-a', 'IncentiveAwarded', 'eligible', { referralCompleted: true, referrerIsExistingPatient: true }],
      [
        'in-b',
        'IncentiveRefused',
        'referrer_not_existing_patient',
        { referralCompleted: true, referrerIsExistingPatient: false },
      ],
    ])
    for (const e of clinic) expect(e.data.rule).toEqual(RULE)
    const spec = await decisions(specProgram)
    expect(spec.map((e) => [e.type, e.data.reason, e.data.facts.referrerIsExistingPatient])).toEqual([
      ['IncentiveRefused', 'referrer_not_existing_patient', false],
    ])
    // The decisions name the referrer by its pseudonymous id only: no PHI in the program stream.
    const stream = JSON.stringify((await world.loadProgram(clinicProgram)).events)
    expect(stream).not.toContain('Canaryname')
    expect(stream).not.toContain('Phisurname')
  })
})
