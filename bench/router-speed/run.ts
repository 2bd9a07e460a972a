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
 * before the clock starts, so only the decision is timed (CPU time of the process, `process.cpuUsage`,
 * not wall time: the machine is shared). Then each phase of a decision is timed alone at n = 100
 * (schema check, referral book, ranking, event; the rest by difference). The script re-runs itself as
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
/** CPU seconds (user + system) of this process since `from` (a `process.cpuUsage()`). */
const cpuSeconds = (from: NodeJS.CpuUsage): number => {
  const d = process.cpuUsage(from)
  return (d.user + d.system) / 1e6
}
const gc = (): void => {
  const g = (globalThis as { gc?: () => void }).gc
  if (g !== undefined) {
    g()
    g()
  }
}

const main = async (): Promise<void> => {
  const core = await import('@referrals/core')
  const {
    initialPoolState,
    poolDecider,
    poolEngine,
    mulberry32,
    isRouteReferral,
    routingEvent,
    currentRoutingPolicy,
  } = core
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
    // GC entries are delivered asynchronously: let the forced collection's arrive before the reset.
    await new Promise((resolve) => setTimeout(resolve, 20))
    gcMillis = 0
    const start = process.cpuUsage()
    for (const c of commands) state = apply(state, c)
    const seconds = cpuSeconds(start)
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
        const start = process.cpuUsage()
        let k = 0
        for (const c of commands) {
          const id = (c.data as { referralId: string }).referralId
          if (book.get(id) === undefined) book.set(id, k++)
        }
        return (cpuSeconds(start) * 1e6) / commands.length
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
      const start = process.cpuUsage()
      let sink = 0
      for (let k = 0; k < commands.length; k++) sink += engine.rank(request, 10).ranked.length
      if (sink !== 10 * commands.length) throw new Error('the ranking lost candidates')
      return (cpuSeconds(start) * 1e6) / commands.length
    }),
  )
  // The schema check of each command, and building the event from a ranking (n = 100).
  const schemaMicros = median(
    Array.from({ length: runs }, () => {
      const start = process.cpuUsage()
      let sink = 0
      for (const c of commands) sink += isRouteReferral(c) ? 1 : 0
      if (sink !== commands.length) throw new Error('a command failed its schema check')
      return (cpuSeconds(start) * 1e6) / commands.length
    }),
  )
  const eventMicros = median(
    Array.from({ length: runs }, () => {
      const engine = poolEngine(pool(100))
      const request = { insuranceNetworkId: null, excludedPracticeIds: [] } as unknown as Parameters<
        typeof engine.rank
      >[0]
      const ranking = engine.rank(request, 10)
      gc()
      const start = process.cpuUsage()
      let sink = 0
      for (const c of commands) {
        const d = c.data as { referralId: Parameters<typeof routingEvent>[1] }
        sink += routingEvent('bench', d.referralId, request, ranking, currentRoutingPolicy).type.length
      }
      if (sink === 0) throw new Error('no event')
      return (cpuSeconds(start) * 1e6) / commands.length
    }),
  )
  // The book's lookup alone (decide: is the referral held?), and evolve alone: the events of a run
  // decided on one pool, applied to an identical fresh pool (the book insertion, the service's heap
  // updates of the served and promoted members, the state object).
  const holdsMicros = median(
    Array.from({ length: runs }, () => {
      const engine = poolEngine(pool(100))
      gc()
      const start = process.cpuUsage()
      let sink = 0
      for (const c of commands) sink += engine.holds((c.data as { referralId: string }).referralId) ? 1 : 0
      if (sink !== 0) throw new Error('a new referral is held')
      return (cpuSeconds(start) * 1e6) / commands.length
    }),
  )
  const evolveMicros = median(
    Array.from({ length: runs }, () => {
      let source = pool(100)
      const events: Parameters<typeof poolDecider.evolve>[1][] = []
      for (const c of commands) {
        const r = poolDecider.decide(c, source)
        if (r._tag === 'Left') throw new Error(r.left.code)
        for (const e of r.right) {
          events.push(e)
          source = poolDecider.evolve(source, e)
        }
      }
      let state = pool(100)
      gc()
      const start = process.cpuUsage()
      for (const e of events) state = poolDecider.evolve(state, e)
      return (cpuSeconds(start) * 1e6) / commands.length
    }),
  )
  // Bytes allocated per decision: heap growth over 2,000 decisions started right after a full
  // collection (the young generation holds them all, so no collection runs in between), median of runs.
  const allocBytes = median(
    Array.from({ length: runs }, () => {
      let state = pool(100)
      const few = commands.slice(0, 2_000)
      gc()
      const before = process.memoryUsage().heapUsed
      for (const c of few) state = apply(state, c)
      return (process.memoryUsage().heapUsed - before) / few.length
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
  const measuredPhases: [string, number][] = [
    ['decide: schema check of the command', schemaMicros],
    ['decide: referral book lookup (is it held?)', holdsMicros],
    ['decide: ranking (10 candidates from the sorted prefixes, their objects)', rankMicros],
    ['decide: building the event', eventMicros],
    [
      `evolve (book insertion of ${decisions.toLocaleString('en-US')} held ids, service: heap updates, state object)`,
      evolveMicros,
    ],
  ]
  const phases: [string, number][] = [
    ...measuredPhases,
    [
      'the rest, by difference (decider dispatch, the Either, the loop, GC of it all together)',
      Math.max(0, at100.microsPerDecision - measuredPhases.reduce((a, [, us]) => a + us, 0)),
    ],
  ]
  const scaleOk = largest.costRatio <= 3
  const verdicts = [
    `${speedOk ? 'MET' : 'NOT MET'}: ≥ 1,000,000 decisions/s at n = 100 — measured ${at100.perSecond.toLocaleString('en-US')} (${at100.microsPerDecision.toFixed(2)} µs per decision).`,
    ...(speedOk
      ? []
      : [
          `  In the way (n = 100, CPU time; each phase measured alone, the rest by difference; the target is 1.00 µs per decision): ${phases.map(([what, us]) => `${what} ${us.toFixed(2)} µs (${Math.round((100 * us) / at100.microsPerDecision)} %)`).join('; ')}. Garbage collection: ${Math.round(100 * at100.gcShare)} % of the decision time (${Math.round(allocBytes)} bytes allocated per decision, the event most of it), spread over the phases. Machine load (1-min load average, 2 cores, shared with other jobs): ${load.toFixed(1)}.`,
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
  const phaseHead = ['phase', 'µs/decision', 'share']
  const phaseCells = phases.map(([what, us]) => [
    what,
    us.toFixed(2),
    `${Math.round((100 * us) / at100.microsPerDecision)} %`,
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
    `\nWhere a decision's CPU time goes at n = 100 (${at100.microsPerDecision.toFixed(2)} µs; target 1.00 µs):\n${text(phaseHead, phaseCells)}\nreferral book alone (lookup + insertion): IdTable ${bookMicros.toFixed(2)} µs, a Map ${mapBookMicros.toFixed(2)} µs; ${Math.round(allocBytes)} bytes allocated per decision; GC ${Math.round(100 * at100.gcShare)} % of the time; 1-min load average ${load.toFixed(1)}`,
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
    `Where a decision's CPU time goes at n = 100 (${at100.microsPerDecision.toFixed(2)} µs per decision; the target is 1.00 µs). Each phase measured alone with CPU time (median of the runs), the rest by difference:`,
    '',
    md(phaseHead, phaseCells).replace(/\|---:\|/, '|---|'),
    '',
    `The referral book alone (lookup + insertion per decision): IdTable ${bookMicros.toFixed(2)} µs, a bare Map ${mapBookMicros.toFixed(2)} µs. ${Math.round(allocBytes)} bytes allocated per decision (the event and its 10 candidates most of it); GC ${Math.round(100 * at100.gcShare)} % of the time. 1-min load average during the run: ${load.toFixed(1)} on 2 cores shared with other jobs.`,
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
        schemaMicrosPerDecision: schemaMicros,
        eventMicrosPerDecision: eventMicros,
        holdsMicrosPerDecision: holdsMicros,
        evolveMicrosPerDecision: evolveMicros,
        allocatedBytesPerDecision: allocBytes,
        phasesAt100: phases.map(([phase, micros]) => ({ phase, micros })),
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
