/**
 * Routing decisions per second and memory against pool size, on the compiled package:
 *
 *   npx turbo run build --filter=@referrals/core   # builds packages/core/dist
 *   npx tsx bench/router-speed/run.ts              # n = 10, 100, 1,000, 10,000 + 1,000,000 decisions (~2 min)
 *   npx tsx bench/router-speed/run.ts --quick      # smaller and shorter (smoke run)
 *
 * One decision is `poolDecider.decide` + `evolve` of a RouteReferral (schema check, ranking, the
 * recorded top-10 candidates, the event, state update) with a new referral id each time and no
 * exclusions, in a pool of n members with seeded (mulberry32) FTE 0.1–1.0. The commands are built
 * before the clock starts, so only the decision is timed. The script re-runs itself as
 * `node --expose-gc --import tsx` without the source condition, so `@referrals/core` is the
 * compiled `packages/core/dist` and the heap can be measured after a full collection. Prints the
 * tables and writes `bench/results/router-speed{-quick}.{json,md}`.
 */
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
import os from 'node:os'
import { PerformanceObserver } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'

const CHILD = 'REFERRALS_ROUTER_SPEED_CHILD'

interface SizeRow {
  readonly n: number
  readonly decisions: number
  readonly perSecond: number
  readonly microsPerDecision: number
  readonly costRatio: number
  readonly gcShare: number
  readonly rssMiB: number
}

interface MemoryRow {
  readonly decisions: number
  readonly rssMiB: number
  readonly heapMiB: number
  readonly referralEntries: number
}

