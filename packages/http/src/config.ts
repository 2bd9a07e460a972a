import { randomBytes } from 'node:crypto'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { inspect } from 'node:util'
import { DEFAULT_SUPPRESSION_THRESHOLD, describeErrors } from '@referrals/core'
import { isLeft } from 'fp-ts/lib/Either.js'
import * as t from 'io-ts'

/**
 * Configuration from environment variables, decoded with io-ts at start. Every problem is
 * reported as one line naming the variable and what it should be — never its value, since some
 * variables are secrets.
 */

/** A secret that never prints: `String()`, JSON and `util.inspect` all show `[redacted]`. */
export class Secret<A> {
  readonly #value: A
  constructor(value: A) {
    this.#value = value
  }
  reveal(): A {
    return this.#value
  }
  toString(): string {
    return '[redacted]'
  }
  toJSON(): string {
    return '[redacted]'
  }
  [inspect.custom](): string {
    return '[redacted]'
  }
}

const fromString = <A>(name: string, parse: (s: string) => A | undefined) =>
  new t.Type<A, string, unknown>(
    name,
    (u): u is A => parse(String(u)) !== undefined,
    (u, c) => {
      if (typeof u !== 'string') return t.failure(u, c)
      const parsed = parse(u.trim())
      return parsed === undefined ? t.failure(u, c) : t.success(parsed)
    },
    String,
  )

const intInRange = (name: string, min: number, max: number) =>
  fromString(name, (s) => {
    if (!/^\d+$/.test(s)) return undefined
    const n = Number(s)
    return n >= min && n <= max ? n : undefined
  })

const Port = intInRange('an integer port 0-65535', 0, 65_535)
const PositiveInt = intInRange('a positive integer', 1, Number.MAX_SAFE_INTEGER)
const NonEmpty = fromString('a non-empty string', (s) => (s.length > 0 ? s : undefined))

const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }
const Duration = fromString('a duration such as 60000, 30s, 1m or 1h', (s) => {
  const match = /^(\d+)\s*(ms|s|m|h)?$/.exec(s)
  if (match === null) return undefined
  const ms = Number(match[1]) * (UNIT_MS[match[2] ?? 'ms'] ?? 1)
  return ms > 0 ? ms : undefined
})

const HttpUrl = fromString('an https URL (http only for localhost)', (s) => {
  try {
    const url = new URL(s)
    const local = url.hostname === 'localhost' || url.hostname === '127.0.0.1' || url.hostname === '::1'
    return url.protocol === 'https:' || (url.protocol === 'http:' && local) ? url : undefined
  } catch {
    return undefined
  }
})

const PostgresUrl = fromString('a postgres:// or postgresql:// connection string', (s) =>
  /^postgres(ql)?:\/\//.test(s) ? new Secret(s) : undefined,
)
const EventStoreUrl = fromString('an esdb:// or esdb+discover:// connection string', (s) =>
  /^esdb(\+discover)?:\/\//.test(s) ? new Secret(s) : undefined,
)

const PublicKeyPem = fromString('a PEM public key (-----BEGIN PUBLIC KEY-----)', (s) => {
  const pem = s.replace(/\\n/g, '\n')
  return /^-----BEGIN PUBLIC KEY-----[\s\S]+-----END PUBLIC KEY-----\s*$/.test(pem) ? pem : undefined
})

const MasterKey = fromString('base64 of exactly 32 bytes', (s) => {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(s)) return undefined
  const bytes = Buffer.from(s, 'base64')
  return bytes.length === 32 ? new Secret(bytes) : undefined
})

const ContentTypes = fromString('a comma-separated list of type/subtype media types', (s) => {
  const types = s
    .split(',')
    .map((x) => x.trim().toLowerCase())
    .filter((x) => x.length > 0)
  return types.length > 0 && types.every((x) => /^[a-z0-9.+-]+\/[a-z0-9.+-]+$/.test(x)) ? types : undefined
})

