import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto'
import {
  type Actor,
  type CompanionWrite,
  IN_MEMORY_COMPANION,
  type InMemoryCompanionWrite,
} from '@referrals/core'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { httpProblem, ProblemError } from './problem.js'

/**
 * `Idempotency-Key` on POST. A key is scoped to the authenticated user. The first request with a
 * key claims it ("in flight"); its response (status, body, selected headers) is stored when sent,
 * and any later request with the same key and the same fingerprint (method, route, params, body,
 * and the caller's current platform roles and memberships) gets that response replayed with
 * `Idempotent-Replayed: true`. Same key with another body or another authorization → 422;
 * same key while the first is still running → 409. Server errors (5xx) release the key so the
 * client can retry. Records expire after `ttlMs` (24 h by default). Multipart requests with a key
 * are refused (400): their body is a stream that cannot be fingerprinted before the handler reads it.
 */
export interface StoredResponse {
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  readonly body: string
}

export type BeginResult =
  | { readonly kind: 'started' }
  | { readonly kind: 'in_flight' }
  | { readonly kind: 'mismatch' }
  | { readonly kind: 'replay'; readonly response: StoredResponse }

export interface IdempotencyStore {
  /** Claims `(scope, key)` unless an unexpired record exists; reports what that record says. */
  readonly begin: (
    scope: string,
    key: string,
    fingerprint: string,
    now: Date,
    ttlMs: number,
  ) => Promise<BeginResult>
  /**
   * Stores the response of the claim made by `begin` at `claimedAt` (the `now` given to it); a
   * store that lets a stale claim be taken over ignores the call when the claim is no longer
   * that one.
   */
  readonly complete: (scope: string, key: string, response: StoredResponse, claimedAt?: Date) => Promise<void>
  /**
   * `complete` as a write for the event store to commit in a command's own transaction
   * (`CompanionWrite`), where the event store takes its kind: the answer is then stored exactly
   * when the command's events are, so a crash between the two cannot leave a committed command
   * without its answer. Absent: completions are always written apart.
   */
  readonly completionWrite?: (
    scope: string,
    key: string,
    response: StoredResponse,
    claimedAt?: Date,
  ) => CompanionWrite
  /** Forgets an in-flight claim (the request failed with a server error or was aborted). */
  readonly release: (scope: string, key: string, claimedAt?: Date) => Promise<void>
  readonly close?: () => Promise<void>
}

interface MemoryRecord {
  readonly fingerprint: string
  readonly expiresAt: number
  response: StoredResponse | undefined
}

/** In-process store: for tests and single-process development. */
export const inMemoryIdempotencyStore = (): IdempotencyStore => {
  const records = new Map<string, MemoryRecord>()
  const id = (scope: string, key: string) => `${scope.length}:${scope}${key}`
  let nextPurge = 0
  return {
    begin: async (scope, key, fingerprint, now, ttlMs) => {
      const existing = records.get(id(scope, key))
      if (existing !== undefined && existing.expiresAt > now.getTime()) {
        if (existing.fingerprint !== fingerprint) return { kind: 'mismatch' }
        return existing.response === undefined
          ? { kind: 'in_flight' }
          : { kind: 'replay', response: existing.response }
      }
      // Expired records are swept at most once a minute, keeping claims O(1) on average.
      if (now.getTime() >= nextPurge) {
        for (const [k, record] of records) if (record.expiresAt <= now.getTime()) records.delete(k)
        nextPurge = now.getTime() + 60_000
      }
      records.set(id(scope, key), { fingerprint, expiresAt: now.getTime() + ttlMs, response: undefined })
      return { kind: 'started' }
    },
    complete: async (scope, key, response) => {
      const record = records.get(id(scope, key))
      if (record !== undefined) record.response = response
    },
    // With the in-memory event store: applied in the append, synchronously after its events.
    completionWrite: (scope, key, response): InMemoryCompanionWrite => ({
      kind: IN_MEMORY_COMPANION,
      apply: () => {
        const record = records.get(id(scope, key))
        if (record !== undefined && record.response === undefined) record.response = response
      },
    }),
    release: async (scope, key) => {
      const record = records.get(id(scope, key))
      if (record !== undefined && record.response === undefined) records.delete(id(scope, key))
    },
  }
}

/**
 * JSON with object keys sorted, so `{"a":1,"b":2}` and `{"b":2,"a":1}` hash alike. Iterative (an
 * explicit stack), so a deeply nested body cannot overflow the call stack.
 */
