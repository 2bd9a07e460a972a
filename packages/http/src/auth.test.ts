import { mkdtemp, readFile, rm, stat } from 'node:fs/promises'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, UnsecuredJWT } from 'jose'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createTokenVerifier, issueDevToken, runTokenCommand, verifierFromConfig } from './auth.js'
import { parseConfig } from './config.js'
import { buildTestApp, TEST_AUDIENCE, TEST_ISSUER, type TestApp } from './testing.js'
import { demoRoutes, demoState } from './testing-demo.js'

const nowSeconds = () => Math.floor(Date.now() / 1000)

describe('bearer authentication', () => {
  let current: TestApp
  beforeEach(async () => {
    current = await buildTestApp({ registerRoutes: demoRoutes(demoState()) })
  })
  afterEach(async () => {
    await current.app.close()
  })
  const get = (authorization?: string) =>
    current.app.inject({
      method: 'GET',
      url: '/demo/items',
      headers: authorization === undefined ? {} : { authorization },
    })
  const expectUnauthorized = async (authorization: string | undefined, challenge: string) => {
    const res = await get(authorization)
    expect(res.statusCode).toBe(401)
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/)
    expect(res.headers['www-authenticate']).toBe(challenge)
    expect(res.json().type).toBe('https://referrals.dev/problems/unauthorized')
  }
  const INVALID = 'Bearer realm="referrals", error="invalid_token"'

  it('accepts a valid token and resolves the actor', async () => {
    const res = await get(`Bearer ${await current.token({ userId: 'u-1', roles: ['admin'] })}`)
    expect(res.statusCode).toBe(200)
  })

  it('answers 401 with a challenge when the token is missing or not a bearer token', async () => {
    await expectUnauthorized(undefined, 'Bearer realm="referrals"')
    await expectUnauthorized('Basic dXNlcjpwYXNz', INVALID)
    await expectUnauthorized('Bearer not a token', INVALID)
    await expectUnauthorized('Bearer abc.def.ghi', INVALID)
  })

  it('answers 401 for expired and not-yet-valid tokens (beyond the clock tolerance)', async () => {
    const expired = await current.token(
      { userId: 'u-1' },
      { issuedAt: nowSeconds() - 7200, ttlSeconds: 3600 },
    )
    await expectUnauthorized(`Bearer ${expired}`, INVALID)
    const future = await current.token({ userId: 'u-1' }, { issuedAt: nowSeconds() + 600 })
    await expectUnauthorized(`Bearer ${future}`, INVALID)
    const justExpired = await current.token(
      { userId: 'u-1' },
      { issuedAt: nowSeconds() - 62, ttlSeconds: 60 },
    )
    expect((await get(`Bearer ${justExpired}`)).statusCode).toBe(200)
  })

  it('answers 401 for the wrong audience or issuer', async () => {
    await expectUnauthorized(
      `Bearer ${await current.token({ userId: 'u-1' }, { audience: 'other-api' })}`,
      INVALID,
    )
    await expectUnauthorized(
      `Bearer ${await current.token({ userId: 'u-1' }, { issuer: 'someone-else' })}`,
      INVALID,
    )
  })

  it('refuses alg none, HS256 signed with the public key, and another key', async () => {
    const claims = { sub: 'u-1', roles: [] }
    const unsecured = new UnsecuredJWT(claims)
      .setIssuer(TEST_ISSUER)
      .setAudience(TEST_AUDIENCE)
      .setExpirationTime('1h')
      .encode()
    await expectUnauthorized(`Bearer ${unsecured}`, INVALID)

    const publicPem = await exportSPKI(current.signing.publicKey)
    const hmac = await new SignJWT(claims)
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer(TEST_ISSUER)
      .setAudience(TEST_AUDIENCE)
      .setExpirationTime('1h')
      .sign(new TextEncoder().encode(publicPem))
    await expectUnauthorized(`Bearer ${hmac}`, INVALID)

    const stranger = await generateKeyPair('EdDSA')
    const forged = await current.token({ userId: 'u-1' }, { privateKey: stranger.privateKey })
    await expectUnauthorized(`Bearer ${forged}`, INVALID)

    const es = await generateKeyPair('ES256')
    const otherAlg = await current.token({ userId: 'u-1' }, { privateKey: es.privateKey, algorithm: 'ES256' })
    await expectUnauthorized(`Bearer ${otherAlg}`, INVALID)
  })

  it('refuses RS256 tokens and a valid token whose payload was tampered with', async () => {
    const rsa = await generateKeyPair('RS256')
    const rs = await new SignJWT({ sub: 'u-1', roles: [] })
      .setProtectedHeader({ alg: 'RS256' })
      .setIssuer(TEST_ISSUER)
      .setAudience(TEST_AUDIENCE)
      .setExpirationTime('1h')
      .sign(rsa.privateKey)
    await expectUnauthorized(`Bearer ${rs}`, INVALID)

    const valid = await current.token({ userId: 'u-1' })
    const [header, payload, signature] = valid.split('.') as [string, string, string]
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'))
    const escalated = Buffer.from(JSON.stringify({ ...claims, roles: ['admin'] })).toString('base64url')
    await expectUnauthorized(`Bearer ${header}.${escalated}.${signature}`, INVALID)
    expect((await get(`Bearer ${valid}`)).statusCode).toBe(200)
  })

  it('answers 401 when the claims do not decode (bad subject, unknown role, no expiry)', async () => {
    const sign = (claims: Record<string, unknown>, exp: boolean) => {
      const jwt = new SignJWT(claims)
        .setProtectedHeader({ alg: 'EdDSA' })
        .setIssuer(TEST_ISSUER)
        .setAudience(TEST_AUDIENCE)
      return (exp ? jwt.setExpirationTime('1h') : jwt).sign(current.signing.privateKey)
    }
    await expectUnauthorized(`Bearer ${await sign({ sub: 'has space' }, true)}`, INVALID)
    await expectUnauthorized(`Bearer ${await sign({ sub: 'u-1', roles: ['superuser'] }, true)}`, INVALID)
    await expectUnauthorized(`Bearer ${await sign({ sub: 'u-1' }, false)}`, INVALID)
    expect((await get(`Bearer ${await sign({ sub: 'u-1' }, true)}`)).statusCode).toBe(200)
  })

  it('passes the token subject and roles to the actor port', async () => {
    await current.app.close()
    const seen: unknown[] = []
    current = await buildTestApp({
      registerRoutes: demoRoutes(demoState()),
      resolveActor: async (userId, roles) => {
        seen.push({ userId, roles })
        return { kind: 'user', userId, platformRoles: roles, memberships: [] }
      },
    })
    await get(`Bearer ${await current.token({ userId: 'u-42', roles: ['auditor'] })}`)
    expect(seen).toEqual([{ userId: 'u-42', roles: ['auditor'] }])
  })
})

