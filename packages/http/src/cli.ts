#!/usr/bin/env node
import { randomUUID } from 'node:crypto'
import { pathToFileURL } from 'node:url'
import {
  type Aggregate,
  type BacktestPolicy,
  backtest,
  catalogAggregate,
  DEFAULT_SUPPRESSION_THRESHOLD,
  type DomainEvent,
  decodeStored,
  type EventStore,
  type FairnessReport,
  InstantFromRfc3339,
  type PatientId,
  PhiAccessed,
  type PracticeId,
  poolAggregate,
  practiceAggregate,
  REPORT_DIMENSIONS,
  type ReportFilters,
  readAllEvents,
  readPoolHistory,
  redactingSealer,
  type StoredEvent,
  StoreReadError,
  verifyStore,
} from '@referrals/core'
import { sha256Hasher } from '@referrals/crypto'
import cliProgress from 'cli-progress'
import * as E from 'fp-ts/lib/Either.js'
import { issueDevToken, runTokenCommand } from './auth.js'
import { type Config, ConfigError, loadConfig } from './config.js'
import { DEMO, demoReferralBody, seedDemo } from './demo.js'
import { demoHistoryStart, seedDemoHistory, settableClock } from './demo-history.js'
import { createLogger } from './logger.js'
import { NotificationConfigError, type Notifications, startNotifications } from './notifications/index.js'
import { csvCell } from './routes/csv.js'
import {
  DEFAULT_GROUP_BY,
  FACT_REPORTS,
  type FactReport,
  factReportCells,
  fairnessCells,
  reportCsv,
  reportTable,
} from './routes/report-data.js'
import { GroupByFromQuery } from './routes/reports.js'
import {
  buildServer,
  openRuntime,
  type Runtime,
  startRoutingRepair,
  stopServer,
  systemClock,
} from './server.js'

const USAGE = `usage: referrals <command>

  serve [--demo]            start the HTTP API (embedded PostgreSQL unless DATABASE_URL is set)
  scheduler                 deadlines (reminders, expiries) and notification delivery, without the API
  token --user <id> [--role admin|auditor]...   print a development bearer token
  verify [--checkpoint <file>]   check every stream's hash chain; print the first problem or a summary hash
  replay                    decode and fold every stored event; report counts per stream type
  export-audit [--user <id>] [--practice <id>] [--patient <id>] [--from <iso>] [--to <iso>]
                            CSV of PHI reads to stdout
  forget-patient --patient <id>   destroy the patient's data key (PHI becomes unreadable); API ids are <senderPracticeId>:<patientId>
  rebuild-projections       truncate the PostgreSQL read models (lists, report facts) and replay them from the log
  report <funnel|timings|wait-times|fairness|attribution> --from <RFC3339> --to <RFC3339>
         [--group-by a,b] [--<dimension> <value>]... [--csv | --json]
         [--practice <id>] [--suppression-threshold <n>]
                            a report over the whole network (as a platform auditor sees it) or one
                            practice (as its members see it), as a table or CSV; cells from fewer than
                            n referrals (REPORT_SUPPRESSION_THRESHOLD, default 5) read "< n"
  fairness-audit --from <RFC3339> --to <RFC3339> [--pool <poolKey>] [--csv | --json]
         [--practice <id>] [--suppression-threshold <n>]
                            fairness per pool and ISO week; weeks where some |lag| reached 1 are flagged
  backtest --pool <poolKey> --policy least-count|round-robin|smooth-wrr|random|ours [--seed <n>]
           [--count-direct yes|no] [--on-decline keep|refund] [--csv | --json]
                            replay the pool's history (decisions, declines, expiries, direct referrals,
                            releases, membership) under a policy; recorded and replayed side by side

Configuration comes from environment variables (see packages/http/README.md).`

const write = (s: string) => process.stdout.write(s)
const info = (s: string) => process.stderr.write(`${s}\n`)

