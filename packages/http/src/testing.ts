import { Writable } from 'node:stream'
import type { EventStore } from '@referrals/core'
import type { FastifyInstance } from 'fastify'
import { right } from 'fp-ts/lib/TaskEither.js'
import { type CryptoKey, generateKeyPair } from 'jose'
import { type BuildAppOptions, buildApp } from './app.js'
import {
  createTokenVerifier,
  type DevTokenUser,
  type ResolveActor,
  type SignTokenOptions,
  signToken,
} from './auth.js'
import { type Config, parseConfig } from './config.js'
import { type IdempotencyStore, inMemoryIdempotencyStore } from './idempotency.js'

/**
 * Test support for route modules: an app built like production but with a throw-away signing key,
 * an in-memory idempotency store and captured log lines. Use with Fastify `inject`.
 */
export const TEST_ISSUER = 'urn:referrals:test'
export const TEST_AUDIENCE = 'urn:referrals:test-api'

/** A configuration for tests; `env` entries override the defaults (same names as production). */
export const testConfig = (env: Readonly<Record<string, string>> = {}): Config => {
  const parsed = parseConfig({
    REFERRALS_STORE: 'memory',
    REFERRALS_DATA_DIR: '/nonexistent-referrals-test-data',
    JWT_ISSUER: TEST_ISSUER,
    JWT_AUDIENCE: TEST_AUDIENCE,
    LOG_LEVEL: 'info',
    ...env,
  })
  if (!parsed.ok) throw new Error(`test configuration invalid: ${parsed.problems.join('; ')}`)
  return parsed.config
}

/** An event store that only answers `streamVersion` (for `/ready`); everything else fails loudly. */
export const probeOnlyStore = (): EventStore => {
  const unsupported = () => {
    throw new Error('probeOnlyStore supports streamVersion only')
  }
  return {
    append: unsupported,
    appendMany: unsupported,
    readStream: unsupported,
    readAll: unsupported,
    streamVersion: () => right(0),
    subscribe: unsupported,
    capabilities: { atomicMultiStreamAppend: false },
    close: async () => undefined,
  }
}

/** Resolves every user to an actor with the token's roles and no memberships. */
export const rolesOnlyActor: ResolveActor = async (userId, roles) => ({
  kind: 'user',
  userId,
  platformRoles: roles,
  memberships: [],
})

export interface TestApp {
  readonly app: FastifyInstance
  /** A valid bearer token for the user (claims overridable to build invalid ones). */
  readonly token: (user: DevTokenUser, options?: Partial<SignTokenOptions>) => Promise<string>
  readonly signing: { readonly privateKey: CryptoKey; readonly publicKey: CryptoKey }
  /** Every log line written so far, raw. */
  readonly logs: () => string
  readonly idempotencyStore: IdempotencyStore
}

export interface TestAppOptions extends Partial<Omit<BuildAppOptions, 'logStream' | 'verifyToken'>> {
  readonly env?: Readonly<Record<string, string>>
}

export const buildTestApp = async (options: TestAppOptions = {}): Promise<TestApp> => {
  const config = options.config ?? testConfig(options.env)
  const { privateKey, publicKey } = await generateKeyPair('EdDSA')
  const lines: string[] = []
  const logStream = new Writable({
    write(chunk, _encoding, callback) {
      lines.push(String(chunk))
      callback()
    },
  })
  const idempotencyStore = options.idempotencyStore ?? inMemoryIdempotencyStore()
  const app = await buildApp({
    ...options,
    config,
    store: options.store ?? probeOnlyStore(),
    resolveActor: options.resolveActor ?? rolesOnlyActor,
    idempotencyStore,
    logStream,
    verifyToken: createTokenVerifier({
      issuer: config.jwt.issuer,
      audience: config.jwt.audience,
      algorithm: 'EdDSA',
      key: publicKey,
    }),
  })
  return {
    app,
    token: (user, overrides = {}) =>
      signToken(user, { issuer: config.jwt.issuer, audience: config.jwt.audience, privateKey, ...overrides }),
    signing: { privateKey, publicKey },
    logs: () => lines.join(''),
    idempotencyStore,
  }
}
