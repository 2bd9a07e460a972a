import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { type Actor, PlatformRole, UserId } from '@referrals/core'
import type { FastifyReply, FastifyRequest } from 'fastify'
import * as t from 'io-ts'
import {
  type CryptoKey,
  createRemoteJWKSet,
  exportPKCS8,
  exportSPKI,
  generateKeyPair,
  importPKCS8,
  importSPKI,
  type JWTVerifyGetKey,
  jwtVerify,
  SignJWT,
} from 'jose'
import type { Config } from './config.js'
import { httpProblem, ProblemError } from './problem.js'

/**
 * Bearer JWT authentication. Algorithms are pinned to the configured one (EdDSA or ES256), so
 * `alg: none` and HMAC tokens signed with the public key are refused; `iss`, `aud`, `exp` and
 * `nbf` are checked with a small clock tolerance. The token says who the user is (`sub`) and
 * their platform roles (`roles`); practice memberships come from the practice directory through
 * the `ResolveActor` port, never from the token.
 */
export type ResolveActor = (userId: UserId, roles: readonly PlatformRole[]) => Promise<Actor>

export type JwtAlgorithm = 'EdDSA' | 'ES256'

export interface VerifiedToken {
  readonly userId: UserId
  readonly roles: readonly PlatformRole[]
}

export type TokenVerifier = (token: string) => Promise<VerifiedToken | undefined>

type VerificationKey = CryptoKey | JWTVerifyGetKey

const Claims = t.type({
  sub: UserId,
  roles: t.union([t.undefined, t.readonlyArray(PlatformRole)]),
})

export interface VerifierOptions {
  readonly issuer: string
  readonly audience: string
  readonly algorithm: JwtAlgorithm
  readonly key: VerificationKey
  readonly clockToleranceSeconds?: number
  /** For tests: the verification instant. */
  readonly currentDate?: () => Date
  /**
   * How many verified tokens are remembered (default 10,000; 0 disables). A client sends the same
   * token with every request; checking its signature again each time (Ed25519 or ECDSA, plus
   * jose's parsing) was a large part of a request's CPU time. See `createTokenVerifier`.
   */
  readonly cacheSize?: number
  /** How long a verification is remembered, at most (default 60 s, and never past the token's `exp`). */
  readonly cacheTtlSeconds?: number
}

interface CachedVerification {
  readonly verified: VerifiedToken
  /** When it was verified, and until when it may be reused (ms since the epoch). */
  readonly from: number
  readonly until: number
}

/**
 * Verifies a compact JWT; `undefined` for every kind of failure (the reason is not disclosed).
 *
 * A token that verified is remembered by its exact text for `cacheTtlSeconds` (never past its
 * `exp`, so an expired token is checked again and refused). Only successes are remembered, so a
 * forged or altered token is always checked in full; a remembered token is the same byte string
 * that verified, so it carries the same claims. With a JWKS, a key withdrawn from the set stops
 * verifying new tokens at once and remembered ones within `cacheTtlSeconds`.
 */
export const createTokenVerifier = (options: VerifierOptions): TokenVerifier => {
  const cacheSize = options.cacheSize ?? 10_000
  const ttlMs = (options.cacheTtlSeconds ?? 60) * 1000
  const cache = new Map<string, CachedVerification>()
  const nowMs = () => (options.currentDate === undefined ? Date.now() : options.currentDate().getTime())
  const verifyFully = async (
    token: string,
  ): Promise<{ verified: VerifiedToken; exp: number } | undefined> => {
    try {
      const verifyOptions = {
        algorithms: [options.algorithm],
        issuer: options.issuer,
        audience: options.audience,
        clockTolerance: options.clockToleranceSeconds ?? 5,
        requiredClaims: ['exp', 'sub'],
        ...(options.currentDate === undefined ? {} : { currentDate: options.currentDate() }),
      }
      const { payload } =
        typeof options.key === 'function'
          ? await jwtVerify(token, options.key, verifyOptions)
          : await jwtVerify(token, options.key, verifyOptions)
      const claims = Claims.decode(payload)
      if (claims._tag === 'Left') return undefined
      return {
        verified: { userId: claims.right.sub, roles: claims.right.roles ?? [] },
        exp: typeof payload.exp === 'number' ? payload.exp : 0,
      }
    } catch {
      return undefined
    }
  }
  return async (token) => {
    const now = nowMs()
    const hit = cache.get(token)
    if (hit !== undefined) {
      if (now >= hit.from && now < hit.until) return hit.verified
      cache.delete(token)
    }
    const result = await verifyFully(token)
    if (result === undefined) return undefined
    const until = Math.min(now + ttlMs, result.exp * 1000)
    if (cacheSize > 0 && until > now) {
      cache.set(token, { verified: result.verified, from: now, until })
      if (cache.size > cacheSize) {
        const oldest = cache.keys().next()
        if (oldest.done !== true) cache.delete(oldest.value)
      }
    }
    return result.verified
  }
}

