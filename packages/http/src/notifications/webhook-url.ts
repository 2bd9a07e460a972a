import { lookup } from 'node:dns/promises'
import { isIP } from 'node:net'
import type { Channel, WebhookAddress } from '@referrals/notify'

/**
 * Which webhook URLs may be registered and called. Webhook URLs come from users, and the server
 * POSTs to them, so an unchecked URL lets a user make the server call its own network (SSRF):
 * loopback, private, link-local (cloud metadata at 169.254.169.254) and other non-public
 * addresses are refused unless `allowPrivate` (local development, tests).
 */
export interface WebhookUrlPolicy {
  /** Only `https:` (production); otherwise `http:` is accepted too. */
  readonly httpsOnly: boolean
  /** Loopback, private and link-local hosts allowed (never in production by default). */
  readonly allowPrivate: boolean
}

export const describeWebhookUrlPolicy = (policy: WebhookUrlPolicy): string =>
  `${policy.httpsOnly ? 'an https' : 'an http(s)'} URL without credentials${
    policy.allowPrivate ? '' : ' to a public host (no loopback, private or link-local address)'
  }`

const ipv4Octets = (address: string): readonly number[] | null => {
  const parts = address.split('.')
  if (parts.length !== 4) return null
  const octets = parts.map((p) => (/^\d{1,3}$/.test(p) ? Number(p) : Number.NaN))
  return octets.every((o) => o >= 0 && o <= 255) ? octets : null
}

/** IPv4 ranges that are not public unicast (RFC 6890 special-purpose and multicast/reserved). */
const isNonPublicIpv4 = (address: string): boolean => {
  const o = ipv4Octets(address)
  if (o === null) return true
  const [a = 0, b = 0, c = 0] = o
  return (
    a === 0 ||
    a === 10 ||
    a === 127 ||
    (a === 100 && b >= 64 && b <= 127) ||
    (a === 169 && b === 254) ||
    (a === 172 && b >= 16 && b <= 31) ||
    (a === 192 && b === 0 && c === 0) ||
    (a === 192 && b === 0 && c === 2) ||
    (a === 192 && b === 168) ||
    (a === 198 && (b === 18 || b === 19)) ||
    (a === 198 && b === 51 && c === 100) ||
    (a === 203 && b === 0 && c === 113) ||
    a >= 224
  )
}

/** Expands an IPv6 literal to its eight 16-bit groups (embedded IPv4 tails included). */
const ipv6Groups = (address: string): readonly number[] | null => {
  let text = address.toLowerCase().split('%')[0] ?? ''
  const v4 = /(\d{1,3}(?:\.\d{1,3}){3})$/.exec(text)
  if (v4?.[1] !== undefined) {
    const o = ipv4Octets(v4[1])
    if (o === null) return null
    const [a = 0, b = 0, c = 0, d = 0] = o
    text = `${text.slice(0, -v4[1].length)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`
  }
  const halves = text.split('::')
  if (halves.length > 2) return null
  const parse = (s: string) => (s === '' ? [] : s.split(':').map((g) => Number.parseInt(g, 16)))
  const head = parse(halves[0] ?? '')
  const tail = halves.length === 2 ? parse(halves[1] ?? '') : []
  const fill = halves.length === 2 ? 8 - head.length - tail.length : 0
  const groups = [...head, ...new Array<number>(Math.max(0, fill)).fill(0), ...tail]
  return groups.length === 8 && groups.every((g) => Number.isInteger(g) && g >= 0 && g <= 0xffff)
    ? groups
    : null
}

const isNonPublicIpv6 = (address: string): boolean => {
  const g = ipv6Groups(address)
  if (g === null) return true
  const [g0 = 0, g1 = 0, g2 = 0, g3 = 0, g4 = 0, g5 = 0, g6 = 0, g7 = 0] = g
  const embeddedV4 = `${g6 >> 8}.${g6 & 0xff}.${g7 >> 8}.${g7 & 0xff}`
  const zeroPrefix = g0 === 0 && g1 === 0 && g2 === 0 && g3 === 0 && g4 === 0
  if (zeroPrefix && g5 === 0xffff) return isNonPublicIpv4(embeddedV4) // IPv4-mapped
  if (g0 === 0x64 && g1 === 0xff9b && g2 === 0 && g3 === 0 && g4 === 0 && g5 === 0)
    return isNonPublicIpv4(embeddedV4) // NAT64
  return (
    (zeroPrefix && g5 === 0 && g6 === 0 && (g7 === 0 || g7 === 1)) || // :: and ::1
    (zeroPrefix && g5 === 0) || // IPv4-compatible (deprecated)
    (g0 & 0xfe00) === 0xfc00 || // unique local
    (g0 & 0xffc0) === 0xfe80 || // link-local
    (g0 & 0xff00) === 0xff00 || // multicast
    (g0 === 0x2001 && g1 === 0x0db8) // documentation
  )
}

