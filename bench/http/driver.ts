/**
 * The load generator of the HTTP benchmark. Starts `server.ts` in a child process on a fresh data
 * directory, then runs autocannon scenarios against it one after the other:
 *
 * - `noop`: `GET /bench/noop` with a token — the framework and its hooks, no domain work (baseline);
 * - `health`: `GET /health` — public, no token (the framework alone);
 * - `send`: `POST /referrals`, choose-for-me, a new referral id and `Idempotency-Key` per request;
 *   `send-1`/`send-1b` the same on one connection; `send-10` spread round-robin over the ten pools
 *   of `spread.ts`; `send-paced` offered at a fixed rate of 0.25 × the raw commit rate (latency at
 *   half the throughput target);
 * - `raw INSERT commit`: the one-client commit rate of the same database (`GET /bench/raw-commit`),
 *   measured before and after the scenarios; the issue-11 targets (`targetsOf`) are ratios to it;
 * - `accept`: `POST /referrals/:id/accept` by the owner of the practice each sent referral was
 *   routed to (each referral accepted once);
 * - `get`: `GET /referrals/:id` by the sender (PHI decrypted, the read audited).
 *
 * Prints a table and writes `bench/results/http-load{,-quick}{,-c<connections>}.{json,md}`.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { cpus, loadavg, tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import autocannon from 'autocannon'
import { DEMO, demoReferralBody } from '../../packages/http/src/demo.js'
import {
  latencyByPoolSize,
  markdownTable,
  obstaclesOf,
  type Scenario,
  type SendSample,
  type ServerCpu,
  scenarioOf,
  targetsOf,
  withRatios,
} from './report.js'
import type { ReadyMessage, StoreCounts } from './server.js'
import { SPREAD_POOLS, spreadReferralBody } from './spread.js'

interface Plan {
  readonly quick: boolean
  readonly connections: number
  readonly warmupS: number
  readonly noopS: number
  readonly healthS: number
  readonly send1S: number
  readonly sendS: number
  readonly getS: number
  /** How long each raw commit-rate measurement runs (ms). */
  readonly rawMs: number
}

const planOf = (argv: readonly string[]): Plan => {
  const quick = argv.includes('--quick')
  const i = argv.indexOf('--connections')
  const connections = i >= 0 ? Number(argv[i + 1]) : 8
  if (!Number.isInteger(connections) || connections < 1 || connections > 256)
    throw new Error('--connections takes an integer 1-256')
  return quick
    ? { quick, connections, warmupS: 1, noopS: 3, healthS: 2, send1S: 3, sendS: 4, getS: 3, rawMs: 2000 }
    : { quick, connections, warmupS: 3, noopS: 10, healthS: 5, send1S: 8, sendS: 15, getS: 10, rawMs: 5000 }
}

interface Sent {
  readonly referralId: string
  readonly recipientPracticeId: string | null
  readonly status: string
}

/**
 * Starts the benchmark server (`server.ts`, through `load.ts`) in a child process with `env` on
 * top of this process's environment, and waits for its `ready` message.
 */
export const startBenchServer = async (
  env: Readonly<Record<string, string>>,
  execArgv: readonly string[] = process.execArgv,
): Promise<{ child: ChildProcess; ready: ReadyMessage; exited: Promise<unknown> }> => {
  const child = spawn(process.execPath, [...execArgv, fileURLToPath(new URL('./load.ts', import.meta.url))], {
    env: {
      ...process.env,
      REFERRALS_BENCH_ROLE: 'server',
      REFERRALS_STORE: 'postgres',
      // One user sends thousands of requests a minute here; the limiter would answer 429.
      RATE_LIMIT_MAX: '1000000',
      LOG_LEVEL: 'warn',
      ...env,
    },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  const exited = new Promise((resolve) => child.on('exit', resolve))
  const ready = await new Promise<ReadyMessage>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the server did not start within 120 s')), 120_000)
    child.on('message', (message) => {
      if ((message as { kind?: unknown }).kind === 'ready') {
        clearTimeout(timer)
        resolve(message as ReadyMessage)
      }
    })
    void exited.then(() => {
      clearTimeout(timer)
      reject(new Error('the server exited before it was ready'))
    })
  })
  return { child, ready, exited }
}

