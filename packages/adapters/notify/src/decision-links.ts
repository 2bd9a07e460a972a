import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import { type Clock, millisOf, type PracticeId, type ReferralId } from '@referrals/core'

/** What an accept/decline link in a notification stands for. */
export interface DecisionClaims {
  readonly referralId: ReferralId
  readonly practiceId: PracticeId
  readonly action: 'accept' | 'decline'
  /** The delivery the link was made for: the route must refuse it once the referral moved on. */
  readonly deliveryNo: number
  readonly expiresAtMs: number
  readonly nonce: string
}

export type LinkFailure = 'expired' | 'used' | 'tampered' | 'malformed'
export type LinkCheck =
  | { readonly ok: true; readonly claims: DecisionClaims }
  | { readonly ok: false; readonly reason: LinkFailure }

/** Remembers used links; `markUsed` is insert-if-absent and true only for the first caller. */
export interface UsedLinkStore {
  readonly markUsed: (nonce: string, expiresAtMs: number) => Promise<boolean>
}

export const inMemoryUsedLinks = (): UsedLinkStore & { readonly purgeExpired: (nowMs: number) => void } => {
  const used = new Map<string, number>()
  return {
    markUsed: async (nonce, expiresAtMs) => {
      if (used.has(nonce)) return false
      used.set(nonce, expiresAtMs)
      return true
    },
    purgeExpired: (nowMs) => {
      for (const [nonce, exp] of used) if (exp <= nowMs) used.delete(nonce)
    },
  }
}

export const DECISION_LINK_TTL_MS = 12 * 3_600_000
const VERSION = 'v1'
const ID = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/
const NONCE = /^[A-Za-z0-9_-]{22}$/
const B64URL = /^[A-Za-z0-9_-]+$/

const parseClaims = (json: string): DecisionClaims | null => {
  let u: unknown
  try {
    u = JSON.parse(json)
  } catch {
    return null
  }
  if (typeof u !== 'object' || u === null) return null
  const c = u as Record<string, unknown>
  const { r, p, a, d, e, n } = c
  if (
    typeof r !== 'string' ||
    !ID.test(r) ||
    typeof p !== 'string' ||
    !ID.test(p) ||
    (a !== 'accept' && a !== 'decline') ||
    typeof d !== 'number' ||
    !Number.isInteger(d) ||
    d < 1 ||
    typeof e !== 'number' ||
    !Number.isSafeInteger(e) ||
    typeof n !== 'string' ||
    !NONCE.test(n)
  )
    return null
  return {
    referralId: r as ReferralId,
    practiceId: p as PracticeId,
    action: a,
    deliveryNo: d,
    expiresAtMs: e,
    nonce: n,
  }
}

/**
 * Signed, single-use accept/decline links (SPEC §3: valid 12 h). A token is
 * `v1.<base64url JSON claims>.<base64url HMAC-SHA256(secret, "v1.<claims>")>`: opaque to the
 * reader, holding only ids, the action, the delivery number, the expiry and a random nonce (no
 * PHI). `verify` checks format, MAC (constant time), expiry, then spends the nonce in the
 * `UsedLinkStore`, so a second use — from any process sharing the store — is `used`. `check` does
 * the same without spending it (for a confirmation page: mail scanners open links too).
 */
