import * as E from 'fp-ts/lib/Either.js'
import { describe, expect, it } from 'vitest'
import type { CommunicationPreferences, IntakePhi } from '../program/index.js'
import { referralStreamId } from '../referral/index.js'
import { sequentialIds } from '../shared/id-generator.js'
import {
  type CommandId,
  type CorrelationId,
  type EventId,
  type IntakeId,
  type PatientId,
  type PracticeId,
  type ProgramId,
  type ReferralId,
  type ReferralLinkId,
  unsafeId,
} from '../shared/ids.js'
import { HOUR_MS, type Instant, manualClock } from '../shared/time.js'
import { createInMemoryEventStore } from '../store/in-memory.js'
import { expected } from '../store/port.js'
import { programWorld } from '../testing/program-world.js'
import { tombstoneCipher } from '../testing/tombstone-cipher.js'
import { createIntakeConversions } from './intake-conversions.js'
import {
  createIntakeReminderScheduler,
  dueIntakeReminderSequence,
  intakeReminderMessage,
} from './intake-reminders.js'

const practiceId = unsafeId<PracticeId>('clinic-1')
const programId = unsafeId<ProgramId>('prog-1')
const linkId = unsafeId<ReferralLinkId>('link-a')
const T0 = '2026-03-01T09:00:00.000Z' as Instant
const policy = { delayMs: 48 * HOUR_MS, everyMs: 72 * HOUR_MS, maxCount: 2 }

/** Canary PHI: none of it may appear in a reminder's text or facts. */
const CANARY = /Canaryname|Phisurname|1980-02-29|Carername/
const phi: IntakePhi = {
  patient: {
    givenName: 'Canaryname',
    familyName: 'Phisurname',
    dateOfBirth: '1980-02-29',
    email: 'canary@example.org',
    phone: '+15550100',
  },
}
const allChannels: CommunicationPreferences = { email: true, sms: true, phone: true, mail: true }

const setup = async () => {
  const store = createInMemoryEventStore()
  const ids = sequentialIds('ev')
  const clock = manualClock(T0)
  const cipher = tombstoneCipher()
  const world = programWorld({ store, ids, clock, cipher })
  await world.createProgram({
    programId,
    practiceId,
    location: 'North Clinic, 1 Main St',
    links: [{ linkId, code: 'SPRG000001', attribution: { channel: 'flyer', serviceLine: 'dermatology' } }],
  })
  const scheduler = createIntakeReminderScheduler({
    store,
    clock,
    cipher,
    policy,
    practiceName: (id) => (id === practiceId ? 'North Dermatology' : null),
    schedulingUrl: ({ code }) => `https://clinic.example/r/${code}`,
  })
  let n = 0
  const submit = async (
    communication: CommunicationPreferences,
    options: { readonly referralId?: ReferralId; readonly person?: IntakePhi } = {},
  ) => {
    n++
    const intakeId = unsafeId<IntakeId>(`in-${n}`)
    await world.submitIntake({
      programId,
      linkId,
      intakeId,
      patientId: unsafeId<PatientId>(`pat-${n}`),
      phi: options.person ?? phi,
      communication,
      ...(options.referralId === undefined ? {} : { referralId: options.referralId }),
    })
    return intakeId
  }
  return { store, clock, cipher, world, scheduler, submit, ids }
}

