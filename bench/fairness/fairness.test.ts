import { describe, expect, it } from 'vitest'
import {
  fifoWaits,
  gini,
  jainIndex,
  type Member,
  runAll,
  runScenario,
  type Scenario,
  scenarios,
  simulateQueues,
  staticSweep,
  waterFill,
} from './harness.js'
import { markdownTable, svgChart } from './report.js'

const equalPool = (n: number, referrals: number): Scenario => ({
  name: 'tiny-equal',
  description: 'test',
  seed: 42,
  initial: Array.from({ length: n }, (_, i) => ({ id: `p${i}`, fteMilli: 1000, networks: null })),
  referrals,
  changes: [],
})

describe('metric functions (hand-computed)', () => {
  it("Jain's index: 1 for equal values, 1/n when one member has everything, 0.8 for [1, 3]", () => {
    expect(jainIndex([5, 5, 5, 5])).toBe(1)
    expect(jainIndex([4, 0, 0, 0])).toBeCloseTo(0.25, 12)
    // (1 + 3)² / (2 · (1 + 9)) = 16 / 20
    expect(jainIndex([1, 3])).toBeCloseTo(0.8, 12)
  })

  it('Gini: 0 for equal values, (n − 1)/n when one member has everything, 0.25 for [1, 3]', () => {
    expect(gini([7, 7, 7])).toBe(0)
    expect(gini([0, 0, 0, 9])).toBeCloseTo(0.75, 12)
    // mean absolute difference over all ordered pairs = (0 + 2 + 2 + 0) / 4 = 1; / (2 · mean 2)
    expect(gini([3, 1])).toBeCloseTo(0.25, 12)
  })

  it('FIFO waits: a patient waits for the one before at the same specialist only', () => {
    // a: arrives 0 (needs 3), arrives 1 → starts 3 (waits 2), needs 1; b: arrives 2, free → 0;
    // a: arrives 10, a is free since 4 → 0.
    expect(fifoWaits([0, 1, 2, 10], ['a', 'a', 'b', 'a'], [3, 1, 5, 2])).toEqual([0, 2, 0, 0])
  })
})

describe('queueing simulation', () => {
  it('one specialist has no spread; nobody placed means no wait; a slower twin waits longer', () => {
    const capacities = Array.from({ length: 200 }, () => 2)
    const one = simulateQueues(
      1,
      0.85,
      capacities,
      capacities.map(() => ({ id: 'a', fte: 1 })),
      3,
    )
    expect(one.waitSpread).toBe(0)
    expect(one.meanWait).toBeGreaterThan(0)
    expect(
      simulateQueues(
        1,
        0.85,
        capacities,
        capacities.map(() => null),
        3,
      ),
    ).toEqual({ waitSpread: 0, meanWait: 0 })
    // Alternating between a 1.0 and a 0.5 FTE specialist: the same arrivals, half the speed.
    const twins = simulateQueues(
      1,
      0.85,
      capacities,
      capacities.map((_, k) => (k % 2 === 0 ? { id: 'fast', fte: 1 } : { id: 'slow', fte: 0.5 })),
      3,
    )
    expect(twins.waitSpread).toBeGreaterThan(0)
    expect(
      simulateQueues(
        1,
        0.85,
        capacities,
        capacities.map(() => ({ id: 'a', fte: 1 })),
        3,
      ),
    ).toEqual(one)
  })
})

describe('a tiny static pool through the harness', () => {
  const scenario = equalPool(4, 40)

  it('round-robin never sends two consecutive referrals to one specialist', () => {
    const m = runScenario(scenario, 'round-robin')
    expect(m.longestRun).toBe(1)
    expect(Object.values(m.counts)).toEqual([10, 10, 10, 10])
  })

  it('ours keeps |lag| below 1, equal counts (Jain 1, Gini 0, spread 0) and no run longer than 1', () => {
    const m = runScenario(scenario, 'ours')
    expect(m.maxAbsLag).toBeLessThan(1)
    expect(Object.values(m.counts)).toEqual([10, 10, 10, 10])
    expect(m.jain).toBe(1)
    expect(m.gini).toBe(0)
    expect(m.normalisedSpread).toBe(0)
    expect(m.longestRun).toBe(1)
    expect(m.unrouted).toBe(0)
  })

  it('ours keeps |lag| below 1 with mixed FTE, and counts follow FTE (4 : 2 : 1 : 1 of 80)', () => {
    const mixed: Scenario = {
      ...scenario,
      initial: [
        { id: 'a', fteMilli: 1000, networks: null },
        { id: 'b', fteMilli: 500, networks: null },
        { id: 'c', fteMilli: 250, networks: null },
        { id: 'd', fteMilli: 250, networks: null },
      ],
      referrals: 80,
    }
    const m = runScenario(mixed, 'ours')
    expect(m.maxAbsLag).toBeLessThan(1)
    expect(m.counts).toEqual({ a: 40, b: 20, c: 10, d: 10 })
  })

  it('plain least-count floods a newcomer; ours does not', () => {
    const joins: Scenario = {
      ...scenario,
      referrals: 60,
      changes: [
        { before: 40, op: { kind: 'join', specialist: { id: 'p9', fteMilli: 1000, networks: null } } },
      ],
    }
    const naive = runScenario(joins, 'least-count')
    const ours = runScenario(joins, 'ours')
    // After 40 referrals the four members hold 10 each: the newcomer gets the next 10 in a row.
    expect(naive.longestRunAfterJoin).toBe(10)
    expect(ours.longestRunAfterJoin).toBe(1)
    expect(ours.maxAbsLag).toBeLessThan(1)
  })

  it('declined offers are re-routed to someone else; a referral all four declined is unrouted', () => {
    const m = runScenario({ ...scenario, declineRate: 0.3 }, 'ours')
    const placed = Object.values(m.counts).reduce((s, c) => s + c, 0)
    expect(placed + m.unrouted).toBe(40)
    expect(placed).toBeGreaterThan(30)
    // an unrouted referral was offered to all four members
    expect(m.offers).toBeGreaterThanOrEqual(placed + 4 * m.unrouted)
    expect(m.offers).toBeGreaterThan(40)
  })
})