describe('keys from configuration and dev tokens', () => {
  let dataDir: string
  beforeEach(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'referrals-auth-'))
  })
  afterEach(async () => {
    await rm(dataDir, { recursive: true, force: true })
  })
  const devConfig = () => {
    const parsed = parseConfig({ REFERRALS_DATA_DIR: dataDir, REFERRALS_STORE: 'memory' })
    if (!parsed.ok) throw new Error(parsed.problems.join())
    return parsed.config
  }

  it('issues dev tokens with a key pair persisted in the data dir, verified by the config verifier', async () => {
    const config = devConfig()
    const token = await issueDevToken(config, { userId: 'dev-user', roles: ['admin'] })
    const mode = (await stat(join(dataDir, 'jwt-dev-private.pem'))).mode & 0o777
    expect(mode).toBe(0o600)
    const verify = await verifierFromConfig(config)
    expect(await verify(token)).toEqual({ userId: 'dev-user', roles: ['admin'] })
    // A second issue reuses the same key: an older token still verifies with a fresh verifier.
    const before = await readFile(join(dataDir, 'jwt-dev-public.pem'), 'utf8')
    await issueDevToken(config, { userId: 'dev-user' })
    expect(await readFile(join(dataDir, 'jwt-dev-public.pem'), 'utf8')).toBe(before)
    expect(await (await verifierFromConfig(config))(token)).toEqual({ userId: 'dev-user', roles: ['admin'] })
  })

  it('runs `referrals token --user <id>` and rejects bad arguments', async () => {
    const config = devConfig()
    const ok = await runTokenCommand(['--user', 'u-7', '--role', 'auditor', '--ttl', '600'], config)
    expect(ok.ok).toBe(true)
    if (!ok.ok) return
    expect(await (await verifierFromConfig(config))(ok.token)).toEqual({ userId: 'u-7', roles: ['auditor'] })
    for (const argv of [
      [],
      ['--user'],
      ['--user', 'bad id'],
      ['--role', 'root', '--user', 'u'],
      ['--ttl', '-1'],
    ]) {
      const result = await runTokenCommand(argv, config)
      expect(result.ok).toBe(false)
    }
  })

  it('verifies with a configured PEM public key and refuses to issue dev tokens then', async () => {
    const pair = await generateKeyPair('ES256', { extractable: true })
    const parsed = parseConfig({
      REFERRALS_DATA_DIR: dataDir,
      JWT_PUBLIC_KEY: (await exportSPKI(pair.publicKey)).replace(/\n/g, '\\n'),
      JWT_ALGORITHM: 'ES256',
      JWT_ISSUER: 'https://idp.example',
      JWT_AUDIENCE: 'referrals',
    })
    if (!parsed.ok) throw new Error(parsed.problems.join())
    const verify = await verifierFromConfig(parsed.config)
    const token = await new SignJWT({ roles: [] })
      .setProtectedHeader({ alg: 'ES256' })
      .setSubject('u-1')
      .setIssuer('https://idp.example')
      .setAudience('referrals')
      .setExpirationTime('5m')
      .sign(pair.privateKey)
    expect(await verify(token)).toEqual({ userId: 'u-1', roles: [] })
    await expect(issueDevToken(parsed.config, { userId: 'u-1' })).rejects.toThrow(/development key/)
  })

  it('verifies with keys fetched from a JWKS URL, matching the key id', async () => {
    const pair = await generateKeyPair('ES256', { extractable: true })
    const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'key-1', alg: 'ES256', use: 'sig' }
    const server = createServer((request, response) => {
      if (request.url !== '/jwks') {
        response.writeHead(404).end()
        return
      }
      response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] }))
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    try {
      const { port } = server.address() as AddressInfo
      const parsed = parseConfig({
        REFERRALS_DATA_DIR: dataDir,
        JWKS_URL: `http://127.0.0.1:${port}/jwks`,
        JWT_ALGORITHM: 'ES256',
        JWT_ISSUER: 'https://idp.example',
        JWT_AUDIENCE: 'referrals',
      })
      if (!parsed.ok) throw new Error(parsed.problems.join())
      const verify = await verifierFromConfig(parsed.config)
      const sign = (kid: string) =>
        new SignJWT({ roles: ['auditor'] })
          .setProtectedHeader({ alg: 'ES256', kid })
          .setSubject('u-1')
          .setIssuer('https://idp.example')
          .setAudience('referrals')
          .setExpirationTime('5m')
          .sign(pair.privateKey)
      expect(await verify(await sign('key-1'))).toEqual({ userId: 'u-1', roles: ['auditor'] })
      expect(await verify(await sign('unknown-key'))).toBeUndefined()
    } finally {
      await new Promise((resolve) => server.close(resolve))
    }
  })

  it('createTokenVerifier honours the clock tolerance', async () => {
    const { privateKey, publicKey } = await generateKeyPair('EdDSA')
    const token = await new SignJWT({})
      .setProtectedHeader({ alg: 'EdDSA' })
      .setSubject('u-1')
      .setIssuer('i')
      .setAudience('a')
      .setExpirationTime(1_000_000)
      .sign(privateKey)
    const at = (seconds: number) =>
      createTokenVerifier({
        issuer: 'i',
        audience: 'a',
        algorithm: 'EdDSA',
        key: publicKey,
        clockToleranceSeconds: 5,
        currentDate: () => new Date(seconds * 1000),
      })(token)
    expect(await at(1_000_004)).toEqual({ userId: 'u-1', roles: [] })
    expect(await at(1_000_006)).toBeUndefined()
  })

  describe('remembered verifications', () => {
    const setup = async () => {
      const { privateKey, publicKey } = await generateKeyPair('EdDSA')
      const sign = (sub: string, exp: number) =>
        new SignJWT({})
          .setProtectedHeader({ alg: 'EdDSA' })
          .setSubject(sub)
          .setIssuer('i')
          .setAudience('a')
          .setExpirationTime(exp)
          .sign(privateKey)
      let keyLookups = 0
      let seconds = 1_000_000
      const verify = createTokenVerifier({
        issuer: 'i',
        audience: 'a',
        algorithm: 'EdDSA',
        // A key function, so every full verification is counted.
        key: async () => {
          keyLookups++
          return publicKey
        },
        clockToleranceSeconds: 0,
        cacheTtlSeconds: 60,
        currentDate: () => new Date(seconds * 1000),
      })
      return {
        sign,
        verify,
        lookups: () => keyLookups,
        setSeconds: (s: number) => {
          seconds = s
        },
      }
    }

    it('checks a repeated token’s signature once', async () => {
      const v = await setup()
      const token = await v.sign('u-1', 1_000_500)
      for (let i = 0; i < 5; i++) expect(await v.verify(token)).toEqual({ userId: 'u-1', roles: [] })
      expect(v.lookups()).toBe(1)
    })

    it('refuses a remembered token once it expired, and checks again after the TTL', async () => {
      const v = await setup()
      const shortLived = await v.sign('u-1', 1_000_010)
      expect(await v.verify(shortLived)).toBeDefined()
      v.setSeconds(1_000_011)
      expect(await v.verify(shortLived)).toBeUndefined()
      const longLived = await v.sign('u-2', 1_100_000)
      expect(await v.verify(longLived)).toBeDefined()
      const before = v.lookups()
      v.setSeconds(1_000_011 + 61)
      expect(await v.verify(longLived)).toEqual({ userId: 'u-2', roles: [] })
      expect(v.lookups()).toBe(before + 1)
    })

    it('never lets a remembered token vouch for an altered one, nor a clock set back before it', async () => {
      const v = await setup()
      const token = await v.sign('u-1', 1_000_500)
      expect(await v.verify(token)).toBeDefined()
      const [header, payload, signature] = token.split('.') as [string, string, string]
      const forged = Buffer.from(
        JSON.stringify({ sub: 'admin', iss: 'i', aud: 'a', exp: 1_000_500 }),
      ).toString('base64url')
      expect(await v.verify(`${header}.${forged}.${signature}`)).toBeUndefined()
      // A changed signature character: one in the middle (every bit of it is signature, unlike the
      // last character's padding bits), always different from the original (`AA` at the end was
      // the original signature about once in a thousand runs, and CI met it).
      const mid = signature.length >> 1
      const altered = `${signature.slice(0, mid)}${signature[mid] === 'A' ? 'B' : 'A'}${signature.slice(mid + 1)}`
      expect(altered).not.toBe(signature)
      expect(await v.verify(`${header}.${payload}.${altered}`)).toBeUndefined()
      const before = v.lookups()
      v.setSeconds(999_000)
      await v.verify(token)
      expect(v.lookups()).toBe(before + 1)
    })
  })
})