describe('intake reminders', () => {
  it('due: none before the delay, then 1, then 2, never more than maxCount, none before submission', async () => {
    const s = await setup()
    const id = await s.submit(allChannels)
    const state = (await s.world.loadIntake(id)).state
    const at = (hours: number) => new Date(Date.parse(T0) + hours * HOUR_MS).toISOString() as Instant
    expect(dueIntakeReminderSequence(state, policy, at(47))).toBeNull()
    expect(dueIntakeReminderSequence(state, policy, at(48))).toBe(1)
    expect(dueIntakeReminderSequence(state, policy, at(119))).toBe(1)
    expect(dueIntakeReminderSequence(state, policy, at(120))).toBe(2)
    expect(dueIntakeReminderSequence(state, policy, at(10_000))).toBe(2)
    expect(dueIntakeReminderSequence(state, { ...policy, maxCount: 0 }, at(100))).toBeNull()
  })

  it('the message carries only clinic name, location, service category and the scheduling link', async () => {
    const s = await setup()
    await s.submit(allChannels)
    s.clock.advance(48 * HOUR_MS)
    const [reminder] = await s.scheduler.due()
    expect(reminder?.facts).toEqual({
      clinicName: 'North Dermatology',
      location: 'North Clinic, 1 Main St',
      serviceCategory: 'dermatology',
      schedulingUrl: 'https://clinic.example/r/SPRG000001',
    })
    const message = intakeReminderMessage(reminder?.facts ?? (undefined as never))
    expect(message).toEqual({
      subject: 'Book your dermatology appointment with North Dermatology',
      text: [
        'North Dermatology (North Clinic, 1 Main St) has not yet heard from you to book your dermatology appointment.',
        'You can choose a time here: https://clinic.example/r/SPRG000001',
        'If you have already booked, please ignore this message.',
      ].join('\n'),
    })
    expect(JSON.stringify({ message, facts: reminder?.facts, id: reminder?.id })).not.toMatch(CANARY)
  })

  it('uses only the channels consented to (email and SMS are automated; phone and mail never)', async () => {
    const s = await setup()
    const emailOnly = await s.submit({ email: true, sms: false, phone: true, mail: true })
    const smsOnly = await s.submit({ email: false, sms: true, phone: false, mail: false })
    await s.submit({ email: false, sms: false, phone: true, mail: true })
    s.clock.advance(48 * HOUR_MS)
    const due = await s.scheduler.due()
    expect(due.map((r) => [r.intakeId, r.targets])).toEqual([
      [emailOnly, [{ channel: 'email', address: 'canary@example.org' }]],
      [smsOnly, [{ channel: 'sms', address: '+15550100' }]],
    ])
  })

  it('a caregiver who filled the form in is contacted at their own address', async () => {
    const s = await setup()
    const id = unsafeId<IntakeId>('in-cg')
    await s.world.submitIntake({
      programId,
      linkId,
      intakeId: id,
      patientId: unsafeId<PatientId>('pat-cg'),
      phi: {
        ...phi,
        caregiver: { givenName: 'Carername', familyName: 'Phisurname', email: 'carer@example.org' },
      },
      communication: { email: true, sms: false, phone: false, mail: false },
      submittedBy: { kind: 'caregiver', relationship: 'parent' },
    })
    s.clock.advance(48 * HOUR_MS)
    const due = await s.scheduler.due()
    expect(due.find((r) => r.intakeId === id)?.targets).toEqual([
      { channel: 'email', address: 'carer@example.org' },
    ])
  })

  it('never after booking or completion (the conversion process records them) or forgetting the patient; a referred but unbooked patient is reminded', async () => {
    const s = await setup()
    const ref1 = unsafeId<ReferralId>('ref-1')
    const referred = await s.submit(allChannels, { referralId: unsafeId<ReferralId>('ref-0') })
    const booked = await s.submit(allChannels, { referralId: ref1 })
    const forgotten = await s.submit(allChannels)
    const ref2 = unsafeId<ReferralId>('ref-2')
    const completed = await s.submit(allChannels, { referralId: ref2 })
    s.clock.advance(48 * HOUR_MS)
    expect((await s.scheduler.due()).map((r) => r.intakeId)).toEqual([referred, booked, forgotten, completed])
    // `booked` gets an appointment, `completed` one and its completion; the conversion process records them.
    const referralEvent = async (referralId: ReferralId, types: readonly string[]) => {
      const appended = await s.store.append({
        streamId: referralStreamId(referralId),
        expected: expected.noStream,
        events: types.map((type, i) => ({
          id: unsafeId<EventId>(`${referralId}-${i}`),
          type,
          schemaVersion: 1,
          data: { at: '2026-03-09T10:00:00.000Z' },
          metadata: {
            actor: { kind: 'system', component: 'test' },
            correlationId: unsafeId<CorrelationId>('c'),
            commandId: unsafeId<CommandId>('c'),
            occurredAt: T0,
          },
        })),
      })()
      if (E.isLeft(appended)) throw new Error(appended.left.message)
    }
    await referralEvent(ref1, ['AppointmentScheduled'])
    await referralEvent(ref2, ['AppointmentScheduled', 'ReferralCompleted'])
    const conversions = createIntakeConversions({
      store: s.store,
      ids: s.ids,
      clock: s.clock,
      cipher: s.cipher,
    })
    const all = await s.store.readAll({ streamPrefixes: ['referral-'] })()
    if (E.isLeft(all)) throw new Error(all.left.message)
    for (const e of all.right) await conversions.handle(e)
    expect((await s.world.loadIntake(booked)).state).toMatchObject({ stage: 'scheduled' })
    expect((await s.world.loadIntake(completed)).state).toMatchObject({ stage: 'completed' })
    await s.cipher.forgetPatient(unsafeId<PatientId>('pat-3'))
    s.clock.advance(72 * HOUR_MS) // the second reminder is due
    expect((await s.scheduler.due()).map((r) => r.id)).toEqual([`intake-reminder:${referred}:2`])
  })

  it('ids are per intake and sequence: yielded once per scheduler, the same ids from another one', async () => {
    const s = await setup()
    const id = await s.submit(allChannels)
    s.clock.advance(48 * HOUR_MS)
    expect((await s.scheduler.due()).map((r) => r.id)).toEqual([`intake-reminder:${id}:1`])
    expect(await s.scheduler.due()).toEqual([])
    const other = createIntakeReminderScheduler({
      store: s.store,
      clock: s.clock,
      cipher: s.cipher,
      policy,
      practiceName: () => null,
      schedulingUrl: () => 'https://clinic.example/book',
    })
    expect((await other.due()).map((r) => r.id)).toEqual([`intake-reminder:${id}:1`])
    s.clock.advance(1000 * HOUR_MS)
    expect((await s.scheduler.due()).map((r) => r.id)).toEqual([`intake-reminder:${id}:2`])
    expect(await s.scheduler.due()).toEqual([])
  })
})