const DEV_PRIVATE_KEY_FILE = 'jwt-dev-private.pem'
const DEV_PUBLIC_KEY_FILE = 'jwt-dev-public.pem'

export interface DevKeyPair {
  readonly algorithm: 'EdDSA'
  readonly privateKey: CryptoKey
  readonly publicKey: CryptoKey
  readonly publicKeyPem: string
}

/**
 * The development signing key: an Ed25519 pair generated on first use and kept in the data
 * directory (private key mode 0600), so dev tokens survive restarts. Never used when a public
 * key or JWKS URL is configured.
 */
export const loadOrCreateDevKeyPair = async (dataDir: string): Promise<DevKeyPair> => {
  const privateFile = join(dataDir, DEV_PRIVATE_KEY_FILE)
  const publicFile = join(dataDir, DEV_PUBLIC_KEY_FILE)
  try {
    const [privatePem, publicKeyPem] = await Promise.all([
      readFile(privateFile, 'utf8'),
      readFile(publicFile, 'utf8'),
    ])
    return {
      algorithm: 'EdDSA',
      privateKey: await importPKCS8(privatePem, 'EdDSA'),
      publicKey: await importSPKI(publicKeyPem, 'EdDSA'),
      publicKeyPem,
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
  }
  const pair = await generateKeyPair('EdDSA', { extractable: true })
  const publicKeyPem = await exportSPKI(pair.publicKey)
  await mkdir(dataDir, { recursive: true, mode: 0o700 })
  await writeFile(privateFile, await exportPKCS8(pair.privateKey), { mode: 0o600 })
  await writeFile(publicFile, publicKeyPem, { mode: 0o644 })
  return { algorithm: 'EdDSA', privateKey: pair.privateKey, publicKey: pair.publicKey, publicKeyPem }
}

/** The verifier for a configuration: PEM, JWKS URL, or (development) the data-dir key pair. */
export const verifierFromConfig = async (config: Config): Promise<TokenVerifier> => {
  const { jwt } = config
  const key: VerificationKey =
    jwt.key.kind === 'pem'
      ? await importSPKI(jwt.key.pem, jwt.algorithm)
      : jwt.key.kind === 'jwks'
        ? createRemoteJWKSet(jwt.key.url)
        : (await loadOrCreateDevKeyPair(config.dataDir)).publicKey
  const algorithm = jwt.key.kind === 'dev' ? 'EdDSA' : jwt.algorithm
  return createTokenVerifier({
    issuer: jwt.issuer,
    audience: jwt.audience,
    algorithm,
    key,
    clockToleranceSeconds: jwt.clockToleranceSeconds,
  })
}

export interface DevTokenUser {
  readonly userId: string
  readonly roles?: readonly PlatformRole[]
}

export interface SignTokenOptions {
  readonly issuer: string
  readonly audience: string
  readonly privateKey: CryptoKey
  readonly algorithm?: JwtAlgorithm
  readonly ttlSeconds?: number
  /** Issue time in seconds since the epoch (default: now). */
  readonly issuedAt?: number
}

export const signToken = async (user: DevTokenUser, options: SignTokenOptions): Promise<string> => {
  const userId = UserId.decode(user.userId)
  if (userId._tag === 'Left') throw new TypeError('user id must match the UserId pattern')
  const issuedAt = options.issuedAt ?? Math.floor(Date.now() / 1000)
  return new SignJWT({ roles: [...(user.roles ?? [])] })
    .setProtectedHeader({ alg: options.algorithm ?? 'EdDSA', typ: 'JWT' })
    .setSubject(userId.right)
    .setIssuer(options.issuer)
    .setAudience(options.audience)
    .setIssuedAt(issuedAt)
    .setNotBefore(issuedAt)
    .setExpirationTime(issuedAt + (options.ttlSeconds ?? 3600))
    .sign(options.privateKey)
}

/**
 * A token for local development, signed with the data-dir key. Refused when the configuration
 * names a real key source: such tokens would not verify anyway.
 */
export const issueDevToken = async (
  config: Config,
  user: DevTokenUser,
  options: { readonly ttlSeconds?: number } = {},
): Promise<string> => {
  if (config.jwt.key.kind !== 'dev') {
    throw new Error('dev tokens need the development key: unset JWT_PUBLIC_KEY and JWKS_URL')
  }
  const pair = await loadOrCreateDevKeyPair(config.dataDir)
  return signToken(user, {
    issuer: config.jwt.issuer,
    audience: config.jwt.audience,
    privateKey: pair.privateKey,
    ...(options.ttlSeconds === undefined ? {} : { ttlSeconds: options.ttlSeconds }),
  })
}

/**
 * `referrals token --user <id> [--role admin|auditor]... [--ttl <seconds>]`: parses the arguments
 * and returns the dev token, or a usage error message.
 */
export const runTokenCommand = async (
  argv: readonly string[],
  config: Config,
): Promise<{ ok: true; token: string } | { ok: false; message: string }> => {
  const usage = 'usage: referrals token --user <id> [--role admin|auditor]... [--ttl <seconds>]'
  let userId: string | undefined
  const roles: PlatformRole[] = []
  let ttlSeconds: number | undefined
  for (let i = 0; i < argv.length; i += 2) {
    const flag = argv[i]
    const value = argv[i + 1]
    if (value === undefined) return { ok: false, message: usage }
    if (flag === '--user') userId = value
    else if (flag === '--role' && PlatformRole.is(value)) roles.push(value)
    else if (flag === '--ttl' && /^\d{1,7}$/.test(value) && Number(value) > 0) ttlSeconds = Number(value)
    else return { ok: false, message: usage }
  }
  if (userId === undefined || !UserId.is(userId)) return { ok: false, message: usage }
  const token = await issueDevToken(config, { userId, roles }, ttlSeconds === undefined ? {} : { ttlSeconds })
  return { ok: true, token }
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The authenticated actor; `null` on public routes. */
    actor: Actor | null
  }
}

