/**
 * Routing decisions per second against pool size:
 *
 *   npx tsx bench/router-speed/run.ts            # n = 10, 100, 1,000, 10,000 (~30 s)
 *   npx tsx bench/router-speed/run.ts --quick    # n up to 1,000, fewer decisions (smoke run)
 *
 * One decision is a full `poolDecider.decide` + `evolve` of a RouteReferral (schema check, ranking,
 * the recorded top-10 candidates with exact virtual-time strings, state update). Pools have seeded
 * (mulberry32) FTE 0.1–1.0 and no exclusions. Prints the table and writes
 * `bench/results/router-speed{-quick}.{json,md}`.
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { runWithSources } from '../fairness/launch.js'

interface Row {
  readonly n: number
  readonly decisions: number
  readonly seconds: number
  readonly perSecond: number
  readonly microsPerDecision: number
  readonly costRatio: number
  readonly log2Ratio: number
  readonly nRatio: number
}

const main = async (): Promise<void> => {
  const { initialPoolState, poolDecider, mulberry32 } = await import('@referrals/core')
  type PoolCommand = Parameters<typeof poolDecider.decide>[0]
  const quick = process.argv.includes('--quick')
  const sizes = quick ? [10, 100, 1_000] : [10, 100, 1_000, 10_000]
  const decisions = quick ? 2_000 : 20_000
  const meta = {
    commandId: 'bench-cmd',
    actor: { kind: 'system', component: 'bench-router-speed' },
    now: '2026-01-01T00:00:00.000Z',
    correlationId: 'bench',
  } as unknown as PoolCommand['meta']

  /** Seconds for `count` decisions in a fresh pool of n members (after 1,000 unmeasured ones). */
  const measure = (n: number, count: number): number => {
    const random = mulberry32(n)
    let state = initialPoolState()
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
    // The first decision after membership changes places the members (O(n log n), once).
    for (let r = 0; r < 1_000; r++) route(`w${r}`)
    const start = process.hrtime.bigint()
    for (let r = 0; r < count; r++) route(`r${r}`)
    return Number(process.hrtime.bigint() - start) / 1e9
  }

  // Warm the JIT on a small pool so the first row is not penalised.
  measure(10, decisions)
  const raw = sizes.map((n) => {
    // Median of three runs, each on a fresh pool.
    const seconds = [0, 1, 2].map(() => measure(n, decisions)).sort((a, b) => a - b)[1] as number
    return {
      n,
      decisions,
      seconds,
      perSecond: Math.round(decisions / seconds),
      microsPerDecision: (seconds / decisions) * 1e6,
    }
  })
  const base = raw[0] as (typeof raw)[number]
  const rows: Row[] = raw.map((r) => ({
    ...r,
    costRatio: r.microsPerDecision / base.microsPerDecision,
    log2Ratio: Math.log2(r.n) / Math.log2(base.n),
    nRatio: r.n / base.n,
  }))
  const worst = Math.max(...rows.slice(1).map((r) => r.costRatio / r.log2Ratio))

  const head = ['n', 'decisions/s', 'µs/decision', 'cost ratio', 'log2 n ratio', 'n ratio']
  const cells = rows.map((r) => [
    r.n.toLocaleString('en-US'),
    r.perSecond.toLocaleString('en-US'),
    r.microsPerDecision.toFixed(2),
    r.costRatio.toFixed(2),
    r.log2Ratio.toFixed(2),
    r.nRatio.toLocaleString('en-US'),
  ])
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => (c[i] as string).length)))
  const line = (c: readonly string[]) => c.map((x, i) => x.padStart(widths[i] as number)).join('  ')
  const verdict = `largest cost ratio / log2 n ratio: ${worst.toFixed(2)} (at most about 1: cost grows no faster than log n; an O(n) router would track the n ratio)`
  console.log('Routing decisions per second vs pool size (decide + evolve, no exclusions)\n')
  console.log([line(head), ...cells.map(line)].join('\n'))
  console.log(`\n${verdict}`)

  const command = `npx tsx bench/router-speed/run.ts${quick ? ' --quick' : ''}`
  const date = new Date().toISOString().slice(0, 10)
  const md = [
    '# Router speed',
    '',
    `\`${command}\` — ${date}, Node ${process.version}; median of 3 runs of ${decisions.toLocaleString('en-US')} decisions per size`,
    '',
    `| ${head.join(' | ')} |`,
    `|${head.map(() => '---:').join('|')}|`,
    ...cells.map((c) => `| ${c.join(' | ')} |`),
    '',
    verdict,
    '',
  ].join('\n')
  const dir = fileURLToPath(new URL('../results/', import.meta.url))
  await mkdir(dir, { recursive: true })
  const name = `router-speed${quick ? '-quick' : ''}`
  await writeFile(`${dir}${name}.md`, md)
  await writeFile(
    `${dir}${name}.json`,
    `${JSON.stringify({ benchmark: 'router-speed', command, date, node: process.version, quick, rows, worstCostOverLog2Ratio: worst }, null, 2)}\n`,
  )
  console.log(`wrote ${dir}${name}.md, ${name}.json`)
}

await runWithSources(import.meta.url, main)
