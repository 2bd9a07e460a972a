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

const run = (...argv: string[]) => runWith({}, ...argv)

const runWith = async (
  extraEnv: Record<string, string>,
  ...argv: string[]
): Promise<{ code: number; out: string; err: string }> => {
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
  Object.assign(process.env, env(), extraEnv)
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

const POOL = 'north:orthopedics:knee:*'

/** The cells of a CSV without its header, as objects. */
const csvRows = (csv: string): Record<string, string>[] => {
  const [header, ...lines] = csv.trimEnd().split('\r\n')
  const names = (header as string).split(',')
  return lines.map((l) => Object.fromEntries(l.split(',').map((v, i) => [names[i], v])))
}

/** The whitespace-separated fields of the table line that starts with `label`. */
const tableLine = (out: string, label: string): string[] =>
  (out.split('\n').find((l) => l.startsWith(label)) ?? '').slice(label.length).trim().split(/\s+/)

// The pool: a = ortho-north-a (1000 FTE milli), b = ortho-north-b (500), c = ortho-both-c (800);
// Σ = 2300, all three candidates of every decision. Over 6 decisions the FTE entitlements are
// a 6·1000/2300 = 2.6087, b 6·500/2300 = 1.3043, c 6·800/2300 = 2.0870.
describe('referrals report, fairness-audit and backtest on PostgreSQL', () => {
  it('report funnel: 6 sent, 6 delivered, nothing further; table and CSV agree', async () => {
    const csv = await run('report', 'funnel', ...PERIOD, '--csv')
    expect(csv.code).toBe(0)
    const [cell] = csvRows(csv.out)
    expect(cell).toMatchObject({
      referrals: '6',
      suppressed: 'false',
      'figures.sent': '6',
      'figures.delivered': '6',
      'figures.accepted': '0',
      'figures.declines': '0',
      'figures.backlog.unassigned': '0',
    })
    const table = await run('report', 'funnel', ...PERIOD)
    expect(table.code).toBe(0)
    const [header, rule, row] = table.out.split('\n')
    expect(header?.split(/\s+/).slice(0, 3)).toEqual(['referrals', 'suppressed', 'figures.sent'])
    expect(rule).toMatch(/^-+( +-+)+$/)
    expect(row?.trim().split(/\s+/).slice(0, 5)).toEqual(['6', 'false', '6', '6', '0'])
    // No progress output when stderr is not a terminal.
    expect(table.err).toBe('')
  })

  it('report wait-times groups by pool; attribution by channel; timings honours --group-by', async () => {
    const waits = csvRows((await run('report', 'wait-times', ...PERIOD, '--csv')).out)
    expect(waits).toEqual([
      expect.objectContaining({
        'group.pool': POOL,
        referrals: '6',
        'figures.referralsWithAppointment': '0',
      }),
    ])
    const attribution = csvRows((await run('report', 'attribution', ...PERIOD, '--csv')).out)
    expect(attribution).toEqual([expect.objectContaining({ 'group.channel': '(none)', 'figures.sent': '6' })])
    const timings = csvRows((await run('report', 'timings', ...PERIOD, '--group-by', 'pool', '--csv')).out)
    expect(timings).toEqual([expect.objectContaining({ 'group.pool': POOL, 'figures.timeToAccept.n': '0' })])
    // A filter that matches nothing.
    expect((await run('report', 'funnel', ...PERIOD, '--pool', 'nowhere')).out).toBe('(no data)\n')
  })

  it('report fairness: received a 3, b 1, c 2 against the FTE entitlements', async () => {
    const rows = csvRows((await run('report', 'fairness', ...PERIOD, '--pool', POOL, '--csv')).out)
    const member = (id: string) => rows.find((r) => r['members.practiceId'] === id)
    expect(rows).toHaveLength(3)
    expect(member('ortho-north-a')).toMatchObject({
      decisions: '6',
      'members.received': '3',
      'members.entitlement': '2.6087',
      // CSV cells starting with '-' are quoted against formula injection (as over HTTP).
      'members.lag': "'-0.3913",
    })
    expect(member('ortho-north-b')).toMatchObject({
      'members.received': '1',
      'members.entitlement': '1.3043',
    })
    expect(member('ortho-both-c')).toMatchObject({ 'members.received': '2', 'members.entitlement': '2.087' })
    // received / FTE: a 3, b 2, c 2.5 → spread 1; the first decision (to a) left a at
    // 1000/2300 − 1 = −0.5652, the largest |lag| of the week.
    expect(rows[0]).toMatchObject({
      fteNormalisedSpread: '1',
      maxAbsLag: '0.5652',
      outsideInvariant: 'false',
    })
    // No decisions in the period: no pool-weeks.
    expect(
      (await run('report', 'fairness', '--from', '2000-01-01T00:00:00Z', '--to', '2000-01-02T00:00:00Z')).out,
    ).toBe('(no data)\n')
  })

  it('fairness-audit prints every pool-week and the number flagged, exit 0', async () => {
    const audit = await run('fairness-audit', ...PERIOD)
    expect(audit.code).toBe(0)
    const line = tableLine(audit.out, POOL)
    expect(line.slice(1)).toEqual(['6', '0.5652', '1', '1', 'ok'])
    expect(audit.out).toContain('0 weeks flagged')
    expect(audit.out).toContain('of 1 pool-weeks')
  })

  it('backtest: recorded against least-count and round-robin, computed by hand', async () => {
    // least-count (smallest received/FTE, ties to the first by id: c < a < b):
    // c, a, b, a, c, a → a 3, b 1, c 2, the same counts as recorded.
    const least = await run('backtest', '--pool', POOL, '--policy', 'least-count')
    expect(least.code).toBe(0)
    expect(least.out).toContain(
      `pool ${POOL}: 6 routing decisions replayed under least-count (recorded: 0 declined, 0 expired, 0 direct, 0 released)`,
    )
    expect(tableLine(least.out, 'ortho-north-a load')).toEqual(['3', '3'])
    expect(tableLine(least.out, 'ortho-north-b load')).toEqual(['1', '1'])
    expect(tableLine(least.out, 'maxConsecutive')).toEqual(['1', '1'])
    // round-robin by id: c, a, b, c, a, b → 2 each; a lags 2.6087 − 2, b is ahead 1.3043 − 2.
    const rr = await run('backtest', '--pool', POOL, '--policy', 'round-robin')
    expect(tableLine(rr.out, 'ortho-north-a load')).toEqual(['3', '2'])
    expect(tableLine(rr.out, 'ortho-north-a lag')).toEqual(['-0.3913', '0.6087'])
    expect(tableLine(rr.out, 'ortho-north-b lag')).toEqual(['0.3043', '-0.6957'])
    expect(tableLine(rr.out, 'routed')).toEqual(['6', '6'])
    expect(tableLine(rr.out, 'ortho-north-a offered')).toEqual(['3', '2'])
    expect(tableLine(rr.out, 'ortho-north-a held')).toEqual(['3', '2'])
    expect(tableLine(rr.out, 'ortho-north-a declined')).toEqual(['0', '0'])
    expect(tableLine(rr.out, 'skipped offers')).toEqual(['0', '0'])
    expect(rr.out).toContain('waiting times (recorded')
    const ours = await run('backtest', '--pool', POOL, '--policy', 'ours')
    expect(ours.out).toContain('0 of 6 decisions differ between ours (the engine, replayed) and ours')
    const random = await run('backtest', '--pool', POOL, '--policy', 'random', '--seed', '7')
    expect(random.out).toContain('random(seed=7)')
    expect((await run('backtest', '--pool', 'no-such-pool', '--policy', 'ours')).code).toBe(1)
    // JSON: the whole result; CSV: the side-by-side rows.
    const json = JSON.parse((await run('backtest', '--pool', POOL, '--policy', 'round-robin', '--json')).out)
    expect(json.pool).toBe(POOL)
    expect(json.arrivals).toBe(6)
    expect(json.candidate.policy).toBe('round-robin')
    expect(json.candidate.members.map((m: { count: number }) => m.count)).toEqual([2, 2, 2])
    expect(json.recorded.members.map((m: { count: number }) => m.count)).toEqual([2, 3, 1])
    const csv = csvRows((await run('backtest', '--pool', POOL, '--policy', 'round-robin', '--csv')).out)
    expect(csv.find((r) => r.figure === 'ortho-north-a lag')).toEqual({
      figure: 'ortho-north-a lag',
      // A leading "-" is quoted against spreadsheet formula injection (routes/csv.ts).
      recorded: "'-0.3913",
      'round-robin': '0.6087',
    })
  })

  it('small numbers: cells from fewer than 5 referrals read "< 5" outside the receiving practice', async () => {
    // Grouped by receiving practice the six referrals make cells of 3 (a), 1 (b) and 2 (c).
    const byPractice = ['report', 'funnel', ...PERIOD, '--group-by', 'receivingPractice', '--csv']
    const cell = (csv: string, practice: string) =>
      csvRows(csv).find((r) => r['group.receivingPractice'] === practice)
    const operator = await run(...byPractice)
    expect(operator.code).toBe(0)
    for (const p of ['ortho-north-a', 'ortho-north-b', 'ortho-both-c'])
      expect(cell(operator.out, p)).toMatchObject({
        referrals: '< 5',
        suppressed: 'true',
        'figures.sent': '< 5',
      })
    // The same report as a table shows the marker too.
    const table = await run('report', 'funnel', ...PERIOD, '--group-by', 'receivingPractice')
    expect(tableLine(table.out, 'ortho-north-b').slice(0, 3)).toEqual(['<', '5', 'true'])
    // As practice a sees it: its own 3 referrals, never suppressed for it.
    const own = await run(...byPractice, '--practice', 'ortho-north-a')
    expect(csvRows(own.out)).toHaveLength(1)
    expect(cell(own.out, 'ortho-north-a')).toMatchObject({
      referrals: '3',
      suppressed: 'false',
      'figures.sent': '3',
    })
  })

  it('the suppression threshold is configurable: --suppression-threshold, or REPORT_SUPPRESSION_THRESHOLD', async () => {
    const byPractice = ['report', 'funnel', ...PERIOD, '--group-by', 'receivingPractice', '--csv']
    const cells = (csv: string) =>
      Object.fromEntries(csvRows(csv).map((r) => [r['group.receivingPractice'], r.referrals]))
    // Threshold 3: a's 3 shown; b's 1 and c's 2 suppressed as "< 3".
    const flag = await run(...byPractice, '--suppression-threshold', '3')
    expect(cells(flag.out)).toEqual({ 'ortho-north-a': '3', 'ortho-north-b': '< 3', 'ortho-both-c': '< 3' })
    // Threshold 2 from the environment: only b's single referral is suppressed.
    const fromEnv = await runWith({ REPORT_SUPPRESSION_THRESHOLD: '2' }, ...byPractice)
    expect(cells(fromEnv.out)).toEqual({ 'ortho-north-a': '3', 'ortho-north-b': '< 2', 'ortho-both-c': '2' })
    // The flag wins over the environment.
    const both = await runWith(
      { REPORT_SUPPRESSION_THRESHOLD: '2' },
      ...byPractice,
      '--suppression-threshold',
      '4',
    )
    expect(cells(both.out)).toEqual({ 'ortho-north-a': '< 4', 'ortho-north-b': '< 4', 'ortho-both-c': '< 4' })
    // fairness-audit: the pool's one week has 6 decisions, suppressed under a threshold of 7.
    const audit = await run('fairness-audit', ...PERIOD, '--suppression-threshold', '7')
    expect(tableLine(audit.out, POOL)).toContain('suppressed')
    expect(audit.out).toContain('1 suppressed (fewer than 7 decisions, not audited)')
    // A bad environment value is a configuration error (exit 78), naming the variable.
    const bad = await runWith({ REPORT_SUPPRESSION_THRESHOLD: 'zero' }, ...byPractice)
    expect(bad.code).toBe(78)
    expect(bad.err).toContain('REPORT_SUPPRESSION_THRESHOLD must be a positive integer')
    expect(bad.out).toBe('')
  })

  it('bad arguments: a usage error naming the problem, exit 64, nothing printed on stdout', async () => {
    const cases: [string[], string][] = [
      [['report'], 'report needs one of'],
      [['report', 'nope', ...PERIOD], 'report needs one of'],
      [['report', 'funnel'], 'needs --from'],
      [['report', 'funnel', '--from', 'yesterday', '--to', '2100-01-01T00:00:00Z'], 'RFC 3339'],
      [
        ['report', 'funnel', '--from', '2100-01-01T00:00:00Z', '--to', '2000-01-01T00:00:00Z'],
        'must precede',
      ],
      [['report', 'funnel', ...PERIOD, '--group-by', 'pool,colour'], '--group-by'],
      [['report', 'funnel', ...PERIOD, '--colour', 'red'], 'unknown option --colour'],
      [['report', 'fairness', ...PERIOD, '--group-by', 'pool'], 'grouped by pool and week'],
      [['fairness-audit', '--from', '2000-01-01T00:00:00Z'], 'needs --from'],
      [['fairness-audit', ...PERIOD, '--pool'], '--pool needs a value'],
      [['report', 'funnel', ...PERIOD, '--suppression-threshold', '0'], '--suppression-threshold must be'],
      [['fairness-audit', ...PERIOD, '--suppression-threshold', 'x'], '--suppression-threshold must be'],
      [['report', 'funnel', ...PERIOD, '--practice'], '--practice needs a value'],
      [['report', 'funnel', ...PERIOD, '--csv', '--json'], 'exclude each other'],
      [['fairness-audit', ...PERIOD, '--json', 'yes'], '--json takes no value'],
      [['backtest', '--policy', 'ours'], 'needs --pool'],
      [['backtest', '--pool', POOL, '--policy', 'best'], 'needs --policy'],
      [['backtest', '--pool', POOL, '--policy', 'random', '--seed', '-1'], '--seed'],
      [
        ['backtest', '--pool', POOL, '--policy', 'ours', '--count-direct', 'maybe'],
        '--count-direct takes yes|no',
      ],
      [
        ['backtest', '--pool', POOL, '--policy', 'ours', '--on-decline', 'forget'],
        '--on-decline takes keep|refund',
      ],
    ]
    for (const [argv, message] of cases) {
      const r = await run(...argv)
      expect({ argv, code: r.code, out: r.out }).toEqual({ argv, code: 64, out: '' })
      expect(r.err).toContain(message)
    }
  })
})
