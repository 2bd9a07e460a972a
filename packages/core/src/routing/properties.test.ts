import fc from 'fast-check'
import { isLeft } from 'fp-ts/lib/Either.js'
import { beforeAll, describe, expect, it } from 'vitest'
import type { CommandMeta } from '../shared/decider.js'
import type { CommandId, CorrelationId, InsuranceNetworkId, PracticeId, ReferralId } from '../shared/ids.js'
import type { Instant } from '../shared/time.js'
import type { FteMilli, PoolCommandBody, PoolEvent } from './codecs.js'
import { makePoolDecider, type PoolState, poolDecider, poolEngine, routingPolicyV1 } from './decider.js'
import { verifyRouting } from './explain.js'

// ---- harness ---------------------------------------------------------------------------------

const meta = (n: number): CommandMeta => ({
  commandId: `cmd-${n}` as CommandId,
  actor: { kind: 'system', component: 'test' },
  now: '2026-01-01T00:00:00.000Z' as Instant,
  correlationId: 'corr-1' as CorrelationId,
})

/** Both policies are checked: v1 (kept for old streams) and v2 (the default). */
let decider = poolDecider
let version: 1 | 2 = 2

class Pool {
  readonly log: PoolEvent[] = []
  state: PoolState = decider.initialState
  private n = 0

  run(body: PoolCommandBody): readonly PoolEvent[] {
    const result = decider.decide(
      { ...body, meta: meta(++this.n) } as Parameters<typeof poolDecider.decide>[0],
      this.state,
    )
    if (isLeft(result)) throw new Error(`${result.left.code}: ${result.left.message}`)
    for (const e of result.right) {
      this.log.push(e)
      this.state = decider.evolve(this.state, e)
    }
    return result.right
  }

  sync(id: string, fte: number, opts: { eligible?: boolean; paused?: boolean; networks?: string[] } = {}) {
    return this.run({
      type: 'SyncPoolMember',
      data: {
        practiceId: id as PracticeId,
        eligible: opts.eligible ?? true,
        fteMilli: fte as FteMilli,
        insuranceNetworks: (opts.networks ?? []) as InsuranceNetworkId[],
        ...(opts.paused === undefined ? {} : { paused: opts.paused }),
      },
    })
  }

  route(referralId: string, network: string | null = null, excluded: string[] = []): string | null {
    const [e] = this.run({
      type: 'RouteReferral',
      data: {
        referralId: referralId as ReferralId,
        insuranceNetworkId: network as InsuranceNetworkId | null,
        excludedPracticeIds: excluded as PracticeId[],
      },
    })
    return e?.type === 'ReferralRouted' ? e.data.chosenPracticeId : null
  }

  decline(referralId: string, practiceId: string) {
    return this.run({
      type: 'RecordDecline',
      data: { referralId: referralId as ReferralId, practiceId: practiceId as PracticeId, kind: 'decline' },
    })
  }

  /** Every active member's lag as a fraction; the bound −1 < λ < 1 is the invariant. */
  lagsWithinOne(): boolean {
    return poolEngine(this.state)
      .lags()
      .every((l) => (l.num < 0n ? -l.num : l.num) < l.den)
  }

  /**
   * Policy v2 after declines or insurance filters: Σλ = the refunded slots no decision has used
   * yet (0 after every decision that follows a refund), and nobody owed 2 or more beyond those.
   */
  lagsWithinDeclineBound(): boolean {
    const engine = poolEngine(this.state)
    const lags = engine.lags()
    const pending = BigInt(engine.pendingRefundSlots())
    const den = lags.reduce((d, l) => d * l.den, 1n)
    const sum = lags.reduce((s, l) => s + (l.num * den) / l.den, 0n)
    return sum === pending * den && lags.every((l) => l.num < (2n + pending) * l.den)
  }
}

/** ROUTING_PROPERTY_SCALE=20 npx vitest run … multiplies the runs for a longer search. */
const runs = (n: number): number => n * Number(process.env.ROUTING_PROPERTY_SCALE ?? 1)

const floorDiv = (a: number, b: number) => Math.floor(a / b)
const ceilDiv = (a: number, b: number) => Math.ceil(a / b)

/** Σ over a prefix: count_i within floor/ceil of k·w_i/W (all integers, exact in doubles here). */
const withinShare = (count: number, k: number, w: number, W: number): boolean =>
  floorDiv(k * w, W) <= count && count <= ceilDiv(k * w, W)

const joinAll = (pool: Pool, names: readonly string[], ws: readonly number[]): void => {
  for (const [i, w] of ws.entries()) pool.sync(names[i] as string, w)
}

