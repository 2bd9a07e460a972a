/**
 * Fairness of the engine's routing policy against least-count, round-robin, seeded random and
 * smooth weighted round-robin on one pool history with joins, pauses, a resume, FTE changes and a
 * departure: `npx tsx bench/routing/fairness.ts`. The history is routed by the engine; `backtest`
 * replays its arrivals and membership changes under each other policy.
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { runWithSources } from './launch.js'

const main = async (): Promise<void> => {
  const {
    backtest,
    poolDecider,
    mulberry32,
    routingPolicyV1: routingPolicy,
  } = await import('@referrals/core')
  type PoolCommand = Parameters<typeof poolDecider.decide>[0]
  type PoolEvent = Parameters<typeof poolDecider.evolve>[1]
  const meta = {
    commandId: 'bench-cmd',
    actor: { kind: 'system', component: 'bench' },
    now: '2026-01-01T00:00:00.000Z',
    correlationId: 'bench',
  } as unknown as PoolCommand['meta']
  const log: PoolEvent[] = []
  let state = poolDecider.initialState
  const run = (body: Omit<PoolCommand, 'meta'>) => {
    const result = poolDecider.decide({ ...body, meta } as PoolCommand, state)
    if (result._tag === 'Left') throw new Error(result.left.code)
    for (const e of result.right) {
      log.push(e)
      state = poolDecider.evolve(state, e)
    }
  }
  const sync = (id: string, fteMilli: number, opts: { eligible?: boolean; paused?: boolean } = {}) =>
    run({
      type: 'SyncPoolMember',
      data: { practiceId: id, eligible: opts.eligible ?? true, fteMilli, insuranceNetworks: [], ...opts },
    } as unknown as Omit<PoolCommand, 'meta'>)
  let referrals = 0
  const route = (n: number) => {
    for (let i = 0; i < n; i++) {
      run({
        type: 'RouteReferral',
        data: { referralId: `r${++referrals}`, insuranceNetworkId: null, excludedPracticeIds: [] },
      } as unknown as Omit<PoolCommand, 'meta'>)
    }
  }

  // Twelve specialists, FTE 0.2..1.0; then the pool changes under load.
  const random = mulberry32(2026)
  const ftes = new Map<string, number>()
  for (let i = 0; i < 12; i++) {
    const id = `s${String(i).padStart(2, '0')}`
    ftes.set(id, 200 + 100 * (random() % 9))
    sync(id, ftes.get(id) as number)
  }
  const timeline: string[] = []
  const step = (what: string, f: () => void, then: number) => {
    timeline.push(`${what} (after referral ${referrals})`)
    f()
    route(then)
  }
  route(300)
  step(
    'two newcomers join (FTE 1.0 and 0.5)',
    () => {
      sync('n-full', 1000)
      sync('n-half', 500)
    },
    150,
  )
  step('s03 pauses', () => sync('s03', ftes.get('s03') as number, { paused: true }), 200)
  step('s03 resumes after 200 referrals', () => sync('s03', ftes.get('s03') as number), 150)
  step(
    's05 halves its FTE, s07 doubles it',
    () => {
      sync('s05', Math.max(100, Math.round((ftes.get('s05') as number) / 2)))
      sync('s07', Math.min(10_000, (ftes.get('s07') as number) * 2))
    },
    150,
  )
  step('s09 leaves the pool', () => sync('s09', ftes.get('s09') as number, { eligible: false }), 150)

  const policies = [
    { kind: 'least-count' },
    { kind: 'round-robin' },
    { kind: 'random', seed: 1 },
    { kind: 'smooth-wrr' },
  ] as const
  const results = policies.map((p) => backtest(log, p))
  const engine = (results[0] as (typeof results)[number]).baseline
  const reports = [engine, ...results.map((r) => r.candidate)]

  console.log(`Routing fairness: ${referrals} referrals, ${timeline.length} membership/FTE changes\n`)
  for (const t of timeline) console.log(`  - ${t}`)
  console.log(
    `\n${'policy'.padEnd(22)} ${'max |lag|'.padStart(10)} ${'max run'.padStart(8)} ${'newcomer burst'.padStart(15)} ${'Gini'.padStart(7)} ${'final lags (min..max)'.padStart(22)}`,
  )
  for (const r of reports) {
    const lags = r.members.map((m) => m.lag)
    console.log(
      `${(r.policy === 'engine' ? 'engine (virtual time)' : r.policy).padEnd(22)} ${r.maxAbsLag.toFixed(2).padStart(10)} ${String(r.maxConsecutive).padStart(8)} ${String(r.maxNewcomerBurst).padStart(15)} ${r.gini.toFixed(3).padStart(7)} ${`${Math.min(...lags).toFixed(2)}..${Math.max(...lags).toFixed(2)}`.padStart(22)}`,
    )
  }
  console.log(
    '\nlag = fluid fair share − count (each referral split over the members active at the time, by FTE);' +
      '\nmax run = longest run of consecutive referrals to one member; newcomer burst = the longest such run' +
      '\nright after a join or resume; Gini over count / fair share (0 = exactly proportional).',
  )
  // Static pools: does each policy keep every member within one referral of its share (SPEC
  // property 3) for every weight vector? Seeded random vectors, n 2..30, FTE 0.1..1.0.
  const vectors = 200
  const perVector = 600
  const staticWorst = new Map<string, { worst: number; vectorsOverOne: number }>()
  for (let v = 0; v < vectors; v++) {
    const rnd = mulberry32(10_000 + v)
    const n = 2 + (rnd() % 29)
    const events: PoolEvent[] = []
    for (let i = 0; i < n; i++) {
      events.push({
        type: 'MemberJoined',
        data: {
          practiceId: `m${String(i).padStart(2, '0')}`,
          fteMilli: 100 + (rnd() % 901),
          insuranceNetworks: [],
        },
      } as unknown as PoolEvent)
    }
    for (let r = 0; r < perVector; r++) {
      // Arrivals only: backtest replays them under each policy, the engine's included.
      events.push({
        type: 'RoutingFoundNoCandidate',
        data: {
          decisionId: 'static',
          referralId: `x${r}`,
          request: { insuranceNetworkId: null, excludedPracticeIds: [] },
          exclusions: [],
          policy: routingPolicy,
        },
      } as unknown as PoolEvent)
    }
    for (const p of policies) {
      const r = backtest(events, p)
      for (const report of [r.baseline, r.candidate]) {
        const entry = staticWorst.get(report.policy) ?? { worst: 0, vectorsOverOne: 0 }
        entry.worst = Math.max(entry.worst, report.maxAbsLag)
        if (report.maxAbsLag >= 1) entry.vectorsOverOne++
        staticWorst.set(report.policy, entry)
      }
    }
  }
  console.log(
    `\nStatic pools: ${vectors} seeded weight vectors (n 2..30, FTE 0.1..1.0), ${perVector} referrals each`,
  )
  console.log(
    `${'policy'.padEnd(22)} ${'worst max |lag|'.padStart(16)} ${'vectors with |lag| ≥ 1'.padStart(24)}`,
  )
  const staticRows = [...staticWorst.entries()].map(([policy, e]) => ({
    policy,
    worstMaxAbsLag: e.worst,
    // the engine is counted once per backtest call; divide by the number of calls
    vectorsWithLagAtLeastOne: policy === 'engine' ? e.vectorsOverOne / policies.length : e.vectorsOverOne,
  }))
  for (const r of staticRows) {
    console.log(
      `${(r.policy === 'engine' ? 'engine (virtual time)' : r.policy).padEnd(22)} ${r.worstMaxAbsLag.toFixed(2).padStart(16)} ${String(r.vectorsWithLagAtLeastOne).padStart(24)}`,
    )
  }

  const out = fileURLToPath(new URL('../results/routing-fairness.json', import.meta.url))
  await mkdir(fileURLToPath(new URL('../results/', import.meta.url)), { recursive: true })
  await writeFile(
    out,
    `${JSON.stringify(
      {
        benchmark: 'routing-fairness',
        referrals,
        timeline,
        reports,
        staticPools: { vectors, referralsPerVector: perVector, rows: staticRows },
        differingDecisionsVsEngine: Object.fromEntries(
          results.map((r) => [r.candidate.policy, r.differingDecisions]),
        ),
      },
      null,
      2,
    )}\n`,
  )
  console.log(`wrote ${out}`)
}

await runWithSources(import.meta.url, main)