describe('the full harness at a small scale', () => {
  it('is deterministic and renders a table row and a bar per run', () => {
    const a = runAll(0.05)
    const b = runAll(0.05)
    expect(a).toEqual(b)
    expect(a).toHaveLength(11 * 6)
    expect(markdownTable(a).split('\n')).toHaveLength(2 + 66)
    expect(svgChart(a, 't').match(/<rect [^>]*><title>/g)).toHaveLength(5 * 66)
  })
})

describe('issue 12 metrics and scenarios', () => {
  const m = (id: string, fteMilli: number): Member => ({
    id,
    fteMilli,
    networks: null,
    active: true,
    present: true,
  })

  it('water-filling: the FTE share where feasible, max-min where a filter makes it infeasible', () => {
    const a = m('a', 1000)
    const b = m('b', 1000)
    const c = m('c', 2000)
    // One class: plain FTE share.
    expect(Object.fromEntries(waterFill([{ eligible: [a, b, c], count: 40 }]))).toEqual({
      a: 10,
      b: 10,
      c: 20,
    })
    // 30 only a can take, 10 anyone: a is over its share whatever happens; b and c split the 10 by FTE.
    const x = waterFill([
      { eligible: [a], count: 30 },
      { eligible: [a, b, c], count: 10 },
    ])
    expect(x.get('a')).toBeCloseTo(30, 9)
    expect(x.get('b')).toBeCloseTo(10 / 3, 9)
    expect(x.get('c')).toBeCloseTo(20 / 3, 9)
    // Feasible with a filter: 10 only a or b can take, 30 anyone → the FTE share 10 : 10 : 20.
    const y = waterFill([
      { eligible: [a, b], count: 10 },
      { eligible: [a, b, c], count: 30 },
    ])
    expect([y.get('a'), y.get('b'), y.get('c')].map((v) => Math.round((v as number) * 1e9) / 1e9)).toEqual([
      10, 10, 20,
    ])
  })

  const byName = (name: string) => scenarios(0.25).find((s) => s.name === name) as Scenario

  it('gaming pauses: ours keeps the gamer at its share, the engine before issue 12 did not', () => {
    for (const name of ['gaming-pause', 'gaming-pause-service']) {
      const ours = runScenario(byName(name), 'ours')
      const v1 = runScenario(byName(name), 'ours-v1')
      expect(ours.maxAbsLagRebased).toBeLessThan(1)
      expect(v1.maxAbsLagRebased).toBeGreaterThan(10)
    }
  })

  it('declines every 7th offer: ours keeps the accepted loads at the FTE shares, v1 drifts', () => {
    const ours = runScenario(byName('decline-every-7th'), 'ours')
    const v1 = runScenario(byName('decline-every-7th'), 'ours-v1')
    expect(ours.acceptedLag).toBeLessThan(2)
    expect(v1.acceptedLag).toBeGreaterThan(50)
  })
})

describe('static weight-vector sweep', () => {
  it('ours stays below one referral of lag on every vector; FTE-blind round-robin does not', () => {
    const rows = staticSweep(6, 120)
    const ours = rows.find((r) => r.algorithm === 'ours')
    const rr = rows.find((r) => r.algorithm === 'round-robin')
    expect(ours?.vectorsWithLagAtLeastOne).toBe(0)
    expect(ours?.worstMaxAbsLag).toBeLessThan(1)
    expect(rr?.vectorsWithLagAtLeastOne).toBeGreaterThan(0)
  })
})
