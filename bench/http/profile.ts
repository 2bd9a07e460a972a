/**
 * Where the time of one choose-for-me send goes, in one process:
 *
 *   npx turbo run build && npx tsx bench/http/profile.ts [--sends 400] [--source]
 *
 * Starts the service as `referrals serve --demo` wires it (`openRuntime` on an embedded
 * PostgreSQL, or `DATABASE_URL`; hash-chained store, encrypted PHI, routing, the demo data), then
 * sends `--sends` choose-for-me referrals one after another through `app.inject` (no socket: the
 * HTTP parsing of a real connection is not in the figures) under the V8 CPU profiler. It prints
 * the wall time and the CPU time per send (CPU = wall minus the profiler's idle samples, i.e.
 * the time the process was not waiting for PostgreSQL), what that CPU time allows on one core,
 * and the CPU time by package and by source directory. By default the compiled packages
 * (`dist`, what `npm start` runs) are profiled; `--source` profiles the TypeScript sources through
 * tsx instead, to show what that loader costs. Writes `bench/results/http-profile{-source}.{json,md}`.
 *
 * It also prints what stands in the way of the issue-11 targets, all counted in this one run:
 * the raw one-client INSERT commit rate of the same database, the CPU budget per request that
 * 0.5 × that rate leaves on this machine's cores, the process's CPU time (`process.cpuUsage`,
 * user + system, so usable on a shared machine) per send (one at a time, and `--concurrency` at a
 * time, where group commit shares transactions), per `GET /referrals/:id` and per authenticated
 * no-op request (the framework floor), and the SQL statements of each.
 */

