import { describe, expect, it } from 'vitest'
import {
  type CannonFigures,
  latencyByPoolSize,
  markdownTable,
  obstaclesOf,
  percentile,
  scenarioOf,
  targetsOf,
  withRatios,
} from './report.js'

const figures = (
  p50: number,
  p99: number,
  rps: number,
  over: Partial<CannonFigures> = {},
): CannonFigures => ({
  latency: { p50, p90: p50 + 1, p99, average: p50 + 0.123, max: p99 + 10 },
  requests: { average: rps },
  duration: 10.004,
  '2xx': rps * 10,
  non2xx: 0,
  errors: 0,
  timeouts: 0,
  ...over,
})

describe('HTTP benchmark report', () => {
  it('takes latency percentiles, throughput and counts from an autocannon result', () => {
    const s = scenarioOf(
      'send',
      'POST /referrals',
      8,
      figures(12, 40, 250.04, { errors: 2, timeouts: 1, non2xx: 3 }),
    )
    expect(s).toEqual({
      name: 'send',
      request: 'POST /referrals',
      connections: 8,
      durationS: 10,
      ok: 2500.4,
      non2xx: 3,
      errors: 3,
      requestsPerSecond: 250,
      latencyMs: { p50: 12, p90: 13, p99: 40, mean: 12.12, max: 50 },
    })
  })

  it('relates every scenario to the baseline: latency multiples and how many times fewer requests per second', () => {
    const rows = withRatios(
      [
        scenarioOf('noop', 'GET /bench/noop', 8, figures(2, 8, 4000)),
        scenarioOf('send', 'POST /referrals', 8, figures(30, 100, 250)),
      ],
      'noop',
    )
    expect(rows[0]?.vsBaseline).toBeNull()
    expect(rows[1]?.vsBaseline).toEqual({ p50: 15, p99: 12.5, throughput: 16 })
  })

  it('leaves ratios out when the baseline is missing or a divisor is zero', () => {
    const send = scenarioOf('send', 'POST /referrals', 8, figures(30, 100, 250))
    expect(withRatios([send], 'noop')[0]?.vsBaseline).toBeNull()
    const zero = scenarioOf('noop', 'GET /bench/noop', 8, figures(0, 8, 4000))
    expect(withRatios([zero, send], 'noop')[1]?.vsBaseline).toBeNull()
  })

  it('renders one Markdown row per scenario with a dash for the baseline ratios', () => {
    const table = markdownTable(
      withRatios(
        [
          scenarioOf('noop', 'GET /bench/noop', 8, figures(2, 8, 4000)),
          scenarioOf('get', 'GET /referrals/:id', 8, figures(6, 24, 1000)),
        ],
        'noop',
      ),
    )
    const lines = table.trimEnd().split('\n')
    expect(lines).toHaveLength(4)
    expect(lines[2]).toBe(
      '| noop | GET /bench/noop | 8 | 4000 | 2 | 3 | 8 | 18 | 40000 | 0 | 0 | — | — | — |',
    )
    expect(lines[3]).toBe(
      '| get | GET /referrals/:id | 8 | 1000 | 6 | 7 | 24 | 34 | 10000 | 0 | 0 | 3× | 3× | 4× |',
    )
  })
})