const flagsOf = (argv: readonly string[]): Map<string, string> => {
  const flags = new Map<string, string>()
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string
    if (!a.startsWith('--')) throw new UsageError(`unexpected argument ${JSON.stringify(a.slice(0, 40))}`)
    const next = argv[i + 1]
    if (next === undefined || next.startsWith('--')) flags.set(a.slice(2), 'true')
    else {
      flags.set(a.slice(2), next)
      i++
    }
  }
  return flags
}

class UsageError extends Error {}

/** A counter on stderr for long runs (the total is unknown while streaming). */
const progress = (label: string) => {
  const enabled = process.stderr.isTTY === true
  const bar = new cliProgress.SingleBar(
    { format: `${label} {value} events`, stream: process.stderr, noTTYOutput: false, hideCursor: true },
    cliProgress.Presets.shades_classic,
  )
  if (enabled) bar.start(0, 0)
  let n = 0
  return {
    tick: (k = 1) => {
      const before = Math.floor(n / 200)
      n += k
      if (enabled && Math.floor(n / 200) !== before) bar.update(n)
    },
    stop: () => {
      if (enabled) {
        bar.update(n)
        bar.stop()
      }
      return n
    },
  }
}

/** The store, with every page read through `readAll` counted (for a progress counter). */
const countingReads = (store: EventStore, tick: (n: number) => void): EventStore => {
  const counting = Object.create(store) as EventStore
  const readAll: EventStore['readAll'] = (options) => async () => {
    const page = await store.readAll(options)()
    if (E.isRight(page)) tick(page.right.length)
    return page
  }
  return Object.assign(counting, { readAll })
}

async function* counted(events: AsyncIterable<StoredEvent>, tick: () => void): AsyncGenerator<StoredEvent> {
  for await (const e of events) {
    tick()
    yield e
  }
}

/** Opens the runtime for one command; SIGINT/SIGTERM close it (and the database it started) first. */
const withRuntime = async <A>(config: Config, run: (runtime: Runtime) => Promise<A>): Promise<A> => {
  const runtime = await openRuntime(config)
  const onSignal = (signal: NodeJS.Signals) => {
    void runtime.close().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143))
  }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  try {
    return await run(runtime)
  } finally {
    process.removeListener('SIGINT', onSignal)
    process.removeListener('SIGTERM', onSignal)
    await runtime.close()
  }
}

/**
 * A long-running command cannot work without its database: when the embedded server stops under
 * it (killed, crashed, or stopped by the process that owns it), it says so and exits 1 after
 * `stop` (bounded: 10 s), so a supervisor restarts it instead of a service answering 500.
 */
const exitWhenDatabaseLost = (
  runtime: Runtime,
  command: string,
  stopping: () => boolean,
  stop: () => Promise<void>,
) => {
  void runtime.databaseLost?.then(async (reason) => {
    // Ctrl-C in a terminal reaches the embedded server too: a loss while stopping is expected.
    if (stopping()) return
    info(`referrals ${command}: ${reason}; the service cannot run without its database and exits.`)
    const forced = setTimeout(() => process.exit(1), 10_000)
    forced.unref()
    try {
      await stop()
    } catch {
      // exiting anyway
    }
    process.exit(1)
  })
}

/**
 * Deadlines and notifications without the HTTP API (e.g. one scheduler process beside several API
 * processes; running several is safe: each deadline fires once, each notification is sent once).
 */
const scheduler = async (config: Config) => {
  const runtime = await openRuntime(config)
  const notifications = await startNotifications(runtime, { log: createLogger({ level: config.logLevel }) })
  const repair = startRoutingRepair(runtime)
  info(`Deadline scheduler and notification delivery running (${runtime.storeDescription}); Ctrl-C to stop.`)
  let stopping = false
  const stop = async (signal: string) => {
    if (stopping) return
    stopping = true
    info(`${signal}: stopping…`)
    try {
      await repair.stop()
      await notifications.stop()
      await runtime.close()
      process.exit(0)
    } catch (error) {
      info(`stopping failed: ${error instanceof Error ? error.name : 'error'}`)
      process.exit(1)
    }
  }
  process.on('SIGINT', () => void stop('SIGINT'))
  process.on('SIGTERM', () => void stop('SIGTERM'))
  exitWhenDatabaseLost(
    runtime,
    'scheduler',
    () => stopping,
    async () => {
      stopping = true
      await repair.stop()
      await notifications.stop()
      await runtime.close()
    },
  )
}