const startServer = (dataDir: string) => startBenchServer({ REFERRALS_DATA_DIR: dataDir })

/** Asks a benchmark server to stop gracefully (killed after 20 s). */
export const stopServer = async (child: ChildProcess, exited: Promise<unknown>) => {
  if (child.exitCode !== null || child.signalCode !== null) return
  child.send({ kind: 'stop' })
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000)
  await exited
  clearTimeout(timer)
}

/** Runs autocannon; `onLatency` gets every response's status and latency (ms). */
const cannon = (
  options: autocannon.Options,
  onLatency?: (status: number, ms: number) => void,
): Promise<autocannon.Result> =>
  new Promise((resolve, reject) => {
    const instance = autocannon(options, (error, result) => (error ? reject(error) : resolve(result)))
    if (onLatency !== undefined)
      instance.on('response', (_client, status, _bytes, ms) => onLatency(status, ms))
  })

export const runHttpBench = async (argv: readonly string[]): Promise<number> => {
  const plan = planOf(argv)
  const dataDir = await mkdtemp(path.join(tmpdir(), 'referrals-bench-http-'))
  // Started by root, the embedded server runs as `postgres` and must traverse the directory.
  await chmod(dataDir, 0o711)
  const started = Date.now()
  const loadBefore = loadavg()[0] ?? 0
  const server = await startServer(dataDir)
  const { port, tokens, storeDescription } = server.ready
  const url = `http://127.0.0.1:${port}`
  const senderToken = tokens[DEMO.clinic.owner] as string
  const ownerOf = new Map<string, string>(DEMO.specialists.map((s) => [s.practiceId, s.owner]))
  console.log(
    `HTTP benchmark${plan.quick ? ' (quick)' : ''}: ${storeDescription}, ${plan.connections} connections, server ready after ${((Date.now() - started) / 1000).toFixed(1)} s`,
  )

  const scenarios: Scenario[] = []
  const notes: string[] = []
  const sent: Sent[] = []
  const sendSamples: SendSample[] = []
  let pooled = 0
  const sampleSend = (scenario: string) => (status: number, ms: number) => {
    if (status === 201) sendSamples.push({ scenario, poolSize: pooled, ms })
  }
  const auth = { authorization: `Bearer ${senderToken}` }
  const base = { url, connections: plan.connections }

  let spreadNext = 0
  /** A choose-for-me send: to the demo's one pool, or round-robin over the ten-pool dataset. */
  const sendRequest = (to: 'one-pool' | 'ten-pools' = 'one-pool'): autocannon.Request => ({
    method: 'POST',
    path: '/referrals',
    setupRequest: (request) => {
      const referralId = randomUUID()
      const body =
        to === 'one-pool' ? demoReferralBody(referralId) : spreadReferralBody(referralId, spreadNext++)
      return {
        ...request,
        headers: { ...auth, 'content-type': 'application/json', 'idempotency-key': randomUUID() },
        body: JSON.stringify(body),
      }
    },
    onResponse: (status, body) => {
      if (status !== 201) return
      const r = JSON.parse(body) as Sent
      sent.push({ referralId: r.referralId, recipientPracticeId: r.recipientPracticeId, status: r.status })
      // Every demo send goes to the same pool (orthopedics / north / knee).
      if (to === 'one-pool' && r.status === 'pending') pooled++
    },
  })
  /** The one-client raw INSERT-commit rate of the service's own database, measured now. */
  const rawCommit = async (): Promise<number> => {
    const res = await fetch(`${url}/bench/raw-commit?ms=${plan.rawMs}`, { headers: auth })
    if (!res.ok) throw new Error(`raw commit measurement answered ${res.status}`)
    return ((await res.json()) as { commitsPerSecond: number }).commitsPerSecond
  }
  const raw: { before?: number; after?: number } = {}
  const storeCounts = async (): Promise<StoreCounts> => {
    const res = await fetch(`${url}/bench/counts`, { headers: auth })
    return (await res.json()) as StoreCounts
  }
  /** The server's CPU time per response in each scenario (counted by the server itself). */
  const serverCpu: ServerCpu[] = []

  const run = async (
    name: string,
    request: string,
    options: autocannon.Options,
    onLatency?: (status: number, ms: number) => void,
  ) => {
    const before = await storeCounts()
    const result = await cannon(options, onLatency)
    // Let the requests autocannon dropped at the end of a timed run finish before reading the CPU time.
    await new Promise((resolve) => setTimeout(resolve, 300))
    const after = await storeCounts()
    // Minus the two /bench/counts requests themselves (the second is answered after it is read).
    const answered = after.responses - before.responses - 1
    if (answered > 0)
      serverCpu.push({
        scenario: name,
        responses: answered,
        cpuMsPerResponse: Math.round(((after.cpuMicros - before.cpuMicros) / 1000 / answered) * 1000) / 1000,
      })
    const s = scenarioOf(name, request, options.connections ?? plan.connections, result)
    scenarios.push(s)
    console.log(
      `  ${name.padEnd(7)} ${String(s.requestsPerSecond).padStart(8)} req/s  p50 ${s.latencyMs.p50} ms  p99 ${s.latencyMs.p99} ms  (${s.ok} ok, ${s.non2xx} non-2xx, ${s.errors} errors)`,
    )
  }

  /** Event-store calls per acknowledged send, measured around one scenario. */
  const perSend: {
    scenario: string
    sends: number
    transactions: number
    appendMany: number
    append: number
    readStream: number
    readAll: number
    writeTransactions: number
  }[] = []
  const counted = async (scenario: string, body: () => Promise<void>) => {
    const before = await storeCounts()
    const sendsBefore = sendSamples.length
    await body()
    // Let the requests autocannon dropped at the end of a timed run finish before counting.
    await new Promise((resolve) => setTimeout(resolve, 500))
    const after = await storeCounts()
    const sends = sendSamples.length - sendsBefore
    const per = (calls: number) => (sends === 0 ? 0 : Math.round((calls / sends) * 100) / 100)
    const delta = (k: keyof StoreCounts) => after[k] - before[k]
    perSend.push({
      scenario,
      sends,
      transactions: per(delta('append') + delta('appendMany')),
      appendMany: per(delta('appendMany')),
      append: per(delta('append')),
      readStream: per(delta('readStream')),
      readAll: per(delta('readAll')),
      writeTransactions: per(delta('writeTransactions')),
    })
  }

  let exitCode = 0
  try {
    // Warm-up (not reported): JIT, connection pools, the routing projection.
    await cannon({ ...base, url: `${url}/bench/noop`, duration: plan.warmupS, headers: auth })
    await cannon({ ...base, duration: plan.warmupS, requests: [sendRequest()] }, sampleSend('warm-up'))
    await cannon({ ...base, duration: plan.warmupS, requests: [sendRequest('ten-pools')] })
    raw.before = await rawCommit()
    console.log(`  raw INSERT commit, one client: ${raw.before} commits/s`)

    await run('noop', 'GET /bench/noop (authenticated, no domain work)', {
      ...base,
      url: `${url}/bench/noop`,
      duration: plan.noopS,
      headers: auth,
    })
    await run('health', 'GET /health (public)', { ...base, url: `${url}/health`, duration: plan.healthS })
    const sentBefore = sent.length
    await counted('send-1', () =>
      run(
        'send-1',
        'POST /referrals (choose-for-me), one connection: no contention',
        { ...base, connections: 1, duration: plan.send1S, requests: [sendRequest()] },
        sampleSend('send-1'),
      ),
    )
    await counted('send', () =>
      run(
        'send',
        'POST /referrals (choose-for-me, new id per request)',
        { ...base, duration: plan.sendS, requests: [sendRequest()] },
        sampleSend('send'),
      ),
    )
    await run(
      'send-1b',
      'POST /referrals (choose-for-me), one connection, after `send` (larger pool)',
      { ...base, connections: 1, duration: plan.send1S, requests: [sendRequest()] },
      sampleSend('send-1b'),
    )
    const fromSend = sent.slice(sentBefore)
    const misrouted = fromSend.filter(
      (s) =>
        s.status !== 'pending' ||
        !ownerOf.has(s.recipientPracticeId ?? '') ||
        s.recipientPracticeId === 'ortho-south-d',
    )
    if (misrouted.length > 0) {
      const byStatus = new Map<string, number>()
      for (const m of misrouted) byStatus.set(m.status, (byStatus.get(m.status) ?? 0) + 1)
      notes.push(
        `${misrouted.length} of ${fromSend.length} sent referrals were not pending at a north specialist (${[...byStatus].map(([k, v]) => `${v} ${k}`).join(', ')})`,
      )
    }

    await counted('send-10', () =>
      run(
        'send-10',
        `POST /referrals (choose-for-me), spread round-robin over ${SPREAD_POOLS} pools`,
        { ...base, duration: plan.sendS, requests: [sendRequest('ten-pools')] },
        sampleSend('send-10'),
      ),
    )
    // Latency at a fixed offered rate: half of the throughput target (0.5 × raw), i.e. 0.25 × raw.
    const pacedRate = Math.max(1, Math.round((raw.before ?? 0) * 0.25))
    await run(
      'send-paced',
      `POST /referrals (choose-for-me, one pool) offered at ${pacedRate} req/s (0.25 × raw)`,
      { ...base, duration: plan.sendS, overallRate: pacedRate, requests: [sendRequest()] },
      sampleSend('send-paced'),
    )

    const queue = sent.filter((s) => s.status === 'pending' && ownerOf.has(s.recipientPracticeId ?? ''))
    let fallbacks = 0
    if (queue.length > 0) {
      await run('accept', 'POST /referrals/:id/accept (by the routed-to specialist)', {
        ...base,
        amount: queue.length,
        requests: [
          {
            method: 'POST',
            setupRequest: (request) => {
              const next = queue.pop()
              if (next === undefined) {
                fallbacks++
                return { ...request, method: 'GET', path: '/bench/noop', headers: auth }
              }
              const owner = ownerOf.get(next.recipientPracticeId ?? '') as string
              return {
                ...request,
                path: `/referrals/${next.referralId}/accept`,
                headers: {
                  authorization: `Bearer ${tokens[owner] as string}`,
                  'content-type': 'application/json',
                  'idempotency-key': randomUUID(),
                },
                body: '{}',
              }
            },
          },
        ],
      })
    }
    if (fallbacks > 0) notes.push(`accept: ${fallbacks} requests had no referral left and hit /bench/noop`)

    let next = 0
    await run('get', 'GET /referrals/:id (sender, PHI read and audited)', {
      ...base,
      duration: plan.getS,
      requests: [
        {
          method: 'GET',
          setupRequest: (request) => {
            const r = sent[next++ % sent.length] as Sent
            return { ...request, path: `/referrals/${r.referralId}`, headers: auth }
          },
        },
      ],
    })
    raw.after = await rawCommit()
    console.log(`  raw INSERT commit, one client (again, at the end): ${raw.after} commits/s`)
  } finally {
    // autocannon ends a timed run with requests still in flight (their connections are dropped);
    // let their handlers finish before the database is stopped.
    await new Promise((resolve) => setTimeout(resolve, 2_000))
    await stopServer(server.child, server.exited)
    await rm(dataDir, { recursive: true, force: true })
  }

  for (const s of scenarios) {
    if (s.non2xx > 0 || s.errors > 0) {
      notes.push(
        `${s.name}: ${s.non2xx} non-2xx responses and ${s.errors} errors — figures are not trustworthy`,
      )
      exitCode = 1
    }
  }
  const rows = withRatios(scenarios, 'noop')
  const table = markdownTable(rows)
  const targets = targetsOf(rows, raw, plan.connections)
  const obstacles = obstaclesOf(rows, raw, serverCpu, perSend, cpus().length)
  const targetLines = targets.map(
    (t) => `- ${t.met === null ? 'NOT MEASURED' : t.met ? 'MET' : 'NOT MET'}: ${t.target} — ${t.measured}`,
  )
  // `send-10` grows ten other pools: counted per send, but not in the one-pool latency table.
  const byPoolSize = latencyByPoolSize(
    sendSamples.filter((x) => x.scenario !== 'send-10'),
    plan.quick ? 25 : 50,
  )
  const poolTable =
    '| scenario | referrals already routed in the pool | sends | p50 ms | p90 ms |\n|---|---|--:|--:|--:|\n' +
    byPoolSize
      .map((b) => `| ${b.scenario} | ${b.poolSizeFrom}–${b.poolSizeTo} | ${b.n} | ${b.p50} | ${b.p90} |`)
      .join('\n') +
    '\n'
  const perSendTable =
    '| scenario | sends | store transactions | appendMany | append | stream reads | readAll | PostgreSQL write transactions (commits) |\n|---|--:|--:|--:|--:|--:|--:|--:|\n' +
    perSend
      .map(
        (p) =>
          `| ${p.scenario} | ${p.sends} | ${p.transactions} | ${p.appendMany} | ${p.append} | ${p.readStream} | ${p.readAll} | ${p.writeTransactions} |`,
      )
      .join('\n') +
    '\n'
  const cpu = cpus()
  const machine = {
    node: process.version,
    platform: `${process.platform}/${process.arch}`,
    cpus: cpu.length,
    cpuModel: cpu[0]?.model ?? 'unknown',
    loadAverage1m: {
      before: Math.round(loadBefore * 100) / 100,
      after: Math.round((loadavg()[0] ?? 0) * 100) / 100,
    },
  }
  if (loadBefore > cpu.length)
    notes.push(
      `the machine was busy (1-minute load average ${machine.loadAverage1m.before} on ${cpu.length} CPUs at the start): figures are lower and noisier than on an idle machine`,
    )
  const finishedAt = new Date().toISOString()
  // The default (8 connections) keeps the plain name; other counts get their own files (-c32).
  const name = `${plan.quick ? 'http-load-quick' : 'http-load'}${plan.connections === 8 ? '' : `-c${plan.connections}`}`
  const resultsDir = fileURLToPath(new URL('../results/', import.meta.url))
  await writeFile(
    path.join(resultsDir, `${name}.json`),
    `${JSON.stringify({ benchmark: 'http-load', quick: plan.quick, finishedAt, machine, store: storeDescription, connections: plan.connections, baseline: 'noop', scenarios: rows, rawCommitPerSecond: raw, targets, storeCallsPerSend: perSend, sendLatencyByPoolSize: byPoolSize, serverCpu, obstacles, notes }, null, 2)}\n`,
  )
  const md =
    `# HTTP load (${finishedAt}${plan.quick ? ', quick' : ''})\n\n` +
    `${storeDescription}; ${plan.connections} connections; load generator and server on the same machine ` +
    `(${machine.cpus} × ${machine.cpuModel}, Node ${machine.node}, 1-min load average ${machine.loadAverage1m.before} before, ${machine.loadAverage1m.after} after). Latencies in ms; ratios against \`noop\`. ` +
    'See `bench/http/README.md`.\n\n' +
    table +
    `\nRaw one-client INSERT commit rate of the same database in the same run: ${raw.before ?? '?'} commits/s before the scenarios, ${raw.after ?? '?'} after (targets use their mean).\n\n` +
    'Targets (issue 11):\n\n' +
    `${targetLines.join('\n')}\n` +
    `\nWhat stands in the way (counted in this run):\n\n${obstacles.lines.map((l) => `- ${l}`).join('\n')}\n` +
    '\nEvent-store calls per acknowledged send (counted at the store port under the hash chain; each append or appendMany is one PostgreSQL transaction; idempotency records are written apart). The last column counts every write transaction of the database (transaction ids assigned, `bench/http/commits.ts`): event store, idempotency records, keys, projections:\n\n' +
    perSendTable +
    '\nSend latency against the number of referrals the pool had already routed, per scenario:\n\n' +
    poolTable +
    (notes.length > 0 ? `\n${notes.map((n) => `- ${n}`).join('\n')}\n` : '')
  await writeFile(path.join(resultsDir, `${name}.md`), md)
  console.log(`\n${table}\n${perSendTable}\n${poolTable}\n${targetLines.join('\n')}`)
  console.log(`\nWhat stands in the way:\n${obstacles.lines.map((l) => `  - ${l}`).join('\n')}`)
  for (const n of notes) console.log(`note: ${n}`)
  console.log(`wrote bench/results/${name}.json and bench/results/${name}.md`)
  return exitCode
}
