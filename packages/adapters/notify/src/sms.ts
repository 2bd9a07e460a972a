import smpp, { type Pdu, type Session } from 'smpp'
import type { Channel, DeliveryResult, Notification } from './notification.js'
import { type NotificationPreferences, quietHoursRelease } from './preferences.js'
import { encodeSms, splitSms } from './sms-encoding.js'

/** An SMS recipient: a phone number in E.164. */
export interface SmsAddress {
  readonly phone: string
}

const PRACTICE_SMS: Readonly<Record<string, string>> = {
  'recipient.new_referral': 'New referral',
  'recipient.reminder': 'Reminder: a referral is waiting for your answer',
  'recipient.expired': 'A referral expired without an answer',
  'sender.receipt': 'Your referral was delivered',
  'sender.rerouted': 'Your referral was re-routed',
  'sender.accepted': 'Your referral was accepted',
  'sender.declined': 'Your referral was declined',
  'sender.scheduled': 'An appointment was scheduled for your referral',
  'sender.completed': 'Your referral was completed',
}
const PATIENT_SMS: Readonly<Record<string, string>> = {
  'patient.confirmation': 'Your referral was sent. The specialist office will contact you.',
  'patient.pending_reminder':
    'Your referral is still being arranged. The specialist office will contact you.',
  'patient.unavailable': 'Your referral could not be placed yet. Your doctor’s office will contact you.',
}

/**
 * The SMS text of a notification: fixed wording per kind plus, for practices, the referral number
 * — no clinical detail (no category, urgency, reason), no names, no links (a decision link alone
 * would split the message into several parts; practices answer from the list or the email).
 * Patient texts carry not even the referral number.
 */
export const smsText = (n: Notification): string => {
  if (n.audience === 'patient') return PATIENT_SMS[n.kind] ?? 'You have a message about your referral.'
  const ref = typeof n.payload.referralId === 'string' ? n.payload.referralId : ''
  return `${PRACTICE_SMS[n.kind] ?? 'Referral update'}: #${ref}. Open the referral list for details.`
}

/** The notification as it is queued for SMS: its text replaced by `smsText`, links dropped. */
export const smsNotification = (n: Notification): Notification => {
  const { links: _links, ...rest } = n
  return { ...rest, subject: '', text: smsText(n) }
}

export type PatientSmsDecision =
  | { readonly send: true; readonly atMs: number }
  | { readonly send: false; readonly reason: 'no_consent' }

/**
 * Whether and when a patient SMS may go out (pure): never without SMS consent; at `nowMs` outside
 * quiet hours, else at the end of the quiet period.
 */
export const patientSmsDecision = (options: {
  readonly consent: boolean
  readonly quietHours: NotificationPreferences['quietHours'] | undefined
  readonly nowMs: number
}): PatientSmsDecision =>
  options.consent
    ? { send: true, atMs: quietHoursRelease(options.quietHours, options.nowMs) }
    : { send: false, reason: 'no_consent' }

const retryableHttp = (status: number) => status >= 500 || status === 408 || status === 429

/**
 * SMS through an HTTP gateway (providers' REST APIs): `POST <url>` with JSON
 * `{ to, from, text, encoding, parts, reference }` and the configured authentication. The
 * gateway does the splitting; `encoding`/`parts` say how the text counts (see sms-encoding.ts).
 */
export const httpSmsChannel = (options: {
  readonly url: string
  readonly from: string
  readonly auth?:
    | { readonly kind: 'header'; readonly name: string; readonly value: string }
    | { readonly kind: 'basic'; readonly user: string; readonly pass: string }
  readonly timeoutMs?: number
}): Channel<SmsAddress> => ({
  name: 'sms',
  deliver: async (notification, address): Promise<DeliveryResult> => {
    const { encoding, parts } = splitSms(notification.text)
    const auth = options.auth
    const headers: Record<string, string> = { 'content-type': 'application/json' }
    if (auth?.kind === 'header') headers[auth.name.toLowerCase()] = auth.value
    if (auth?.kind === 'basic')
      headers.authorization = `Basic ${Buffer.from(`${auth.user}:${auth.pass}`, 'utf8').toString('base64')}`
    try {
      const response = await fetch(options.url, {
        method: 'POST',
        headers,
        body: JSON.stringify({
          to: address.phone,
          from: options.from,
          text: notification.text,
          encoding,
          parts: parts.length,
          reference: notification.id,
        }),
        signal: AbortSignal.timeout(options.timeoutMs ?? 10_000),
        redirect: 'error',
      })
      await response.arrayBuffer().catch(() => undefined)
      if (response.ok) return { ok: true }
      return { ok: false, retryable: retryableHttp(response.status), reason: `HTTP ${response.status}` }
    } catch (error) {
      const name = error instanceof Error ? error.name : 'Error'
      return { ok: false, retryable: true, reason: name === 'TimeoutError' ? 'timeout' : 'connection failed' }
    }
  },
})

/** Final states of an SMPP delivery receipt (`stat:` in the receipt text). */
const RECEIPT_OK = new Set(['DELIVRD'])
const RECEIPT_PERMANENT = new Set(['UNDELIV', 'REJECTD', 'DELETED'])
/** submit_sm_resp statuses worth retrying: system error, queue full, throttled. */
const SUBMIT_RETRYABLE = new Set([0x08, 0x14, 0x58])

export interface SmppOptions {
  /** `smpp://host:port` (or `ssmpp://` for TLS). */
  readonly url: string
  readonly systemId: string
  readonly password: string
  readonly sourceAddr: string
  /** How long to wait for the delivery receipts of a message; then it is retried. Default 60 s. */
  readonly receiptTimeoutMs?: number
  readonly submitTimeoutMs?: number
}