const ids = (n: number) => Array.from({ length: n }, (_, i) => `p${String(i).padStart(2, '0')}`)
const weights = fc.array(fc.integer({ min: 100, max: 1000 }), { minLength: 1, maxLength: 30, size: 'max' })

// ---- schedules -------------------------------------------------------------------------------

type Op =
  | { readonly op: 'join'; readonly who: number; readonly fte: number; readonly networks: readonly string[] }
  | { readonly op: 'leave' | 'pause' | 'resume'; readonly who: number }
  | { readonly op: 'fte'; readonly who: number; readonly fte: number }
  | { readonly op: 'route'; readonly network: string | null }
  | { readonly op: 'decline' }

const who = fc.integer({ min: 0, max: 29 })
const fte = fc.integer({ min: 100, max: 1000 })
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    arbitrary: fc.record({ op: fc.constant('join' as const), who, fte, networks: fc.subarray(['n1', 'n2']) }),
    weight: 3,
  },
  {
    arbitrary: fc.record({ op: fc.constantFrom('leave' as const, 'pause' as const, 'resume' as const), who }),
    weight: 2,
  },
  { arbitrary: fc.record({ op: fc.constant('fte' as const), who, fte }), weight: 1 },
  { arbitrary: fc.record({ op: fc.constant('route' as const), network: fc.constant(null) }), weight: 10 },
  {
    arbitrary: fc.record({ op: fc.constant('route' as const), network: fc.constantFrom('n1', 'n2') }),
    weight: 2,
  },
  { arbitrary: fc.constant({ op: 'decline' as const }), weight: 2 },
)
const joinArb = fc.record({ op: fc.constant('join' as const), who, fte, networks: fc.subarray(['n1', 'n2']) })
/** A few members first, then a random mix of changes and routing. */
const schedule: fc.Arbitrary<readonly Op[]> = fc
  .tuple(
    fc.array(joinArb, { minLength: 1, maxLength: 30, size: 'max' }),
    fc.array(opArb, { minLength: 20, maxLength: 160, size: 'max' }),
  )
  .map(([joins, ops]) => [...joins, ...ops])

interface Member {
  fte: number
  active: boolean
}

interface Lag {
  readonly num: bigint
  readonly den: bigint
}

/**
 * λ at the start of a period, read from the engine and checked: Σλ = 0, |λ| < 1, newcomers at 0,
 * returners (resumed or rejoined) at 0 under v1 and at most 0 (the debt they kept) under v2.
 */
const startLags = (
  pool: Pool,
  fresh: ReadonlySet<string>,
  returning: ReadonlySet<string> = new Set(),
): Map<string, Lag> => {
  const lags = poolEngine(pool.state).lags()
  const sum = lags.reduce((s, l) => s + l.num, 0n)
  if (sum !== 0n) throw new Error('lags at the start of a period do not sum to zero')
  for (const l of lags) {
    if ((l.num < 0n ? -l.num : l.num) >= l.den) throw new Error(`${l.practiceId} starts outside (−1, 1)`)
    if (fresh.has(l.practiceId) && l.num !== 0n) throw new Error(`${l.practiceId} joined but is not at λ = 0`)
    if (returning.has(l.practiceId) && (version === 1 ? l.num !== 0n : l.num > 0n))
      throw new Error(`${l.practiceId} came back at λ > 0 (or ≠ 0 under v1)`)
  }
  return new Map(lags.map((l) => [l.practiceId as string, { num: l.num, den: l.den }]))
}

/**
 * After k decisions of a period, a member with FTE w (of W) that started at lag λ0 must have
 * c in the period with |c − k·w/W − λ0| < 1: floor/ceil of its entitlement. Exact in BigInt.
 */
const withinEntitlement = (c: number, k: number, w: number, W: number, start: Lag): boolean => {
  const x = BigInt(c) * BigInt(W) * start.den - BigInt(k) * BigInt(w) * start.den - start.num * BigInt(W)
  return (x < 0n ? -x : x) < BigInt(W) * start.den
}

interface Period {
  k: number
  readonly counts: Map<string, number>
  start: Map<string, Lag> | null
  readonly fresh: Set<string>
  readonly returning: Set<string>
}

const newPeriod = (): Period => ({
  k: 0,
  counts: new Map(),
  start: null,
  fresh: new Set(),
  returning: new Set(),
})

/**
 * Runs a schedule and checks, in every static period, each active member's count in the period
 * against its entitlement k·w/W + λ0 (w, W from the test's own membership model; λ0 read from the
 * engine at the period's start and checked by `startLags`).
 */