describe('send latency by pool size', () => {
  it('uses nearest-rank percentiles', () => {
    expect(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.5)).toBe(5)
    expect(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.9)).toBe(9)
    expect(percentile([7], 0.99)).toBe(7)
    expect(percentile([], 0.5)).toBeNaN()
  })

  it('groups samples per scenario into consecutive pool-size buckets in order', () => {
    const samples = [
      { scenario: 'send-1', poolSize: 0, ms: 10 },
      { scenario: 'send-1', poolSize: 1, ms: 30 },
      { scenario: 'send', poolSize: 4, ms: 500 },
      { scenario: 'send-1', poolSize: 2, ms: 20.04 },
      { scenario: 'send-1', poolSize: 7, ms: 100 },
      { scenario: 'send-1', poolSize: 5, ms: 80 },
    ]
    expect(latencyByPoolSize(samples, 3)).toEqual([
      { scenario: 'send-1', poolSizeFrom: 0, poolSizeTo: 2, n: 3, p50: 20, p90: 30 },
      { scenario: 'send-1', poolSizeFrom: 3, poolSizeTo: 5, n: 1, p50: 80, p90: 80 },
      { scenario: 'send-1', poolSizeFrom: 6, poolSizeTo: 8, n: 1, p50: 100, p90: 100 },
      { scenario: 'send', poolSizeFrom: 3, poolSizeTo: 5, n: 1, p50: 500, p90: 500 },
    ])
  })

  it('judges the issue-11 targets against the mean raw commit rate of the run', () => {
    const scenarios = [
      scenarioOf('send', 'POST /referrals', 32, figures(20, 60, 1300)),
      scenarioOf('send-10', 'POST /referrals', 32, figures(20, 60, 1100)),
      scenarioOf('send-paced', 'POST /referrals', 32, figures(8, 21, 600)),
      scenarioOf('get', 'GET /referrals/:id', 32, figures(5, 9, 1250)),
    ]
    // raw mean = (2400 + 2600) / 2 = 2500; half = 1250
    const t = targetsOf(scenarios, { before: 2400, after: 2600 }, 32)
    expect(t.map((x) => x.met)).toEqual([true, false, false, true])
    expect(t[0]?.measured).toBe('1300 req/s ÷ 2500 = 0.52 ×')
    expect(t[1]?.measured).toBe('1100 req/s ÷ 2500 = 0.44 ×')
    expect(t[2]?.measured).toContain('p99 21 ms')
    expect(t[0]?.target).toContain('with 32 connections')
  })

  it('reports a target as not measured when its scenario or the raw rate is missing', () => {
    const t = targetsOf([scenarioOf('send', 'POST /referrals', 8, figures(20, 60, 300))], {}, 8)
    expect(t.map((x) => x.met)).toEqual([null, null, null, null])
    expect(t[0]?.target).toContain('the target is stated for 32')
  })
})

describe('what stands in the way of the targets', () => {
  const scenarios = [
    scenarioOf('noop', 'GET /bench/noop', 32, figures(2, 8, 4000)),
    scenarioOf('send', 'POST /referrals', 32, figures(30, 100, 300)),
  ]
  it('relates the noop ceiling to raw and the server CPU per response to the budget the target leaves', () => {
    const o = obstaclesOf(
      scenarios,
      { before: 3000, after: 5000 },
      [
        { scenario: 'noop', responses: 1000, cpuMsPerResponse: 0.25 },
        { scenario: 'send', responses: 500, cpuMsPerResponse: 2 },
      ],
      [{ scenario: 'send', transactions: 0.2, readStream: 1.1, readAll: 0.4 }],
      2,
    )
    // raw mean 4,000/s: target 2,000 req/s, 2 cores → 1 ms of CPU per request; noop 4,000 ÷ 4,000.
    expect(o.targetRate).toBe(2000)
    expect(o.cpuBudgetMs).toBe(1)
    expect(o.noopCeilingRatio).toBe(1)
    expect(o.lines).toContain('server CPU per send response: 2 ms = 2 × the budget (500 responses)')
    expect(o.lines).toContain('server CPU per noop response: 0.25 ms = 0.25 × the budget (1000 responses)')
    expect(o.lines.some((l) => l.includes('0.2 transactions, 1.1 stream reads, 0.4 readAll'))).toBe(true)
    expect(o.lines[0]).toContain('= 1 × raw (above')
  })
  it('says what was not measured instead of dividing by nothing', () => {
    const o = obstaclesOf(scenarios, {}, [], [], 2)
    expect(o.cpuBudgetMs).toBeNull()
    expect(o.noopCeilingRatio).toBeNull()
    expect(o.lines[0]).toMatch(/not measured/)
    expect(o.lines[1]).toMatch(/not measured/)
  })
})