/** True for an IP literal that is not a public unicast address. */
export const isNonPublicAddress = (address: string): boolean => {
  const kind = isIP(address)
  if (kind === 4) return isNonPublicIpv4(address)
  if (kind === 6) return isNonPublicIpv6(address)
  return true
}

const INTERNAL_NAME = /(^|\.)(localhost|local|internal|intranet|lan|home\.arpa|localdomain)$/

export type WebhookUrlCheck = { readonly ok: true; readonly url: URL } | { readonly ok: false }

/**
 * Checks a webhook URL against the policy without any network access: scheme, no credentials,
 * and — unless private hosts are allowed — no IP literal outside public unicast, no single-label
 * host and no internal-only names (`localhost`, `*.local`, `*.internal`, …). Host names are
 * resolved at delivery time by `guardWebhookChannel`.
 */
export const checkWebhookUrl = (input: string, policy: WebhookUrlPolicy): WebhookUrlCheck => {
  if (input.length > 2048) return { ok: false }
  let url: URL
  try {
    url = new URL(input)
  } catch {
    return { ok: false }
  }
  if (url.protocol !== 'https:' && (policy.httpsOnly || url.protocol !== 'http:')) return { ok: false }
  if (url.username !== '' || url.password !== '') return { ok: false }
  if (policy.allowPrivate) return { ok: true, url }
  const host = url.hostname
    .replace(/^\[|\]$/g, '')
    .replace(/\.$/, '')
    .toLowerCase()
  if (host === '') return { ok: false }
  if (isIP(host) !== 0) return isNonPublicAddress(host) ? { ok: false } : { ok: true, url }
  if (!host.includes('.') || INTERNAL_NAME.test(host)) return { ok: false }
  return { ok: true, url }
}

export type ResolveHost = (hostname: string) => Promise<readonly string[]>

const resolveAll: ResolveHost = async (hostname) =>
  (await lookup(hostname, { all: true, verbatim: true })).map((a) => a.address)

/**
 * Wraps a channel that calls a URL from the preferences (webhook, Slack) so every delivery checks its URL again (preferences may have been
 * written before a policy change, or straight into the database) and, unless private hosts are
 * allowed, resolves the host name and refuses to call it when any address is not public. A
 * refusal is permanent (dead letter, `blocked address`). The check and the HTTP client resolve
 * separately, so a DNS answer that changes in between (rebinding) is not caught: put the service
 * behind an egress proxy or firewall that enforces the same rule where that matters.
 */
export const guardUrlChannel = <A>(
  channel: Channel<A>,
  urlOf: (address: A) => string,
  policy: WebhookUrlPolicy,
  resolve: ResolveHost = resolveAll,
): Channel<A> => ({
  name: channel.name,
  deliver: async (notification, address) => {
    const checked = checkWebhookUrl(urlOf(address), policy)
    if (!checked.ok) return { ok: false, retryable: false, reason: 'blocked address' }
    const host = checked.url.hostname.replace(/^\[|\]$/g, '')
    if (!policy.allowPrivate && isIP(host) === 0) {
      let addresses: readonly string[]
      try {
        addresses = await resolve(host)
      } catch {
        return { ok: false, retryable: true, reason: 'connection failed' }
      }
      if (addresses.length === 0 || addresses.some(isNonPublicAddress))
        return { ok: false, retryable: false, reason: 'blocked address' }
    }
    return channel.deliver(notification, address)
  },
})

/** `guardUrlChannel` for the webhook channel (its address is `{ url }`). */
export const guardWebhookChannel = (
  channel: Channel<WebhookAddress>,
  policy: WebhookUrlPolicy,
  resolve: ResolveHost = resolveAll,
): Channel<WebhookAddress> => guardUrlChannel(channel, (a) => a.url, policy, resolve)