const runSchedule = (ops: readonly Op[], check: boolean): Pool => {
  const pool = new Pool()
  const names = ids(30)
  const members = new Map<string, Member>()
  const assigned: { referralId: string; practiceId: string; declined: string[] }[] = []
  let referrals = 0
  const seen = new Set<string>()
  // v2: a decline or an insurance filter since the last membership change (lags may leave (−1, 1)).
  let disturbed = false
  // The current static period; null while it is disturbed (until the next membership change).
  let period: Period | null = newPeriod()
  const onEvents = (events: readonly PoolEvent[]) => {
    for (const e of events) {
      if (e.type === 'MemberNetworksChanged' || !e.type.startsWith('Member')) continue
      // A paused member's FTE change does not touch the active weights: no new period.
      if (e.type === 'MemberFteChanged' && members.get(e.data.practiceId)?.active !== true) {
        ;(members.get(e.data.practiceId) as Member).fte = e.data.toFteMilli
        continue
      }
      if (period === null || period.start !== null) period = newPeriod()
      disturbed = false
      switch (e.type) {
        case 'MemberJoined':
          members.set(e.data.practiceId, { fte: e.data.fteMilli, active: true })
          if (seen.has(e.data.practiceId)) period.returning.add(e.data.practiceId)
          else period.fresh.add(e.data.practiceId)
          seen.add(e.data.practiceId)
          break
        case 'MemberResumed':
          ;(members.get(e.data.practiceId) as Member).active = true
          period.returning.add(e.data.practiceId)
          break
        case 'MemberLeft':
        case 'MemberPaused':
          ;(members.get(e.data.practiceId) as Member).active = false
          period.fresh.delete(e.data.practiceId)
          period.returning.delete(e.data.practiceId)
          break
        case 'MemberFteChanged':
          ;(members.get(e.data.practiceId) as Member).fte = e.data.toFteMilli
          break
        default:
          break
      }
    }
  }
  for (const op of ops) {
    switch (op.op) {
      case 'join':
        onEvents(pool.sync(names[op.who] as string, op.fte, { networks: [...op.networks] }))
        break
      case 'leave':
      case 'pause':
      case 'resume': {
        const id = names[op.who] as string
        const m = members.get(id)
        if (m === undefined) break
        onEvents(
          pool.sync(id, m.fte, {
            eligible: op.op !== 'leave',
            paused: op.op === 'pause',
            networks: poolEngine(pool.state).member(id)?.insuranceNetworks.slice() ?? [],
          }),
        )
        break
      }
      case 'fte': {
        const id = names[op.who] as string
        const view = poolEngine(pool.state).member(id)
        if (view === undefined || view.status === 'left') break
        onEvents(
          pool.sync(id, op.fte, {
            paused: view.status === 'paused',
            networks: view.insuranceNetworks.slice(),
          }),
        )
        break
      }
      case 'route': {
        const referralId = `r${++referrals}`
        if (op.network !== null) {
          period = null
          disturbed = true
        }
        const p = period as Period | null
        if (check && p !== null && p.start === null) p.start = startLags(pool, p.fresh, p.returning)
        const chosen = pool.route(referralId, op.network)
        if (chosen !== null) assigned.push({ referralId, practiceId: chosen, declined: [] })
        if (p !== null && chosen !== null) {
          p.k++
          p.counts.set(chosen, (p.counts.get(chosen) ?? 0) + 1)
        }
        break
      }
      case 'decline': {
        const last = assigned.pop()
        if (last === undefined) break
        pool.decline(last.referralId, last.practiceId)
        const declined = [...last.declined, last.practiceId]
        const next = pool.route(last.referralId, null, declined)
        if (next !== null) assigned.push({ referralId: last.referralId, practiceId: next, declined })
        period = null
        disturbed = true
        break
      }
    }
    if (check) {
      if (version === 2 && disturbed) {
        if (!pool.lagsWithinDeclineBound()) throw new Error(`lag sum ≠ 0 or lag ≥ 2 after ${op.op}`)
      } else if (!pool.lagsWithinOne()) throw new Error(`lag out of (−1, 1) after ${op.op}`)
      const p = period as Period | null
      if (p?.start != null) {
        const active = [...members.entries()].filter(([, m]) => m.active)
        const W = active.reduce((s, [, m]) => s + m.fte, 0)
        for (const [id, m] of active) {
          const start = p.start.get(id)
          if (start === undefined) throw new Error(`${id} has no start lag`)
          if (!withinEntitlement(p.counts.get(id) ?? 0, p.k, m.fte, W, start)) {
            throw new Error(`${id} outside its entitlement after ${p.k} decisions`)
          }
        }
      }
    }
  }
  return pool
}