export const canonicalJson = (root: unknown): string => {
  const out: string[] = []
  // Each entry is either text to emit as is (`true`) or a value still to serialise (`false`).
  const stack: [boolean, unknown][] = [[false, root]]
  for (let entry = stack.pop(); entry !== undefined; entry = stack.pop()) {
    const [literal, value] = entry
    if (literal) {
      out.push(value as string)
    } else if (Array.isArray(value)) {
      out.push('[')
      stack.push([true, ']'])
      for (let i = value.length - 1; i >= 0; i--) {
        stack.push([false, value[i]])
        if (i > 0) stack.push([true, ','])
      }
    } else if (value !== null && typeof value === 'object') {
      const entries = Object.entries(value as Record<string, unknown>)
        .filter(([, v]) => v !== undefined)
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      out.push('{')
      stack.push([true, '}'])
      for (let i = entries.length - 1; i >= 0; i--) {
        const [k, v] = entries[i] as [string, unknown]
        stack.push([false, v], [true, `${JSON.stringify(k)}:`])
        if (i > 0) stack.push([true, ','])
      }
    } else {
      out.push(JSON.stringify(value) ?? 'null')
    }
  }
  return out.join('')
}

/**
 * What the actor is allowed to do, as a stable string: platform roles and practice memberships,
 * sorted. Part of the fingerprint, so a stored response is only replayed to the same user with
 * the same authorization (a user removed from a practice cannot replay a response of it).
 */
export const authorizationOf = (actor: Actor | null | undefined): string => {
  if (actor === null || actor === undefined) return 'anonymous'
  if (actor.kind === 'system') return `system:${actor.component}`
  const roles = [...actor.platformRoles].sort()
  const memberships = actor.memberships.map((m) => `${m.practiceId}\u0000${m.role}`).sort()
  return canonicalJson({ user: actor.userId, roles, memberships })
}

export const requestFingerprint = (
  method: string,
  routeUrl: string,
  params: unknown,
  body: unknown,
  authorization = '',
): string =>
  createHash('sha256')
    .update(
      `${method} ${routeUrl}\n${canonicalJson(params)}\n${canonicalJson(body)}\n${createHash('sha256')
        .update(authorization)
        .digest('base64url')}`,
    )
    .digest('base64url')

const KEY_PATTERN = /^[\x21-\x7e]{1,255}$/
const MULTIPART = /^\s*multipart\//i
const REPLAYED_HEADERS = ['content-type', 'location', 'etag'] as const

export interface IdempotencyOptions {
  readonly store: IdempotencyStore
  readonly ttlMs?: number
  readonly now?: () => Date
}

interface Claim {
  readonly scope: string
  readonly key: string
  readonly claimedAt: Date
  readonly store: IdempotencyStore
  settled: boolean
}

/**
 * The completion of a request's claim as a write for the command's own transaction
 * (`IdempotencyStore.completionWrite`): `write(response)` gives the companion to pass to the engine,
 * and `written(response)` — called only when the engine reports it committed — settles the claim
 * so `onSend` does not store it again. The handler must then send exactly `response`.
 */
export interface TransactionalCompletion {
  readonly write: (response: StoredResponse) => CompanionWrite
  readonly written: () => void
}

/** For a request holding a fresh claim on a store that offers `completionWrite`; otherwise undefined. */
export const transactionalCompletion = (request: FastifyRequest): TransactionalCompletion | undefined => {
  const claim = claims.get(request)
  const completionWrite = claim?.store.completionWrite
  if (claim === undefined || claim.settled || completionWrite === undefined) return undefined
  return {
    write: (response) => completionWrite(claim.scope, claim.key, response, claim.claimedAt),
    written: () => {
      claim.settled = true
    },
  }
}

/** The `Content-Type` Fastify sends with a JSON body (and `onSend` stores). */
export const JSON_CONTENT_TYPE = 'application/json; charset=utf-8'

const claims = new WeakMap<FastifyRequest, Claim>()
const replays = new WeakSet<FastifyRequest>()

export const IDEMPOTENCY_TTL_MS = 24 * 3_600_000

/**
 * Hooks implementing the protocol. `preHandler` claims or replays (it runs after authentication
 * and input decoding); `onSend` stores the response before it leaves; `onResponse` releases a
 * claim that was not stored (server error, aborted request).
 */
