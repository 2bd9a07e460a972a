import * as E from 'fp-ts/lib/Either.js'
import { describe, expect, it } from 'vitest'
import { programCreated } from '../program/fixtures.js'
import {
  type ProgramCommandPayload,
  type ProgramEvent,
  programDecider,
  programStreamId,
} from '../program/index.js'
import { fold } from '../shared/decider.js'
import { type CorrelationId, type ProgramId, type ReferralId, unsafeId } from '../shared/ids.js'
import { createInMemoryEventStore } from '../store/in-memory.js'
import { tombstoneCipher } from '../testing/tombstone-cipher.js'
import { createWorld } from '../testing/world.js'
import { executeCommand } from './command-handler.js'
import { REDACTED } from './phi-sealer.js'
import { programAggregate } from './programs.js'
import { createPublicIntake, INTAKE_FIELDS as F, linkWithCode, parseIntakeForm } from './public-intake.js'

const corr = unsafeId<CorrelationId>('corr-intake')

const linkEvent = (linkId: string, code: string): ProgramEvent =>
  ({
    type: 'ReferralLinkCreated',
    data: {
      programId: 'prog-1',
      linkId,
      code,
      attribution: { channel: 'poster' },
      createdAt: '2026-03-01T09:00:00.000Z',
    },
  }) as ProgramEvent

describe('linkWithCode (pure)', () => {
  const state = fold(programDecider, [
    programCreated,
    linkEvent('link-a', 'AAAA000001'),
    linkEvent('link-b', 'BBBB000002'),
    {
      type: 'ReferralLinkRetired',
      data: { programId: 'prog-1', linkId: 'link-b', retiredAt: '2026-03-02T09:00:00.000Z' },
    } as ProgramEvent,
  ])

  it('finds the link with the code, with its status', () => {
    expect(linkWithCode(state, 'AAAA000001')?.link).toMatchObject({ linkId: 'link-a', status: 'active' })
    expect(linkWithCode(state, 'BBBB000002')?.link).toMatchObject({ linkId: 'link-b', status: 'retired' })
  })

  it('finds nothing for another code or a program that does not exist', () => {
    expect(linkWithCode(state, 'CCCC000003')).toBeNull()
    expect(linkWithCode({ exists: false }, 'AAAA000001')).toBeNull()
  })
})

const validForm = {
  [F.submittedBy]: 'patient',
  [F.patientGivenName]: ' Ada ',
  [F.patientFamilyName]: 'Lovelace',
  [F.patientDateOfBirth]: '1980-04-23',
  [F.patientEmail]: 'ada@example.org',
  [F.contactEmail]: 'yes',
  [F.consentVersion]: '1',
  [F.consentAgreed]: 'yes',
}

describe('parseIntakeForm (pure)', () => {
  it('reads a patient submission, trimming text and reading checkboxes', () => {
    expect(parseIntakeForm(validForm, '2026-03-02')).toEqual(
      E.right({
        submittedBy: { kind: 'patient' },
        consentVersion: 1,
        communication: { email: true, sms: false, phone: false, mail: false },
        patient: {
          givenName: 'Ada',
          familyName: 'Lovelace',
          dateOfBirth: '1980-04-23',
          email: 'ada@example.org',
        },
      }),
    )
  })

  it('reads a caregiver submission with the relationship', () => {
    const r = parseIntakeForm(
      {
        ...validForm,
        [F.submittedBy]: 'caregiver',
        [F.relationship]: 'parent',
        [F.caregiverGivenName]: 'Bea',
        [F.caregiverFamilyName]: 'Lovelace',
      },
      '2026-03-02',
    )
    expect(E.isRight(r) && r.right.submittedBy).toEqual({ kind: 'caregiver', relationship: 'parent' })
    expect(E.isRight(r) && r.right.caregiver).toEqual({ givenName: 'Bea', familyName: 'Lovelace' })
  })

  it('names every wrong field with a message that never repeats the value', () => {
    const r = parseIntakeForm(
      {
        [F.submittedBy]: 'caregiver',
        [F.patientGivenName]: '',
        [F.patientFamilyName]: 'Zqsecretfamily',
        [F.patientDateOfBirth]: '2031-01-01',
        [F.patientEmail]: 'zqsecret-not-an-email',
        [F.contactSms]: 'yes',
        [F.consentVersion]: 'x',
      },
      '2026-03-02',
    )
    if (E.isRight(r)) throw new Error('expected problems')
    expect(r.left.map((p) => p.field)).toEqual([
      F.relationship,
      F.patientGivenName,
      F.patientDateOfBirth,
      F.patientEmail,
      F.caregiverGivenName,
      F.caregiverFamilyName,
      F.contactSms,
      F.consentVersion,
      F.consentAgreed,
    ])
    expect(JSON.stringify(r.left)).not.toMatch(/zqsecret|2031/i)
  })
})