const serve = async (config: Config, argv: readonly string[]) => {
  const flags = flagsOf(argv)
  // With --demo, the demo dataset and its six weeks of history are written at their own past times.
  const clock = settableClock(systemClock)
  const runtime = await openRuntime(config, { clock })
  let app: Awaited<ReturnType<typeof buildServer>> | undefined
  let notifications: Notifications | undefined
  let repair: { stop: () => Promise<void> } | undefined
  try {
    if (flags.has('demo')) {
      const end = systemClock.now()
      clock.set(demoHistoryStart(end))
      if (await seedDemo(runtime.engine)) {
        info('Loading the demo dataset and six weeks of made-up referrals…')
        const history = await seedDemoHistory(runtime.engine, clock, { end })
        info(`Loaded the demo dataset and ${history.referrals} made-up referrals (no real patient).`)
      }
      clock.release()
    }
    notifications = await startNotifications(runtime, { log: createLogger({ level: config.logLevel }) })
    repair = startRoutingRepair(runtime)
    app = await buildServer(runtime, notifications)
    const address = await app.listen({ port: config.port, host: config.host })
    const base = address.replace('[::1]', 'localhost')
    info(`Referral engine listening on ${base} (${runtime.storeDescription})`)
    info(`API documentation: ${base}/docs   OpenAPI: ${base}/openapi.json`)
    info(`Reports dashboard: ${base}/dashboard`)
    if (flags.has('demo') && config.jwt.key.kind === 'dev') {
      const token = await issueDevToken(config, { userId: DEMO.clinic.owner })
      const body = JSON.stringify(demoReferralBody(randomUUID()))
      info('\nSend a choose-for-me referral as the demo family doctor (token valid 1 h):\n')
      info(
        `curl -s -X POST ${base}/referrals -H 'authorization: Bearer ${token}' -H 'content-type: application/json' -H 'idempotency-key: ${randomUUID()}' -d '${body}'\n`,
      )
      info(
        `Other demo users: ${DEMO.specialists.map((s) => s.owner).join(', ')}, ${DEMO.admin} (admin), ${DEMO.auditor} (auditor).`,
      )
      info('Tokens: npm run referrals -- token --user <id> [--role admin|auditor]')
      info(
        `Dashboard (${base}/dashboard) for the whole network: npm run referrals -- token --user ${DEMO.admin} --role admin`,
      )
    }
  } catch (error) {
    if (app !== undefined) await app.close()
    await repair?.stop()
    await notifications?.stop()
    await runtime.close()
    throw error
  }
  const server = app
  let stopping = false
  const stop = async (signal: string) => {
    if (stopping) return
    stopping = true
    info(`${signal}: finishing in-flight requests…`)
    try {
      await repair?.stop()
      await notifications?.stop()
      await stopServer(server, runtime)
      process.exit(0)
    } catch (error) {
      info(`stopping failed: ${error instanceof Error ? error.name : 'error'}`)
      process.exit(1)
    }
  }
  process.on('SIGINT', () => void stop('SIGINT'))
  process.on('SIGTERM', () => void stop('SIGTERM'))
  exitWhenDatabaseLost(
    runtime,
    'serve',
    () => stopping,
    async () => {
      stopping = true
      await repair?.stop()
      await notifications?.stop()
      await stopServer(server, runtime)
    },
  )
}