export const createDecisionLinks = (options: {
  readonly secret: string | Uint8Array
  readonly clock: Clock
  readonly usedStore: UsedLinkStore
  readonly ttlMs?: number
  readonly nonce?: () => string
}) => {
  const secret = typeof options.secret === 'string' ? Buffer.from(options.secret, 'utf8') : options.secret
  if (secret.length < 32) throw new Error('decision link secret must be at least 32 bytes')
  const ttl = options.ttlMs ?? DECISION_LINK_TTL_MS
  const nonce = options.nonce ?? (() => randomBytes(16).toString('base64url'))
  const mac = (body: string) => createHmac('sha256', secret).update(`${VERSION}.${body}`).digest()
  const nowMs = () => millisOf(options.clock.now())

  const check = (token: string): LinkCheck => {
    if (typeof token !== 'string' || token.length > 2048) return { ok: false, reason: 'malformed' }
    const parts = token.split('.')
    const [version, body, signature] = parts
    if (
      parts.length !== 3 ||
      version !== VERSION ||
      body === undefined ||
      signature === undefined ||
      !B64URL.test(body) ||
      !B64URL.test(signature)
    )
      return { ok: false, reason: 'malformed' }
    const given = Buffer.from(signature, 'base64url')
    const expected = mac(body)
    if (given.length !== expected.length || !timingSafeEqual(given, expected))
      return { ok: false, reason: 'tampered' }
    const claims = parseClaims(Buffer.from(body, 'base64url').toString('utf8'))
    if (claims === null) return { ok: false, reason: 'malformed' }
    if (nowMs() >= claims.expiresAtMs) return { ok: false, reason: 'expired' }
    return { ok: true, claims }
  }

  return {
    sign: (claims: {
      readonly referralId: ReferralId
      readonly practiceId: PracticeId
      readonly action: 'accept' | 'decline'
      readonly deliveryNo: number
    }): string => {
      const n = nonce()
      if (!NONCE.test(n)) throw new Error('decision link nonce must be 16 random bytes in base64url')
      const body = Buffer.from(
        JSON.stringify({
          r: claims.referralId,
          p: claims.practiceId,
          a: claims.action,
          d: claims.deliveryNo,
          e: nowMs() + ttl,
          n,
        }),
        'utf8',
      ).toString('base64url')
      return `${VERSION}.${body}.${mac(body).toString('base64url')}`
    },
    check,
    verify: async (token: string): Promise<LinkCheck> => {
      const checked = check(token)
      if (!checked.ok) return checked
      const first = await options.usedStore.markUsed(checked.claims.nonce, checked.claims.expiresAtMs)
      return first ? checked : { ok: false, reason: 'used' }
    },
  }
}

export type DecisionLinks = ReturnType<typeof createDecisionLinks>

export type LinkOutcome = 'accepted' | 'declined' | 'stale' | LinkFailure

const PAGES: Readonly<
  Record<LinkOutcome, { readonly status: number; readonly title: string; readonly message: string }>
> = {
  accepted: { status: 200, title: 'Referral accepted', message: 'Thank you. The referral is now accepted.' },
  declined: {
    status: 200,
    title: 'Referral declined',
    message: 'Thank you. The referral was declined and will be handled from here.',
  },
  stale: {
    status: 409,
    title: 'Nothing to do',
    message:
      'This referral is no longer waiting for your answer. Open the referral list to see where it stands.',
  },
  expired: {
    status: 410,
    title: 'Link expired',
    message: 'This link has expired. Links are valid for 12 hours; please answer from the referral list.',
  },
  used: {
    status: 410,
    title: 'Link already used',
    message:
      'This link has already been used. Each link works once; open the referral list to see where it stands.',
  },
  tampered: {
    status: 400,
    title: 'Link not valid',
    message: 'This link is not valid. Please use the link from the notification as it was sent.',
  },
  malformed: {
    status: 400,
    title: 'Link not valid',
    message: 'This link is incomplete or damaged. Please use the link from the notification as it was sent.',
  },
}

/** The HTTP status to send a link result page with. */
export const linkResultStatus = (outcome: LinkOutcome): number => PAGES[outcome].status

/**
 * The small page a decision link lands on (`text/html`): a fixed message per outcome, no error
 * detail and no referral or patient data.
 */
export const renderLinkResultPage = (outcome: LinkOutcome): string => {
  const page = PAGES[outcome]
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex"><title>${page.title}</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 36rem; margin: 4rem auto; padding: 0 1rem">
<h1>${page.title}</h1>
<p>${page.message}</p>
</body></html>
`
}