/** A world with two pool members and a pooled program of the clinic, with links A (active) and B. */
const setup = async () => {
  const cipher = tombstoneCipher()
  const store = createInMemoryEventStore()
  const world = await createWorld({ cipher, store })
  const { engine, ids } = world
  const specA = await world.addSpecialist('spec-a', 1)
  const specB = await world.addSpecialist('spec-b', 1)
  const owner = await world.as(world.ownerOf('clinic'))
  const programId = unsafeId<ProgramId>('prog-1')
  const program = async (payload: ProgramCommandPayload) => {
    const r = await executeCommand(
      programAggregate,
      { store: engine.store, ids: engine.ids },
      programStreamId(programId),
      { ...payload, meta: engine.meta(owner) } as never,
    )()
    if (E.isLeft(r)) throw new Error(r.left.message)
  }
  await program({
    type: 'CreateProgram',
    data: {
      programId,
      practiceId: ids.clinic,
      name: 'Knee pathway',
      target: {
        kind: 'pooled',
        regionId: ids.north,
        specialtyId: ids.ortho,
        category: { categoryId: ids.knee },
      },
    },
  } as ProgramCommandPayload)
  await program({
    type: 'PublishConsentVersion',
    data: { consentText: 'We may contact you.', disclosureText: 'We share nothing.' },
  } as ProgramCommandPayload)
  for (const [linkId, code] of [
    ['link-a', 'AAAA000001'],
    ['link-b', 'BBBB000002'],
  ])
    await program({
      type: 'CreateReferralLink',
      data: { linkId, code, attribution: { channel: 'poster', campaign: 'spring' } },
    } as ProgramCommandPayload)
  const intake = createPublicIntake({ engine, cipher })
  const submission = parseIntakeForm(validForm, '2026-03-02')
  if (E.isLeft(submission)) throw new Error('fixture form invalid')
  return { ...world, store, cipher, specA, specB, program, intake, submission: submission.right }
}

