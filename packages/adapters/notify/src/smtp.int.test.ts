import type { AddressInfo } from 'node:net'
import { SMTPServer } from 'smtp-server'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Notification } from './notification.js'
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
})
