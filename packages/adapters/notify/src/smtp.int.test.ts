import type { AddressInfo } from 'node:net'
import { type ReferralId, unsafeId } from '@referrals/core'
import { createWorld } from '@referrals/core/testing'
import { SMTPServer } from 'smtp-server'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Notification } from './notification.js'
import { deliverDue, inMemoryOutbox } from './outbox.js'
import { inMemoryPreferences } from './preferences.js'
import { createOutboxProjector } from './projector.js'
import { smtpChannel } from './smtp.js'

interface Mail {
  readonly from: string
  readonly to: readonly string[]
  readonly raw: string
}

describe('email delivery against a real local SMTP server', () => {
  const mails: Mail[] = []
  let server: SMTPServer
  let port: number
  let rejectNext = false

  beforeAll(async () => {
    server = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS'],
      logger: false,
      onRcptTo(_address, _session, callback) {
        if (rejectNext) {
          rejectNext = false
          const err = Object.assign(new Error('mailbox unavailable'), { responseCode: 550 })
          callback(err)
          return
        }
        callback()
      },
      onData(stream, session, callback) {
        const chunks: Buffer[] = []
        stream.on('data', (c: Buffer) => chunks.push(c))
        stream.on('end', () => {
          mails.push({
            from: session.envelope.mailFrom === false ? '' : session.envelope.mailFrom.address,
            to: session.envelope.rcptTo.map((r) => r.address),
            raw: Buffer.concat(chunks).toString('utf8'),
          })
          callback()
        })
      },
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    port = (server.server.address() as AddressInfo).port
  })
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())))

  const notification: Notification = {
    id: 'evt-9:patient:email',
    eventId: 'evt-9',
    kind: 'patient.confirmation',
    audience: 'patient',
    subject: 'Your referral was sent',
    text: 'Your referral was sent. The specialist office will contact you.',
    payload: {},
  }

  it('delivers plain text to the right recipient with the event id header', async () => {
    const channel = smtpChannel({ host: '127.0.0.1', port, ignoreTLS: true, from: 'referrals@clinic.test' })
    const result = await channel.deliver(notification, { email: 'patient@example.test' })
    channel.close()
    expect(result).toEqual({ ok: true })
    expect(mails).toHaveLength(1)
    expect(mails[0]?.from).toBe('referrals@clinic.test')
    expect(mails[0]?.to).toEqual(['patient@example.test'])
    expect(mails[0]?.raw).toMatch(/x-referrals-event-id: evt-9/i)
    expect(mails[0]?.raw).toContain('The specialist office will contact you.')
  })

  it('reports a permanent SMTP rejection as not retryable', async () => {
    rejectNext = true
    const channel = smtpChannel({ host: '127.0.0.1', port, ignoreTLS: true, from: 'referrals@clinic.test' })
    const result = await channel.deliver(notification, { email: 'nobody@example.test' })
    channel.close()
    expect(result).toMatchObject({ ok: false, retryable: false, reason: 'SMTP 550' })
  })

  it('mails committed-event notifications to the right recipients, with no PHI in patient mail', async () => {
    mails.length = 0
    const w = await createWorld()
    const a = await w.addSpecialist('spec-a', 1)
    const preferences = inMemoryPreferences()
    await preferences.put(
      { kind: 'practice', practiceId: w.ids.clinic },
      { channels: { email: 'front@clinic.test' } },
    )
    await preferences.put({ kind: 'practice', practiceId: a }, { channels: { email: 'office@spec-a.test' } })
    const outbox = inMemoryOutbox()
    const projector = createOutboxProjector({
      store: w.store,
      engine: w.engine,
      outbox,
      preferences,
      clock: w.clock,
    })
    const data = w.sendData('m-1', { kind: 'direct', practiceId: a })
    const phi = data.phi as { patient: object; reason: string }
    await w.must(
      w.engine.referrals.execute(
        unsafeId<ReferralId>('m-1'),
        {
          type: 'SendReferral',
          data: {
            ...data,
            phi: {
              ...phi,
              patient: {
                ...phi.patient,
                email: 'pat-m1@patients.test',
                consent: { email: true, sms: false, phone: false },
              },
            },
          } as typeof data,
        },
        await w.as(w.ownerOf('clinic')),
      ),
    )
    await projector.start().caughtUp()
    await projector.stop()
    const channel = smtpChannel({ host: '127.0.0.1', port, ignoreTLS: true, from: 'referrals@clinic.test' })
    const result = await deliverDue({
      outbox,
      channels: new Map([['email', channel]]),
      nowMs: Date.parse(w.clock.now()),
    })
    channel.close()
    expect(result).toEqual({ delivered: 3, retried: 0, deadLettered: 0, awaitingReceipt: 0, uncertain: 0 })
    const byRecipient = new Map(mails.map((m) => [m.to.join(','), m.raw]))
    expect([...byRecipient.keys()].sort()).toEqual([
      'front@clinic.test',
      'office@spec-a.test',
      'pat-m1@patients.test',
    ])
    expect(byRecipient.get('front@clinic.test')).toMatch(/Subject: Referral m-1 delivered/)
    expect(byRecipient.get('office@spec-a.test')).toMatch(
      /Subject: New referral for you \(preferred provider\) m-1/,
    )
    const patientMail = byRecipient.get('pat-m1@patients.test') ?? ''
    expect(patientMail).toMatch(/Subject: Your referral was sent/)
    expect(patientMail).toContain('Clinic sent your referral.')
    // No identity, reason, health number or clinical detail (specialty, category, urgency) in any mail.
    for (const raw of mails.map((m) => m.raw)) {
      expect(raw).not.toMatch(/Canary|Patient-m-1|HN-m-1|1980-01-01/)
    }
    for (const clinical of ['ortho', 'knee', 'routine']) expect(patientMail).not.toContain(clinical)
    // Once delivered, the patient's address is no longer kept in the outbox.
    const patientEntry = (await outbox.list()).find((e) => e.notification.audience === 'patient')
    expect(patientEntry?.address).toBeNull()
  })
})