/**
 * Found by CI (seed −1890443268): a sole member declines three referrals nobody else can take, so
 * three refunded slots are pending and it is owed 3; the cap must count them (it forfeited 0.01).
 */
const soleMemberDeclines: Op[] = [
  { op: 'join', who: 0, fte: 100, networks: [] },
  ...Array.from({ length: 3 }, (): Op => ({ op: 'route', network: null })),
  ...Array.from({ length: 3 }, (): Op => ({ op: 'decline' })),
  ...Array.from({ length: 3 }, (): Op => ({ op: 'route', network: null })),
]

// ---- properties ------------------------------------------------------------------------------

describe.each([
  ['policy v2', 2 as const],
  ['policy v1', 1 as const],
])('routing properties (SPEC §3 Routing), %s', (_name, v) => {
  let checkedDecisions = 0
  beforeAll(() => {
    version = v
    decider = v === 2 ? poolDecider : makePoolDecider(routingPolicyV1)
  })

  it('1. deterministic: the same history gives the same decisions, and the log re-derives', () => {
    fc.assert(
      fc.property(schedule, (ops) => {
        const a = runSchedule(ops, false)
        const b = runSchedule(ops, false)
        expect(b.log).toEqual(a.log)
        expect(verifyRouting(a.log).mismatches).toEqual([])
      }),
      { numRuns: runs(120) },
    )
  })

  it('6. verifiable: a ReferralRouted whose target was changed is the first mismatch, at its position', () => {
    fc.assert(
      fc.property(schedule, fc.nat(), fc.nat(), (ops, pick, to) => {
        const log = [...runSchedule(ops, false).log]
        const routed = log.flatMap((e, i) => (e.type === 'ReferralRouted' ? [i] : []))
        fc.pre(routed.length > 0)
        const position = routed[pick % routed.length] as number
        const original = log[position] as Extract<PoolEvent, { type: 'ReferralRouted' }>
        const others = ids(30).filter((id) => id !== original.data.chosenPracticeId)
        const target = others[to % others.length] as PracticeId
        log[position] = { ...original, data: { ...original.data, chosenPracticeId: target } }
        const first = verifyRouting(log).mismatches[0]
        expect(first).toEqual({
          position,
          referralId: original.data.referralId,
          recorded: target,
          rederived: original.data.chosenPracticeId,
          kind: 'target',
        })
      }),
      { numRuns: runs(100) },
    )
  })

  it('1. deterministic: the order of the excluded ids does not matter', () => {
    fc.assert(
      fc.property(weights, fc.integer({ min: 0, max: 40 }), fc.integer(), (ws, warmup, seed) => {
        const names = ids(ws.length)
        const excluded = names.filter((_, i) => (seed >> i) & 1)
        const decide = (order: string[]) => {
          const pool = new Pool()
          joinAll(pool, names, ws)
          for (let r = 0; r < warmup; r++) pool.route(`w${r}`)
          return pool.route('x', null, order)
        }
        expect(decide([...excluded].reverse())).toBe(decide(excluded))
      }),
      { numRuns: runs(150) },
    )
  })

  /**
   * Found by CI: with more than 16 members (RANKED_PREFIX), a member moved into the heap's sorted
   * prefix from behind it was not marked as there, so serving it did not re-position it and it took
   * every referral from the 17th on (v90r58 got r16, r17, r18 …).
   */
  const eighteenMembers = [
    'h91',
    'q864mk',
    's0cd',
    'l2',
    'qs',
    'bc1h8',
    'e',
    'n25',
    'u9',
    'm',
    'ib6j',
    'mph',
    'l',
    'jaj31',
    'f5',
    'v155',
    'v9m55',
    'v90r58',
  ]

  it('2. equal FTE, no joins or pauses: exactly plain least-count with the practiceId tie-break', () => {
    const idArb = fc.uniqueArray(fc.stringMatching(/^[a-z][a-z0-9]{0,5}$/), {
      minLength: 1,
      maxLength: 30,
      size: 'max',
    })
    fc.assert(
      fc.property(idArb, fte, fc.integer({ min: 1, max: 300 }), (names, w, k) => {
        const pool = new Pool()
        for (const id of names) pool.sync(id, w)
        // Reference written independently: the smallest count, ties to the smallest practiceId.
        const counts = new Map(names.map((id) => [id, 0]))
        for (let r = 0; r < k; r++) {
          let expected = names[0] as string
          for (const id of names) {
            const c = counts.get(id) as number
            const e = counts.get(expected) as number
            if (c < e || (c === e && id < expected)) expected = id
          }
          counts.set(expected, (counts.get(expected) as number) + 1)
          expect(pool.route(`r${r}`)).toBe(expected)
        }
      }),
      { numRuns: runs(200), examples: [[eighteenMembers, 416, 40]] },
    )
  })

  it('3. bounded lag: from a fresh pool every count is floor/ceil of its share at every prefix', () => {
    fc.assert(
      fc.property(weights, fc.integer({ min: 1, max: 400 }), (ws, k) => {
        const pool = new Pool()
        const names = ids(ws.length)
        joinAll(pool, names, ws)
        const W = ws.reduce((s, w) => s + w, 0)
        const counts = ws.map(() => 0)
        const violations: string[] = []
        for (let r = 1; r <= k; r++) {
          const chosen = pool.route(`r${r}`) as string
          const i = names.indexOf(chosen)
          counts[i] = (counts[i] ?? 0) + 1
          ws.forEach((w, i) => {
            if (!withinShare(counts[i] as number, r, w, W)) violations.push(`${names[i]} at ${r}`)
          })
        }
        expect(violations).toEqual([])
      }),
      { numRuns: runs(200) },
    )
  })

  it('3. bounded lag: in every static period of a random join/pause/resume/FTE/decline schedule', () => {
    fc.assert(
      fc.property(schedule, (ops) => {
        const pool = runSchedule(ops, true)
        checkedDecisions += pool.log.filter((e) => e.type === 'ReferralRouted').length
      }),
      { numRuns: runs(150), examples: [[soleMemberDeclines]] },
    )
    // Guards against a degenerate generator: the periods above held thousands of decisions.
    expect(checkedDecisions).toBeGreaterThan(2000)
  })

  it('4. no flooding: a newcomer or a resumer gets its share from now on, never a catch-up burst', () => {
    fc.assert(
      fc.property(
        weights,
        fte,
        fc.integer({ min: 0, max: 200 }),
        fc.integer({ min: 1, max: 200 }),
        fc.boolean(),
        (ws, newFte, before, after, resume) => {
          const pool = new Pool()
          const names = ids(ws.length)
          joinAll(pool, names, ws)
          const newcomer = 'zz-new'
          if (resume) pool.sync(newcomer, newFte, { paused: true })
          for (let r = 0; r < before; r++) pool.route(`b${r}`)
          pool.sync(newcomer, newFte)
          const W = ws.reduce((s, w) => s + w, 0) + newFte
          let got = 0
          let run = 0
          const violations: string[] = []
          for (let r = 1; r <= after; r++) {
            if (pool.route(`a${r}`) === newcomer) {
              got++
              run++
            } else run = 0
            if (got > ceilDiv(r * newFte, W) || got < floorDiv(r * newFte, W))
              violations.push(`share at ${r}`)
            // Floor/ceil at both ends of a run bounds it by its share of the run's slots plus one.
            if (run > ceilDiv(run * newFte, W) + 1) violations.push(`burst at ${r}`)
          }
          expect(violations).toEqual([])
        },
      ),
      { numRuns: runs(150) },
    )
  })

  it('5. an FTE change takes effect at once: from the change on, shares follow the new FTE', () => {
    fc.assert(
      fc.property(
        fc.array(fte, { minLength: 2, maxLength: 30, size: 'max' }),
        fc.nat(29),
        fte,
        fc.integer({ min: 0, max: 150 }),
        fc.integer({ min: 1, max: 200 }),
        (ws, which, newFte, before, after) => {
          const pool = new Pool()
          const names = ids(ws.length)
          joinAll(pool, names, ws)
          for (let r = 0; r < before; r++) pool.route(`b${r}`)
          const i = which % ws.length
          // An unchanged FTE is no change (no event, no new period); the property is about changes.
          fc.pre(newFte !== ws[i])
          pool.sync(names[i] as string, newFte)
          const now = ws.map((w, j) => (j === i ? newFte : w))
          const W = now.reduce((s, w) => s + w, 0)
          // Everyone keeps its lag (none is a newcomer); from here on only the rates change.
          const start = startLags(pool, new Set())
          const counts = now.map(() => 0)
          const violations: string[] = []
          for (let r = 1; r <= after; r++) {
            const c = names.indexOf(pool.route(`a${r}`) as string)
            counts[c] = (counts[c] ?? 0) + 1
            for (const [j, w] of now.entries()) {
              const lag0 = start.get(names[j] as string) as Lag
              if (!withinEntitlement(counts[j] as number, r, w, W, lag0))
                violations.push(`${names[j]} at ${r}`)
            }
          }
          expect(violations).toEqual([])
        },
      ),
      { numRuns: runs(150) },
    )
  })
})