const verify = async (config: Config) =>
  withRuntime(config, async (runtime) => {
    const p = progress('verified')
    try {
      const report = await verifyStore(counted(readAllEvents(runtime.store), p.tick), sha256Hasher)
      p.stop()
      if (report.ok) {
        write(
          `OK: ${report.eventsChecked} events in ${report.heads.length} streams verified\nsummary hash: ${report.summaryHash}\n`,
        )
        return 0
      }
      const problem = report.problem
      write(
        `TAMPERED: ${problem.kind} at stream ${problem.streamId} version ${problem.version} (global position ${problem.globalPosition ?? 'n/a'})\n${problem.message}\n`,
      )
      return 2
    } catch (error) {
      p.stop()
      if (error instanceof StoreReadError) throw new Error(error.message)
      throw error
    }
  })

/** Decodes every event through its aggregate's catalog (upcasters included) and counts them. */
/**
 * Replays the whole store: every event is decoded through its aggregate's catalog (upcasters
 * included) and folded with the aggregate's `evolve`, stream by stream. PHI is not decrypted
 * (sealed values are folded as redacted, which every decider accepts), so a replay reads no PHI.
 */
const replay = async (config: Config) =>
  withRuntime(config, async (runtime) => {
    const p = progress('replayed')
    const withoutPhi = redactingSealer()
    const aggregates: Record<string, Aggregate<never, DomainEvent, unknown> | undefined> = {
      practice: practiceAggregate as unknown as Aggregate<never, DomainEvent, unknown>,
      catalog: catalogAggregate as unknown as Aggregate<never, DomainEvent, unknown>,
      referral: { ...runtime.engine.referrals.aggregate, sealer: withoutPhi } as unknown as Aggregate<
        never,
        DomainEvent,
        unknown
      >,
      pool: poolAggregate() as unknown as Aggregate<never, DomainEvent, unknown>,
    }
    const states = new Map<string, unknown>()
    const counts = new Map<string, number>()
    for await (const e of counted(readAllEvents(runtime.store as EventStore), p.tick)) {
      const category = e.streamId.slice(0, e.streamId.indexOf('-'))
      counts.set(category, (counts.get(category) ?? 0) + 1)
      const aggregate = aggregates[category]
      if (aggregate === undefined) continue
      const decoded = await decodeStored(aggregate, e)
      if (E.isLeft(decoded))
        throw new Error(`cannot replay ${e.streamId} version ${e.version}: ${decoded.left.message}`)
      states.set(
        e.streamId,
        aggregate.decider.evolve(states.get(e.streamId) ?? aggregate.decider.initialState, decoded.right),
      )
    }
    p.stop()
    for (const [category, n] of [...counts].sort()) write(`${category}\t${n} events\n`)
    write(`${states.size} aggregates folded\n`)
    return 0
  })

const exportAudit = async (config: Config, argv: readonly string[]) => {
  const flags = flagsOf(argv)
  return withRuntime(config, async (runtime) => {
    write(
      'at,user_id,role,practice_id,referral_id,patient_id,purpose,outcome,channel,resource,correlation_id\r\n',
    )
    const p = progress('scanned')
    for await (const e of counted(readAllEvents(runtime.store), p.tick)) {
      if (!e.streamId.startsWith('audit-')) continue
      const decoded = PhiAccessed.decode({ type: e.type, data: e.data })
      if (E.isLeft(decoded)) continue
      const a = decoded.right.data
      if (flags.has('user') && a.userId !== flags.get('user')) continue
      if (flags.has('practice') && a.practiceId !== flags.get('practice')) continue
      if (flags.has('patient') && a.patientId !== flags.get('patient')) continue
      if (flags.has('from') && a.at < (flags.get('from') as string)) continue
      if (flags.has('to') && a.at >= (flags.get('to') as string)) continue
      write(
        `${[a.at, a.userId, a.role, a.practiceId ?? '', a.referralId ?? '', a.patientId ?? '', a.purpose, a.outcome, a.channel, a.resource, a.correlationId].map(csvCell).join(',')}\r\n`,
      )
    }
    p.stop()
    return 0
  })
}

