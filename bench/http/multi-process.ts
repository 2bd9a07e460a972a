/**
 * Several service processes on one PostgreSQL, one pool, many concurrent sends (issue 11):
 *
 *   npx tsx bench/http/multi-process.ts [--processes 4] [--sends 1000] [--in-flight 128]
 *
 * Starts (or takes `DATABASE_URL`) one PostgreSQL, loads the demo data once, starts `--processes`
 * copies of the benchmark server (`server.ts`: the service as `serve --demo` wires it) on that
 * database, and sends `--sends` choose-for-me referrals round-robin across them, `--in-flight`
 * at a time, all to the demo's one pool (orthopedics / north / knee). Then, from a fresh runtime:
 * every referral stream holds exactly one `ReferralSent` and is routed to a pool member; the pool
 * stream holds exactly one `ReferralRouted` per referral (none lost, none duplicated); the
 * members' counts are compared with their FTE shares; `verifyRouting` re-derives every decision.
 * Prints the table and writes `bench/results/http-multi-process{-quick}.{json,md}` (`--quick`:
 * 200 sends). Exits 1 if any check fails. `bench/http/multi-process.test.ts` runs it bounded.
 */
import { randomUUID } from 'node:crypto'
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { startBenchServer, stopServer } from './driver.js'
import { relaunch } from './relaunch.js'

export interface MultiProcessPlan {
  readonly processes: number
  readonly sends: number
  readonly inFlight: number
}

export interface MemberCount {
  readonly practiceId: string
  readonly fte: number
  readonly received: number
  /** sends × fte ÷ Σ fte */
  readonly share: number
  /** received − share */
  readonly lag: number
}

export interface MultiProcessResult {
  readonly plan: MultiProcessPlan
  readonly store: string
  readonly seconds: number
  readonly sendsPerSecond: number
  readonly answered: Readonly<Record<string, number>>
  readonly referralsStored: number
  readonly referralsWithOneSent: number
  readonly routedToMember: number
  readonly poolDecisions: number
  readonly lost: number
  readonly duplicated: number
  readonly members: readonly MemberCount[]
  readonly maxAbsLag: number
  /** max − min over members of received ÷ share (1 = exactly fair) */
  readonly normalisedSpread: number
  /** max − min over members of received − share, in referrals */
  readonly lagSpread: number
  readonly verifyRouting: { readonly ok: boolean; readonly decisions: number; readonly mismatches: number }
  readonly ok: boolean
  readonly failures: readonly string[]
}

const r4 = (x: number) => Math.round(x * 10_000) / 10_000