interface Receipt {
  readonly stat: string
}

/** `id:<id> sub:… dlvrd:… submit date:… done date:… stat:<STAT> err:…` (SMPP 3.4 appendix B). */
export const parseDeliveryReceipt = (text: string): { readonly id: string; readonly stat: string } | null => {
  const id = /(?:^|\s)id:(\S+)/i.exec(text)?.[1]
  const stat = /(?:^|\s)stat:(\S+)/i.exec(text)?.[1]
  return id === undefined || stat === undefined ? null : { id, stat: stat.toUpperCase() }
}

/**
 * SMS over SMPP 3.4 (`smpp`): one bound transceiver session (bind_transceiver, opened on first
 * use and again after it drops), each part a `submit_sm` with `registered_delivery` set, split
 * with a concatenation UDH (`esm_class` UDHI) when longer than one message. A delivery waits for
 * the SMSC's delivery receipts (`deliver_sm` with `esm_class` 0x04) of all its parts: DELIVRD →
 * delivered; UNDELIV/REJECTD/DELETED → dead letter; EXPIRED, UNKNOWN, no receipt in time, a
 * retryable submit status or a dropped connection → retried (at least once: a retry may resend).
 */
export const smppChannel = (
  options: SmppOptions,
): Channel<SmsAddress> & { readonly close: () => Promise<void> } => {
  let session: Promise<Session> | null = null
  const waiting = new Map<string, (r: Receipt) => void>()
  const early = new Map<string, Receipt>()
  let reference = 0

  const onReceipt = (pdu: Pdu) => {
    const message = pdu.short_message as { message?: unknown } | undefined
    const text = typeof message?.message === 'string' ? message.message : ''
    const parsed = parseDeliveryReceipt(text)
    const tlvId = typeof pdu.receipted_message_id === 'string' ? pdu.receipted_message_id : undefined
    const id = tlvId ?? parsed?.id
    if (id === undefined || parsed === null) return
    const resolve = waiting.get(id)
    if (resolve) resolve({ stat: parsed.stat })
    else early.set(id, { stat: parsed.stat })
  }

  const open = (): Promise<Session> =>
    new Promise((resolve, reject) => {
      const s = smpp.connect({ url: options.url })
      let bound = false
      s.on('error', () => {
        if (!bound) reject(new Error('connection failed'))
      })
      s.on('close', () => {
        session = null
      })
      s.on('deliver_sm', (pdu: Pdu) => {
        s.send(pdu.response())
        if ((Number(pdu.esm_class) & 0x3c) === 0x04) onReceipt(pdu)
      })
      s.on('enquire_link', (pdu: Pdu) => {
        s.send(pdu.response())
      })
      s.on('connect', () => {
        s.bind_transceiver({ system_id: options.systemId, password: options.password }, (pdu) => {
          if (pdu.command_status === 0) {
            bound = true
            resolve(s)
          } else {
            s.destroy()
            reject(new Error('bind failed'))
          }
        })
      })
    })

  const connected = (): Promise<Session> => {
    if (session === null) {
      const opening = open()
      session = opening
      opening.catch(() => {
        if (session === opening) session = null
      })
    }
    return session
  }

  const submit = (s: Session, fields: Record<string, unknown>): Promise<Pdu> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('timeout')), options.submitTimeoutMs ?? 10_000)
      s.submit_sm(fields, (pdu) => {
        clearTimeout(timer)
        resolve(pdu)
      })
    })

  const receiptOf = (id: string, timeoutMs: number): Promise<Receipt | null> => {
    const got = early.get(id)
    if (got !== undefined) {
      early.delete(id)
      return Promise.resolve(got)
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        waiting.delete(id)
        resolve(null)
      }, timeoutMs)
      waiting.set(id, (r) => {
        clearTimeout(timer)
        waiting.delete(id)
        resolve(r)
      })
    })
  }

  return {
    name: 'sms',
    close: async () => {
      const s = await session?.catch(() => null)
      session = null
      if (s) await new Promise<void>((resolve) => s.close(() => resolve()))
    },
    deliver: async (notification, address): Promise<DeliveryResult> => {
      let s: Session
      try {
        s = await connected()
      } catch (error) {
        return { ok: false, retryable: true, reason: `SMPP ${(error as Error).message}` }
      }
      reference = (reference + 1) & 0xff
      const sms = encodeSms(notification.text, reference)
      const ids: string[] = []
      try {
        for (const part of sms.parts) {
          const resp = await submit(s, {
            source_addr: options.sourceAddr,
            destination_addr: address.phone.replace(/^\+/, ''),
            dest_addr_ton: 1,
            dest_addr_npi: 1,
            registered_delivery: 1,
            data_coding: sms.dataCoding,
            esm_class: sms.udh ? 0x40 : 0x00,
            short_message: part,
          })
          if (resp.command_status !== 0)
            return {
              ok: false,
              retryable: SUBMIT_RETRYABLE.has(resp.command_status),
              reason: `SMPP status 0x${resp.command_status.toString(16).padStart(2, '0')}`,
            }
          ids.push(String(resp.message_id))
        }
      } catch (error) {
        return { ok: false, retryable: true, reason: `SMPP ${(error as Error).message}` }
      }
      const receipts = await Promise.all(ids.map((id) => receiptOf(id, options.receiptTimeoutMs ?? 60_000)))
      const failed = receipts.find((r): r is Receipt => r !== null && !RECEIPT_OK.has(r.stat))
      if (failed !== undefined)
        return { ok: false, retryable: !RECEIPT_PERMANENT.has(failed.stat), reason: `SMS ${failed.stat}` }
      if (receipts.some((r) => r === null))
        return { ok: false, retryable: true, reason: 'no delivery receipt' }
      return { ok: true }
    },
  }
}