const forgetPatient = async (config: Config, argv: readonly string[]) => {
  const patient = flagsOf(argv).get('patient')
  if (patient === undefined || patient === 'true') throw new UsageError('forget-patient needs --patient <id>')
  return withRuntime(config, async (runtime) => {
    await runtime.keys.destroy(patient as PatientId)
    const tokens = (await runtime.readModel?.forgetPatient(patient)) ?? 0
    info(
      `The data key of patient ${patient} is destroyed; their PHI now reads as redacted and ${tokens} search tokens were removed.`,
    )
    return 0
  })
}

const rebuildProjections = async (config: Config) =>
  withRuntime(config, async (runtime) => {
    if (runtime.readModel === undefined) {
      info('Nothing to rebuild: read models are kept in memory for this store and rebuilt at every start.')
      return 0
    }
    await runtime.readModel.rebuild()
    await runtime.referralFacts?.rebuild()
    info('Referral read models (lists, history, search tokens, report facts) rebuilt from the event log.')
    return 0
  })

// ---------------------------------------------------------------------------- reports

/** The flags a command accepts; anything else is a usage error (before the store is opened). */
const onlyFlags = (command: string, flags: Map<string, string>, allowed: readonly string[]) => {
  for (const k of flags.keys())
    if (!allowed.includes(k)) throw new UsageError(`${command}: unknown option --${k.slice(0, 40)}`)
}

const flagValue = (command: string, flags: Map<string, string>, name: string): string | undefined => {
  const v = flags.get(name)
  if (v === 'true') throw new UsageError(`${command}: --${name} needs a value`)
  return v
}

/** `--from` and `--to` (both required, RFC 3339, from before to). */
const periodFlags = (command: string, flags: Map<string, string>) => {
  const instant = (name: string) => {
    const v = flagValue(command, flags, name)
    if (v === undefined) throw new UsageError(`${command} needs --from <RFC3339> and --to <RFC3339>`)
    const decoded = InstantFromRfc3339.decode(v)
    if (E.isLeft(decoded))
      throw new UsageError(`${command}: --${name} must be an RFC 3339 time, e.g. 2026-01-01T00:00:00Z`)
    return decoded.right
  }
  const from = instant('from')
  const to = instant('to')
  if (!(Date.parse(to) > Date.parse(from))) throw new UsageError(`${command}: --from must precede --to`)
  return { from, to }
}

/**
 * Who the figures are shown to. By default the operator sees the whole network as a platform
 * auditor does: outside every receiving practice, so every cell from fewer than the threshold's
 * referrals is suppressed. `--practice <id>`: that practice's referrals, as its members see them
 * (its own cells are never suppressed). `--suppression-threshold <n>` overrides
 * REPORT_SUPPRESSION_THRESHOLD (default 5).
 */
const scopeFlags = (command: string, flags: Map<string, string>, config: Config) => {
  const practice = flagValue(command, flags, 'practice')
  const t = flagValue(command, flags, 'suppression-threshold')
  if (t !== undefined && !(/^\d{1,9}$/.test(t) && Number(t) >= 1))
    throw new UsageError(`${command}: --suppression-threshold must be a positive integer`)
  return {
    practiceId: practice as PracticeId | undefined,
    viewer: { practiceIds: practice === undefined ? [] : [practice as PracticeId] },
    threshold: t === undefined ? config.reportSuppressionThreshold : Number(t),
  }
}

type Format = 'table' | 'csv' | 'json'

/** `--csv` or `--json` (neither: a table); both, or either with a value, is a usage error. */
const formatFlag = (command: string, flags: Map<string, string>): Format => {
  const chosen: Format[] = []
  for (const f of ['csv', 'json'] as const) {
    if (!flags.has(f)) continue
    if (flags.get(f) !== 'true') throw new UsageError(`${command}: --${f} takes no value`)
    chosen.push(f)
  }
  if (chosen.length > 1) throw new UsageError(`${command}: --csv and --json exclude each other`)
  return chosen[0] ?? 'table'
}