/** `databaseUrl`: an empty database to use (default `DATABASE_URL`, else an embedded server of its own). */
export const runMultiProcess = async (
  plan: MultiProcessPlan,
  databaseUrl: string | undefined = process.env.DATABASE_URL,
): Promise<MultiProcessResult> => {
  // Loaded here (not at the top) so the launcher can run this file before the source condition applies.
  const core = await import('@referrals/core')
  const { DEMO, demoReferralBody, loadConfig, openRuntime, seedDemo } = await import('@referrals/http')
  const { startEmbeddedPostgres } = await import('@referrals/postgres')
  const dataDir = await mkdtemp(path.join(tmpdir(), 'referrals-multi-process-'))
  await chmod(dataDir, 0o711)
  const owned =
    databaseUrl === undefined
      ? await startEmbeddedPostgres({ dataDir: path.join(dataDir, 'postgres') })
      : undefined
  const url = owned?.connectionString ?? (databaseUrl as string)
  const servers: Awaited<ReturnType<typeof startBenchServer>>[] = []
  try {
    const env = { DATABASE_URL: url, REFERRALS_DATA_DIR: dataDir, LOG_LEVEL: 'silent' }
    const seeding = await openRuntime(await loadConfig(env, () => undefined))
    await seedDemo(seeding.engine)
    await seeding.close()
    // One data directory for every process: they share its development master key (as processes
    // of one deployment share REFERRALS_MASTER_KEY), so each can open the PHI the others sealed.
    for (let i = 0; i < plan.processes; i++)
      servers.push(
        await startBenchServer({ DATABASE_URL: url, REFERRALS_DATA_DIR: dataDir }, [
          '--conditions=@referrals/source',
          '--import',
          'tsx',
        ]),
      )
    const ids = Array.from({ length: plan.sends }, () => randomUUID())
    const answered: Record<string, number> = {}
    let next = 0
    const started = performance.now()
    const worker = async () => {
      for (;;) {
        const i = next++
        if (i >= ids.length) return
        const server = servers[i % servers.length] as (typeof servers)[number]
        const response = await fetch(`http://127.0.0.1:${server.ready.port}/referrals`, {
          method: 'POST',
          headers: {
            authorization: `Bearer ${server.ready.tokens[DEMO.clinic.owner]}`,
            'content-type': 'application/json',
            'idempotency-key': randomUUID(),
          },
          body: JSON.stringify(demoReferralBody(ids[i] as string)),
        }).catch(() => undefined)
        const key = response === undefined ? 'connection error' : String(response.status)
        await response?.arrayBuffer()
        answered[key] = (answered[key] ?? 0) + 1
      }
    }
    await Promise.all(Array.from({ length: plan.inFlight }, worker))
    const seconds = (performance.now() - started) / 1000
    for (const s of servers.splice(0)) await stopServer(s.child, s.exited)

    // The checks, from a runtime that did none of the writes.
    const checker = await openRuntime(await loadConfig(env, () => undefined))
    try {
      const failures: string[] = []
      const pooled = new Set<string>(
        DEMO.specialists.filter((s) => s.regions.includes('north' as never)).map((s) => s.practiceId),
      )
      let referralsStored = 0
      let referralsWithOneSent = 0
      let routedToMember = 0
      for (const referralId of ids) {
        const events = await checker.store.readStream(core.unsafeId(`referral-${referralId}`))()
        if (events._tag === 'Left') throw new Error(events.left.message)
        if (events.right.length > 0) referralsStored++
        if (events.right.filter((e) => e.type === 'ReferralSent').length === 1) referralsWithOneSent++
        const loaded = await checker.engine.referrals.load(core.unsafeId(referralId))()
        if (loaded._tag === 'Left') throw new Error(loaded.left.message)
        const state = loaded.right.state
        if (state.exists && state.recipientPracticeId !== null && pooled.has(state.recipientPracticeId))
          routedToMember++
      }
      const first = ids[0] as string
      const loadedFirst = await checker.engine.referrals.load(core.unsafeId(first))()
      if (loadedFirst._tag === 'Left' || !loadedFirst.right.state.exists)
        throw new Error('the first referral is missing')
      const poolStream = core.unsafeId<import('@referrals/core').StreamId>(
        core.poolStreamName(core.poolKeyOf(loadedFirst.right.state)),
      )
      const poolEvents = await checker.store.readStream(poolStream)()
      if (poolEvents._tag === 'Left') throw new Error(poolEvents.left.message)
      const sent = new Set<string>(ids)
      const decisionsFor = new Map<string, number>()
      const received = new Map<string, number>()
      for (const e of poolEvents.right) {
        if (e.type !== 'ReferralRouted') continue
        const data = e.data as { referralId: string; chosenPracticeId: string }
        if (!sent.has(data.referralId)) continue
        decisionsFor.set(data.referralId, (decisionsFor.get(data.referralId) ?? 0) + 1)
        received.set(data.chosenPracticeId, (received.get(data.chosenPracticeId) ?? 0) + 1)
      }
      const poolDecisions = [...decisionsFor.values()].reduce((a, b) => a + b, 0)
      const lost = ids.filter((id) => !decisionsFor.has(id)).length
      const duplicated = [...decisionsFor.values()].filter((n) => n > 1).length
      const members = DEMO.specialists.filter((s) => pooled.has(s.practiceId))
      const totalFte = members.reduce((a, m) => a + m.fte, 0)
      const counts: MemberCount[] = members.map((m) => {
        const got = received.get(m.practiceId) ?? 0
        const share = (plan.sends * m.fte) / totalFte
        return { practiceId: m.practiceId, fte: m.fte, received: got, share: r4(share), lag: r4(got - share) }
      })
      const lags = counts.map((c) => c.lag)
      const ratios = counts.map((c) => c.received / c.share)
      const verified = await checker.routing.verifyPoolOf(core.unsafeId(first))
      if (verified._tag === 'Left') throw new Error(verified.left.message)
      const verification = verified.right ?? { ok: false, decisions: 0, mismatches: [] }
      const ok201 = answered['201'] ?? 0
      if (ok201 !== plan.sends) failures.push(`${plan.sends - ok201} sends were not answered 201`)
      if (referralsStored !== plan.sends)
        failures.push(`${plan.sends - referralsStored} referrals are not stored`)
      if (referralsWithOneSent !== plan.sends)
        failures.push('a referral does not hold exactly one ReferralSent')
      if (routedToMember !== plan.sends)
        failures.push(`${plan.sends - routedToMember} referrals are not with a pool member`)
      if (lost > 0) failures.push(`${lost} referrals have no routing decision`)
      if (duplicated > 0) failures.push(`${duplicated} referrals were decided more than once`)
      if (!verification.ok) failures.push(`verifyRouting found ${verification.mismatches.length} mismatches`)
      const maxAbsLag = Math.max(...lags.map(Math.abs))
      if (maxAbsLag >= 1)
        failures.push(`a member is ${maxAbsLag} referrals off its FTE share (the invariant is < 1)`)
      return {
        plan,
        store: 'PostgreSQL, one database for all processes',
        seconds: r4(seconds),
        sendsPerSecond: Math.round(plan.sends / seconds),
        answered,
        referralsStored,
        referralsWithOneSent,
        routedToMember,
        poolDecisions,
        lost,
        duplicated,
        members: counts,
        maxAbsLag: r4(maxAbsLag),
        normalisedSpread: r4(Math.max(...ratios) - Math.min(...ratios)),
        lagSpread: r4(Math.max(...lags) - Math.min(...lags)),
        verifyRouting: {
          ok: verification.ok,
          decisions: verification.decisions,
          mismatches: verification.mismatches.length,
        },
        ok: failures.length === 0,
        failures,
      }
    } finally {
      await checker.close()
    }
  } finally {
    for (const s of servers) await stopServer(s.child, s.exited)
    await owned?.stop()
    await rm(dataDir, { recursive: true, force: true })
  }
}

