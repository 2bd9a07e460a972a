import { randomBytes, randomInt } from 'node:crypto'
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PhiAccessed, type UserId, verifyEventStore } from '@referrals/core'
import { sha256Hasher } from '@referrals/crypto'
import { createTestDatabase, type TestDatabase } from '@referrals/postgres/testing'
import type { LightMyRequestResponse } from 'fastify'
import * as E from 'fp-ts/lib/Either.js'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { main } from '../cli.js'
import { type Config, parseConfig } from '../config.js'
import { fileAttachmentStore } from '../routes/attachment-store.js'
import { registerResourceRoutes } from '../routes/resources.js'
import { openRuntime, type Runtime } from '../server.js'
import { buildTestApp, TEST_AUDIENCE, TEST_ISSUER, type TestApp } from '../testing.js'

/**
 * Privacy and audit acceptance tests (SPEC §3) on a real PostgreSQL database: the runtime is the
 * production wiring (`openRuntime`: hash-chained PostgreSQL event store, AES-GCM PHI under
 * per-patient keys in `referrals_keys`, blind index, routing), driven through the HTTP API and the
 * `referrals` CLI. Every PHI value is a unique canary string, searched for afterwards in every
 * table, in the server's files on disk and in everything that was logged or printed.
 */

const tag = randomBytes(5).toString('hex')
const digits = (n: number) => Array.from({ length: n }, () => randomInt(10)).join('')

/** Lower-case letters and digits only, so a normalised copy (blind-index input) is the same bytes. */
const canariesFor = (who: string) => ({
  givenName: `zq${who}given${tag}`,
  familyName: `zq${who}family${tag}`,
  healthNumber: `9${digits(13)}`,
  email: `zq${who}email${tag}@example.org`,
  phone: `+1${digits(10)}`,
  address: `zq${who}address${tag} street`,
  reason: `zq${who}reason${tag} knee pain`,
  declineNote: `zq${who}declinenote${tag}`,
  messageFromSender: `zq${who}messagesender${tag}`,
  messageFromRecipient: `zq${who}messagerecipient${tag}`,
  urgencyReason: `zq${who}urgencyreason${tag}`,
  location: `zq${who}location${tag} room`,
  outcomeNote: `zq${who}outcome${tag} seen`,
  attachmentName: `zq${who}attachment${tag}.pdf`,
  attachmentContent: `zq${who}attachmentcontent${tag}`,
})
type Canaries = ReturnType<typeof canariesFor>

const USERS = {
  admin: { userId: 'admin', roles: ['admin'] as const },
  auditor: { userId: 'auditor', roles: ['auditor'] as const },
  gp: { userId: 'dr-gp', roles: [] },
  specA: { userId: 'dr-spec-a', roles: [] },
  specB: { userId: 'dr-spec-b', roles: [] },
  stranger: { userId: 'stranger', roles: [] },
} as const
type Who = keyof typeof USERS
const ownerOfPractice: Readonly<Record<string, Who>> = { 'spec-a': 'specA', 'spec-b': 'specB' }

const sendBody = (referralId: string, patientId: string, c: Canaries) => ({
  referralId,
  senderPracticeId: 'clinic',
  patientId,
  phi: {
    patient: {
      givenName: c.givenName,
      familyName: c.familyName,
      dateOfBirth: '1961-02-03',
      healthNumber: c.healthNumber,
      email: c.email,
      phone: c.phone,
      address: c.address,
      consent: { email: true, sms: false, phone: true },
    },
    reason: c.reason,
  },
  specialtyId: 'ortho',
  category: { categoryId: 'knee' },
  regionId: 'north',
  urgency: 'routine',
  target: { kind: 'pooled' },
})

interface Harness {
  readonly config: Config
  readonly runtime: Runtime
  readonly test: TestApp
  readonly call: (
    who: Who,
    method: 'GET' | 'POST',
    url: string,
    payload?: unknown,
    headers?: Record<string, string>,
  ) => Promise<LightMyRequestResponse>
  readonly ok: (who: Who, method: 'GET' | 'POST', url: string, payload?: unknown) => Promise<unknown>
  readonly close: () => Promise<void>
}

/** The production runtime on the test database, with the HTTP app in front and its logs captured. */
const openHarness = async (env: Readonly<Record<string, string>>): Promise<Harness> => {
  const parsed = parseConfig(env)
  if (!parsed.ok) throw new Error(parsed.problems.join('; '))
  const config = parsed.config
  const runtime = await openRuntime(config)
  const test = await buildTestApp({
    config,
    store: runtime.store,
    resolveActor: (userId, roles) => runtime.engine.directory.resolveActor(userId as UserId, roles),
    idempotencyStore: runtime.idempotencyStore,
    registerRoutes: registerResourceRoutes({
      engine: runtime.engine,
      routing: runtime.routing,
      attachments: fileAttachmentStore({
        dir: join(env.REFERRALS_DATA_DIR ?? '', 'attachments'),
        keys: runtime.keys,
      }),
      attachmentLimits: config,
    }),
  })
  const tokens = new Map<Who, string>()
  for (const who of Object.keys(USERS) as Who[]) {
    const user = USERS[who]
    tokens.set(who, await test.token({ userId: user.userId, roles: [...user.roles] }))
  }
  const call: Harness['call'] = (who, method, url, payload, headers = {}) =>
    test.app.inject({
      method,
      url,
      headers: { authorization: `Bearer ${tokens.get(who)}`, ...headers },
      ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }),
    })
  const ok: Harness['ok'] = async (who, method, url, payload) => {
    const res = await call(who, method, url, payload)
    if (res.statusCode >= 300) throw new Error(`${method} ${url} -> ${res.statusCode} ${res.body}`)
    return res.json()
  }
  return {
    config,
    runtime,
    test,
    call,
    ok,
    close: async () => {
      await test.app.close()
      await runtime.close()
    },
  }
}