describe('the public intake on the engine', () => {
  it('the link directory follows program streams: status changes show at the next lookup', async () => {
    const { intake, program } = await setup()
    await intake.links.refresh()
    expect(intake.links.lookup('AAAA000001')?.link.status).toBe('active')
    await program({ type: 'PauseReferralLink', data: { linkId: 'link-b' } } as ProgramCommandPayload)
    await intake.links.refresh()
    expect(intake.links.lookup('BBBB000002')?.link.status).toBe('paused')
    await program({ type: 'RetireReferralLink', data: { linkId: 'link-b' } } as ProgramCommandPayload)
    await intake.links.refresh()
    expect(intake.links.lookup('BBBB000002')?.link.status).toBe('retired')
    expect(intake.links.lookup('ZZZZ999999')).toBeNull()
    expect(intake.links.lookup('not a code')).toBeNull()
  })

  it('opens, submits and sends a pooled referral routed to a pool member, once even when retried', async () => {
    const { intake, engine, store, specA, specB, submission } = await setup()
    const opened = await intake.open('AAAA000001', corr)
    if (opened.kind !== 'opened') throw new Error(opened.kind)
    expect(opened.page).toMatchObject({ programName: 'Knee pathway', clinicName: 'Clinic' })
    expect(opened.page.consent.version).toBe(1)
    const first = await intake.submit('AAAA000001', opened.intakeId, submission, corr)
    const again = await intake.submit('AAAA000001', opened.intakeId, submission, corr)
    expect(first.kind).toBe('submitted')
    expect(again).toMatchObject({ kind: 'submitted', referralId: `intake-${opened.intakeId}` })
    const referral = await engine.referrals.load(unsafeId<ReferralId>(`intake-${opened.intakeId}`))()
    if (E.isLeft(referral) || !referral.right.state.exists) throw new Error('no referral')
    expect(referral.right.state.status).toBe('pending')
    expect([specA, specB]).toContain(referral.right.state.recipientPracticeId)
    expect(referral.right.state.senderPracticeId).toBe('clinic')
    const types = store.snapshot().map((e) => e.type)
    expect(types.filter((t) => t === 'ReferralSent')).toHaveLength(1)
    expect(types.filter((t) => t === 'IntakeSubmitted')).toHaveLength(1)
    expect(types.filter((t) => t === 'IntakeReferralSent')).toHaveLength(1)
  })

  it('concurrent submissions of one token make one referral', async () => {
    const { intake, store, submission } = await setup()
    const opened = await intake.open('AAAA000001', corr)
    if (opened.kind !== 'opened') throw new Error(opened.kind)
    const outcomes = await Promise.all(
      [1, 2, 3].map(() => intake.submit('AAAA000001', opened.intakeId, submission, corr)),
    )
    expect(outcomes.map((o) => o.kind)).toEqual(['submitted', 'submitted', 'submitted'])
    expect(store.snapshot().filter((e) => e.type === 'ReferralSent')).toHaveLength(1)
  })

  it('refuses unknown codes (not found), paused and retired links (gone), foreign tokens (expired)', async () => {
    const { intake, program, submission } = await setup()
    expect((await intake.open('ZZZZ999999', corr)).kind).toBe('not_found')
    expect((await intake.view('ZZZZ999999')).kind).toBe('not_found')
    expect(await intake.view('BBBB000002')).toMatchObject({
      kind: 'page',
      page: { programName: 'Knee pathway' },
    })
    const onA = await intake.open('AAAA000001', corr)
    const onB = await intake.open('BBBB000002', corr)
    if (onA.kind !== 'opened' || onB.kind !== 'opened') throw new Error('expected both open')
    expect((await intake.submit('AAAA000001', onB.intakeId, submission, corr)).kind).toBe('expired')
    expect((await intake.submit('AAAA000001', 'no-such-intake', submission, corr)).kind).toBe('expired')
    await program({ type: 'PauseReferralLink', data: { linkId: 'link-b' } } as ProgramCommandPayload)
    expect((await intake.open('BBBB000002', corr)).kind).toBe('gone')
    expect((await intake.view('BBBB000002')).kind).toBe('gone')
    expect((await intake.submit('BBBB000002', onB.intakeId, submission, corr)).kind).toBe('gone')
    await program({ type: 'RetireReferralLink', data: { linkId: 'link-b' } } as ProgramCommandPayload)
    expect((await intake.open('BBBB000002', corr)).kind).toBe('gone')
  })

  it('asks to agree again when the consent text changed after the page was served', async () => {
    const { intake, program, submission, store } = await setup()
    const opened = await intake.open('AAAA000001', corr)
    if (opened.kind !== 'opened') throw new Error(opened.kind)
    await program({
      type: 'PublishConsentVersion',
      data: { consentText: 'New text.', disclosureText: 'Still nothing.' },
    } as ProgramCommandPayload)
    const r = await intake.submit('AAAA000001', opened.intakeId, submission, corr)
    expect(r).toMatchObject({ kind: 'invalid', problems: [{ field: F.consentAgreed }] })
    expect(r.kind === 'invalid' && r.page.consent.version).toBe(2)
    expect(store.snapshot().some((e) => e.type === 'IntakeSubmitted')).toBe(false)
  })

  it('seals the intake and the referral under one patient key: forgetting redacts both', async () => {
    const { intake, engine, cipher, submission, store } = await setup()
    const opened = await intake.open('AAAA000001', corr)
    if (opened.kind !== 'opened') throw new Error(opened.kind)
    await intake.submit('AAAA000001', opened.intakeId, submission, corr)
    expect(JSON.stringify(store.snapshot().map((e) => e.data))).not.toMatch(/Lovelace|ada@example/)
    await cipher.forgetPatient(unsafeId(`intake-${opened.intakeId}`))
    const referral = await engine.referrals.load(unsafeId<ReferralId>(`intake-${opened.intakeId}`))()
    if (E.isLeft(referral)) throw new Error(referral.left.message)
    expect(referral.right.events[0]).toMatchObject({ data: { phi: REDACTED } })
  })
})

describe('a direct program', () => {
  it('sends the intake straight to the program practice, filed under its first region and category', async () => {
    const { engine, ids, specA, submission, as, ownerOf } = await setup()
    const owner = await as(ownerOf('clinic'))
    const programId = unsafeId<ProgramId>('prog-direct')
    for (const payload of [
      {
        type: 'CreateProgram',
        data: {
          programId,
          practiceId: ids.clinic,
          name: 'Dr A',
          target: { kind: 'direct', practiceId: specA },
        },
      },
      { type: 'PublishConsentVersion', data: { consentText: 'Consent.', disclosureText: 'Disclosure.' } },
      { type: 'CreateReferralLink', data: { linkId: 'link-d', code: 'DDDD000004', attribution: {} } },
    ]) {
      const r = await executeCommand(
        programAggregate,
        { store: engine.store, ids: engine.ids },
        programStreamId(programId),
        { ...payload, meta: engine.meta(owner) } as never,
      )()
      if (E.isLeft(r)) throw new Error(r.left.message)
    }
    const intake = createPublicIntake({ engine })
    const opened = await intake.open('DDDD000004', corr)
    if (opened.kind !== 'opened') throw new Error(opened.kind)
    expect(await intake.submit('DDDD000004', opened.intakeId, submission, corr)).toMatchObject({
      kind: 'submitted',
    })
    const referral = await engine.referrals.load(unsafeId<ReferralId>(`intake-${opened.intakeId}`))()
    if (E.isLeft(referral) || !referral.right.state.exists) throw new Error('no referral')
    expect(referral.right.state).toMatchObject({
      status: 'pending',
      recipientPracticeId: 'spec-a',
      route: 'direct',
    })
    expect(referral.right.events[0]).toMatchObject({
      data: { specialtyId: 'ortho', regionId: 'north', category: { categoryId: 'knee' } },
    })
  })
})