const writeJson = (value: unknown) => write(`${JSON.stringify(value, null, 2)}\n`)

/** Backtest and its waiting times: the whole network, as a platform auditor, default threshold. */
const operatorScope = { viewer: { practiceIds: [] }, threshold: DEFAULT_SUPPRESSION_THRESHOLD } as const

const REPORTS = [...FACT_REPORTS, 'fairness'] as const

const report = async (config: Config, argv: readonly string[]) => {
  const [name, ...rest] = argv
  if (name === undefined || !(REPORTS as readonly string[]).includes(name))
    throw new UsageError(`report needs one of: ${REPORTS.join(', ')}`)
  const flags = flagsOf(rest)
  const command = `report ${name}`
  onlyFlags(command, flags, [
    'from',
    'to',
    'group-by',
    'csv',
    'json',
    'practice',
    'suppression-threshold',
    ...REPORT_DIMENSIONS,
  ])
  const period = periodFlags(command, flags)
  const scope = scopeFlags(command, flags, config)
  const filters: ReportFilters = Object.fromEntries(
    REPORT_DIMENSIONS.flatMap((d) => {
      const v = flagValue(command, flags, d)
      return v === undefined ? [] : [[d, v]]
    }),
  )
  const groupByFlag = flagValue(command, flags, 'group-by')
  const groupBy = groupByFlag === undefined ? undefined : GroupByFromQuery.decode(groupByFlag)
  if (groupBy !== undefined && E.isLeft(groupBy))
    throw new UsageError(
      `${command}: --group-by takes up to 3 distinct of ${REPORT_DIMENSIONS.join(', ')}, comma-separated`,
    )
  if (name === 'fairness' && groupBy !== undefined)
    throw new UsageError('report fairness is grouped by pool and week; --group-by does not apply')
  const format = formatFlag(command, flags)
  return withRuntime(config, async (runtime) => {
    const p = progress('read')
    const engine = { ...runtime.engine, store: countingReads(runtime.engine.store, p.tick) }
    const cells =
      name === 'fairness'
        ? await fairnessCells(engine, { ...period, ...scope, pool: filters.pool, week: filters.week })
        : await factReportCells(engine, name as FactReport, {
            ...period,
            ...scope,
            groupBy: groupBy?.right ?? DEFAULT_GROUP_BY[name as FactReport],
            filters,
          })
    p.stop()
    if (format === 'json')
      writeJson({
        report: name,
        ...period,
        practiceId: scope.practiceId ?? null,
        threshold: scope.threshold,
        cells,
      })
    else write(format === 'csv' ? reportCsv(cells) : reportTable(cells))
    return 0
  })
}

const fairnessAudit = async (config: Config, argv: readonly string[]) => {
  const flags = flagsOf(argv)
  onlyFlags('fairness-audit', flags, [
    'from',
    'to',
    'pool',
    'practice',
    'suppression-threshold',
    'csv',
    'json',
  ])
  const period = periodFlags('fairness-audit', flags)
  const format = formatFlag('fairness-audit', flags)
  const scope = scopeFlags('fairness-audit', flags, config)
  const pool = flagValue('fairness-audit', flags, 'pool')
  return withRuntime(config, async (runtime) => {
    const p = progress('read')
    const engine = { ...runtime.engine, store: countingReads(runtime.engine.store, p.tick) }
    const weeks = await fairnessCells(engine, { ...period, ...scope, pool })
    p.stop()
    const rows = weeks.map((w) => ({
      pool: w.group.pool,
      week: w.group.week,
      decisions: w.decisions,
      maxAbsLag: w.maxAbsLag,
      fteNormalisedSpread: w.fteNormalisedSpread,
      longestRun: w.longestRun,
      flag: w.suppressed ? 'suppressed' : w.outsideInvariant === true ? 'FLAGGED |lag| >= 1' : 'ok',
    }))
    const flagged = weeks.filter((w) => w.outsideInvariant === true).length
    const suppressed = weeks.filter((w) => w.suppressed).length
    if (format === 'json') {
      writeJson({ ...period, threshold: scope.threshold, flagged, suppressed, weeks })
      return 0
    }
    if (format === 'csv') {
      write(reportCsv(rows))
      return 0
    }
    write(reportTable(rows))
    write(
      `\n${flagged} ${flagged === 1 ? 'week' : 'weeks'} flagged (some member's |lag| reached 1) of ${weeks.length} pool-weeks` +
        (suppressed === 0
          ? '\n'
          : `; ${suppressed} suppressed (fewer than ${scope.threshold} decisions, not audited)\n`),
    )
    return 0
  })
}