/** Catalog, a referring clinic and two verified specialists (so a decline re-routes). */
const seedPractices = async (h: Harness) => {
  await h.ok('admin', 'POST', '/specialties', { specialtyId: 'ortho', name: 'Orthopedics' })
  await h.ok('admin', 'POST', '/specialties/ortho/categories', { categoryId: 'knee', name: 'Knee' })
  await h.ok('gp', 'POST', '/practices', { practiceId: 'clinic', name: 'Clinic', kind: 'clinic' })
  for (const [practiceId, who] of Object.entries(ownerOfPractice)) {
    await h.ok(who, 'POST', '/practices', { practiceId, name: practiceId, kind: 'specialist' })
    await h.ok(who, 'POST', `/practices/${practiceId}/specialist-settings`, {
      specialtyId: 'ortho',
      regions: ['north'],
      categories: [{ categoryId: 'knee' }],
      fte: 1,
      insuranceNetworks: [],
      preferredProviderListed: true,
    })
    await h.ok('admin', 'POST', `/practices/${practiceId}/verify`, {})
  }
}

/** Runs the `referrals` CLI in-process with the given environment, capturing what it prints. */
const runCli = async (argv: readonly string[], env: Readonly<Record<string, string>>) => {
  const saved = new Map(Object.keys(env).map((k) => [k, process.env[k]]))
  Object.assign(process.env, env)
  const output: string[] = []
  const capture = (chunk: unknown) => {
    output.push(String(chunk))
    return true
  }
  const out = vi.spyOn(process.stdout, 'write').mockImplementation(capture)
  const err = vi.spyOn(process.stderr, 'write').mockImplementation(capture)
  try {
    const code = await main(argv)
    return { code, output: output.join('') }
  } finally {
    out.mockRestore()
    err.mockRestore()
    for (const [k, v] of saved) {
      if (v === undefined) delete process.env[k]
      else process.env[k] = v
    }
  }
}

/** Every row of every table of the database (system catalogs included), as text. */
const dumpDatabase = async (client: pg.Client) => {
  const tables = await client.query<{ schema: string; name: string }>(
    `SELECT n.nspname AS schema, c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'm', 'p') ORDER BY 1, 2`,
  )
  const rows: string[] = []
  const unreadable: string[] = []
  for (const { schema, name } of tables.rows) {
    const qualified = `${client.escapeIdentifier(schema)}.${client.escapeIdentifier(name)}`
    try {
      const r = await client.query<{ row: string }>(`SELECT t::text AS row FROM ${qualified} t`)
      for (const row of r.rows) rows.push(row.row)
    } catch {
      unreadable.push(`${schema}.${name}`)
    }
  }
  return { text: rows.join('\n'), tables: tables.rows.map((t) => `${t.schema}.${t.name}`), unreadable }
}

/** Which needles occur in any file under `dir` (files vanishing meanwhile are skipped). */
const scanFiles = async (dir: string, needles: readonly string[]) => {
  const buffers = needles.map((n) => Buffer.from(n, 'utf8'))
  const hits: string[] = []
  let files = 0
  let bytes = 0
  for (const entry of await readdir(dir, { recursive: true })) {
    const file = join(dir, entry)
    let content: Buffer
    try {
      if (!(await stat(file)).isFile()) continue
      content = await readFile(file)
    } catch {
      continue
    }
    files++
    bytes += content.length
    buffers.forEach((b, i) => {
      if (content.includes(b)) hits.push(`${needles[i]} in ${entry}`)
    })
  }
  return { files, bytes, hits }
}

const BOUNDARY = '----referrals-privacy-boundary'

/** A one-file multipart upload of a small PDF carrying `content`. */
const pdfUpload = (fileName: string, content: string) => ({
  payload: Buffer.concat([
    Buffer.from(
      `--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="${fileName}"\r\nContent-Type: application/pdf\r\n\r\n`,
    ),
    Buffer.from(`%PDF-1.4\n% ${content}\n%%EOF\n`),
    Buffer.from(`\r\n--${BOUNDARY}--\r\n`),
  ]),
  headers: { 'content-type': `multipart/form-data; boundary=${BOUNDARY}` },
})

/** Uploads an attachment as `who`; returns its id. */
const upload = async (h: Harness, who: Who, referralId: string, c: Canaries): Promise<string> => {
  const { payload, headers } = pdfUpload(c.attachmentName, c.attachmentContent)
  const res = await h.call(who, 'POST', `/referrals/${referralId}/attachments`, payload, headers)
  if (res.statusCode !== 201) throw new Error(`upload -> ${res.statusCode} ${res.body}`)
  return (res.json() as { attachmentId: string }).attachmentId
}

