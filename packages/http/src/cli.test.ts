import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type CorrelationId, type ReferralId, type UserId, unsafeId } from '@referrals/core'
import { createTestDatabase, type TestDatabase } from '@referrals/postgres/testing'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { main } from './cli.js'
import { loadConfig } from './config.js'
import { demoReferralBody, seedDemo } from './demo.js'
import { openRuntime } from './server.js'

// The CLI against a real PostgreSQL store: a demo dataset and one referral written through the
// runtime, then `verify`, `replay`, `export-audit`, `forget-patient` and `rebuild-projections` run
// as the operator would, with stdout captured.
let db: TestDatabase
let dataDir: string
const env = () => ({ DATABASE_URL: db.url, REFERRALS_DATA_DIR: dataDir, LOG_LEVEL: 'silent' })

const run = async (...argv: string[]): Promise<{ code: number; out: string }> => {
  const chunks: string[] = []
  const out = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
    chunks.push(String(chunk))
    return true
  })
  const err = vi.spyOn(process.stderr, 'write').mockImplementation(() => true)
  const saved = { ...process.env }
  Object.assign(process.env, env())
  try {
    const code = await main(argv)
    return { code, out: chunks.join('') }
  } finally {
    process.env = saved
    out.mockRestore()
    err.mockRestore()
  }
}

beforeAll(async () => {
  db = await createTestDatabase()
  dataDir = await mkdtemp(join(tmpdir(), 'referrals-cli-'))
  const runtime = await openRuntime(await loadConfig(env(), () => undefined))
  try {
    await seedDemo(runtime.engine)
    const body = demoReferralBody('11111111-2222-4333-8444-555555555555')
    const ctx = {
      actor: await runtime.engine.directory.resolveActor(unsafeId<UserId>('dr-gp'), []),
      correlationId: unsafeId<CorrelationId>('cli-test'),
    }
    const sent = await runtime.engine.referrals.execute(
      body.referralId as ReferralId,
      { type: 'SendReferral', data: body } as never,
      ctx,
    )()
    expect(sent._tag).toBe('Right')
  } finally {
    await runtime.close()
  }
})
afterAll(async () => {
  await db?.drop()
  await rm(dataDir, { recursive: true, force: true })
})

describe('referrals CLI on PostgreSQL', () => {
  it('verify passes and prints a summary hash; replay folds every aggregate', async () => {
    const verified = await run('verify')
    expect(verified.code).toBe(0)
    expect(verified.out).toMatch(/^OK: \d+ events in \d+ streams verified\nsummary hash: [0-9a-f]{64}\n$/)
    const replayed = await run('replay')
    expect(replayed.code).toBe(0)
    expect(replayed.out).toContain('referral\t2 events')
    expect(replayed.out).toMatch(/\d+ aggregates folded/)
  })

  it('verify reports an event altered in the database, with its stream and version', async () => {
    const client = new pg.Client({ connectionString: db.url })
    await client.connect()
    const row = await client.query(
      `SELECT stream_id, version, data FROM referrals.events WHERE stream_id LIKE 'practice-%' ORDER BY global_position LIMIT 1`,
    )
    const { stream_id: streamId, version, data } = row.rows[0]
    const setData = (value: unknown) =>
      client.query('UPDATE referrals.events SET data = $3 WHERE stream_id = $1 AND version = $2', [
        streamId,
        version,
        value,
      ])
    try {
      await setData({ ...data, name: 'Forged' })
      const tampered = await run('verify')
      expect(tampered.code).toBe(2)
      expect(tampered.out).toContain(`TAMPERED: altered at stream ${streamId} version ${version}`)
    } finally {
      await setData(data)
      await client.end()
    }
    expect((await run('verify')).code).toBe(0)
  })

  it('export-audit writes the CSV header; forget-patient and rebuild-projections succeed', async () => {
    const audit = await run('export-audit', '--user', 'nobody')
    expect(audit.code).toBe(0)
    expect(audit.out.split('\r\n')[0]).toBe(
      'at,user_id,role,practice_id,referral_id,patient_id,purpose,outcome,channel,resource,correlation_id',
    )
    expect((await run('forget-patient', '--patient', 'demo-patient-11111111')).code).toBe(0)
    const client = new pg.Client({ connectionString: db.url })
    await client.connect()
    try {
      await client.query('TRUNCATE referrals.referral_facts')
      expect((await run('rebuild-projections')).code).toBe(0)
      // The report facts are rebuilt too: one row per referral in the log.
      const facts = await client.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM referrals.referral_facts',
      )
      const referrals = await client.query<{ n: number }>(
        "SELECT count(DISTINCT stream_id)::int AS n FROM referrals.events WHERE stream_id LIKE 'referral-%'",
      )
      expect(facts.rows[0]?.n).toBe(referrals.rows[0]?.n)
      expect(facts.rows[0]?.n).toBeGreaterThan(0)
    } finally {
      await client.end()
    }
    expect((await run('forget-patient')).code).toBe(64)
    expect((await run('no-such-command')).code).toBe(64)
  })
})