const POLICIES = ['least-count', 'round-robin', 'smooth-wrr', 'random', 'ours'] as const

const policyOf = (name: string | undefined, seed: number): BacktestPolicy => {
  switch (name) {
    case 'least-count':
    case 'round-robin':
    case 'smooth-wrr':
      return { kind: name }
    case 'random':
      return { kind: 'random', seed }
    case 'ours':
      return { kind: 'engine' }
    default:
      throw new UsageError(`backtest needs --policy ${POLICIES.join('|')}`)
  }
}

/** Recorded and replayed fairness side by side: one row per figure, then one per member and figure. */
const sideBySide = (recorded: FairnessReport, replayed: FairnessReport) => {
  const figures = [
    'routed',
    'unrouted',
    'declines',
    'expiries',
    'directs',
    'releases',
    'maxAbsLag',
    'maxConsecutive',
    'maxNewcomerBurst',
    'gini',
  ] as const
  const rows: Record<string, string | number>[] = figures.map((f) => ({
    figure: f,
    recorded: recorded[f],
    [replayed.policy]: replayed[f],
  }))
  for (const k of ['offers', 'declines', 'directs', 'releases'] as const)
    rows.push({
      figure: `skipped ${k}`,
      recorded: recorded.skipped[k],
      [replayed.policy]: replayed.skipped[k],
    })
  const memberFigures = [
    ['load', 'count'],
    ['offered', 'offered'],
    ['declined', 'declined'],
    ['expired', 'expired'],
    ['direct', 'direct'],
    ['released', 'released'],
    ['held', 'held'],
    ['fair share', 'fairShare'],
    ['lag', 'lag'],
  ] as const
  for (const m of recorded.members) {
    const r = replayed.members.find((x) => x.practiceId === m.practiceId)
    for (const [label, key] of memberFigures)
      rows.push({ figure: `${m.practiceId} ${label}`, recorded: m[key], [replayed.policy]: r?.[key] ?? '' })
  }
  return rows
}

const choice = <T extends string>(
  command: string,
  flags: Map<string, string>,
  name: string,
  values: readonly T[],
) => {
  const v = flagValue(command, flags, name)
  if (v !== undefined && !(values as readonly string[]).includes(v))
    throw new UsageError(`${command}: --${name} takes ${values.join('|')}`)
  return v as T | undefined
}

