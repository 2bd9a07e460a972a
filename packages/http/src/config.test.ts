import { mkdtemp, readFile, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { inspect } from 'node:util'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { ConfigError, loadConfig, parseConfig } from './config.js'

const KEY = Buffer.alloc(32, 7).toString('base64')

describe('parseConfig', () => {
  it('applies defaults', () => {
    const parsed = parseConfig({})
    expect(parsed.ok).toBe(true)
    if (!parsed.ok) return
    expect(parsed.config.port).toBe(3000)
    expect(parsed.config.host).toBe('127.0.0.1')
    expect(parsed.config.store).toBe('postgres')
    expect(parsed.config.dataDir).toBe(join(process.cwd(), '.data'))
    expect(parsed.config.jwt.key).toEqual({ kind: 'dev' })
    expect(parsed.config.jwt.algorithm).toBe('EdDSA')
    expect(parsed.config.bodyLimitBytes).toBe(1_048_576)
    expect(parsed.config.rateLimit).toEqual({ max: 300, windowMs: 60_000 })
    expect(parsed.config.masterKey).toBeUndefined()
    expect(parsed.config.reportSuppressionThreshold).toBe(5)
  })

  it('EMBEDDED_POSTGRES_PORT: a port 1-65535 for the embedded server, refused beside DATABASE_URL or memory', () => {
    const ok = parseConfig({ EMBEDDED_POSTGRES_PORT: '5433' })
    expect(ok.ok && ok.config.embeddedPostgresPort).toBe(5433)
    const unset = parseConfig({})
    expect(unset.ok && unset.config.embeddedPostgresPort).toBeUndefined()
    for (const bad of ['0', '65536', 'x', '-1', '54.3']) {
      expect(parseConfig({ EMBEDDED_POSTGRES_PORT: bad })).toEqual({
        ok: false,
        problems: ['EMBEDDED_POSTGRES_PORT must be an integer port 1-65535'],
      })
    }
    expect(parseConfig({ EMBEDDED_POSTGRES_PORT: '5433', DATABASE_URL: 'postgres://db/x' })).toEqual({
      ok: false,
      problems: ['EMBEDDED_POSTGRES_PORT has no effect with DATABASE_URL: unset one'],
    })
    expect(parseConfig({ EMBEDDED_POSTGRES_PORT: '5433', REFERRALS_STORE: 'memory' })).toMatchObject({
      ok: false,
    })
  })

  it('reads every variable', () => {
    const parsed = parseConfig({
      PORT: '8080',
      HOST: '0.0.0.0',
      DATABASE_URL: 'postgres://u:pw@db/referrals',
      EVENTSTORE_CONNECTION_STRING: 'esdb://es:2113?tls=false',
      REFERRALS_STORE: 'eventstoredb',
      REFERRALS_DATA_DIR: '/var/lib/referrals',
      JWT_ISSUER: 'https://idp.example',
      JWT_AUDIENCE: 'referrals',
      JWKS_URL: 'https://idp.example/.well-known/jwks.json',
      JWT_ALGORITHM: 'ES256',
      REFERRALS_MASTER_KEY: KEY,
      BODY_LIMIT_BYTES: '2048',
      ATTACHMENT_LIMIT_BYTES: '4096',
      ATTACHMENT_CONTENT_TYPES: 'application/pdf, image/PNG',
      RATE_LIMIT_MAX: '10',
      RATE_LIMIT_WINDOW: '30s',
      REPORT_SUPPRESSION_THRESHOLD: '11',
      PUBLIC_INTAKE_SUBMITS_PER_ADDRESS: '3',
      PUBLIC_INTAKE_SUBMIT_WINDOW: '1h',
      PUBLIC_INTAKE_REQUESTS_PER_LINK: '40',
      PUBLIC_INTAKE_LINK_WINDOW: '30s',
      LOG_LEVEL: 'warn',
    })
    expect(parsed.ok).toBe(true)
    if (!parsed.ok) return
    const c = parsed.config
    expect([c.port, c.host, c.store, c.dataDir]).toEqual([
      8080,
      '0.0.0.0',
      'eventstoredb',
      '/var/lib/referrals',
    ])
    expect(c.databaseUrl?.reveal()).toBe('postgres://u:pw@db/referrals')
    expect(c.eventStoreConnectionString?.reveal()).toBe('esdb://es:2113?tls=false')
    expect(c.jwt.key).toEqual({ kind: 'jwks', url: new URL('https://idp.example/.well-known/jwks.json') })
    expect([c.jwt.issuer, c.jwt.audience, c.jwt.algorithm]).toEqual([
      'https://idp.example',
      'referrals',
      'ES256',
    ])
    expect(c.masterKey?.reveal()).toEqual(Buffer.alloc(32, 7))
    expect([c.bodyLimitBytes, c.attachmentLimitBytes]).toEqual([2048, 4096])
    expect(c.attachmentContentTypes).toEqual(['application/pdf', 'image/png'])
    expect(c.rateLimit).toEqual({ max: 10, windowMs: 30_000 })
    expect(c.logLevel).toBe('warn')
    expect(c.reportSuppressionThreshold).toBe(11)
    expect(c.publicIntakeLimits).toEqual({
      submitsPerAddress: { max: 3, windowMs: 3_600_000 },
      requestsPerLink: { max: 40, windowMs: 30_000 },
    })
  })

  it('defaults the public intake budgets, and names each bad one without its value', () => {
    const defaults = parseConfig({})
    expect(defaults.ok && defaults.config.publicIntakeLimits).toEqual({
      submitsPerAddress: { max: 10, windowMs: 600_000 },
      requestsPerLink: { max: 120, windowMs: 60_000 },
    })
    const parsed = parseConfig({
      PUBLIC_INTAKE_SUBMITS_PER_ADDRESS: '0',
      PUBLIC_INTAKE_SUBMIT_WINDOW: 'forever-7731',
      PUBLIC_INTAKE_REQUESTS_PER_LINK: '-5',
      PUBLIC_INTAKE_LINK_WINDOW: '2 days',
    })
    expect(parsed.ok).toBe(false)
    if (parsed.ok) return
    expect(parsed.problems).toEqual([
      'PUBLIC_INTAKE_SUBMITS_PER_ADDRESS must be a positive integer',
      'PUBLIC_INTAKE_SUBMIT_WINDOW must be a duration such as 60000, 30s, 1m or 1h',
      'PUBLIC_INTAKE_REQUESTS_PER_LINK must be a positive integer',
      'PUBLIC_INTAKE_LINK_WINDOW must be a duration such as 60000, 30s, 1m or 1h',
    ])
    expect(parsed.problems.join('\n')).not.toContain('forever-7731')
  })

  it('lists one clear problem per bad variable, without the values', () => {
    const parsed = parseConfig({
      PORT: '99999',
      DATABASE_URL: 'mysql://root:hunter2@db',
      REFERRALS_STORE: 'mongo',
      REFERRALS_MASTER_KEY: 'c2hvcnQ=',
      RATE_LIMIT_WINDOW: 'soon',
      JWKS_URL: 'http://idp.example/jwks',
      LOG_LEVEL: 'loud',
    })
    expect(parsed.ok).toBe(false)
    if (parsed.ok) return
    expect(parsed.problems).toEqual([
      'PORT must be an integer port 0-65535',
      'DATABASE_URL must be a postgres:// or postgresql:// connection string',
      'REFERRALS_STORE must be one of postgres, eventstoredb, memory',
      'JWKS_URL must be an https URL (http only for localhost)',
      'REFERRALS_MASTER_KEY must be base64 of exactly 32 bytes',
      'RATE_LIMIT_WINDOW must be a duration such as 60000, 30s, 1m or 1h',
      'LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent',
    ])
    expect(parsed.problems.join('\n')).not.toContain('hunter2')
  })

  it('checks combinations and production requirements', () => {
    const both = parseConfig({
      JWKS_URL: 'https://idp/jwks',
      JWT_PUBLIC_KEY: '-----BEGIN PUBLIC KEY-----\nAA\n-----END PUBLIC KEY-----',
    })
    expect(both).toEqual({
      ok: false,
      problems: ['JWT_PUBLIC_KEY and JWKS_URL are mutually exclusive: set one'],
    })
    const production = parseConfig({ NODE_ENV: 'production', REFERRALS_STORE: 'memory' })
    expect(production.ok ? [] : production.problems).toEqual([
      'JWT_PUBLIC_KEY or JWKS_URL is required when NODE_ENV is production',
      'JWT_ISSUER is required when NODE_ENV is production',
      'JWT_AUDIENCE is required when NODE_ENV is production',
      'REFERRALS_MASTER_KEY is required when NODE_ENV is production',
      'REFERRALS_STORE=memory is not allowed when NODE_ENV is production',
    ])
    expect(parseConfig({ REFERRALS_STORE: 'eventstoredb' })).toEqual({
      ok: false,
      problems: ['EVENTSTORE_CONNECTION_STRING is required when REFERRALS_STORE is eventstoredb'],
    })
  })

  it('never prints secrets', () => {
    const parsed = parseConfig({ DATABASE_URL: 'postgres://u:hunter2@db/x', REFERRALS_MASTER_KEY: KEY })
    if (!parsed.ok) throw new Error('expected a valid configuration')
    const shown = [
      JSON.stringify(parsed.config),
      inspect(parsed.config, { depth: 10 }),
      String(parsed.config.databaseUrl),
    ]
    for (const text of shown) {
      expect(text).not.toContain('hunter2')
      expect(text).not.toContain(KEY)
      expect(text).toContain('[redacted]')
    }
  })
})

describe('loadConfig', () => {
  let dataDir: string
  beforeEach(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'referrals-config-'))
  })
  afterEach(async () => {
    await rm(dataDir, { recursive: true, force: true })
  })

  it('throws a ConfigError listing every problem', async () => {
    const error = await loadConfig({ PORT: 'x', LOG_LEVEL: 'y' }, () => undefined).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(ConfigError)
    expect((error as ConfigError).problems).toHaveLength(2)
    expect((error as ConfigError).message).toContain('PORT must be an integer port 0-65535')
  })

  it('generates a development master key once, persists it 0600 and warns once (when it is generated) without printing it', async () => {
    const warnings: string[] = []
    const first = await loadConfig({ REFERRALS_DATA_DIR: dataDir }, (m) => warnings.push(m))
    const second = await loadConfig({ REFERRALS_DATA_DIR: dataDir }, (m) => warnings.push(m))
    const key = first.masterKey?.reveal()
    expect(key?.length).toBe(32)
    expect(second.masterKey?.reveal()).toEqual(key)
    const file = join(dataDir, 'master.key')
    expect((await stat(file)).mode & 0o777).toBe(0o600)
    expect((await readFile(file, 'utf8')).trim()).toBe(key?.toString('base64'))
    // Said once, when the key is generated: the second run (a CLI call, a restart) is silent.
    expect(warnings).toHaveLength(1)
    expect(warnings[0]).toContain('REFERRALS_MASTER_KEY is not set')
    expect(warnings.join()).not.toContain(key?.toString('base64'))
  })

  it('uses the configured master key and writes nothing', async () => {
    const config = await loadConfig(
      { REFERRALS_DATA_DIR: dataDir, REFERRALS_MASTER_KEY: KEY },
      () => undefined,
    )
    expect(config.masterKey?.reveal()).toEqual(Buffer.alloc(32, 7))
    await expect(stat(join(dataDir, 'master.key'))).rejects.toThrow()
  })
})
