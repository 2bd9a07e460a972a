import { createHash, randomInt } from 'node:crypto'
import smpp, { type Pdu, type Session } from 'smpp'
import type { Channel, DeliveryResult, Notification } from './notification.js'
import { E164, type NotificationPreferences, quietHoursRelease } from './preferences.js'
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
  | { readonly send: true; readonly phone: string; readonly atMs: number }
  | { readonly send: false; readonly reason: 'no_consent' | 'no_phone' | 'invalid_phone' }

/**
 * A stored phone number as E.164, or null: separators (spaces, `-`, `.`, `(`, `)`) are dropped;
 * the number must then start with `+` and a country code (no national numbers are guessed).
 */
export const toE164 = (phone: string): string | null => {
  const compact = phone.replace(/[\s\-.()]/g, '')
  return E164.test(compact) ? compact : null
}

/**
 * Whether and when a patient SMS may go out (pure; `nowMs` comes from the injected clock):
 * never without SMS consent or without a valid E.164 number; at `nowMs` outside quiet hours,
 * else at the end of the quiet period (local time of `quietHours.timeZone`, DST-aware; the
 * start minute is quiet, the end minute is not).
 */
export const patientSmsDecision = (options: {
  readonly consent: boolean
  readonly phone: string | undefined
  readonly quietHours: NotificationPreferences['quietHours'] | undefined
  readonly nowMs: number
}): PatientSmsDecision => {
  if (!options.consent) return { send: false, reason: 'no_consent' }
  if (options.phone === undefined) return { send: false, reason: 'no_phone' }
  const phone = toE164(options.phone)
  if (phone === null) return { send: false, reason: 'invalid_phone' }
  return { send: true, phone, atMs: quietHoursRelease(options.quietHours, options.nowMs) }
}

const retryableHttp = (status: number) => status >= 500 || status === 408 || status === 429

export type HttpSmsAuth =
  | { readonly kind: 'bearer'; readonly token: string }
  | { readonly kind: 'basic'; readonly user: string; readonly pass: string }
  | { readonly kind: 'header'; readonly name: string; readonly value: string }

export interface HttpSmsOptions {
  /** The gateway's send endpoint, `https://…` (http only for local tests). */
  readonly url: string
  /** The sender id or number the gateway sends from. */
  readonly from: string
  readonly auth?: HttpSmsAuth
  /** Per request; a timeout is retried. Default 10 s. */
  readonly timeoutMs?: number
}

/** The gateway's reference for a notification: opaque and stable (a retry sends the same one). */
export const gatewayReference = (notificationId: string): string =>
  createHash('sha256').update(notificationId, 'utf8').digest('hex').slice(0, 32)

/**
 * SMS through an HTTP gateway (providers' REST APIs): `POST <url>` with JSON
 * `{ to, from, text, encoding, parts, reference }` and the configured authentication (bearer
 * token, basic, or a named header such as `x-api-key`). The gateway does the splitting;
 * `encoding`/`parts` say how the text counts (see sms-encoding.ts). 2xx → delivered; 5xx, 408,
 * 429, a timeout or a connection failure → retried; other statuses (4xx) → dead letter. Errors
 * name the status only. Throws at construction for a URL that is not http(s).
 */