const backtestCommand = async (config: Config, argv: readonly string[]) => {
  const flags = flagsOf(argv)
  onlyFlags('backtest', flags, ['pool', 'policy', 'seed', 'count-direct', 'on-decline', 'csv', 'json'])
  const format = formatFlag('backtest', flags)
  const pool = flagValue('backtest', flags, 'pool')
  if (pool === undefined) throw new UsageError('backtest needs --pool <poolKey>')
  const seedFlag = flagValue('backtest', flags, 'seed')
  if (seedFlag !== undefined && !/^\d{1,10}$/.test(seedFlag))
    throw new UsageError('backtest: --seed must be a non-negative integer')
  const countDirect = choice('backtest', flags, 'count-direct', ['yes', 'no'] as const)
  const onDecline = choice('backtest', flags, 'on-decline', ['keep', 'refund'] as const)
  const policy: BacktestPolicy = {
    ...policyOf(flagValue('backtest', flags, 'policy'), seedFlag === undefined ? 1 : Number(seedFlag)),
    load: {
      ...(countDirect === undefined ? {} : { countDirectReferrals: countDirect === 'yes' }),
      ...(onDecline === undefined ? {} : { onDecline }),
    },
  }
  return withRuntime(config, async (runtime) => {
    const p = progress('read')
    const history = await readPoolHistory(countingReads(runtime.engine.store, p.tick), {
      from: '0000-01-01T00:00:00.000Z' as never,
      to: '9999-12-31T23:59:59.999Z' as never,
    })
    p.stop()
    const events = history.filter((e) => e.pool === pool).map((e) => e.event)
    if (events.length === 0) {
      info(`backtest: pool ${JSON.stringify(pool.slice(0, 80))} has no recorded history`)
      return 1
    }
    const result = backtest(events, policy)
    if (format === 'json') {
      writeJson({ pool, ...result })
      return 0
    }
    if (format === 'csv') {
      write(reportCsv(sideBySide(result.recorded, result.candidate)))
      return 0
    }
    write(
      `pool ${pool}: ${result.arrivals} routing decisions replayed under ${result.candidate.policy}` +
        ` (recorded: ${result.recorded.declines} declined, ${result.recorded.expiries} expired, ${result.recorded.directs} direct, ${result.recorded.releases} released)\n\n`,
    )
    write(reportTable(sideBySide(result.recorded, result.candidate)))
    const waits = await factReportCells(runtime.engine, 'wait-times', {
      from: '0000-01-01T00:00:00.000Z' as never,
      to: '9999-12-31T23:59:59.999Z' as never,
      ...operatorScope,
      groupBy: ['pool'],
      filters: { pool },
    })
    write('\nwaiting times (recorded; the replay does not simulate appointments, so no replayed figure):\n')
    write(reportTable(waits))
    write(
      `\n${result.differingDecisions} of ${result.arrivals} decisions differ between ours (the engine, replayed) and ${result.candidate.policy}\n`,
    )
    return 0
  })
}

export const main = async (argv: readonly string[]): Promise<number> => {
  const [command, ...rest] = argv
  try {
    if (command === undefined || command === 'help' || command === '--help') {
      write(`${USAGE}\n`)
      return command === undefined ? 1 : 0
    }
    const config = await loadConfig(process.env, (m) => info(`warning: ${m}`))
    switch (command) {
      case 'serve':
        await serve(config, rest)
        return 0
      case 'scheduler':
        await scheduler(config)
        return 0
      case 'token': {
        const r = await runTokenCommand(rest, config)
        if (!r.ok) throw new UsageError(r.message)
        write(`${r.token}\n`)
        return 0
      }
      case 'verify':
        return await verify(config)
      case 'replay':
        return await replay(config)
      case 'export-audit':
        return await exportAudit(config, rest)
      case 'forget-patient':
        return await forgetPatient(config, rest)
      case 'rebuild-projections':
        return await rebuildProjections(config)
      case 'report':
        return await report(config, rest)
      case 'fairness-audit':
        return await fairnessAudit(config, rest)
      case 'backtest':
        return await backtestCommand(config, rest)
      default:
        throw new UsageError(`unknown command ${JSON.stringify(command.slice(0, 40))}`)
    }
  } catch (error) {
    if (error instanceof ConfigError || error instanceof NotificationConfigError) {
      info(error.message)
      return 78
    }
    if (error instanceof UsageError) {
      info(`${error.message}\n\n${USAGE}`)
      return 64
    }
    info(`referrals ${command}: ${error instanceof Error ? error.message : 'failed'}`)
    return 1
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  // Output piped into a reader that stops early (`referrals report … | head`): the closed pipe is
  // not an error of the command; stop quietly instead of crashing with an unhandled EPIPE.
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(0)
    throw error
  })
  main(process.argv.slice(2)).then((code) => {
    if (code !== 0) process.exit(code)
  })
}