const hitsIn = (text: string, needles: readonly string[]) => needles.filter((n) => text.includes(n))

/**
 * The referral ids a patient search returns once it finds `expected`. The list is a catch-up read
 * model: it sees an event only when every older transaction in the cluster has ended (other test
 * files share the server), so it may lag by a moment; it is polled for up to 20 s.
 */
const searchUntilFound = async (h: Harness, term: string, expected: string): Promise<string[]> => {
  const deadline = Date.now() + 20_000
  for (;;) {
    const page = (await h.ok(
      'gp',
      'GET',
      `/practices/clinic/referrals?box=sent&patient=${encodeURIComponent(term)}`,
    )) as {
      items: { referralId: string }[]
    }
    const ids = page.items.map((i) => i.referralId)
    if (ids.includes(expected) || Date.now() > deadline) return ids
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

interface AuditRow {
  readonly streamId: string
  readonly type: string
  readonly data: Record<string, unknown>
  readonly metadata: { readonly occurredAt: string }
}

let db: TestDatabase
let workDir: string
let env: Record<string, string>

beforeAll(async () => {
  db = await createTestDatabase()
  workDir = await mkdtemp(join(tmpdir(), 'referrals-privacy-'))
  env = {
    REFERRALS_STORE: 'postgres',
    DATABASE_URL: db.url,
    REFERRALS_MASTER_KEY: randomBytes(32).toString('base64'),
    REFERRALS_DATA_DIR: workDir,
    JWT_ISSUER: TEST_ISSUER,
    JWT_AUDIENCE: TEST_AUDIENCE,
    LOG_LEVEL: 'trace',
  }
})
afterAll(async () => {
  await db?.drop()
  if (workDir !== undefined) await rm(workDir, { recursive: true, force: true })
})

describe('privacy and audit on PostgreSQL (production wiring, HTTP API and CLI)', () => {
  let h: Harness
  let sql: pg.Pool
  beforeAll(async () => {
    h = await openHarness(env)
    await seedPractices(h)
    sql = new pg.Pool({ connectionString: db.url, max: 2 })
  })
  afterAll(async () => {
    await sql?.end()
    await h?.close()
  })

  it('forgets a patient: no canary left in any table, file or log; history replays, the chain verifies, search finds nothing', async () => {
    const forgotten = canariesFor('f')
    const kept = canariesFor('k')
    const needles = Object.values(forgotten)
    const referralId = `ref-forget-${tag}`
    const patientId = `pat-forget-${tag}`
    const keptReferralId = `ref-kept-${tag}`
    const keptPatientId = `pat-kept-${tag}`

    // The whole lifecycle through the API, every PHI field a canary.
    const sent = await h.call('gp', 'POST', '/referrals', sendBody(referralId, patientId, forgotten), {
      'idempotency-key': `send-${tag}`,
    })
    expect(sent.statusCode).toBe(201)
    await h.ok('gp', 'POST', '/referrals', sendBody(keptReferralId, keptPatientId, kept))
    const first = (sent.json() as { recipientPracticeId: string }).recipientPracticeId
    const firstOwner = ownerOfPractice[first] as Who
    const declined = (await h.ok(firstOwner, 'POST', `/referrals/${referralId}/decline`, {
      reasonCode: 'capacity',
      phi: { note: forgotten.declineNote },
    })) as { recipientPracticeId: string; status: string }
    expect(declined.status).toBe('pending')
    const second = declined.recipientPracticeId
    expect(second).not.toBe(first)
    const secondOwner = ownerOfPractice[second] as Who
    await h.ok('gp', 'POST', `/referrals/${referralId}/messages`, {
      messageId: 'm-1',
      phi: { body: forgotten.messageFromSender },
    })
    const attachmentId = await upload(h, 'gp', referralId, forgotten)
    await h.ok(secondOwner, 'POST', `/referrals/${referralId}/accept`, {})
    await h.ok(secondOwner, 'POST', `/referrals/${referralId}/messages`, {
      messageId: 'm-2',
      phi: { body: forgotten.messageFromRecipient },
    })
    await h.ok(secondOwner, 'POST', `/referrals/${referralId}/urgency`, {
      urgency: 'urgent',
      phi: { reason: forgotten.urgencyReason },
    })
    await h.ok(secondOwner, 'POST', `/referrals/${referralId}/appointment`, {
      at: '2030-01-02T10:00:00.000Z',
      phi: { location: forgotten.location },
    })
    await h.ok(secondOwner, 'POST', `/referrals/${referralId}/complete`, {
      phi: { outcomeNote: forgotten.outcomeNote },
    })

    // Before forgetting, the API shows every canary to the sender and search finds the patient.
    const before = await h.call('gp', 'GET', `/referrals/${referralId}`)
    const notInDetail = [forgotten.declineNote, forgotten.urgencyReason, forgotten.attachmentContent]
    expect(hitsIn(before.body, needles)).toEqual(needles.filter((n) => !notInDetail.includes(n)))
    const historyBefore = await h.call('gp', 'GET', `/referrals/${referralId}/history`)
    expect(hitsIn(historyBefore.body, needles)).toEqual(
      needles.filter((n) => n !== forgotten.attachmentContent),
    )
    const downloadUrl = `/referrals/${referralId}/attachments/${attachmentId}`
    const download = await h.call('gp', 'GET', downloadUrl)
    expect(download.statusCode).toBe(200)
    expect(download.body).toContain(forgotten.attachmentContent)
    // The index keeps tokens of the full name, the family name and the health number.
    const searchTerms = [
      `${forgotten.givenName} ${forgotten.familyName}`,
      forgotten.familyName,
      forgotten.healthNumber,
    ]
    for (const term of searchTerms) {
      expect(await searchUntilFound(h, term, referralId), term).toEqual([referralId])
    }

    // Forget through the CLI (its own runtime: another process's view of the same databases), then
    // rebuild the PostgreSQL read models from the log, as the runbook says.
    const forget = await runCli(['forget-patient', '--patient', `clinic:${patientId}`], env)
    expect(forget.code).toBe(0)
    const rebuild = await runCli(['rebuild-projections'], env)
    expect(rebuild.code).toBe(0)
    expect(rebuild.output).toContain('rebuilt')

    // A restarted service on the rebuilt read models.
    const restarted = await openHarness(env)
    try {
      const after = await restarted.call('gp', 'GET', `/referrals/${referralId}`)
      expect(after.statusCode).toBe(200)
      const view = after.json()
      expect(view).toMatchObject({
        phiVisible: true,
        patient: null,
        reason: null,
        outcomeNote: null,
        appointment: { at: '2030-01-02T10:00:00.000Z', location: null, noShow: false },
        messages: [
          { messageId: 'm-1', body: null },
          { messageId: 'm-2', body: null },
        ],
        attachments: [{ attachmentId, contentType: 'application/pdf', fileName: null }],
        referral: {
          referralId,
          patientId: `clinic:${patientId}`,
          status: 'completed',
          urgency: 'urgent',
          recipientPracticeId: second,
        },
        declinedBy: [first],
      })
      const history = await restarted.call('gp', 'GET', `/referrals/${referralId}/history`)
      expect(history.statusCode).toBe(200)
      const entries = history.json().entries as { type: string; data: { phi?: unknown } }[]
      expect(entries.map((e) => e.type)).toEqual([
        'ReferralSent',
        'ReferralDelivered',
        'ReferralDeclined',
        'ReferralDelivered',
        'MessagePosted',
        'AttachmentAdded',
        'ReferralAccepted',
        'MessagePosted',
        'ReferralUrgencyChanged',
        'AppointmentScheduled',
        'ReferralCompleted',
      ])
      for (const e of entries.filter((x) => x.data.phi !== undefined))
        expect(e.data.phi).toEqual({ redacted: true })
      // The other patient is untouched: readable and findable. Once the rebuilt index finds it, it
      // has read past the forgotten referral too (sent earlier).
      const keptView = await restarted.call('gp', 'GET', `/referrals/${keptReferralId}`)
      expect(keptView.json().patient).toMatchObject({
        givenName: kept.givenName,
        healthNumber: kept.healthNumber,
      })
      expect(await searchUntilFound(restarted, kept.familyName, keptReferralId)).toEqual([keptReferralId])
      for (const term of searchTerms) {
        const found = (await restarted.ok(
          'gp',
          'GET',
          `/practices/clinic/referrals?box=sent&patient=${encodeURIComponent(term)}`,
        )) as {
          items: unknown[]
        }
        expect(found.items, term).toEqual([])
      }
      expect(hitsIn(restarted.test.logs(), [...needles, ...Object.values(kept)])).toEqual([])
    } finally {
      await restarted.close()
    }

    // The forgetting process's old instance reads redacted PHI at once too (no key cache).
    const stale = await h.call('gp', 'GET', `/referrals/${referralId}`)
    expect(stale.json()).toMatchObject({ patient: null, reason: null, outcomeNote: null })
    const staleDownload = await h.call('gp', 'GET', downloadUrl)
    expect(staleDownload.statusCode).toBe(404)
    expect(hitsIn(staleDownload.body, needles)).toEqual([])

    // The attachment blobs on disk are ciphertext only.
    const blobs = await scanFiles(workDir, ['RFA1', ...needles])
    expect(blobs.hits.filter((hit) => hit.startsWith('RFA1 ')).length).toBeGreaterThan(0)
    expect(blobs.hits.filter((hit) => !hit.startsWith('RFA1 '))).toEqual([])

    // History still replays and the chain (over the stored ciphertext) still verifies.
    const verified = await verifyEventStore(h.runtime.store, sha256Hasher)()
    expect(E.isRight(verified) && verified.right.ok).toBe(true)
    const verify = await runCli(['verify'], env)
    expect(verify.code).toBe(0)
    expect(verify.output).toMatch(/^OK: \d+ events in \d+ streams verified/m)
    const replay = await runCli(['replay'], env)
    expect(replay.code).toBe(0)
    expect(replay.output).toMatch(/^referral\t13 events$/m)
    const audit = await runCli(['export-audit', '--patient', `clinic:${patientId}`], env)
    expect(audit.code).toBe(0)
    expect(
      audit.output.split('\r\n').filter((l) => l.includes(`,${referralId},clinic:${patientId},`)).length,
    ).toBeGreaterThan(0)

    // Every table of the database, every file of the server, every log line and CLI output.
    const admin = new pg.Client({ connectionString: db.url })
    await admin.connect()
    try {
      const control = `zqcontrol${tag}`
      await admin.query('CREATE TABLE IF NOT EXISTS public.privacy_probe (note text)')
      await admin.query('INSERT INTO public.privacy_probe VALUES ($1)', [control])
      await admin.query('ANALYZE')
      const dump = await dumpDatabase(admin)
      expect(dump.tables).toEqual(
        expect.arrayContaining([
          'referrals.events',
          'referrals_keys.patient_keys',
          'referrals_http.idempotency_keys',
          'pg_catalog.pg_statistic',
        ]),
      )
      expect(dump.unreadable).toEqual([])
      // The dump is real: it holds the pseudonymous ids, and the control string.
      expect(dump.text).toContain(patientId)
      expect(dump.text).toContain(control)
      expect(hitsIn(dump.text, needles)).toEqual([])

      await admin.query('CHECKPOINT')
      const dataDir = (await admin.query<{ data_directory: string }>('SHOW data_directory')).rows[0]
        ?.data_directory as string
      const local = await stat(dataDir).then(
        (s) => s.isDirectory(),
        () => false,
      )
      if (!local) {
        process.stderr.write(
          `privacy test: data directory ${dataDir} is not on this machine; file scan skipped\n`,
        )
      } else {
        const scan = await scanFiles(dataDir, [control, ...needles])
        expect(scan.files).toBeGreaterThan(0)
        // The control string reached the files, so an unencrypted canary would have too.
        expect(scan.hits.filter((hit) => hit.startsWith(control)).length).toBeGreaterThan(0)
        expect(scan.hits.filter((hit) => !hit.startsWith(control))).toEqual([])
      }
    } finally {
      await admin.query('DROP TABLE IF EXISTS public.privacy_probe')
      await admin.end()
    }

    const everythingLogged = [
      h.test.logs(),
      forget.output,
      rebuild.output,
      verify.output,
      replay.output,
      audit.output,
    ].join('\n')
    expect(h.test.logs()).toContain(`"route":"/referrals/:referralId"`)
    expect(hitsIn(everythingLogged, needles)).toEqual([])
  })

  it('records exactly one complete audit record for every PHI read, granted or denied, and none for reads without PHI', async () => {
    const c = canariesFor('a')
    const referralId = `ref-audit-${tag}`
    const patientId = `pat-audit-${tag}`
    const sent = (await h.ok('gp', 'POST', '/referrals', sendBody(referralId, patientId, c))) as {
      recipientPracticeId: string
    }
    const firstHolder = sent.recipientPracticeId
    const firstOwner = ownerOfPractice[firstHolder] as Who
    await h.ok(firstOwner, 'POST', `/referrals/${referralId}/decline`, { reasonCode: 'capacity' })
    const holder = firstHolder === 'spec-a' ? 'spec-b' : 'spec-a'
    const holderOwner = ownerOfPractice[holder] as Who
    const attachmentId = await upload(h, 'gp', referralId, c)
    const attachmentUrl = `/referrals/${referralId}/attachments/${attachmentId}`

    // Read with plain SQL: the store's readAll shows an event only once every older transaction in
    // the cluster has ended, and other test files share the server.
    const auditRecords = async (): Promise<AuditRow[]> => {
      const r = await sql.query<AuditRow>(
        `SELECT stream_id AS "streamId", type, data, metadata FROM referrals.events
          WHERE stream_id LIKE 'audit-%' ORDER BY global_position`,
      )
      return r.rows
    }

    interface Case {
      readonly who: Who
      readonly url: string
      readonly headers?: Record<string, string>
      readonly status: number
      /** The audit record the read must leave, or null when no PHI is involved. */
      readonly record: null | {
        readonly role: string
        readonly practiceId: string | null
        readonly purpose: string
        readonly outcome: 'granted' | 'denied'
        readonly resource: string
        readonly referralId?: string | null
        readonly patientId?: string | null
      }
    }
    const detail = '/referrals/:referralId'
    const history = '/referrals/:referralId/history'
    const download = '/referrals/:referralId/attachments/:attachmentId'
    const cases: Case[] = [
      {
        who: 'gp',
        url: `/referrals/${referralId}`,
        status: 200,
        record: {
          role: 'owner',
          practiceId: 'clinic',
          purpose: 'treatment',
          outcome: 'granted',
          resource: detail,
        },
      },
      {
        who: holderOwner,
        url: `/referrals/${referralId}`,
        headers: { 'x-purpose-of-use': 'operations' },
        status: 200,
        record: {
          role: 'owner',
          practiceId: holder,
          purpose: 'operations',
          outcome: 'granted',
          resource: detail,
        },
      },
      {
        who: 'gp',
        url: `/referrals/${referralId}?asOf=2000-01-01T00:00:00.000Z`,
        status: 404,
        record: {
          // Denied before the referral existed: no membership matches, so no role.
          role: 'none',
          practiceId: null,
          purpose: 'treatment',
          outcome: 'denied',
          resource: detail,
          patientId: null,
        },
      },
      {
        who: 'auditor',
        url: `/referrals/${referralId}`,
        status: 200,
        record: { role: 'auditor', practiceId: null, purpose: 'audit', outcome: 'granted', resource: detail },
      },
      {
        who: 'stranger',
        url: `/referrals/${referralId}`,
        headers: { 'x-purpose-of-use': 'not-a-purpose' },
        status: 404,
        record: {
          role: 'none',
          practiceId: null,
          purpose: 'treatment',
          outcome: 'denied',
          resource: detail,
        },
      },
      {
        who: 'stranger',
        url: `/referrals/ref-missing-${tag}`,
        status: 404,
        record: {
          role: 'none',
          practiceId: null,
          purpose: 'treatment',
          outcome: 'denied',
          resource: detail,
          referralId: `ref-missing-${tag}`,
          patientId: null,
        },
      },
      {
        who: 'gp',
        url: `/referrals/${referralId}/history`,
        headers: { 'x-purpose-of-use': 'legal' },
        status: 200,
        record: {
          role: 'owner',
          practiceId: 'clinic',
          purpose: 'legal',
          outcome: 'granted',
          resource: history,
        },
      },
      {
        who: holderOwner,
        url: `/referrals/${referralId}/history`,
        status: 200,
        record: {
          role: 'owner',
          practiceId: holder,
          purpose: 'treatment',
          outcome: 'granted',
          resource: history,
        },
      },
      {
        who: 'auditor',
        url: `/referrals/${referralId}/history`,
        status: 200,
        record: {
          role: 'auditor',
          practiceId: null,
          purpose: 'audit',
          outcome: 'granted',
          resource: history,
        },
      },
      {
        who: 'stranger',
        url: `/referrals/${referralId}/history`,
        status: 404,
        record: {
          role: 'none',
          practiceId: null,
          purpose: 'treatment',
          outcome: 'denied',
          resource: history,
        },
      },
      {
        who: 'gp',
        url: attachmentUrl,
        headers: { 'x-purpose-of-use': 'patient_request' },
        status: 200,
        record: {
          role: 'owner',
          practiceId: 'clinic',
          purpose: 'patient_request',
          outcome: 'granted',
          resource: download,
        },
      },
      {
        who: holderOwner,
        url: attachmentUrl,
        status: 200,
        record: {
          role: 'owner',
          practiceId: holder,
          purpose: 'treatment',
          outcome: 'granted',
          resource: download,
        },
      },
      {
        who: 'auditor',
        url: attachmentUrl,
        status: 200,
        record: {
          role: 'auditor',
          practiceId: null,
          purpose: 'audit',
          outcome: 'granted',
          resource: download,
        },
      },
      {
        who: 'stranger',
        url: attachmentUrl,
        status: 404,
        record: {
          role: 'none',
          practiceId: null,
          purpose: 'treatment',
          outcome: 'denied',
          resource: download,
        },
      },
      // The attachment content is PHI: a former recipient is refused, and the refusal recorded.
      {
        who: firstOwner,
        url: attachmentUrl,
        status: 404,
        record: {
          role: 'owner',
          practiceId: firstHolder,
          purpose: 'treatment',
          outcome: 'denied',
          resource: download,
        },
      },
      // A former recipient sees the record without PHI: nothing to audit.
      { who: firstOwner, url: `/referrals/${referralId}`, status: 200, record: null },
      { who: firstOwner, url: `/referrals/${referralId}/history`, status: 200, record: null },
      // Routes that never return PHI.
      { who: 'gp', url: `/referrals/${referralId}/routing`, status: 200, record: null },
      { who: 'gp', url: '/practices/clinic/referrals?box=sent', status: 200, record: null },
      // A patient search is a PHI lookup: audited, with no referral or patient named.
      {
        who: 'gp',
        url: `/practices/clinic/referrals?box=sent&patient=${c.familyName}`,
        status: 200,
        record: {
          role: 'owner',
          practiceId: 'clinic',
          purpose: 'treatment',
          outcome: 'granted',
          resource: '/practices/:practiceId/referrals',
          referralId: null,
          patientId: null,
        },
      },
      { who: 'gp', url: '/practices/clinic/referrals.csv?box=sent', status: 200, record: null },
    ]

    for (const [i, test] of cases.entries()) {
      const correlationId = `audit-${tag}-${i}`
      const before = (await auditRecords()).length
      const res = await h.call(test.who, 'GET', test.url, undefined, {
        'x-correlation-id': correlationId,
        ...test.headers,
      })
      const label = `${test.who} GET ${test.url}`
      expect(res.statusCode, label).toBe(test.status)
      const added = (await auditRecords()).slice(before)
      if (test.record === null) {
        expect(added, label).toEqual([])
        expect(hitsIn(res.body, Object.values(c)), label).toEqual([])
        continue
      }
      expect(added, label).toHaveLength(1)
      const event = added[0] as AuditRow
      const decoded = PhiAccessed.decode({ type: event.type, data: event.data })
      expect(E.isRight(decoded), label).toBe(true)
      expect(event.data, label).toEqual({
        userId: USERS[test.who].userId,
        role: test.record.role,
        practiceId: test.record.practiceId,
        referralId: test.record.referralId === undefined ? referralId : test.record.referralId,
        patientId: test.record.patientId === undefined ? `clinic:${patientId}` : test.record.patientId,
        purpose: test.record.purpose,
        outcome: test.record.outcome,
        channel: 'api',
        resource: test.record.resource,
        at: event.metadata.occurredAt,
        correlationId,
      })
      expect(Date.parse(event.metadata.occurredAt), label).toBeGreaterThan(Date.now() - 60_000)
      expect(event.streamId, label).toBe(`audit-${event.metadata.occurredAt.slice(0, 10)}`)
      if (test.record.outcome === 'denied') expect(hitsIn(res.body, Object.values(c)), label).toEqual([])
    }
  })

  it('never logs or echoes a canary, whatever the request (valid, invalid, unauthorised, malformed)', async () => {
    const c = canariesFor('l')
    const needles = Object.values(c)
    const logsBefore = h.test.logs().length
    const referralId = `ref-logs-${tag}`
    const patientId = `pat-logs-${tag}`
    const valid = sendBody(referralId, patientId, c)
    const responses: { label: string; status: number; body: string }[] = []
    const record = async (label: string, res: Awaited<ReturnType<Harness['call']>>) => {
      responses.push({ label, status: res.statusCode, body: res.body })
    }
    await record(
      'send',
      await h.call('gp', 'POST', '/referrals', valid, { 'idempotency-key': `logs-${tag}` }),
    )
    await record(
      'send replay',
      await h.call('gp', 'POST', '/referrals', valid, { 'idempotency-key': `logs-${tag}` }),
    )
    await record(
      'send other body, same key',
      await h.call(
        'gp',
        'POST',
        '/referrals',
        { ...valid, referralId: `${referralId}-2` },
        { 'idempotency-key': `logs-${tag}` },
      ),
    )
    await record('send duplicate id', await h.call('gp', 'POST', '/referrals', valid))

    // Every field a canary, and each body invalid somewhere so it is rejected at the edge.
    const bad = (overrides: Record<string, unknown>) => ({
      ...valid,
      referralId: `${referralId}-bad`,
      ...overrides,
    })
    for (const [label, body] of Object.entries({
      'urgency canary': bad({ urgency: c.reason }),
      'specialty canary': bad({ specialtyId: c.givenName, urgency: c.familyName }),
      'region canary': bad({ regionId: c.address, target: { kind: c.email } }),
      'date of birth canary': bad({
        phi: { ...valid.phi, patient: { ...valid.phi.patient, dateOfBirth: c.healthNumber } },
      }),
      'unknown patient field': bad({
        phi: { patient: { ...valid.phi.patient, note: c.outcomeNote, givenName: 42 }, reason: c.reason },
      }),
      'reason too long': bad({ phi: { ...valid.phi, reason: c.reason.repeat(1000) } }),
      'patient id canary': bad({ patientId: { nested: c.phone }, senderPracticeId: c.location }),
      'array body': [c.givenName, c.healthNumber],
      'string body': c.reason,
    })) {
      await record(label, await h.call('gp', 'POST', '/referrals', body))
    }
    await record(
      'malformed JSON',
      await h.test.app.inject({
        method: 'POST',
        url: '/referrals',
        headers: {
          authorization: `Bearer ${await h.test.token({ userId: 'dr-gp' })}`,
          'content-type': 'application/json',
        },
        payload: `{"referralId": "${c.givenName}", "phi": {"reason": "${c.reason}"`,
      }),
    )
    await record(
      'body too large',
      await h.call(
        'gp',
        'POST',
        '/referrals',
        bad({ phi: { ...valid.phi, reason: c.reason.repeat(60_000) } }),
      ),
    )
    await record(
      'text body',
      await h.test.app.inject({
        method: 'POST',
        url: '/referrals',
        headers: {
          authorization: `Bearer ${await h.test.token({ userId: 'dr-gp' })}`,
          'content-type': 'text/plain',
        },
        payload: `${c.givenName} ${c.healthNumber}`,
      }),
    )
    await record(
      'token canary',
      await h.test.app.inject({
        method: 'GET',
        url: `/referrals/${referralId}`,
        headers: { authorization: `Bearer ${c.givenName}.${c.healthNumber}.${c.reason}` },
      }),
    )
    const holder = (
      responses[0]?.body ? JSON.parse(responses[0].body).recipientPracticeId : 'spec-a'
    ) as string
    const holderOwner = ownerOfPractice[holder] as Who
    for (const [label, who, path, body] of [
      [
        'decline canary code',
        holderOwner,
        'decline',
        { reasonCode: c.declineNote, phi: { note: c.declineNote } },
      ],
      [
        'decline note not a string',
        holderOwner,
        'decline',
        { reasonCode: 'capacity', phi: { note: [c.declineNote] } },
      ],
      [
        'message id invalid',
        'gp',
        'messages',
        { messageId: { x: c.messageFromSender }, phi: { body: c.messageFromSender } },
      ],
      [
        'message extra field',
        'gp',
        'messages',
        { messageId: 'm', phi: { body: c.messageFromSender, more: c.phone } },
      ],
      [
        'appointment at canary',
        holderOwner,
        'appointment',
        { at: c.location, phi: { location: c.location } },
      ],
      [
        'complete note too long',
        holderOwner,
        'complete',
        { phi: { outcomeNote: c.outcomeNote.repeat(400) } },
      ],
      [
        'urgency canary',
        holderOwner,
        'urgency',
        { urgency: c.urgencyReason, phi: { reason: c.urgencyReason } },
      ],
      ['cancel by stranger', 'stranger', 'cancel', { reasonCode: 'other', phi: { note: c.reason } }],
      ['accept by sender', 'gp', 'accept', {}],
      [
        'message by stranger',
        'stranger',
        'messages',
        { messageId: 'm-s', phi: { body: c.messageFromSender } },
      ],
      ['valid message', 'gp', 'messages', { messageId: 'm-ok', phi: { body: c.messageFromSender } }],
      ['valid decline', holderOwner, 'decline', { reasonCode: 'other', phi: { note: c.declineNote } }],
    ] as const) {
      await record(label, await h.call(who, 'POST', `/referrals/${referralId}/${path}`, body))
    }
    // Uploads: file names and contents are canaries.
    const attachmentsUrl = `/referrals/${referralId}/attachments`
    const pdf = pdfUpload(c.attachmentName, c.attachmentContent)
    const text = {
      payload: Buffer.from(pdf.payload.toString('latin1').replace('application/pdf', 'text/plain'), 'latin1'),
      headers: pdf.headers,
    }
    const notPdf = {
      payload: Buffer.from(pdf.payload.toString('latin1').replace('%PDF-1.4', c.attachmentContent), 'latin1'),
      headers: pdf.headers,
    }
    await record('upload valid', await h.call('gp', 'POST', attachmentsUrl, pdf.payload, pdf.headers))
    await record('upload text type', await h.call('gp', 'POST', attachmentsUrl, text.payload, text.headers))
    await record(
      'upload not a PDF',
      await h.call('gp', 'POST', attachmentsUrl, notPdf.payload, notPdf.headers),
    )
    await record(
      'upload by stranger',
      await h.call('stranger', 'POST', attachmentsUrl, pdf.payload, pdf.headers),
    )
    await record(
      'upload by recipient',
      await h.call(holderOwner, 'POST', attachmentsUrl, pdf.payload, pdf.headers),
    )
    await record(
      'upload truncated multipart',
      await h.call(
        'gp',
        'POST',
        attachmentsUrl,
        pdf.payload.subarray(0, pdf.payload.length - 20),
        pdf.headers,
      ),
    )
    await record('upload as JSON', await h.call('gp', 'POST', attachmentsUrl, { file: c.attachmentContent }))
    for (const url of [
      `/referrals/${c.givenName}`,
      `/referrals/${referralId}?asOf=${c.healthNumber}`,
      `/practices/clinic/referrals?box=sent&patient=${c.givenName}`,
      `/practices/clinic/referrals?box=${c.familyName}&patient=${c.healthNumber}`,
      `/practices/clinic/referrals.csv?box=sent&patient=${c.familyName}&cursor=${c.reason}`,
      `/practices/clinic/referrals?box=sent&cursor=${Buffer.from(JSON.stringify([c.address, c.email])).toString('base64url')}`,
      `/no-such-route/${c.givenName}?q=${c.reason}`,
      `/referrals/${referralId}/attachments/${c.attachmentName}`,
    ]) {
      await record(`GET ${url}`, await h.call('gp', 'GET', url))
    }

    // The sequence really ran: valid calls succeeded and invalid ones were refused.
    const statuses = new Map(responses.map((r) => [r.label, r.status]))
    expect(statuses.get('send')).toBe(201)
    expect(statuses.get('send replay')).toBe(201)
    expect(statuses.get('send other body, same key')).toBe(422)
    expect(statuses.get('valid message')).toBe(200)
    expect(statuses.get('malformed JSON')).toBe(400)
    expect(statuses.get('body too large')).toBe(413)
    expect(statuses.get('token canary')).toBe(401)
    expect(statuses.get('upload valid')).toBe(201)
    expect(statuses.get('upload text type')).toBe(415)
    expect(statuses.get('upload not a PDF')).toBe(415)
    for (const label of ['urgency canary', 'array body', 'decline canary code', 'appointment at canary'])
      expect(statuses.get(label), label).toBe(400)

    const logs = h.test.logs().slice(logsBefore)
    expect(logs.split('\n').filter((l) => l.includes('"request completed"')).length).toBeGreaterThanOrEqual(
      responses.length,
    )
    expect(hitsIn(logs, needles)).toEqual([])
    // Responses echo no canary either, except the file name the sender's own upload answers with.
    const echoes = responses.flatMap((r) =>
      hitsIn(r.body, needles).map((n) => `${r.label} (${r.status}): ${n}`),
    )
    expect(echoes).toEqual([`upload valid (201): ${c.attachmentName}`])
  })
})
