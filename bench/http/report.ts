/**
 * Figures of one HTTP benchmark run: per scenario the latency percentiles and requests per second
 * autocannon measured, and the ratios to the framework baseline (`/bench/noop`). Pure functions,
 * so the table and the ratios are tested without a server.
 */

/** The part of an autocannon result the report uses (latencies in ms, requests per second). */
export interface CannonFigures {
  readonly latency: {
    readonly p50: number
    readonly p90: number
    readonly p99: number
    readonly average: number
    readonly max: number
  }
  readonly requests: { readonly average: number }
  /** Seconds. */
  readonly duration: number
  readonly '2xx': number
  readonly non2xx: number
  readonly errors: number
  readonly timeouts: number
}

export interface Scenario {
  readonly name: string
  /** e.g. `POST /referrals (choose-for-me)`. */
  readonly request: string
  readonly connections: number
  readonly durationS: number
  readonly ok: number
  readonly non2xx: number
  readonly errors: number
  readonly requestsPerSecond: number
  readonly latencyMs: {
    readonly p50: number
    readonly p90: number
    readonly p99: number
    readonly mean: number
    readonly max: number
  }
}

export interface ScenarioWithRatios extends Scenario {
  /** Relative to the baseline: `p50 / baseline p50`, `p99 / baseline p99`, `baseline rps / rps`. */
  readonly vsBaseline: { readonly p50: number; readonly p99: number; readonly throughput: number } | null
}

const round = (x: number, digits: number): number => {
  const f = 10 ** digits
  return Math.round(x * f) / f
}

export const scenarioOf = (
  name: string,
  request: string,
  connections: number,
  r: CannonFigures,
): Scenario => ({
  name,
  request,
  connections,
  durationS: round(r.duration, 2),
  ok: r['2xx'],
  non2xx: r.non2xx,
  errors: r.errors + r.timeouts,
  requestsPerSecond: round(r.requests.average, 1),
  latencyMs: {
    p50: r.latency.p50,
    p90: r.latency.p90,
    p99: r.latency.p99,
    mean: round(r.latency.average, 2),
    max: r.latency.max,
  },
})

/** Ratios to the scenario named `baseline`; `null` for the baseline itself or when undefined (0). */
export const withRatios = (scenarios: readonly Scenario[], baseline: string): ScenarioWithRatios[] => {
  const base = scenarios.find((s) => s.name === baseline)
  return scenarios.map((s) => {
    if (base === undefined || s.name === baseline) return { ...s, vsBaseline: null }
    const ratio = (a: number, b: number) => (b > 0 ? round(a / b, 2) : Number.NaN)
    const vsBaseline = {
      p50: ratio(s.latencyMs.p50, base.latencyMs.p50),
      p99: ratio(s.latencyMs.p99, base.latencyMs.p99),
      throughput: ratio(base.requestsPerSecond, s.requestsPerSecond),
    }
    return Object.values(vsBaseline).some(Number.isNaN) ? { ...s, vsBaseline: null } : { ...s, vsBaseline }
  })
}

const cell = (x: number | null, suffix = ''): string => (x === null ? '—' : `${x}${suffix}`)

/** The Markdown table of a run (one row per scenario). */
export const markdownTable = (scenarios: readonly ScenarioWithRatios[]): string => {
  const header =
    '| scenario | request | conns | req/s | p50 ms | p90 ms | p99 ms | max ms | ok | non-2xx | errors | p50 × noop | p99 × noop | noop req/s ÷ req/s |\n' +
    '|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n'
  const rows = scenarios.map(
    (s) =>
      `| ${s.name} | ${s.request} | ${s.connections} | ${s.requestsPerSecond} | ${s.latencyMs.p50} | ${s.latencyMs.p90} | ${s.latencyMs.p99} | ${s.latencyMs.max} | ${s.ok} | ${s.non2xx} | ${s.errors} | ${cell(s.vsBaseline?.p50 ?? null, '×')} | ${cell(s.vsBaseline?.p99 ?? null, '×')} | ${cell(s.vsBaseline?.throughput ?? null, '×')} |`,
  )
  return `${header}${rows.join('\n')}\n`
}

