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
 */

import { randomUUID } from 'node:crypto'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { Session } from 'node:inspector/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
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
      registerRoutes: registerResourceRoutes({ engine: runtime.engine, routing: runtime.routing }),
    })
    const token = await issueDevToken(config, { userId: DEMO.clinic.owner }, { ttlSeconds: 3600 })
    const send = async () => {
      const response = await app.inject({
        method: 'POST',
        url: '/referrals',
        headers: { authorization: `Bearer ${token}`, 'idempotency-key': randomUUID() },
        payload: demoReferralBody(randomUUID()),
      })
      if (response.statusCode !== 201) throw new Error(`send answered ${response.statusCode}`)
    }
    for (let i = 0; i < 50; i++) await send() // warm-up: JIT, pool cache, directory
    // SQL statements per send (the text's first words: no parameter, so no PHI), counted on pg's client.
    const statements = new Map<string, number>()
    const pg = (await import('pg')).default
    const query = pg.Client.prototype.query
    pg.Client.prototype.query = function (this: unknown, ...a: unknown[]) {
      const first = a[0]
      const text = typeof first === 'string' ? first : ((first as { text?: string } | undefined)?.text ?? '?')
      const key = text.replace(/\s+/g, ' ').trim().slice(0, 60)
      statements.set(key, (statements.get(key) ?? 0) + 1)
      return (query as (...b: unknown[]) => unknown).apply(this, a)
    } as typeof query
    const countedSends = 20
    for (let i = 0; i < countedSends; i++) await send()
    pg.Client.prototype.query = query
    const statementsPerSend = [...statements.entries()]
      .sort((a, b) => b[1] - a[1])
      .map(([text, n]) => ({ text, perSend: Math.round((n / countedSends) * 100) / 100 }))
    const totalStatements = statementsPerSend.reduce((sum, s) => sum + s.perSend, 0)
    // Unprofiled: wall time and the process's own CPU time (user + system, from the kernel).
    const cpuBefore = process.cpuUsage()
    const started = performance.now()
    for (let i = 0; i < sends; i++) await send()
    const wallMs = performance.now() - started
    const cpu = process.cpuUsage(cpuBefore)
    const cpuMsPerSend = (cpu.user + cpu.system) / 1000 / sends
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
    const md = [
      '# Where a choose-for-me send spends its time',
      '',
      `\`npx tsx bench/http/profile.ts${source ? ' --source' : ''}\` — ${result.date.slice(0, 10)}, Node ${result.node}, ${result.code}, ${result.store}, ${sends} sequential sends through \`app.inject\` after 50 warm-up sends, V8 CPU profiler at 200 µs.`,
      '',
      `- wall time per send: **${result.wallMsPerSend} ms**; of it CPU time of this process (user + system): **${result.cpuMsPerSend} ms**; the rest, ${result.waitMsPerSend} ms, is waiting (for PostgreSQL, or for a core)`,
      `- CPU-bound limit on one core: **${result.sendsPerSecondOneCoreCpuBound} sends/s** (before HTTP parsing of real connections, and before the load generator takes its share of the cores)`,
      '',
      `- SQL statements per send: **${result.statementsPerSend}** (counted over ${countedSends} sends before profiling)`,
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