const unauthorized = (error?: 'invalid_token') =>
  new ProblemError(
    httpProblem(
      'unauthorized',
      error === undefined ? 'A bearer token is required.' : 'The bearer token is invalid or expired.',
    ),
    {
      'www-authenticate':
        error === undefined ? 'Bearer realm="referrals"' : `Bearer realm="referrals", error="${error}"`,
    },
  )

/**
 * Throttles clients that keep failing authentication (the per-user rate limit only applies once a
 * user is known). It is consulted only after a token failed to verify: `recordFailure` counts the
 * failure and says whether the client is now over its budget (429 instead of 401). A token that
 * verifies is never refused by it, so a flood of bad tokens from a shared address (NAT, proxy)
 * cannot lock out the users behind it.
 */
export interface AuthFailureLimiter {
  readonly recordFailure: (request: FastifyRequest) => Promise<'allowed' | 'blocked'>
}

export interface AuthenticationHookOptions {
  /** Route URL prefixes reachable without a token (in addition to routes marked `public`). */
  readonly publicPrefixes?: readonly string[]
  readonly failureLimiter?: AuthFailureLimiter
}

const tooManyFailures = () =>
  new ProblemError(httpProblem('rate_limited', 'Too many failed authentication attempts; retry later.'), {
    'retry-after': '60',
  })

/**
 * The `onRequest` hook: every route not marked public needs a valid bearer token; the actor is
 * resolved through the port and put on `request.actor`.
 */
export const authenticationHook =
  (verify: TokenVerifier, resolveActor: ResolveActor, options: AuthenticationHookOptions = {}) =>
  async (request: FastifyRequest, _reply: FastifyReply): Promise<void> => {
    if (request.routeOptions.config.public === true || request.is404) return
    const routeUrl = request.routeOptions.url ?? ''
    const publicPrefixes = options.publicPrefixes ?? []
    if (publicPrefixes.some((prefix) => routeUrl === prefix || routeUrl.startsWith(`${prefix}/`))) return
    const limiter = options.failureLimiter
    const fail = async (error?: 'invalid_token'): Promise<never> => {
      if (limiter !== undefined && (await limiter.recordFailure(request)) === 'blocked')
        throw tooManyFailures()
      throw unauthorized(error)
    }
    const header = request.headers.authorization
    if (header === undefined || header === '') return fail()
    const match = /^Bearer ([A-Za-z0-9_.~+/-]+=*)$/i.exec(header)
    if (match === null || match[1] === undefined) return fail('invalid_token')
    const verified = await verify(match[1])
    if (verified === undefined) return fail('invalid_token')
    request.actor = await resolveActor(verified.userId, verified.roles)
  }

/** The actor of an authenticated route (throws 401 if called on a public route without one). */
export const requireActor = (request: FastifyRequest): Actor => {
  if (request.actor === null) throw unauthorized()
  return request.actor
}