import { randomUUID } from 'node:crypto'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { Session } from 'node:inspector/promises'
import { availableParallelism, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { rawCommitsPerSecond as measureRawCommits } from '../store/raw-insert.js'
import { nextTransactionId } from './commits.js'
import { relaunch } from './relaunch.js'

const CHILD = 'REFERRALS_HTTP_PROFILE_CHILD'

interface ProfileNode {
  readonly id: number
  readonly callFrame: { readonly functionName: string; readonly url: string }
  readonly hitCount?: number
}
interface Profile {
  readonly nodes: readonly ProfileNode[]
  readonly startTime: number
  readonly endTime: number
  readonly samples: readonly number[]
  readonly timeDeltas: readonly number[]
}

/** The package (node_modules name, or workspace package and source directory) a frame belongs to. */
export const bucketOf = (url: string, functionName: string): { pkg: string; dir: string } => {
  if (url === '') {
    const special = ['(idle)', '(garbage collector)', '(program)', '(root)']
    if (special.includes(functionName)) return { pkg: functionName, dir: functionName }
    return { pkg: '(native)', dir: '(native)' }
  }
  if (url.startsWith('node:')) return { pkg: 'node (built-ins)', dir: url }
  const modules = url.lastIndexOf('/node_modules/')
  if (modules >= 0) {
    const rest = url.slice(modules + '/node_modules/'.length).split('/')
    const pkg = rest[0]?.startsWith('@') === true ? `${rest[0]}/${rest[1]}` : (rest[0] ?? '?')
    return { pkg, dir: pkg }
  }
  const workspace = url.match(/\/packages\/(?:adapters\/)?([^/]+)\/(?:src|dist)\/(?:([^/]+)\/)?/)
  if (workspace !== null) {
    const pkg = `@referrals/${workspace[1]}`
    return { pkg, dir: workspace[2] === undefined ? pkg : `${pkg}/${workspace[2]}` }
  }
  return { pkg: '(other)', dir: url }
}

const child = async (): Promise<void> => {
  const args = process.argv.slice(2)
  const sendsArg = args.indexOf('--sends')
  const sends = sendsArg >= 0 ? Number(args[sendsArg + 1]) : 400
  const source = args.includes('--source')
  const concurrencyArg = args.indexOf('--concurrency')
  const concurrency = concurrencyArg >= 0 ? Number(args[concurrencyArg + 1]) : 32
  const cores = availableParallelism()
  const {
    buildApp,
    issueDevToken,
    loadConfig,
    openRuntime,
    registerResourceRoutes,
    DEMO,
    demoReferralBody,
    seedDemo,
  } = await import('@referrals/http')
  const dataDir = await mkdtemp(join(tmpdir(), 'referrals-profile-'))
  const config = await loadConfig(
    { ...process.env, REFERRALS_DATA_DIR: dataDir, LOG_LEVEL: 'silent', RATE_LIMIT_MAX: '1000000' },
    () => undefined,
  )
  const runtime = await openRuntime(config)
  try {
    await seedDemo(runtime.engine)
    const app = await buildApp({
      store: runtime.store,
      config,
      resolveActor: (userId, roles) => runtime.engine.directory.resolveActor(userId, roles),
      idempotencyStore: runtime.idempotencyStore,
      registerRoutes: async (instance) => {
        await registerResourceRoutes({ engine: runtime.engine, routing: runtime.routing })(instance)
        // The framework floor: every hook of an API route (authentication, actor, rate limit, …), no domain work.
        instance.get('/bench/noop', async () => ({ ok: true }))
      },
    })
    const token = await issueDevToken(config, { userId: DEMO.clinic.owner }, { ttlSeconds: 3600 })
    const sent: string[] = []
    const send = async () => {
      const referralId = randomUUID()
      const response = await app.inject({
        method: 'POST',
        url: '/referrals',
        headers: { authorization: `Bearer ${token}`, 'idempotency-key': randomUUID() },
        payload: demoReferralBody(referralId),
      })
      if (response.statusCode !== 201) throw new Error(`send answered ${response.statusCode}`)
      sent.push(referralId)
    }
    let gets = 0
    const get = async () => {
      const response = await app.inject({
        method: 'GET',
        url: `/referrals/${sent[gets++ % sent.length]}`,
        headers: { authorization: `Bearer ${token}` },
      })
      if (response.statusCode !== 200) throw new Error(`GET answered ${response.statusCode}`)
    }
    const noop = async () => {
      const response = await app.inject({
        method: 'GET',
        url: '/bench/noop',
        headers: { authorization: `Bearer ${token}` },
      })
      if (response.statusCode !== 200) throw new Error(`noop answered ${response.statusCode}`)
    }
    for (let i = 0; i < 50; i++) await send() // warm-up: JIT, pool cache, directory
    for (let i = 0; i < 50; i++) await get()
    for (let i = 0; i < 50; i++) await noop()
    // SQL statements per request (the text's first words: no parameter, so no PHI), counted on pg's client.
    const pg = (await import('pg')).default
    const countStatements = async (run: () => Promise<void>, times: number) => {
      const statements = new Map<string, number>()
      const query = pg.Client.prototype.query
      pg.Client.prototype.query = function (this: unknown, ...a: unknown[]) {
        const first = a[0]
        const text =
          typeof first === 'string' ? first : ((first as { text?: string } | undefined)?.text ?? '?')
        const key = text.replace(/\s+/g, ' ').trim().slice(0, 60)
        statements.set(key, (statements.get(key) ?? 0) + 1)
        return (query as (...b: unknown[]) => unknown).apply(this, a)
      } as typeof query
      try {
        for (let i = 0; i < times; i++) await run()
      } finally {
        pg.Client.prototype.query = query
      }
      const rows = [...statements.entries()]
        .sort((a, b) => b[1] - a[1])
        .map(([text, n]) => ({ text, perSend: Math.round((n / times) * 100) / 100 }))
      return { rows, total: Math.round(rows.reduce((sum, r) => sum + r.perSend, 0) * 100) / 100 }
    }
    const countedSends = 20
    // PostgreSQL write transactions (WAL-flushing commits, every table) per request, counted on the database.
    const writesOf = async (run: () => Promise<void>) => {
      const pool = runtime.pool
      if (pool === undefined) return null
      const before = await nextTransactionId(pool)
      await run()
      return (await nextTransactionId(pool)) - before
    }
    const perRequest = (n: number | null, times: number) =>
      n === null ? null : Math.round((n / times) * 100) / 100
    let sendStatements: Awaited<ReturnType<typeof countStatements>> | undefined
    const sendCommits = perRequest(
      await writesOf(async () => {
        sendStatements = await countStatements(send, countedSends)
      }),
      countedSends,
    )
    if (sendStatements === undefined) throw new Error('the counted sends did not run')
    const statementsPerSend = sendStatements.rows
    const totalStatements = sendStatements.total
    const getStatements = await countStatements(get, countedSends)
    const noopStatements = await countStatements(noop, countedSends)
    /** The process's own CPU time (user + system, from the kernel) and the wall time of `times` runs, `inFlight` at a time. */
    const cpuOf = async (run: () => Promise<void>, times: number, inFlight = 1) => {
      const before = process.cpuUsage()
      const t0 = performance.now()
      let next = 0
      await Promise.all(
        Array.from({ length: inFlight }, async () => {
          while (next < times) {
            next++
            await run()
          }
        }),
      )
      const wall = performance.now() - t0
      const cpu = process.cpuUsage(before)
      const r = (x: number) => Math.round(x * 1000) / 1000
      return {
        wallMs: r(wall / times),
        cpuMs: r((cpu.user + cpu.system) / 1000 / times),
        userMs: r(cpu.user / 1000 / times),
        systemMs: r(cpu.system / 1000 / times),
        perSecond: Math.round((times / wall) * 1000 * 10) / 10,
      }
    }
    // The raw commit rate of this database (one client, one-row INSERTs each committing on its own).
    const rawCommitsPerSecond = async (ms: number) => {
      const pool = runtime.pool
      if (pool === undefined) return null
      return measureRawCommits(pool, ms)
    }
    const loadBefore = loadavg()[0] ?? 0
    const rawBefore = await rawCommitsPerSecond(2000)
    // Unprofiled: one at a time (the latency path), then `concurrency` at a time (the throughput path).
    const sequential = await cpuOf(send, sends)
    let concurrent: Awaited<ReturnType<typeof cpuOf>> | undefined
    const concurrentCommits = perRequest(
      await writesOf(async () => {
        concurrent = await cpuOf(send, sends, concurrency)
      }),
      sends,
    )
    if (concurrent === undefined) throw new Error('the concurrent sends did not run')
    const getSequential = await cpuOf(get, sends)
    const getConcurrent = await cpuOf(get, sends, concurrency)
    const noopSequential = await cpuOf(noop, sends)
    const rawAfter = await rawCommitsPerSecond(2000)
    const loadAfter = loadavg()[0] ?? 0
    const wallMs = sequential.wallMs * sends
    const cpuMsPerSend = sequential.cpuMs
    const raw = rawBefore === null || rawAfter === null ? null : (rawBefore + rawAfter) / 2
    // The targets: send and GET at ≥ 0.5 × raw. All cores, shared with PostgreSQL and the load
    // generator in the load benchmark, give at most this much CPU per request at that rate.
    const targetRate = raw === null ? null : raw / 2
    const budgetMs = targetRate === null ? null : Math.round(((cores * 1000) / targetRate) * 1000) / 1000
    // Profiled: where that CPU time goes (shares of the sampled, non-idle time).
    const session = new Session()
    session.connect()
    await session.post('Profiler.enable')
    await session.post('Profiler.setSamplingInterval', { interval: 200 })
    await session.post('Profiler.start')
    for (let i = 0; i < sends; i++) await send()
    const { profile } = (await session.post('Profiler.stop')) as unknown as { profile: Profile }
    session.disconnect()
    if (process.env.REFERRALS_PROFILE_RAW !== undefined)
      await writeFile(process.env.REFERRALS_PROFILE_RAW, JSON.stringify(profile))
    await app.close()

    const byId = new Map(profile.nodes.map((n) => [n.id, n]))
    const selfUs = new Map<number, number>()
    profile.samples.forEach((id, i) => {
      selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0))
    })
    const pkgUs = new Map<string, number>()
    const dirUs = new Map<string, number>()
    const fnUs = new Map<string, number>()
    const parentOf = new Map<number, number>()
    for (const n of profile.nodes)
      for (const c of (n as { children?: number[] }).children ?? []) parentOf.set(c, n.id)
    let totalUs = 0
    let idleUs = 0
    for (const [id, us] of selfUs) {
      const node = byId.get(id)
      if (node === undefined) continue
      totalUs += us
      const { pkg, dir } = bucketOf(node.callFrame.url, node.callFrame.functionName)
      // The profiler's own calls (Profiler.stop) are not the service's time.
      const parent = byId.get(parentOf.get(id) ?? -1)
      if (pkg === '(idle)' || parent?.callFrame.url === 'node:inspector') {
        idleUs += us
        continue
      }
      pkgUs.set(pkg, (pkgUs.get(pkg) ?? 0) + us)
      dirUs.set(dir, (dirUs.get(dir) ?? 0) + us)
      const fn = `${node.callFrame.functionName || '(anonymous)'} ${dir}`
      fnUs.set(fn, (fnUs.get(fn) ?? 0) + us)
    }
    const cpuUs = totalUs - idleUs
    const rows = (m: Map<string, number>, limit: number) =>
      [...m.entries()]
        .sort((a, b) => b[1] - a[1])
        .slice(0, limit)
        .map(([name, us]) => ({
          name,
          msPerSend: Math.round((us / cpuUs) * cpuMsPerSend * 1000) / 1000,
          share: Math.round((us / cpuUs) * 1000) / 10,
        }))
    const result = {
      date: new Date().toISOString(),
      node: process.version,
      code: source ? 'TypeScript sources through tsx' : 'compiled packages (dist)',
      store: runtime.storeDescription,
      sends,
      wallMsPerSend: Math.round((wallMs / sends) * 1000) / 1000,
      cpuMsPerSend: Math.round(cpuMsPerSend * 1000) / 1000,
      waitMsPerSend: Math.round(Math.max(0, wallMs / sends - cpuMsPerSend) * 1000) / 1000,
      sendsPerSecondOneCoreCpuBound: Math.round(1000 / cpuMsPerSend),
      cores,
      loadAverage: { before: Math.round(loadBefore * 100) / 100, after: Math.round(loadAfter * 100) / 100 },
      rawCommitsPerSecond: { before: rawBefore, after: rawAfter, mean: raw },
      targetRequestsPerSecond: targetRate,
      cpuBudgetMsPerRequest: budgetMs,
      concurrency,
      send: {
        sequential,
        concurrent,
        statements: totalStatements,
        writeTransactions: { sequential: sendCommits, concurrent: concurrentCommits },
      },
      get: { sequential: getSequential, concurrent: getConcurrent, statements: getStatements.total },
      noop: { sequential: noopSequential, statements: noopStatements.total },
      getStatements: getStatements.rows,
      noopStatements: noopStatements.rows,
      byPackage: rows(pkgUs, 15),
      byDirectory: rows(dirUs, 25),
      byFunction: rows(fnUs, 25),
      statementsPerSend: Math.round(totalStatements * 100) / 100,
      statements: statementsPerSend,
    }
    const table = (title: string, rs: typeof result.byPackage) =>
      [
        `| ${title} | CPU ms per send (share × measured CPU) | share of sampled CPU |`,
        '|---|--:|--:|',
        ...rs.map((r) => `| ${r.name} | ${r.msPerSend} | ${r.share} % |`),
      ].join('\n')
    const vsBudget = (cpuMs: number) =>
      budgetMs === null ? '—' : `${Math.round((cpuMs / budgetMs) * 100) / 100} ×`
    const obstacles = [
      '## What stands in the way of the targets (issue 11: send and GET ≥ 0.5 × raw commit rate)',
      '',
      `Machine: ${cores} cores, 1-minute load average ${result.loadAverage.before} before, ${result.loadAverage.after} after (other work on the machine makes wall times longer, not CPU times). Raw one-client INSERT commit rate of the same database: ${rawBefore ?? '—'} commits/s before, ${rawAfter ?? '—'} after; target ${targetRate === null ? '—' : Math.round(targetRate)} requests/s, which leaves at most **${budgetMs ?? '—'} ms of CPU per request** on ${cores} cores — for the service, PostgreSQL and (in the load benchmark) the load generator together.`,
      '',
      `| request | SQL statements | PostgreSQL write transactions | CPU ms (user + system) | user | system | × budget | wall ms | requests/s here |`,
      '|---|--:|--:|--:|--:|--:|--:|--:|--:|',
      `| noop (authenticated, no domain work: the framework floor), one at a time | ${noopStatements.total} | — | ${noopSequential.cpuMs} | ${noopSequential.userMs} | ${noopSequential.systemMs} | ${vsBudget(noopSequential.cpuMs)} | ${noopSequential.wallMs} | ${noopSequential.perSecond} |`,
      `| send, one at a time | ${totalStatements} | ${sendCommits ?? '—'} | ${sequential.cpuMs} | ${sequential.userMs} | ${sequential.systemMs} | ${vsBudget(sequential.cpuMs)} | ${sequential.wallMs} | ${sequential.perSecond} |`,
      `| send, ${concurrency} at a time (group commit) | — | ${concurrentCommits ?? '—'} | ${concurrent.cpuMs} | ${concurrent.userMs} | ${concurrent.systemMs} | ${vsBudget(concurrent.cpuMs)} | ${concurrent.wallMs} | ${concurrent.perSecond} |`,
      `| GET /referrals/:id, one at a time | ${getStatements.total} | — | ${getSequential.cpuMs} | ${getSequential.userMs} | ${getSequential.systemMs} | ${vsBudget(getSequential.cpuMs)} | ${getSequential.wallMs} | ${getSequential.perSecond} |`,
      `| GET /referrals/:id, ${concurrency} at a time | — | — | ${getConcurrent.cpuMs} | ${getConcurrent.userMs} | ${getConcurrent.systemMs} | ${vsBudget(getConcurrent.cpuMs)} | ${getConcurrent.wallMs} | ${getConcurrent.perSecond} |`,
      '',
      `Requests go through \`app.inject\` (no socket, no HTTP parsing): a real connection costs more. The noop row is the floor any route pays; \`× budget\` above 1 means that request alone, with nothing else on the machine, cannot reach the target rate.`,
      '',
      '| GET statement (first 60 characters) | per GET |',
      '|---|--:|',
      ...getStatements.rows.map((st) => `| \`${st.text}\` | ${st.perSend} |`),
      '',
    ]
    const md = [
      '# Where a choose-for-me send spends its time',
      '',
      ...obstacles,
      '## Profile of sequential sends',
      '',
      `\`npx tsx bench/http/profile.ts${source ? ' --source' : ''}\` — ${result.date.slice(0, 10)}, Node ${result.node}, ${result.code}, ${result.store}, ${sends} sequential sends through \`app.inject\` after 50 warm-up sends, V8 CPU profiler at 200 µs.`,
      '',
      `- wall time per send: **${result.wallMsPerSend} ms**; of it CPU time of this process (user + system): **${result.cpuMsPerSend} ms**; the rest, ${result.waitMsPerSend} ms, is waiting (for PostgreSQL, or for a core)`,
      `- CPU-bound limit on one core: **${result.sendsPerSecondOneCoreCpuBound} sends/s** (before HTTP parsing of real connections, and before the load generator takes its share of the cores)`,
      '',
      '- the tables below split the measured CPU time by the V8 profiler’s shares of its non-idle samples. The profiler samples wall time: a native call during which the process was descheduled (`writev` of a statement, while the kernel switches to the PostgreSQL backend it woke) collects samples without using this process’s CPU, so `writev` is overstated and every other row understated (`process.cpuUsage` put system time at a fraction of what `writev` shows).',
      '',
      `- SQL statements per send: **${result.statementsPerSend}** (counted over ${countedSends} sends before profiling); PostgreSQL write transactions (WAL-flushing commits, every table, counted on the database by \`bench/http/commits.ts\`) per send: **${sendCommits ?? '—'}** one at a time, **${concurrentCommits ?? '—'}** ${concurrency} at a time`,
      '',
      '| statement (first 60 characters) | per send |',
      '|---|--:|',
      ...result.statements.map((st) => `| \`${st.text}\` | ${st.perSend} |`),
      '',
      table('package', result.byPackage),
      '',
      table('source directory', result.byDirectory),
      '',
      table('function (self time)', result.byFunction),
      '',
    ].join('\n')
    console.log(md)
    const dir = fileURLToPath(new URL('../results/', import.meta.url))
    await mkdir(dir, { recursive: true })
    const base = join(dir, `http-profile${source ? '-source' : ''}`)
    await writeFile(`${base}.json`, `${JSON.stringify(result, null, 2)}\n`)
    await writeFile(`${base}.md`, md)
    console.log(`wrote ${base}.json and ${base}.md`)
  } finally {
    await runtime.close()
    await rm(dataDir, { recursive: true, force: true })
  }
}

if (process.env[CHILD] === '1') {
  await child()
} else {
  relaunch(import.meta.url, { [CHILD]: '1' }, { source: process.argv.includes('--source') })
}