/** One send's latency and how many pooled referrals the pool stream already held when it was answered. */
export interface SendSample {
  /** The scenario (or warm-up) the send belonged to. */
  readonly scenario: string
  readonly poolSize: number
  readonly ms: number
}

export interface LatencyBucket {
  readonly scenario: string
  readonly poolSizeFrom: number
  readonly poolSizeTo: number
  readonly n: number
  readonly p50: number
  readonly p90: number
}

/** Nearest-rank percentile of ascending `sorted` (`q` in 0..1). */
export const percentile = (sorted: readonly number[], q: number): number => {
  if (sorted.length === 0) return Number.NaN
  const rank = Math.max(1, Math.ceil(q * sorted.length))
  return sorted[Math.min(rank, sorted.length) - 1] as number
}

/**
 * Send latency by pool size, per scenario (in the order first seen), in buckets of `size`
 * consecutive pool sizes (0..size-1, size..2·size-1, …); percentiles rounded to 0.1 ms.
 */
export const latencyByPoolSize = (samples: readonly SendSample[], size: number): LatencyBucket[] => {
  const scenarios = [...new Set(samples.map((s) => s.scenario))]
  return scenarios.flatMap((scenario) => {
    const buckets = new Map<number, number[]>()
    for (const s of samples) {
      if (s.scenario !== scenario) continue
      const b = Math.floor(s.poolSize / size)
      const list = buckets.get(b) ?? []
      list.push(s.ms)
      buckets.set(b, list)
    }
    return [...buckets.entries()]
      .sort(([a], [b]) => a - b)
      .map(([b, list]) => {
        const sorted = [...list].sort((x, y) => x - y)
        return {
          scenario,
          poolSizeFrom: b * size,
          poolSizeTo: b * size + size - 1,
          n: sorted.length,
          p50: round(percentile(sorted, 0.5), 1),
          p90: round(percentile(sorted, 0.9), 1),
        }
      })
  })
}

export interface Target {
  readonly target: string
  /** `null`: the scenario or the raw rate is missing from the run. */
  readonly met: boolean | null
  readonly measured: string
}

/**
 * Issue 11's HTTP targets against the raw one-client commit rate measured in the same run (the
 * mean of the measurements before and after the scenarios): choose-for-me sends to one pool and
 * spread over ten pools at ≥ 0.5 × raw, p99 ≤ 20 ms when sends are offered at half that rate
 * (`send-paced`), and `GET /referrals/:id` at ≥ 0.5 × raw. The throughput targets are stated for
 * 32 connections; other counts are labelled with theirs.
 */
export const targetsOf = (
  scenarios: readonly Scenario[],
  raw: { readonly before?: number | undefined; readonly after?: number | undefined },
  connections: number,
): Target[] => {
  const rates = [raw.before, raw.after].filter((r): r is number => r !== undefined && r > 0)
  const rawRate = rates.length === 0 ? undefined : rates.reduce((a, b) => a + b, 0) / rates.length
  const by = (name: string) => scenarios.find((s) => s.name === name)
  const at =
    connections === 32
      ? 'with 32 connections'
      : `with ${connections} connections (the target is stated for 32)`
  const throughput = (name: string, what: string): Target => {
    const s = by(name)
    const target = `${what} ≥ 0.5 × raw commit rate, ${at}`
    if (s === undefined || rawRate === undefined) return { target, met: null, measured: 'not in this run' }
    const ratio = s.requestsPerSecond / rawRate
    return {
      target,
      met: ratio >= 0.5,
      measured: `${s.requestsPerSecond} req/s ÷ ${round(rawRate, 1)} = ${round(ratio, 3)} ×`,
    }
  }
  const paced = by('send-paced')
  return [
    throughput('send', 'choose-for-me send, one pool'),
    throughput('send-10', 'choose-for-me send, spread over ten pools'),
    paced === undefined
      ? { target: 'send p99 ≤ 20 ms at 0.25 × raw', met: null, measured: 'not in this run' }
      : {
          target: 'send p99 ≤ 20 ms offered at 0.25 × raw (half the throughput target)',
          met: paced.latencyMs.p99 <= 20,
          measured: `p99 ${paced.latencyMs.p99} ms (p50 ${paced.latencyMs.p50} ms) at ${paced.requestsPerSecond} req/s achieved`,
        },
    throughput('get', 'GET /referrals/:id (decrypted, audited)'),
  ]
}

