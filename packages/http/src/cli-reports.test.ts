import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type CorrelationId, type ReferralId, type UserId, unsafeId } from '@referrals/core'
import { createTestDatabase, type TestDatabase } from '@referrals/postgres/testing'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { main } from './cli.js'
import { loadConfig } from './config.js'
import { demoReferralBody, seedDemo } from './demo.js'
import { openRuntime } from './server.js'

// `report`, `fairness-audit` and `backtest` against a real PostgreSQL store holding the demo
// dataset and six choose-for-me referrals to the north orthopedics pool (a: 1.0 FTE, b: 0.5,
// c: 0.8), run as the operator would, with stdout and stderr captured.
let db: TestDatabase
let dataDir: string
const env = () => ({ DATABASE_URL: db.url, REFERRALS_DATA_DIR: dataDir, LOG_LEVEL: 'silent' })
const SENT = 6
const PERIOD = ['--from', '2000-01-01T00:00:00Z', '--to', '2100-01-01T00:00:00Z']

const run = async (...argv: string[]): Promise<{ code: number; out: string; err: string }> => {
  const chunks: string[] = []
  const errors: string[] = []
  const out = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
    chunks.push(String(chunk))
    return true
  })
  const err = vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
    errors.push(String(chunk))
    return true
  })
  const saved = { ...process.env }
  Object.assign(process.env, env())
  try {
    const code = await main(argv)
    return { code, out: chunks.join(''), err: errors.join('') }
  } finally {
    process.env = saved
    out.mockRestore()
    err.mockRestore()
  }
}

beforeAll(async () => {
  db = await createTestDatabase()
  dataDir = await mkdtemp(join(tmpdir(), 'referrals-cli-reports-'))
  const runtime = await openRuntime(await loadConfig(env(), () => undefined))
  try {
    await seedDemo(runtime.engine)
    const ctx = {
      actor: await runtime.engine.directory.resolveActor(unsafeId<UserId>('dr-gp'), []),
      correlationId: unsafeId<CorrelationId>('cli-reports-test'),
    }
    for (let i = 0; i < SENT; i++) {
      const body = demoReferralBody(`11111111-2222-4333-8444-55555555555${i}`)
      const sent = await runtime.engine.referrals.execute(
        body.referralId as ReferralId,
        { type: 'SendReferral', data: body } as never,
        ctx,
      )()
      expect(sent._tag).toBe('Right')
    }
  } finally {
    await runtime.close()
  }
}, 120_000)
afterAll(async () => {
  await db?.drop()
  await rm(dataDir, { recursive: true, force: true })
})

describe('referrals report, fairness-audit and backtest on PostgreSQL', () => {
  it('explore', async () => {
    for (const argv of [
      ['report', 'funnel', ...PERIOD],
      ['report', 'funnel', ...PERIOD, '--csv'],
      ['report', 'wait-times', ...PERIOD],
      ['report', 'fairness', ...PERIOD],
      ['report', 'timings', ...PERIOD, '--group-by', 'pool'],
      ['report', 'attribution', ...PERIOD],
      ['fairness-audit', ...PERIOD],
      ['backtest', '--pool', 'x', '--policy', 'least-count'],
    ]) {
      const r = await run(...argv)
      console.log(argv.join(' '), r.code, `\n${r.out}\n${r.err}`)
    }
  })
})