const StoreKind = t.keyof(
  { postgres: null, eventstoredb: null, memory: null },
  'one of postgres, eventstoredb, memory',
)
const LogLevel = t.keyof(
  { fatal: null, error: null, warn: null, info: null, debug: null, trace: null, silent: null },
  'one of fatal, error, warn, info, debug, trace, silent',
)
const JwtAlgorithm = t.keyof({ EdDSA: null, ES256: null }, 'EdDSA or ES256')

/** Environment variable → codec. Only these are read. */
const EnvCodec = t.partial({
  PORT: Port,
  HOST: NonEmpty,
  DATABASE_URL: PostgresUrl,
  EVENTSTORE_CONNECTION_STRING: EventStoreUrl,
  REFERRALS_STORE: StoreKind,
  REFERRALS_DATA_DIR: NonEmpty,
  EMBEDDED_POSTGRES_PORT: intInRange('an integer port 1-65535', 1, 65_535),
  JWT_ISSUER: NonEmpty,
  JWT_AUDIENCE: NonEmpty,
  JWT_ALGORITHM: JwtAlgorithm,
  JWT_PUBLIC_KEY: PublicKeyPem,
  JWKS_URL: HttpUrl,
  REFERRALS_MASTER_KEY: MasterKey,
  BODY_LIMIT_BYTES: PositiveInt,
  ATTACHMENT_LIMIT_BYTES: PositiveInt,
  ATTACHMENT_CONTENT_TYPES: ContentTypes,
  RATE_LIMIT_MAX: PositiveInt,
  RATE_LIMIT_WINDOW: Duration,
  REPORT_SUPPRESSION_THRESHOLD: PositiveInt,
  PUBLIC_INTAKE_SUBMITS_PER_ADDRESS: PositiveInt,
  PUBLIC_INTAKE_SUBMIT_WINDOW: Duration,
  PUBLIC_INTAKE_REQUESTS_PER_LINK: PositiveInt,
  PUBLIC_INTAKE_LINK_WINDOW: Duration,
  LOG_LEVEL: LogLevel,
  NODE_ENV: t.string,
})

export type JwtKeySource =
  | { readonly kind: 'pem'; readonly pem: string }
  | { readonly kind: 'jwks'; readonly url: URL }
  | { readonly kind: 'dev' }

export interface Config {
  readonly port: number
  readonly host: string
  readonly production: boolean
  readonly store: 'postgres' | 'eventstoredb' | 'memory'
  readonly databaseUrl: Secret<string> | undefined
  readonly eventStoreConnectionString: Secret<string> | undefined
  readonly dataDir: string
  /** Port of the embedded PostgreSQL server on 127.0.0.1; undefined: a free port at each start. */
  readonly embeddedPostgresPort: number | undefined
  readonly jwt: {
    readonly issuer: string
    readonly audience: string
    readonly algorithm: 'EdDSA' | 'ES256'
    readonly key: JwtKeySource
    readonly clockToleranceSeconds: number
  }
  /** `undefined` until `loadConfig` generates or reads the development key. */
  readonly masterKey: Secret<Buffer> | undefined
  readonly bodyLimitBytes: number
  readonly attachmentLimitBytes: number
  readonly attachmentContentTypes: readonly string[]
  readonly rateLimit: { readonly max: number; readonly windowMs: number }
  /** Report cells from fewer referrals are suppressed ("< n") for callers outside the receiving practice. */
  readonly reportSuppressionThreshold: number
  /**
   * Budgets of the public intake pages (`/r/:code`): submissions per client address (IPv6: per
   * /64) and page views plus submissions per link, each over its window.
   */
  readonly publicIntakeLimits: {
    readonly submitsPerAddress: { readonly max: number; readonly windowMs: number }
    readonly requestsPerLink: { readonly max: number; readonly windowMs: number }
  }
  readonly logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'
}

