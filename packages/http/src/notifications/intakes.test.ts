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

  it('a consented SMS target gets nothing while the service runs no patient SMS channel, one entry when it does', () => {
    const entries = intakeReminderEntries(
      reminder([{ channel: 'sms', address: '+15550100' }]),
      new Set(['email']),
    )
    expect(entries).toEqual([])
    const sms = intakeReminderEntries(
      reminder([{ channel: 'sms', address: '+15550100' }]),
      new Set(['email', 'sms']),
    )
    expect(sms.map((e) => [e.channel, e.address])).toEqual([['sms', { phone: '+15550100' }]])
  })
})