const mib = (bytes: number): number => Math.round((bytes / 1048576) * 10) / 10
const median = (xs: readonly number[]): number =>
  [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number
const gc = (): void => {
  const g = (globalThis as { gc?: () => void }).gc
  if (g !== undefined) {
    g()
    g()
  }
}

const main = async (): Promise<void> => {
  const core = await import('@referrals/core')
  const { initialPoolState, poolDecider, poolEngine, mulberry32 } = core
  type PoolCommand = Parameters<typeof poolDecider.decide>[0]
  type State = ReturnType<typeof initialPoolState>
  const quick = process.argv.includes('--quick')
  const sizes = quick ? [10, 100, 1_000] : [10, 100, 1_000, 10_000]
  const decisions = quick ? 20_000 : 200_000
  const runs = quick ? 3 : 5
  const memoryDecisions = quick ? 100_000 : 1_000_000
  const meta = {
    commandId: 'bench-cmd',
    actor: { kind: 'system', component: 'bench-router-speed' },
    now: '2026-01-01T00:00:00.000Z',
    correlationId: 'bench',
  } as unknown as PoolCommand['meta']

  const apply = (state: State, command: PoolCommand): State => {
    const result = poolDecider.decide(command, state)
    if (result._tag === 'Left') throw new Error(result.left.code)
    let s = state
    for (const e of result.right) s = poolDecider.evolve(s, e)
    return s
  }
  const routeCommand = (referralId: string): PoolCommand =>
    ({
      type: 'RouteReferral',
      data: { referralId, insuranceNetworkId: null, excludedPracticeIds: [] },
      meta,
    }) as unknown as PoolCommand
  const pool = (n: number): State => {
    const random = mulberry32(n)
    let state = initialPoolState()
    for (let i = 0; i < n; i++) {
      state = apply(state, {
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
    // The first decision after membership changes places the members (O(n log n), once).
    for (let r = 0; r < 1_000; r++) state = apply(state, routeCommand(`w${r}`))
    return state
  }

  let gcMillis = 0
  const observer = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) gcMillis += e.duration
  })
  observer.observe({ entryTypes: ['gc'] })

  /** One timed run: seconds for `count` decisions in a fresh pool of n, and the GC time in it. */
  const measure = async (
    n: number,
    commands: readonly PoolCommand[],
  ): Promise<{ seconds: number; gcSeconds: number }> => {
    let state = pool(n)
    gc()
    await new Promise((resolve) => setImmediate(resolve))
    gcMillis = 0
    const start = process.hrtime.bigint()
    for (const c of commands) state = apply(state, c)
    const seconds = Number(process.hrtime.bigint() - start) / 1e9
    // GC entries are delivered asynchronously.
    await new Promise((resolve) => setTimeout(resolve, 20))
    const gcSeconds = gcMillis / 1000
    if (poolEngine(state).referralEntries() < commands.length) throw new Error('decisions were lost')
    return { seconds, gcSeconds }
  }

  const commands: PoolCommand[] = Array.from({ length: decisions }, (_, r) =>
    routeCommand(`ref-${String(r).padStart(8, '0')}`),
  )
  // Warm the JIT so the first row is not penalised.
  await measure(10, commands.slice(0, Math.min(decisions, 50_000)))

  const raw: Omit<SizeRow, 'costRatio'>[] = []
  for (const n of sizes) {
    const samples: { seconds: number; gcSeconds: number }[] = []
    for (let i = 0; i < runs; i++) samples.push(await measure(n, commands))
    const seconds = median(samples.map((s) => s.seconds))
    const gcSeconds = median(samples.map((s) => s.gcSeconds))
    raw.push({
      n,
      decisions,
      perSecond: Math.round(decisions / seconds),
      microsPerDecision: (seconds / decisions) * 1e6,
      gcShare: gcSeconds / seconds,
      rssMiB: mib(process.memoryUsage().rss),
    })
  }
  const base = raw[0] as (typeof raw)[number]
  const rows: SizeRow[] = raw.map((r) => ({ ...r, costRatio: r.microsPerDecision / base.microsPerDecision }))

  // What stands in the way, measured alone on the same ids / pool (n = 100), median of the runs:
  // - the referral book: one IdTable entry per held referral (the engine's table), a lookup on
  //   decide (is it held?) and an insertion on evolve; beside it the same with a Map (before);
  // - the ranking: PoolEngine.rank of the request (the heap walk to the 10 recorded candidates and
  //   their objects), on an unchanged pool;
  // the rest of a decision is the schema check, the event, the service (heap update) and GC.
  const { IdTable } = (await import(
    new URL('../../packages/core/dist/routing/id-table.js', import.meta.url).href
  )) as {
    IdTable: new () => { get(id: string): unknown; set(id: string, value: number): void }
  }
  const timeBook = (make: () => { get(id: string): unknown; set(id: string, value: number): unknown }) =>
    median(
      Array.from({ length: runs }, () => {
        const book = make()
        gc()
        const start = process.hrtime.bigint()
        let k = 0
        for (const c of commands) {
          const id = (c.data as { referralId: string }).referralId
          if (book.get(id) === undefined) book.set(id, k++)
        }
        return (Number(process.hrtime.bigint() - start) / 1e3 / commands.length) as number
      }),
    )
  const bookMicros = timeBook(() => new IdTable())
  const mapBookMicros = timeBook(() => new Map<string, number>())
  const rankMicros = median(
    Array.from({ length: runs }, () => {
      const engine = poolEngine(pool(100))
      const request = { insuranceNetworkId: null, excludedPracticeIds: [] } as unknown as Parameters<
        typeof engine.rank
      >[0]
      gc()
      const start = process.hrtime.bigint()
      let sink = 0
      for (let k = 0; k < commands.length; k++) sink += engine.rank(request, 10).ranked.length
      if (sink !== 10 * commands.length) throw new Error('the ranking lost candidates')
      return (Number(process.hrtime.bigint() - start) / 1e3 / commands.length) as number
    }),
  )
  const load = os.loadavg()[0] as number

  // Memory over many decisions (n = 100): new referral ids made on the fly, as a service would get
  // them; heap after a full collection every tenth of the run. Then the same with every referral
  // released right after it was routed, so that the referral book stays empty.
  const memory = (release: boolean): MemoryRow[] => {
    let state = pool(100)
    const out: MemoryRow[] = []
    const step = memoryDecisions / 10
    const sample = (k: number) => {
      gc()
      const m = process.memoryUsage()
      out.push({
        decisions: k,
        rssMiB: mib(m.rss),
        heapMiB: mib(m.heapUsed),
        referralEntries: poolEngine(state).referralEntries(),
      })
    }
    sample(0)
    for (let k = 1; k <= memoryDecisions; k++) {
      const referralId = `mem-${k}`
      state = apply(state, routeCommand(referralId))
      if (release) {
        state = apply(state, {
          type: 'ReleaseReferral',
          data: { referralId },
          meta,
        } as unknown as PoolCommand)
      }
      if (k % step === 0) sample(k)
    }
    return out
  }
  commands.length = 0 // only the memory runs below are measured now
  const released = memory(true)
  const held = memory(false)
  observer.disconnect()
  const growth = (rows: readonly MemoryRow[]): number => {
    const a = rows[1] as MemoryRow
    const b = rows[rows.length - 1] as MemoryRow
    return ((b.heapMiB - a.heapMiB) * 1048576) / (b.decisions - a.decisions)
  }
  const heldBytes = growth(held)
  const releasedBytes = growth(released)

  // ---- verdicts ----
  const at100 = rows.find((r) => r.n === 100) as SizeRow
  const largest = rows[rows.length - 1] as SizeRow
  const speedOk = at100.perSecond >= 1_000_000
  const scaleOk = largest.costRatio <= 3
  const verdicts = [
    `${speedOk ? 'MET' : 'NOT MET'}: ≥ 1,000,000 decisions/s at n = 100 — measured ${at100.perSecond.toLocaleString('en-US')} (${at100.microsPerDecision.toFixed(2)} µs per decision).`,
    ...(speedOk
      ? []
      : [
          `  In the way (measured alone, n = 100): the referral book — one IdTable entry per held referral, a lookup on decide and an insertion on evolve — ${bookMicros.toFixed(2)} µs with ${decisions.toLocaleString('en-US')} held referrals (${Math.round((100 * bookMicros) / at100.microsPerDecision)} %; a Map: ${mapBookMicros.toFixed(2)} µs); ranking the top 10 candidates and building their objects ${rankMicros.toFixed(2)} µs (${Math.round((100 * rankMicros) / at100.microsPerDecision)} %); garbage collection ${Math.round(100 * at100.gcShare)} % of the decision time; the rest (schema check, event, service and heap update) ${Math.max(0, at100.microsPerDecision - bookMicros - rankMicros).toFixed(2)} µs. Machine load (1-min load average, 2 cores, shared with other jobs): ${load.toFixed(1)}.`,
        ]),
    `${scaleOk ? 'MET' : 'NOT MET'}: cost at n = ${largest.n.toLocaleString('en-US')} ≤ 3 × cost at n = 10 — measured ${largest.costRatio.toFixed(2)} ×.`,
    `${releasedBytes < 8 ? 'MET' : 'NOT MET'} apart from the referral book: memory flat over ${memoryDecisions.toLocaleString('en-US')} decisions — heap growth ${releasedBytes.toFixed(1)} bytes per decision when every referral is released after routing; ${heldBytes.toFixed(0)} bytes per decision when every referral stays held (the pool keeps one entry per held referral: its id and a small integer; before issue 12 the pool state kept ~2.3 KiB per decision).`,
  ]

  // ---- output ----
  const head = ['n', 'decisions/s', 'µs/decision', 'cost ratio', 'GC share', 'RSS (MiB)']
  const cells = rows.map((r) => [
    r.n.toLocaleString('en-US'),
    r.perSecond.toLocaleString('en-US'),
    r.microsPerDecision.toFixed(2),
    r.costRatio.toFixed(2),
    `${Math.round(100 * r.gcShare)} %`,
    r.rssMiB.toFixed(1),
  ])
  const memHead = [
    'decisions',
    'held: RSS (MiB)',
    'held: heap (MiB)',
    'held: referral entries',
    'released: RSS (MiB)',
    'released: heap (MiB)',
  ]
  const memCells = held.map((h, i) => {
    const r = released[i] as MemoryRow
    return [
      h.decisions.toLocaleString('en-US'),
      h.rssMiB.toFixed(1),
      h.heapMiB.toFixed(1),
      h.referralEntries.toLocaleString('en-US'),
      r.rssMiB.toFixed(1),
      r.heapMiB.toFixed(1),
    ]
  })
  const text = (h: readonly string[], c: readonly (readonly string[])[]) => {
    const widths = h.map((x, i) => Math.max(x.length, ...c.map((row) => (row[i] as string).length)))
    const line = (row: readonly string[]) => row.map((x, i) => x.padStart(widths[i] as number)).join('  ')
    return [line(h), ...c.map(line)].join('\n')
  }
  const md = (h: readonly string[], c: readonly (readonly string[])[]) =>
    [
      `| ${h.join(' | ')} |`,
      `|${h.map(() => '---:').join('|')}|`,
      ...c.map((row) => `| ${row.join(' | ')} |`),
    ].join('\n')

  const sizeTitle = `Decisions per second vs pool size (decide + evolve, compiled package, median of ${runs} runs of ${decisions.toLocaleString('en-US')} decisions)`
  const memTitle = `Memory over ${memoryDecisions.toLocaleString('en-US')} decisions at n = 100 (heap after a full GC)`
  console.log(`${sizeTitle}\n`)
  console.log(text(head, cells))
  console.log(
    `\nmeasured alone: referral book (IdTable lookup + insertion per decision, ${decisions.toLocaleString('en-US')} ids) ${bookMicros.toFixed(2)} µs (Map: ${mapBookMicros.toFixed(2)} µs); ranking (top 10 at n = 100) ${rankMicros.toFixed(2)} µs; 1-min load average ${load.toFixed(1)}`,
  )
  console.log(`\n${memTitle}\n`)
  console.log(text(memHead, memCells))
  console.log(`\n${verdicts.join('\n')}`)

  const command = `npx tsx bench/router-speed/run.ts${quick ? ' --quick' : ''}`
  const date = new Date().toISOString().slice(0, 10)
  const report = [
    '# Router speed',
    '',
    `\`${command}\` — ${date}, Node ${process.version}, compiled \`packages/core/dist\``,
    '',
    `## ${sizeTitle}`,
    '',
    md(head, cells),
    '',
    `Measured alone: the referral book (IdTable lookup + insertion per decision, ${decisions.toLocaleString('en-US')} ids) ${bookMicros.toFixed(2)} µs per decision (a Map: ${mapBookMicros.toFixed(2)} µs); the ranking (top 10 candidates at n = 100, \`PoolEngine.rank\`) ${rankMicros.toFixed(2)} µs. 1-min load average during the run: ${load.toFixed(1)} on 2 cores shared with other jobs.`,
    '',
    `## ${memTitle}`,
    '',
    '*held*: every referral stays assigned (the pool keeps an entry for it); *released*: each referral is released right after it is routed (two commands per decision, the referral book stays empty).',
    '',
    md(memHead, memCells),
    '',
    '## Targets (issue 12)',
    '',
    ...verdicts.map((v) => (v.startsWith('  ') ? `  ${v.trim()}` : `- ${v}`)),
    '',
  ].join('\n')
  const dir = fileURLToPath(new URL('../results/', import.meta.url))
  await mkdir(dir, { recursive: true })
  const name = `router-speed${quick ? '-quick' : ''}`
  await writeFile(`${dir}${name}.md`, report)
  await writeFile(
    `${dir}${name}.json`,
    `${JSON.stringify(
      {
        benchmark: 'router-speed',
        command,
        date,
        node: process.version,
        quick,
        runs,
        rows,
        referralBookMicrosPerDecision: bookMicros,
        mapReferralBookMicrosPerDecision: mapBookMicros,
        rankMicrosPerDecisionAt100: rankMicros,
        loadAverage1m: load,
        memory: {
          decisions: memoryDecisions,
          held,
          released,
          heapBytesPerDecision: { held: heldBytes, released: releasedBytes },
        },
        targets: {
          decisionsPerSecondAt100: speedOk,
          costRatioAtLargest: scaleOk,
          flatMemoryApartFromBook: releasedBytes < 8,
        },
      },
      null,
      2,
    )}\n`,
  )
  console.log(`\nwrote ${dir}${name}.md, ${name}.json`)
}

if (process.env[CHILD] === '1') {
  await main()
} else {
  const dist = fileURLToPath(import.meta.resolve('@referrals/core'))
  if (!dist.includes('/dist/') || !existsSync(dist)) {
    console.error(
      `@referrals/core resolves to ${dist}: build it first (npx turbo run build --filter=@referrals/core)`,
    )
    process.exit(1)
  }
  const child = spawn(
    process.execPath,
    ['--expose-gc', '--import', 'tsx', fileURLToPath(import.meta.url), ...process.argv.slice(2)],
    { stdio: 'inherit', env: { ...process.env, [CHILD]: '1' } },
  )
  await new Promise<void>((resolve) =>
    child.on('exit', (code, signal) => {
      process.exitCode = code ?? (signal === null ? 1 : 128)
      resolve()
    }),
  )
}
