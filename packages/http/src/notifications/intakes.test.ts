import type { IntakeId, IntakeReminder, PatientId, PracticeId, ProgramId } from '@referrals/core'
import { describe, expect, it } from 'vitest'
import { intakeReminderEntries } from './intakes.js'

const reminder = (targets: IntakeReminder['targets']): IntakeReminder => ({
  id: 'intake-reminder:in-1:1',
  intakeId: 'in-1' as IntakeId,
  programId: 'prog-1' as ProgramId,
  practiceId: 'clinic-1' as PracticeId,
  patientId: 'pat-1' as PatientId,
  sequence: 1,
  facts: {
    clinicName: 'North Dermatology',
    location: null,
    serviceCategory: null,
    schedulingUrl: 'https://clinic.example/book',
  },
  targets,
})

describe('intake reminder outbox entries', () => {
  it('one entry per consented target whose channel the service runs; the payload holds ids only', () => {
    const entries = intakeReminderEntries(
      reminder([
        { channel: 'email', address: 'canary@example.org' },
        { channel: 'sms', address: '+15550100' },
      ]),
      new Set(['email']),
    )
    expect(entries.map((e) => [e.notification.id, e.channel, e.address])).toEqual([
      ['intake-reminder:in-1:1:email:patient-pat-1', 'email', { email: 'canary@example.org' }],
    ])
    expect(entries[0]?.notification).toMatchObject({
      audience: 'patient',
      kind: 'patient.intake_reminder',
      subject: 'Book your appointment with North Dermatology',
      payload: { intakeId: 'in-1', programId: 'prog-1', sequence: 1 },
    })
    expect(JSON.stringify(entries[0]?.notification)).not.toContain('canary@example.org')
  })

  it('a consented SMS target gets nothing while the service texts no patients, one entry when it does', () => {
    const target = reminder([{ channel: 'sms', address: '+1 (514) 555-0100' }])
    const sms = { settings: { quietHours: undefined }, nowMs: Date.parse('2026-03-02T15:00:00Z') }
    expect(intakeReminderEntries(target, new Set(['email']), sms)).toEqual([])
    expect(intakeReminderEntries(target, new Set(['email', 'sms']))).toEqual([])
    const entries = intakeReminderEntries(target, new Set(['email', 'sms']), sms)
    expect(entries.map((e) => [e.notification.id, e.channel, e.address, e.notBeforeMs])).toEqual([
      ['intake-reminder:in-1:1:sms:patient-pat-1', 'sms', { phone: '+15145550100' }, sms.nowMs],
    ])
    expect(entries[0]?.notification.subject).toBe('')
    expect(entries[0]?.notification.text).toBe(
      [
        'North Dermatology has not yet heard from you to book your appointment.',
        'You can choose a time here: https://clinic.example/book',
        'If you have already booked, please ignore this message.',
      ].join('\n'),
    )
  })

  it('holds an SMS until the quiet hours end, and drops a number that is not E.164', () => {
    // 03:00 in Toronto; quiet until 08:00 local = 13:00Z.
    const nowMs = Date.parse('2026-03-02T08:00:00Z')
    const settings = { quietHours: { start: '21:00', end: '08:00', timeZone: 'America/Toronto' } }
    const held = intakeReminderEntries(
      reminder([{ channel: 'sms', address: '+15145550100' }]),
      new Set(['sms']),
      { settings, nowMs },
    )
    expect(held.map((e) => e.notBeforeMs)).toEqual([Date.parse('2026-03-02T13:00:00Z')])
    const national = intakeReminderEntries(
      reminder([{ channel: 'sms', address: '514 555 0100' }]),
      new Set(['sms']),
      {
        settings,
        nowMs,
      },
    )
    expect(national).toEqual([])
  })
})
