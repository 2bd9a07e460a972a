import nodemailer from 'nodemailer'
import type { Channel, DeliveryResult } from './notification.js'
import { EVENT_ID_HEADER } from './webhook.js'

export interface SmtpOptions {
  readonly host: string
  readonly port: number
  /** Implicit TLS (port 465). STARTTLS is used when the server offers it unless `ignoreTLS`. */
  readonly secure?: boolean
  readonly requireTLS?: boolean
  readonly ignoreTLS?: boolean
  readonly auth?: { readonly user: string; readonly pass: string }
  readonly from: string
  readonly connectionTimeoutMs?: number
}

export interface EmailAddress {
  readonly email: string
}

/** Email over SMTP through nodemailer; plain text only, with the event id as a header for deduplication. */
export const smtpChannel = (options: SmtpOptions): Channel<EmailAddress> & { readonly close: () => void } => {
  const transport = nodemailer.createTransport({
    host: options.host,
    port: options.port,
    secure: options.secure ?? false,
    requireTLS: options.requireTLS ?? false,
    ignoreTLS: options.ignoreTLS ?? false,
    ...(options.auth ? { auth: { user: options.auth.user, pass: options.auth.pass } } : {}),
    connectionTimeout: options.connectionTimeoutMs ?? 10_000,
    logger: false,
  })
  return {
    name: 'email',
    close: () => transport.close(),
    deliver: async (notification, address): Promise<DeliveryResult> => {
      try {
        await transport.sendMail({
          from: options.from,
          to: address.email,
          subject: notification.subject,
          text: notification.text,
          headers: { [EVENT_ID_HEADER]: notification.eventId, 'x-referrals-delivery-id': notification.id },
        })
        return { ok: true }
      } catch (error) {
        const code = (error as { responseCode?: number }).responseCode
        // Permanent SMTP failures (5xx) are not retried; everything else (4xx, network) is.
        const retryable = code === undefined || code < 500
        return { ok: false, retryable, reason: code === undefined ? 'connection failed' : `SMTP ${code}` }
      }
    },
  }
}
