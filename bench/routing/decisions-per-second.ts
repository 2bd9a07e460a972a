/**
 * Routing decisions per second against pool size: `npx tsx bench/routing/decisions-per-second.ts`
 * (`--quick` for a smoke run). Each decision is a full `decide` + `evolve` of a RouteReferral
 * through the pool decider (schema check, ranking, the recorded top candidates, state update).
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { runWithSources } from './launch.js'

const main = async (): Promise<void> => {
  const core = await import('@referrals/core')
  const { poolDecider, mulberry32 } = core
  type PoolCommand = Parameters<typeof poolDecider.decide>[0]
  const quick = process.argv.includes('--quick')
  const sizes = quick ? [10, 100, 1000] : [10, 100, 1_000, 10_000]
  const decisions = quick ? 2_000 : 10_000
  const meta = {
    commandId: 'bench-cmd',
    actor: { kind: 'system', component: 'bench' },
    now: '2026-01-01T00:00:00.000Z',
    correlationId: 'bench',
  } as unknown as PoolCommand['meta']

  const rows: {
    n: number
    decisions: number
    seconds: number
    perSecond: number
    microsPerDecision: number
  }[] = []
  const measure = (n: number, count: number): number => {
    const random = mulberry32(n)
    let state = poolDecider.initialState
    const run = (command: PoolCommand) => {
      const result = poolDecider.decide(command, state)
      if (result._tag === 'Left') throw new Error(result.left.code)
      for (const e of result.right) state = poolDecider.evolve(state, e)
    }
    for (let i = 0; i < n; i++) {
      run({
        type: 'SyncPoolMember',
        data: {
          practiceId: `p${i}`,
          eligible: true,
          fteMilli: 100 + (random() % 901),
          insuranceNetworks: [],
        },
        meta,
      } as unknown as PoolCommand)
    }
    const route = (r: string) =>
      run({
        type: 'RouteReferral',
        data: { referralId: r, insuranceNetworkId: null, excludedPracticeIds: [] },
        meta,
      } as unknown as PoolCommand)
    // The first decision places the members (O(n), once per batch of membership changes).
    for (let r = 0; r < 1_000; r++) route(`w${r}`)
    const start = process.hrtime.bigint()
    for (let r = 0; r < count; r++) route(`r${r}`)
    return Number(process.hrtime.bigint() - start) / 1e9
  }
  // Warm the JIT on a small pool so the first row is not penalised.
  measure(10, decisions)
  for (const n of sizes) {
    // Median of three runs, each on a fresh pool.
    const runs = [0, 1, 2].map(() => measure(n, decisions)).sort((a, b) => a - b)
    const seconds = runs[1] as number
    rows.push({
      n,
      decisions,
      seconds,
      perSecond: Math.round(decisions / seconds),
      microsPerDecision: (seconds / decisions) * 1e6,
    })
  }

  const base = rows[0] as (typeof rows)[number]
  console.log('Routing decisions per second vs pool size (decide + evolve, no exclusions)\n')
  console.log(
    `${'n'.padStart(7)} ${'decisions/s'.padStart(12)} ${'µs/decision'.padStart(12)} ${'cost ratio'.padStart(11)} ${'log2 n ratio'.padStart(13)} ${'n ratio'.padStart(8)}`,
  )
  const table = rows.map((r) => {
    const costRatio = r.microsPerDecision / base.microsPerDecision
    const logRatio = Math.log2(r.n) / Math.log2(base.n)
    const nRatio = r.n / base.n
    console.log(
      `${String(r.n).padStart(7)} ${String(r.perSecond).padStart(12)} ${r.microsPerDecision.toFixed(2).padStart(12)} ${costRatio.toFixed(2).padStart(11)} ${logRatio.toFixed(2).padStart(13)} ${String(nRatio).padStart(8)}`,
    )
    return { ...r, costRatio, log2Ratio: logRatio, nRatio }
  })
  const worst = Math.max(...table.slice(1).map((r) => r.costRatio / r.log2Ratio))
  console.log(
    `\nlargest (cost ratio / log2 n ratio): ${worst.toFixed(2)} — at most about 1 means the cost grows no faster than log n`,
  )
  const out = fileURLToPath(
    new URL(`../results/routing-throughput${quick ? '-quick' : ''}.json`, import.meta.url),
  )
  await mkdir(fileURLToPath(new URL('../results/', import.meta.url)), { recursive: true })
  await writeFile(
    out,
    `${JSON.stringify({ benchmark: 'routing-decisions-per-second', node: process.version, quick, rows: table, worstCostOverLogRatio: worst }, null, 2)}\n`,
  )
  console.log(`wrote ${out}`)
}

await runWithSources(import.meta.url, main)