export const DEFAULTS = {
  port: 3000,
  host: '127.0.0.1',
  dataDir: './.data',
  jwtIssuer: 'urn:referrals:dev',
  jwtAudience: 'urn:referrals:api',
  bodyLimitBytes: 1_048_576,
  attachmentLimitBytes: 20_971_520,
  attachmentContentTypes: ['application/pdf', 'image/png', 'image/jpeg'],
  rateLimitMax: 300,
  rateLimitWindowMs: 60_000,
  clockToleranceSeconds: 5,
  reportSuppressionThreshold: DEFAULT_SUPPRESSION_THRESHOLD,
  publicIntakeSubmitsPerAddress: 10,
  publicIntakeSubmitWindowMs: 10 * 60_000,
  publicIntakeRequestsPerLink: 120,
  publicIntakeLinkWindowMs: 60_000,
} as const

export class ConfigError extends Error {
  readonly problems: readonly string[]
  constructor(problems: readonly string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`)
    this.name = 'ConfigError'
    this.problems = problems
  }
}

export type Env = Readonly<Record<string, string | undefined>>

/** Pure: decodes the environment. Empty variables count as unset. */
export const parseConfig = (env: Env): { ok: true; config: Config } | { ok: false; problems: string[] } => {
  const present: Record<string, string> = {}
  for (const key of Object.keys(EnvCodec.props)) {
    const value = env[key]
    if (value !== undefined && value.trim() !== '') present[key] = value
  }
  const decoded = EnvCodec.decode(present)
  if (isLeft(decoded)) {
    return {
      ok: false,
      problems: describeErrors(decoded.left).map((p) => `${p.path} must be ${p.expected}`),
    }
  }
  const e = decoded.right
  const production = e.NODE_ENV === 'production'
  const problems: string[] = []
  if (e.JWT_PUBLIC_KEY !== undefined && e.JWKS_URL !== undefined) {
    problems.push('JWT_PUBLIC_KEY and JWKS_URL are mutually exclusive: set one')
  }
  const store =
    e.REFERRALS_STORE ?? (e.EVENTSTORE_CONNECTION_STRING !== undefined ? 'eventstoredb' : 'postgres')
  if (store === 'eventstoredb' && e.EVENTSTORE_CONNECTION_STRING === undefined) {
    problems.push('EVENTSTORE_CONNECTION_STRING is required when REFERRALS_STORE is eventstoredb')
  }
  if (e.EMBEDDED_POSTGRES_PORT !== undefined && (e.DATABASE_URL !== undefined || store === 'memory')) {
    problems.push(
      `EMBEDDED_POSTGRES_PORT has no effect ${e.DATABASE_URL !== undefined ? 'with DATABASE_URL' : 'with REFERRALS_STORE=memory'}: unset one`,
    )
  }
  if (production) {
    if (e.JWT_PUBLIC_KEY === undefined && e.JWKS_URL === undefined) {
      problems.push('JWT_PUBLIC_KEY or JWKS_URL is required when NODE_ENV is production')
    }
    if (e.JWT_ISSUER === undefined) problems.push('JWT_ISSUER is required when NODE_ENV is production')
    if (e.JWT_AUDIENCE === undefined) problems.push('JWT_AUDIENCE is required when NODE_ENV is production')
    if (e.REFERRALS_MASTER_KEY === undefined) {
      problems.push('REFERRALS_MASTER_KEY is required when NODE_ENV is production')
    }
    if (store === 'memory') problems.push('REFERRALS_STORE=memory is not allowed when NODE_ENV is production')
  }
  if (problems.length > 0) return { ok: false, problems }

  const key: JwtKeySource =
    e.JWT_PUBLIC_KEY !== undefined
      ? { kind: 'pem', pem: e.JWT_PUBLIC_KEY }
      : e.JWKS_URL !== undefined
        ? { kind: 'jwks', url: e.JWKS_URL }
        : { kind: 'dev' }
  return {
    ok: true,
    config: {
      port: e.PORT ?? DEFAULTS.port,
      host: e.HOST ?? DEFAULTS.host,
      production,
      store,
      databaseUrl: e.DATABASE_URL,
      eventStoreConnectionString: e.EVENTSTORE_CONNECTION_STRING,
      dataDir: resolve(e.REFERRALS_DATA_DIR ?? DEFAULTS.dataDir),
      embeddedPostgresPort: e.EMBEDDED_POSTGRES_PORT,
      jwt: {
        issuer: e.JWT_ISSUER ?? DEFAULTS.jwtIssuer,
        audience: e.JWT_AUDIENCE ?? DEFAULTS.jwtAudience,
        algorithm: e.JWT_ALGORITHM ?? 'EdDSA',
        key,
        clockToleranceSeconds: DEFAULTS.clockToleranceSeconds,
      },
      masterKey: e.REFERRALS_MASTER_KEY,
      bodyLimitBytes: e.BODY_LIMIT_BYTES ?? DEFAULTS.bodyLimitBytes,
      attachmentLimitBytes: e.ATTACHMENT_LIMIT_BYTES ?? DEFAULTS.attachmentLimitBytes,
      attachmentContentTypes: e.ATTACHMENT_CONTENT_TYPES ?? DEFAULTS.attachmentContentTypes,
      rateLimit: {
        max: e.RATE_LIMIT_MAX ?? DEFAULTS.rateLimitMax,
        windowMs: e.RATE_LIMIT_WINDOW ?? DEFAULTS.rateLimitWindowMs,
      },
      reportSuppressionThreshold: e.REPORT_SUPPRESSION_THRESHOLD ?? DEFAULTS.reportSuppressionThreshold,
      publicIntakeLimits: {
        submitsPerAddress: {
          max: e.PUBLIC_INTAKE_SUBMITS_PER_ADDRESS ?? DEFAULTS.publicIntakeSubmitsPerAddress,
          windowMs: e.PUBLIC_INTAKE_SUBMIT_WINDOW ?? DEFAULTS.publicIntakeSubmitWindowMs,
        },
        requestsPerLink: {
          max: e.PUBLIC_INTAKE_REQUESTS_PER_LINK ?? DEFAULTS.publicIntakeRequestsPerLink,
          windowMs: e.PUBLIC_INTAKE_LINK_WINDOW ?? DEFAULTS.publicIntakeLinkWindowMs,
        },
      },
      logLevel: e.LOG_LEVEL ?? 'info',
    },
  }
}

const DEV_MASTER_KEY_FILE = 'master.key'

/**
 * Parses the environment (throwing `ConfigError` listing every problem) and, outside production,
 * fills in a development master key generated once and kept in the data directory.
 */
export const loadConfig = async (
  env: Env = process.env,
  warn: (message: string) => void = (m) => process.emitWarning(m),
): Promise<Config> => {
  const parsed = parseConfig(env)
  if (!parsed.ok) throw new ConfigError(parsed.problems)
  const config = parsed.config
  if (config.masterKey !== undefined) return config
  const { key: masterKey, created } = await loadOrCreateDevMasterKey(config.dataDir)
  // Said once, when the key is made: later runs (every CLI call, the demo) use it silently.
  if (created)
    warn(
      `REFERRALS_MASTER_KEY is not set: generated a development key in ${join(config.dataDir, DEV_MASTER_KEY_FILE)} (set REFERRALS_MASTER_KEY in production; it is required when NODE_ENV is production)`,
    )
  return { ...config, masterKey }
}

export const loadOrCreateDevMasterKey = async (
  dataDir: string,
): Promise<{ readonly key: Secret<Buffer>; readonly created: boolean }> => {
  const file = join(dataDir, DEV_MASTER_KEY_FILE)
  try {
    const bytes = Buffer.from((await readFile(file, 'utf8')).trim(), 'base64')
    if (bytes.length === 32) return { key: new Secret(bytes), created: false }
    throw new ConfigError([`${file} does not hold base64 of 32 bytes; delete it to generate a new key`])
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
  }
  const bytes = randomBytes(32)
  await mkdir(dataDir, { recursive: true, mode: 0o700 })
  await writeFile(file, `${bytes.toString('base64')}\n`, { mode: 0o600, flag: 'wx' })
  return { key: new Secret(bytes), created: true }
}