export const httpSmsChannel = (options: HttpSmsOptions): Channel<SmsAddress> => {
  let url: URL
  try {
    url = new URL(options.url)
  } catch {
    throw new Error('httpSmsChannel: url must be an absolute http(s) URL')
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:')
    throw new Error('httpSmsChannel: url must be an absolute http(s) URL')
  const headers: Record<string, string> = { 'content-type': 'application/json' }
  const auth = options.auth
  if (auth?.kind === 'bearer') headers.authorization = `Bearer ${auth.token}`
  if (auth?.kind === 'basic')
    headers.authorization = `Basic ${Buffer.from(`${auth.user}:${auth.pass}`, 'utf8').toString('base64')}`
  if (auth?.kind === 'header') headers[auth.name.toLowerCase()] = auth.value
  return {
    name: 'sms',
    deliver: async (notification, address): Promise<DeliveryResult> => {
      const { encoding, parts } = splitSms(notification.text)
      try {
        const response = await fetch(url, {
          method: 'POST',
          headers,
          body: JSON.stringify({
            to: address.phone,
            from: options.from,
            text: notification.text,
            encoding,
            parts: parts.length,
            reference: gatewayReference(notification.id),
          }),
          signal: AbortSignal.timeout(options.timeoutMs ?? 10_000),
          redirect: 'error',
        })
        await response.arrayBuffer().catch(() => undefined)
        if (response.ok) return { ok: true }
        return { ok: false, retryable: retryableHttp(response.status), reason: `HTTP ${response.status}` }
      } catch (error) {
        const name = error instanceof Error ? error.name : 'Error'
        return {
          ok: false,
          retryable: true,
          reason: name === 'TimeoutError' ? 'timeout' : 'connection failed',
        }
      }
    },
  }
}

/** submit_sm_resp statuses worth retrying: system error, queue full, throttled. */
const SUBMIT_RETRYABLE = new Set([0x08, 0x14, 0x58])

export interface SmppOptions {
  /** `smpp://host:port` (or `ssmpp://` for TLS). */
  readonly url: string
  readonly systemId: string
  readonly password: string
  readonly sourceAddr: string
  /**
   * How long the outbox waits for the delivery receipts of a submitted message; then it is
   * dead-lettered as unconfirmed (never resent). Default 60 s.
   */
  readonly receiptTimeoutMs?: number
  /** How long to wait for the TCP connection and the bind response. Default 10 s. */
  readonly connectTimeoutMs?: number
  /** How long to wait for a `submit_sm_resp`; past it the submit is uncertain. Default 10 s. */
  readonly submitTimeoutMs?: number
  /**
   * How long an uncertain submit (written, never answered) waits for a delivery receipt carrying
   * its `user_message_reference` before `RetryPolicy.uncertain` decides. Default `receiptTimeoutMs`.
   */
  readonly uncertainWindowMs?: number
}

/**
 * A delivery receipt from the SMSC: the message id of one submitted part and its final `stat`. A
 * receipt that carries the `user_message_reference` the channel sent is also reported once more
 * as `ref:<n>` (what an uncertain submit, whose SMSC id is unknown, is matched by).
 */
export interface SmppReceipt {
  readonly messageId: string
  readonly stat: string
}

/** The outbox key of a part by its client reference (SMPP 3.4 §5.3.2.17 `user_message_reference`). */
export const referenceKey = (userMessageReference: number): string => `ref:${userMessageReference}`

/** Bind failures by command_status (SMPP 3.4 §5.1.3): a configuration error, so retried until fixed. */
const BIND_STATUS: Readonly<Record<number, string>> = {
  13: 'bind failed',
  14: 'invalid password',
  15: 'invalid system_id',
}
const hex = (status: number) => `0x${status.toString(16).padStart(2, '0')}`

/** `id:<id> sub:… dlvrd:… submit date:… done date:… stat:<STAT> err:…` (SMPP 3.4 appendix B). */
export const parseDeliveryReceipt = (text: string): { readonly id: string; readonly stat: string } | null => {
  const id = /(?:^|\s)id:(\S+)/i.exec(text)?.[1]
  const stat = /(?:^|\s)stat:(\S+)/i.exec(text)?.[1]
  return id === undefined || stat === undefined ? null : { id, stat: stat.toUpperCase() }
}

/**
 * SMS over SMPP 3.4 (`smpp`): one bound transceiver session (bind_transceiver, opened on first
 * use and again after it drops), each part a `submit_sm` with `registered_delivery` set, split
 * with a concatenation UDH (`esm_class` UDHI) when longer than one message. A delivery ends at the
 * `submit_sm_resp` of its parts: accepted → `awaitingReceipt` with the SMSC message ids (the outbox
 * records them and never submits the message again while it waits); a retryable submit status
 * (throttled, queue full, system error), a failed bind or a submit that could not be written at all
 * → retried; another submit status (invalid destination…) → dead letter. A submit that was written
 * but never answered (`submitTimeoutMs`, or the connection closed first) is **uncertain**: the SMSC
 * may have taken it, so the delivery answers `uncertain` (the outbox parks it, never resubmits it
 * during `uncertainWindowMs`, and settles it by a receipt that echoes the part's
 * `user_message_reference`, SMPP 3.4 §5.3.2.17 — sent with every part — or, after the window, by
 * `RetryPolicy.uncertain`). Delivery
 * receipts (`deliver_sm` with `esm_class` 0x04; intermediate ENROUTE ignored) go to the `onReceipt`
 * listeners — the service hands them to `OutboxStore.recordReceipt`, and `deliverDue` maps them
 * (`afterReceipts`). Failure reasons name the SMPP status, never the number or the text.
 */
export const smppChannel = (
  options: SmppOptions,
): Channel<SmsAddress> & {
  readonly close: () => Promise<void>
  /** Adds a listener for delivery receipts; answers a function that removes it. */
  readonly onReceipt: (listener: (receipt: SmppReceipt) => void) => () => void
} => {
  let session: Promise<Session> | null = null
  const listeners = new Set<(receipt: SmppReceipt) => void>()
  let reference = 0
  // user_message_reference (16 bits) per submitted part; a random start so that restarted
  // processes do not reuse the same small numbers first.
  let userReference = randomInt(0, 0x10000)

  const onReceipt = (pdu: Pdu) => {
    // The receipt text is in short_message, or in the message_payload TLV (decoded by `smpp`).
    const textOf = (v: unknown) =>
      typeof (v as { message?: unknown } | undefined)?.message === 'string'
        ? (v as { message: string }).message
        : ''
    const text = textOf(pdu.short_message) || textOf(pdu.message_payload)
    const parsed = parseDeliveryReceipt(text)
    const tlvId = typeof pdu.receipted_message_id === 'string' ? pdu.receipted_message_id : undefined
    const id = tlvId ?? parsed?.id
    if (id === undefined || parsed === null || parsed.stat === 'ENROUTE') return
    const ref = pdu.user_message_reference
    for (const listener of listeners) {
      listener({ messageId: id, stat: parsed.stat })
      if (typeof ref === 'number') listener({ messageId: referenceKey(ref), stat: parsed.stat })
    }
  }

  const open = (onClose: () => void): Promise<Session> =>
    new Promise((resolve, reject) => {
      const s = smpp.connect({ url: options.url })
      let settled = false
      const fail = (message: string) => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        s.destroy()
        reject(new Error(message))
      }
      const timer = setTimeout(() => fail('connect timeout'), options.connectTimeoutMs ?? 10_000)
      s.on('error', () => fail('connection failed'))
      s.on('close', () => {
        fail('connection closed')
        onClose()
      })
      s.on('deliver_sm', (pdu: Pdu) => {
        s.send(pdu.response())
        if ((Number(pdu.esm_class) & 0x3c) === 0x04) onReceipt(pdu)
      })
      s.on('enquire_link', (pdu: Pdu) => {
        s.send(pdu.response())
      })
      s.on('unbind', (pdu: Pdu) => {
        s.send(pdu.response())
        s.close()
      })
      s.on(options.url.startsWith('ssmpp:') ? 'secureConnect' : 'connect', () => {
        s.bind_transceiver({ system_id: options.systemId, password: options.password }, (pdu) => {
          if (pdu.command_status === 0) {
            if (settled) return
            settled = true
            clearTimeout(timer)
            resolve(s)
          } else {
            const status = pdu.command_status
            fail(`bind failed: ${BIND_STATUS[status] ?? 'refused'} (${hex(status)})`)
          }
        })
      })
    })
  // Sessions dropped after a submit went unanswered: never reused, even before their close event.
  const dropped = new WeakSet<Session>()
  const connected = async (): Promise<Session> => {
    const current = await session?.catch(() => null)
    if (current && dropped.has(current)) session = null
    if (session === null) {
      const opening: Promise<Session> = open(() => {
        if (session === opening) session = null
      })
      session = opening
      opening.catch(() => {
        if (session === opening) session = null
      })
    }
    return session
  }

  /**
   * One submit_sm and its response. `unsent`: never written (the socket was not writable) — safe
   * to retry; `unanswered`: written, then the timeout or the connection closed first — the SMSC may
   * have taken it.
   */
  const submit = (
    s: Session,
    fields: Record<string, unknown>,
  ): Promise<Pdu | { readonly failed: 'unsent' | 'unanswered'; readonly reason: string }> =>
    new Promise((resolve) => {
      let timer: ReturnType<typeof setTimeout> | undefined
      const done = (value: Pdu | { readonly failed: 'unsent' | 'unanswered'; readonly reason: string }) => {
        clearTimeout(timer)
        s.off('close', onClose)
        resolve(value)
      }
      const onClose = () => done({ failed: 'unanswered', reason: 'connection closed before submit_sm_resp' })
      const sent = s.submit_sm(fields, (pdu) => done(pdu))
      if (!sent) return done({ failed: 'unsent', reason: 'connection lost' })
      s.on('close', onClose)
      timer = setTimeout(() => {
        done({ failed: 'unanswered', reason: 'submit_sm_resp timeout' })
        // A session that stopped answering is dropped; the next delivery binds again.
        dropped.add(s)
        s.destroy()
      }, options.submitTimeoutMs ?? 10_000)
    })

  return {
    name: 'sms',
    onReceipt: (listener) => {
      listeners.add(listener)
      return () => listeners.delete(listener)
    },
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
      for (const [index, part] of sms.parts.entries()) {
        userReference = (userReference + 1) & 0xffff
        const resp = await submit(s, {
          source_addr: options.sourceAddr,
          destination_addr: address.phone.replace(/^\+/, ''),
          dest_addr_ton: 1,
          dest_addr_npi: 1,
          registered_delivery: 1,
          data_coding: sms.dataCoding,
          esm_class: sms.udh ? 0x40 : 0x00,
          short_message: part,
          user_message_reference: userReference,
        })
        if ('failed' in resp) {
          // Nothing of this message reached the SMSC: an ordinary retry.
          if (resp.failed === 'unsent' && ids.length === 0)
            return { ok: false, retryable: true, reason: `SMPP ${resp.reason}` }
          // Some of it may have: never resubmitted blindly (see `RetryPolicy.uncertain`).
          const unsent = sms.parts.slice(index + 1).map((_, k) => `unsent:${index + 1 + k}`)
          return {
            ok: false,
            uncertain: {
              messageIds: [
                ...ids,
                resp.failed === 'unanswered' ? referenceKey(userReference) : `unsent:${index}`,
                ...unsent,
              ],
              windowMs: options.uncertainWindowMs ?? options.receiptTimeoutMs ?? 60_000,
            },
            reason: `SMPP ${resp.reason}`,
          }
        }
        if (resp.command_status !== 0)
          return {
            ok: false,
            retryable: SUBMIT_RETRYABLE.has(resp.command_status),
            reason: `SMPP submit_sm status ${hex(resp.command_status)}`,
          }
        ids.push(String(resp.message_id))
      }
      return {
        ok: true,
        awaitingReceipt: { messageIds: ids, timeoutMs: options.receiptTimeoutMs ?? 60_000 },
      }
    },
  }
}
