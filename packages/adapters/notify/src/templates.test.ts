import { describe, expect, it } from 'vitest'
import {
  type PatientNotificationKind,
  type PracticeNotificationKind,
  renderPatientMessage,
  renderPracticeMessage,
} from './templates.js'

const practiceKinds: readonly PracticeNotificationKind[] = [
  'sender.receipt',
  'sender.accepted',
  'sender.declined',
  'sender.rerouted',
  'sender.scheduled',
  'sender.completed',
  'recipient.new_referral',
  'recipient.reminder',
  'recipient.expired',
]
const patientKinds: readonly PatientNotificationKind[] = [
  'patient.confirmation',
  'patient.pending_reminder',
  'patient.unavailable',
]

describe('notification templates', () => {
  it('names the preferred provider on a new direct referral', () => {
    const m = renderPracticeMessage('recipient.new_referral', {
      referralRef: 'R-42',
      senderPractice: 'Harbour Family Clinic',
      recipientPractice: 'Dr. Okafor Orthopedics',
      specialty: 'Orthopedics',
      urgency: 'urgent',
      preferredProvider: true,
      respondBy: '2026-11-24 09:00 UTC',
    })
    expect(m.subject).toBe('New referral for you (preferred provider) R-42')
    expect(m.text).toContain('naming you as the preferred provider')
    expect(m.text).toContain('Please accept or decline by 2026-11-24 09:00 UTC.')
  })

  it('renders every practice kind with the referral reference', () => {
    for (const kind of practiceKinds) {
      const m = renderPracticeMessage(kind, {
        referralRef: 'R-7',
        senderPractice: 'A',
        recipientPractice: 'B',
        specialty: 'Cardiology',
        urgency: 'routine',
        preferredProvider: false,
      })
      expect(m.subject).toContain('R-7')
    }
  })

  it('keeps clinical detail out of patient messages even when the caller passes it', () => {
    const leaky = {
      senderPractice: 'Harbour Family Clinic',
      recipientPractice: 'Dr. Okafor Orthopedics',
      specialty: 'CANARY-SPECIALTY',
      reason: 'CANARY-REASON',
      urgency: 'CANARY-URGENCY',
    }
    for (const kind of patientKinds) {
      const m = renderPatientMessage(kind, leaky)
      const all = `${m.subject}\n${m.text}`
      expect(all).not.toContain('CANARY')
      expect(all).toContain('Harbour Family Clinic')
    }
  })

  it('says why a referral came back to its sender', () => {
    const base = {
      referralRef: 'R-9',
      senderPractice: 'A',
      recipientPractice: null,
      specialty: 'Cardiology',
      urgency: 'routine',
      preferredProvider: false,
    }
    expect(renderPracticeMessage('sender.declined', base).text).toBe(
      'Referral R-9 was declined and returned to you. You can redirect it.',
    )
    expect(renderPracticeMessage('sender.declined', { ...base, returnReason: 'expired' }).text).toBe(
      'Referral R-9 was not answered in time and returned to you. You can redirect it.',
    )
    expect(renderPracticeMessage('sender.declined', { ...base, returnReason: 'pool_exhausted' }).text).toBe(
      'Referral R-9 was declined by every eligible specialist and returned to you. You can redirect it.',
    )
  })
})