export const formatMultiProcess = (r: MultiProcessResult): string =>
  [
    '# Several service processes, one PostgreSQL, one pool',
    '',
    `\`npx tsx bench/http/multi-process.ts --processes ${r.plan.processes} --sends ${r.plan.sends} --in-flight ${r.plan.inFlight}\` — ${new Date().toISOString().slice(0, 10)}, Node ${process.version}, ${r.store}`,
    '',
    `- ${r.plan.sends} choose-for-me sends to one pool, round-robin over ${r.plan.processes} processes, ${r.plan.inFlight} in flight: ${r.seconds} s (${r.sendsPerSecond} sends/s); answers ${JSON.stringify(r.answered)}`,
    `- referrals stored ${r.referralsStored}, with exactly one ReferralSent ${r.referralsWithOneSent}, with a pool member ${r.routedToMember}; pool decisions for them ${r.poolDecisions}: lost ${r.lost}, duplicated ${r.duplicated}`,
    `- verifyRouting over the pool: ${r.verifyRouting.ok ? 'ok' : 'FAILED'}, ${r.verifyRouting.decisions} decisions re-derived, ${r.verifyRouting.mismatches} mismatches`,
    `- max |received − FTE share| ${r.maxAbsLag} referrals; spread of (received − share) ${r.lagSpread}; FTE-normalised spread (max − min of received ÷ share) ${r.normalisedSpread}`,
    '',
    '| member | FTE | received | FTE share | received − share |',
    '|---|--:|--:|--:|--:|',
    ...r.members.map((m) => `| ${m.practiceId} | ${m.fte} | ${m.received} | ${m.share} | ${m.lag} |`),
    '',
    r.ok ? 'All checks passed.' : `FAILED: ${r.failures.join('; ')}`,
    '',
  ].join('\n')

const numberAfter = (argv: readonly string[], flag: string, fallback: number): number => {
  const i = argv.indexOf(flag)
  const n = i >= 0 ? Number(argv[i + 1]) : fallback
  if (!Number.isInteger(n) || n < 1) throw new Error(`${flag} takes a positive integer`)
  return n
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  if (process.env.REFERRALS_MULTI_PROCESS_CHILD === undefined) {
    relaunch(import.meta.url, { REFERRALS_MULTI_PROCESS_CHILD: '1' })
  } else {
    const argv = process.argv.slice(2)
    const quick = argv.includes('--quick')
    const plan = {
      processes: numberAfter(argv, '--processes', 4),
      sends: numberAfter(argv, '--sends', quick ? 200 : 1000),
      inFlight: numberAfter(argv, '--in-flight', 128),
    }
    const result = await runMultiProcess(plan)
    const md = formatMultiProcess(result)
    console.log(md)
    const dir = fileURLToPath(new URL('../results/', import.meta.url))
    await mkdir(dir, { recursive: true })
    const base = path.join(dir, `http-multi-process${quick ? '-quick' : ''}`)
    await writeFile(`${base}.json`, `${JSON.stringify(result, null, 2)}\n`)
    await writeFile(`${base}.md`, md)
    console.log(`wrote ${base}.json and ${base}.md`)
    process.exitCode = result.ok ? 0 : 1
  }
}