export const idempotencyHooks = (options: IdempotencyOptions) => {
  const ttlMs = options.ttlMs ?? IDEMPOTENCY_TTL_MS
  const now = options.now ?? (() => new Date())

  const preHandler = async (
    request: FastifyRequest,
    reply: FastifyReply,
  ): Promise<FastifyReply | undefined> => {
    if (request.method !== 'POST') return undefined
    const header = request.headers['idempotency-key']
    if (header === undefined) return undefined
    if (typeof header !== 'string' || !KEY_PATTERN.test(header)) {
      throw new ProblemError(
        httpProblem('bad_request', 'Idempotency-Key must be 1-255 visible ASCII characters.'),
      )
    }
    // The body of a multipart upload is a stream the handler reads: it cannot be fingerprinted
    // without consuming it, so the same key with another file would replay the first response.
    if (MULTIPART.test(request.headers['content-type'] ?? '')) {
      throw new ProblemError(
        httpProblem(
          'bad_request',
          'Idempotency-Key is not supported on multipart uploads (they are not replayable): send the upload without it, and list the attachments to see whether an earlier attempt arrived.',
        ),
      )
    }
    const scope = request.actor?.kind === 'user' ? `user:${request.actor.userId}` : 'anonymous'
    const fingerprint = requestFingerprint(
      request.method,
      request.routeOptions.url ?? request.url,
      request.params,
      request.body,
      authorizationOf(request.actor),
    )
    const claimedAt = now()
    const result = await options.store.begin(scope, header, fingerprint, claimedAt, ttlMs)
    switch (result.kind) {
      case 'started':
        claims.set(request, { scope, key: header, claimedAt, store: options.store, settled: false })
        return undefined
      case 'in_flight':
        throw new ProblemError(
          httpProblem('idempotency.in_flight', 'A request with this Idempotency-Key is still in progress.'),
          { 'retry-after': '1' },
        )
      case 'mismatch':
        throw new ProblemError(
          httpProblem('idempotency.key_reused', 'This Idempotency-Key was used for a different request.'),
        )
      case 'replay':
        replays.add(request)
        return reply
          .code(result.response.status)
          .headers({ ...result.response.headers, 'idempotent-replayed': 'true' })
          .send(result.response.body)
    }
  }

  const onSend = async (request: FastifyRequest, reply: FastifyReply, payload: unknown): Promise<unknown> => {
    const claim = claims.get(request)
    if (claim === undefined || claim.settled || replays.has(request)) return payload
    if (reply.statusCode >= 500) return payload
    const body =
      typeof payload === 'string' ? payload : Buffer.isBuffer(payload) ? payload.toString('utf8') : null
    if (body === null && payload !== null && payload !== undefined) return payload
    const headers: Record<string, string> = {}
    for (const name of REPLAYED_HEADERS) {
      const value = reply.getHeader(name)
      if (value !== undefined) headers[name] = String(value)
    }
    await options.store.complete(
      claim.scope,
      claim.key,
      { status: reply.statusCode, headers, body: body ?? '' },
      claim.claimedAt,
    )
    claim.settled = true
    return payload
  }

  /** Also the `onRequestAbort` hook: a claim whose response was never stored is released. */
  const onResponse = async (request: FastifyRequest): Promise<void> => {
    const claim = claims.get(request)
    if (claim === undefined || claim.settled) return
    claim.settled = true
    await options.store.release(claim.scope, claim.key, claim.claimedAt)
  }

  return { preHandler, onSend, onResponse, onRequestAbort: onResponse }
}

const SEALED_PREFIX = 'aes256gcm:'

/**
 * Wraps a store so stored response bodies are encrypted (AES-256-GCM, random 12-byte IV, the
 * scope and key bound as associated data), since a response may carry patient data and the
 * records live for a day. The key is derived from the master key with HKDF; a record that fails
 * authentication is treated as absent-and-busy (409) rather than replayed.
 */
export const encryptedIdempotencyStore = (store: IdempotencyStore, masterKey: Buffer): IdempotencyStore => {
  const key = Buffer.from(hkdfSync('sha256', masterKey, Buffer.alloc(0), 'referrals/http/idempotency/v1', 32))
  const aad = (scope: string, k: string) => Buffer.from(`${scope.length}:${scope}${k}`, 'utf8')
  const seal = (scope: string, k: string, body: string): string => {
    const iv = randomBytes(12)
    const cipher = createCipheriv('aes-256-gcm', key, iv).setAAD(aad(scope, k))
    const data = Buffer.concat([cipher.update(body, 'utf8'), cipher.final()])
    return `${SEALED_PREFIX}${Buffer.concat([iv, cipher.getAuthTag(), data]).toString('base64')}`
  }
  const open = (scope: string, k: string, sealed: string): string | undefined => {
    if (!sealed.startsWith(SEALED_PREFIX)) return undefined
    const bytes = Buffer.from(sealed.slice(SEALED_PREFIX.length), 'base64')
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, bytes.subarray(0, 12)).setAAD(aad(scope, k))
      decipher.setAuthTag(bytes.subarray(12, 28))
      return Buffer.concat([decipher.update(bytes.subarray(28)), decipher.final()]).toString('utf8')
    } catch {
      return undefined
    }
  }
  return {
    begin: async (scope, k, fingerprint, now, ttlMs) => {
      const result = await store.begin(scope, k, fingerprint, now, ttlMs)
      if (result.kind !== 'replay') return result
      const body = open(scope, k, result.response.body)
      return body === undefined
        ? { kind: 'in_flight' }
        : { kind: 'replay', response: { ...result.response, body } }
    },
    complete: (scope, k, response, claimedAt) =>
      store.complete(scope, k, { ...response, body: seal(scope, k, response.body) }, claimedAt),
    ...(store.completionWrite === undefined
      ? {}
      : {
          completionWrite: (scope: string, k: string, response: StoredResponse, claimedAt?: Date) =>
            (store.completionWrite as NonNullable<IdempotencyStore['completionWrite']>)(
              scope,
              k,
              { ...response, body: seal(scope, k, response.body) },
              claimedAt,
            ),
        }),
    release: (scope, k, claimedAt) => store.release(scope, k, claimedAt),
    ...(store.close === undefined ? {} : { close: store.close }),
  }
}