/** The server's own CPU time per response during one scenario (`process.cpuUsage` in the server). */
export interface ServerCpu {
  readonly scenario: string
  readonly responses: number
  readonly cpuMsPerResponse: number
}

export interface Obstacles {
  /** 0.5 × the mean raw commit rate: the requests per second the targets ask for. */
  readonly targetRate: number | null
  /** All cores' CPU time per request at that rate (ms): service, PostgreSQL and load generator together. */
  readonly cpuBudgetMs: number | null
  /** `noop` requests per second ÷ the raw commit rate: no route can go faster than this. */
  readonly noopCeilingRatio: number | null
  readonly lines: readonly string[]
}

/**
 * What stands between the run and the issue-11 throughput targets, from figures counted in the
 * same run: the framework ceiling (`noop` against the raw commit rate), the server's CPU time per
 * send and per GET against the CPU budget the target rate leaves on `cores` cores, and the store
 * calls per send.
 */
export const obstaclesOf = (
  scenarios: readonly Scenario[],
  raw: { readonly before?: number | undefined; readonly after?: number | undefined },
  serverCpu: readonly ServerCpu[],
  perSend: readonly {
    readonly scenario: string
    readonly transactions: number
    readonly readStream: number
    readonly readAll: number
    /** PostgreSQL write transactions (commits that flush WAL) per send, counted on the database. */
    readonly writeTransactions?: number
  }[],
  cores: number,
): Obstacles => {
  const rates = [raw.before, raw.after].filter((r): r is number => r !== undefined && r > 0)
  const rawRate = rates.length === 0 ? undefined : rates.reduce((a, b) => a + b, 0) / rates.length
  const targetRate = rawRate === undefined ? null : rawRate / 2
  const cpuBudgetMs = targetRate === null ? null : round((cores * 1000) / targetRate, 3)
  const noop = scenarios.find((s) => s.name === 'noop')
  const noopCeilingRatio =
    noop === undefined || rawRate === undefined ? null : round(noop.requestsPerSecond / rawRate, 3)
  const lines: string[] = []
  lines.push(
    noopCeilingRatio === null || noop === undefined
      ? 'framework ceiling: not measured (no noop scenario or raw rate)'
      : `framework ceiling: an authenticated no-op request reaches ${noop.requestsPerSecond} req/s = ${noopCeilingRatio} × raw (${noopCeilingRatio >= 0.5 ? 'above' : 'below'} the 0.5 × target before any domain work)`,
  )
  lines.push(
    cpuBudgetMs === null || targetRate === null
      ? 'CPU budget: not measured (no raw rate)'
      : `CPU budget at the target rate (${round(targetRate, 1)} req/s) on ${cores} cores: ${cpuBudgetMs} ms per request for the service, PostgreSQL and the load generator together`,
  )
  for (const name of ['noop', 'send', 'send-10', 'get']) {
    const c = serverCpu.find((x) => x.scenario === name)
    if (c === undefined) continue
    const share = cpuBudgetMs === null ? '' : ` = ${round(c.cpuMsPerResponse / cpuBudgetMs, 2)} × the budget`
    lines.push(`server CPU per ${name} response: ${c.cpuMsPerResponse} ms${share} (${c.responses} responses)`)
  }
  const send = perSend.find((p) => p.scenario === 'send')
  if (send !== undefined)
    lines.push(
      `store calls per send (send): ${send.transactions} transactions, ${send.readStream} stream reads, ${send.readAll} readAll; SQL statements per send (idempotency and keys included): \`npx tsx bench/http/profile.ts\``,
    )
  for (const p of perSend)
    if (p.writeTransactions !== undefined)
      lines.push(
        `PostgreSQL write transactions (WAL-flushing commits, all tables) per ${p.scenario} send: ${p.writeTransactions}`,
      )
  return { targetRate, cpuBudgetMs, noopCeilingRatio, lines }
}
