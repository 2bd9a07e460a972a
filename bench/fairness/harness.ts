/**
 * Fairness harness: scenarios × routing algorithms × metrics. Pure and deterministic for a given
 * seed (mulberry32 only); `run.ts` prints and writes the results, `fairness.test.ts` checks it.
 *
 * Every algorithm sees the same scenario: the same membership changes at the same referral
 * indices, the same insurance network per referral, the same decline/expiry draws per attempt and
 * the same arrival and service times in the queueing simulation (common random numbers), so the
 * figures differ only by the choices the algorithm makes.
 */
import {
  initialPoolState,
  makePoolDecider,
  mulberry32,
  type PoolCommand,
  type PoolEvent,
  type PoolState,
  poolDecider,
  routingPolicyV1,
} from '@referrals/core'

// ---- scenarios --------------------------------------------------------------------------------

export interface Specialist {
  readonly id: string
  /** FTE in thousandths (1000 = 1.0 FTE), as the engine takes it. */
  readonly fteMilli: number
  /** Insurance networks accepted; `null` = accepts every network. */
  readonly networks: readonly string[] | null
}

export type MembershipOp =
  | { readonly kind: 'join'; readonly specialist: Specialist }
  | { readonly kind: 'leave'; readonly id: string }
  | { readonly kind: 'pause'; readonly id: string }
  | { readonly kind: 'resume'; readonly id: string }
  | { readonly kind: 'fte'; readonly id: string; readonly fteMilli: number }

export interface Scenario {
  readonly name: string
  readonly description: string
  readonly seed: number
  readonly initial: readonly Specialist[]
  readonly referrals: number
  /** Membership changes applied just before the referral with this index (0-based). */
  readonly changes: readonly { readonly before: number; readonly op: MembershipOp }[]
  /** The insurance network each referral carries (`null`: none), drawn from the scenario's seed. */
  readonly networkOf?: (random: () => number) => string | null
  /** Probability that the chosen specialist declines / lets a referral expire, per attempt. */
  readonly declineRate?: number
  readonly expiryRate?: number
  /** Queueing simulation: utilisation of the active capacity (arrival rate / Σ service rates). */
  readonly utilisation?: number
  /**
   * A member gaming pauses: it pauses right after each referral it receives and resumes after
   * `routeWhilePaused` more referrals (0: at once, before the next referral).
   */
  readonly gamer?: { readonly id: string; readonly routeWhilePaused: number }
  /**
   * Deterministic declines instead of the random draws: does specialist `id` decline its n-th
   * offer (n from 1, counting every offer it got, re-routes included)?
   */
  readonly declines?: (id: string, offer: number) => boolean
}

/** Uniform in (0, 1) from a uint32 generator. */
export const unit = (next: () => number): (() => number) => {
  return () => (next() + 0.5) / 4_294_967_296
}

const pad = (i: number): string => `s${String(i).padStart(2, '0')}`
const FTE_STEPS = [200, 300, 400, 500, 600, 700, 800, 900, 1000]

const mixedTeam = (n: number, seed: number, networks?: readonly string[]): Specialist[] => {
  const r = mulberry32(seed)
  return Array.from({ length: n }, (_, i) => {
    const fteMilli = FTE_STEPS[r() % FTE_STEPS.length] as number
    if (networks === undefined) return { id: pad(i + 1), fteMilli, networks: null }
    // Each specialist accepts a random subset of at least two networks.
    const accepted = networks.filter(() => r() % 2 === 0)
    for (const n of networks) if (accepted.length < 2 && !accepted.includes(n)) accepted.push(n)
    return { id: pad(i + 1), fteMilli, networks: accepted.sort() }
  })
}

const pick = <T>(xs: readonly T[], u: number): T =>
  xs[Math.min(xs.length - 1, Math.floor(u * xs.length))] as T

/**
 * The scenarios of issue 3. `scale` (default 1) multiplies the referral counts and change points,
 * so a test can run the same shapes small. `seed` (default 1) shifts every scenario's random
 * streams (networks, declines, arrival and service times, the random router); the teams stay.
 */
export const scenarios = (scale = 1, seed = 1): Scenario[] =>
  baseScenarios(scale).map((s) => ({ ...s, seed: s.seed + 1000 * (seed - 1) }))

const baseScenarios = (scale: number): Scenario[] => {
  const n = (x: number) => Math.max(1, Math.round(x * scale))
  const networks = ['net-a', 'net-b', 'net-c', 'net-d']
  const mixed = mixedTeam(10, 7)
  const fteOf = (id: string) => (mixed.find((s) => s.id === id) as Specialist).fteMilli
  return [
    {
      name: 'static-equal',
      description: '10 specialists, all 1.0 FTE, no changes',
      seed: 101,
      initial: Array.from({ length: 10 }, (_, i) => ({ id: pad(i + 1), fteMilli: 1000, networks: null })),
      referrals: n(2000),
      changes: [],
    },
    {
      name: 'static-mixed',
      description: '10 specialists, FTE 0.2–1.0, no changes',
      seed: 102,
      initial: mixed,
      referrals: n(2000),
      changes: [],
    },
    {
      name: 'joins',
      description: '8 specialists (FTE 0.2–1.0); two join at 25 % (1.0, 0.5 FTE), one at 50 % (0.8)',
      seed: 103,
      initial: mixed.slice(0, 8),
      referrals: n(2000),
      changes: [
        { before: n(500), op: { kind: 'join', specialist: { id: 'new-1', fteMilli: 1000, networks: null } } },
        { before: n(500), op: { kind: 'join', specialist: { id: 'new-2', fteMilli: 500, networks: null } } },
        { before: n(1000), op: { kind: 'join', specialist: { id: 'new-3', fteMilli: 800, networks: null } } },
      ],
    },
    {
      name: 'pauses',
      description: '10 specialists; s02 paused 20–35 %, s05 and s06 paused 45–65 %',
      seed: 104,
      initial: mixed,
      referrals: n(2000),
      changes: [
        { before: n(400), op: { kind: 'pause', id: 's02' } },
        { before: n(700), op: { kind: 'resume', id: 's02' } },
        { before: n(900), op: { kind: 'pause', id: 's05' } },
        { before: n(900), op: { kind: 'pause', id: 's06' } },
        { before: n(1300), op: { kind: 'resume', id: 's05' } },
        { before: n(1300), op: { kind: 'resume', id: 's06' } },
      ],
    },
    {
      name: 'fte-changes',
      description:
        '10 specialists; s01 halves and s03 doubles at 25 %, s07 drops to 0.2 at 50 %, s01 back at 75 %',
      seed: 105,
      initial: mixed,
      referrals: n(2000),
      changes: [
        { before: n(500), op: { kind: 'fte', id: 's01', fteMilli: Math.max(100, fteOf('s01') / 2) } },
        { before: n(500), op: { kind: 'fte', id: 's03', fteMilli: fteOf('s03') * 2 } },
        { before: n(1000), op: { kind: 'fte', id: 's07', fteMilli: 200 } },
        { before: n(1500), op: { kind: 'fte', id: 's01', fteMilli: fteOf('s01') } },
      ],
    },
    {
      name: 'declines-expiries',
      description: '10 specialists (FTE 0.2–1.0); each offer declined with p = 0.10, expires with p = 0.05',
      seed: 106,
      initial: mixed,
      referrals: n(2000),
      changes: [],
      declineRate: 0.1,
      expiryRate: 0.05,
    },
    {
      name: 'insurance',
      description: '10 specialists accepting 2–4 of 4 networks; 75 % of referrals carry a network',
      seed: 107,
      initial: mixedTeam(10, 17, networks),
      referrals: n(2000),
      changes: [],
      networkOf: (u) => (u() < 0.25 ? null : pick(networks, u())),
    },
    yearScenario(scale),
    // Issue 12, defect 1: a member that pauses and resumes right after every referral it gets.
    {
      name: 'gaming-pause',
      description:
        'a 0.2-FTE specialist among four at 1.0 pauses and resumes right after every referral it gets',
      seed: 109,
      initial: [
        { id: 'a-gamer', fteMilli: 200, networks: null },
        ...['s01', 's02', 's03', 's04'].map((id) => ({ id, fteMilli: 1000, networks: null })),
      ],
      referrals: n(4200),
      changes: [],
      gamer: { id: 'a-gamer', routeWhilePaused: 0 },
    },
    {
      name: 'gaming-pause-service',
      description: 'the same, but one referral is routed while it is paused (as through the service)',
      seed: 110,
      initial: [
        { id: 'a-gamer', fteMilli: 200, networks: null },
        ...['s01', 's02', 's03', 's04'].map((id) => ({ id, fteMilli: 1000, networks: null })),
      ],
      referrals: n(4200),
      changes: [],
      gamer: { id: 'a-gamer', routeWhilePaused: 1 },
    },
    // Issue 12, defect 2: the 1.0 member declines every 7th offer.
    {
      name: 'decline-every-7th',
      description: 'two specialists, 1.0 and 0.2 FTE; the 1.0 one declines every 7th offer it gets',
      seed: 111,
      initial: [
        { id: 's01', fteMilli: 1000, networks: null },
        { id: 's02', fteMilli: 200, networks: null },
      ],
      referrals: n(4800),
      changes: [],
      declines: (id, offer) => id === 's01' && offer % 7 === 0,
    },
  ]
}

/**
 * A year of traffic for a 12-specialist group: ~8 referrals per working day over 250 days;
 * two 2-week holidays each (pauses), a part-time change, a newcomer in June, a departure in
 * October, 3 insurance networks (60 % of referrals carry one), 6 % declines and 3 % expiries.
 */
const yearScenario = (scale: number): Scenario => {
  const perDay = 8
  const days = 250
  const referrals = Math.max(1, Math.round(perDay * days * scale))
  const at = (day: number) => Math.min(referrals - 1, Math.round(day * perDay * scale))
  const nets = ['ins-1', 'ins-2', 'ins-3']
  const team = mixedTeam(12, 2024, nets)
  const r = mulberry32(2025)
  const changes: { before: number; op: MembershipOp }[] = []
  for (const s of team) {
    // Two holidays of 10 working days, one in each half of the year.
    for (const half of [0, 1]) {
      const start = half * 125 + 5 + (r() % 105)
      changes.push({ before: at(start), op: { kind: 'pause', id: s.id } })
      changes.push({ before: at(start + 10), op: { kind: 'resume', id: s.id } })
    }
  }
  changes.push({ before: at(60), op: { kind: 'fte', id: 's04', fteMilli: 500 } })
  changes.push({
    before: at(110),
    op: { kind: 'join', specialist: { id: 's13', fteMilli: 800, networks: nets } },
  })
  changes.push({ before: at(200), op: { kind: 'leave', id: 's09' } })
  // Stable order: by index, then as listed (a resume of one member may share an index with a pause).
  const ordered = changes.map((c, i) => ({ c, i })).sort((a, b) => a.c.before - b.c.before || a.i - b.i)
  return {
    name: 'year-12',
    description:
      '12 specialists, 250 working days × ~8 referrals: holidays, an FTE cut, a join, a departure, insurance, declines',
    seed: 108,
    initial: team,
    referrals,
    changes: ordered.map((x) => x.c),
    networkOf: (u) => (u() < 0.4 ? null : pick(nets, u())),
    declineRate: 0.06,
    expiryRate: 0.03,
  }
}

// ---- algorithms -------------------------------------------------------------------------------

export interface Member {
  readonly id: string
  fteMilli: number
  networks: readonly string[] | null
  active: boolean
  present: boolean
}

/** A routing algorithm as the harness drives it. Candidates are sorted by id. */
export interface Router {
  readonly name: string
  membership(op: MembershipOp, member: Member): void
  route(
    referralId: string,
    network: string | null,
    excluded: readonly string[],
    candidates: readonly Member[],
  ): string
  decline(referralId: string, id: string, kind: 'decline' | 'expiry'): void
}

export type AlgorithmName = 'random' | 'round-robin' | 'least-count' | 'smooth-wrr' | 'ours-v1' | 'ours'
export const ALGORITHMS: readonly AlgorithmName[] = [
  'random',
  'round-robin',
  'least-count',
  'smooth-wrr',
  'ours-v1',
  'ours',
]

/** Random, weighted by FTE (seeded). */
const randomRouter = (seed: number): Router => {
  const next = mulberry32(seed)
  return {
    name: 'random',
    membership: () => undefined,
    route: (_r, _n, _x, cs) => {
      const total = cs.reduce((s, c) => s + c.fteMilli, 0)
      let x = next() % total
      for (const c of cs) {
        if (x < c.fteMilli) return c.id
        x -= c.fteMilli
      }
      return (cs[cs.length - 1] as Member).id
    },
    decline: () => undefined,
  }
}

/** Round-robin over the candidates in id order, continuing after the last one chosen; FTE ignored. */
const roundRobinRouter = (): Router => {
  let last: string | null = null
  return {
    name: 'round-robin',
    membership: () => undefined,
    route: (_r, _n, _x, cs) => {
      const next = cs.find((c) => last === null || c.id > last) ?? (cs[0] as Member)
      last = next.id
      return next.id
    },
    decline: () => undefined,
  }
}

/**
 * Plain least-count as Clinnect describes it: the candidate that has received the fewest referrals
 * in the pool (count only, FTE ignored), ties by id. A decline or expiry gives the count back.
 */
const leastCountRouter = (): Router => {
  const count = new Map<string, number>()
  return {
    name: 'least-count',
    membership: () => undefined,
    route: (_r, _n, _x, cs) => {
      let best = cs[0] as Member
      for (const c of cs) if ((count.get(c.id) ?? 0) < (count.get(best.id) ?? 0)) best = c
      count.set(best.id, (count.get(best.id) ?? 0) + 1)
      return best.id
    },
    decline: (_r, id) => count.set(id, (count.get(id) ?? 0) - 1),
  }
}

/** nginx smooth weighted round-robin over the candidates; joiners and resumers start at 0. */
const smoothWrrRouter = (): Router => {
  const current = new Map<string, number>()
  return {
    name: 'smooth-wrr',
    membership: (op, m) => {
      if (op.kind === 'join' || op.kind === 'resume' || op.kind === 'leave') current.set(m.id, 0)
    },
    route: (_r, _n, _x, cs) => {
      let total = 0
      let best: Member | undefined
      for (const c of cs) {
        total += c.fteMilli
        const v = (current.get(c.id) ?? 0) + c.fteMilli
        current.set(c.id, v)
        if (best === undefined || v > (current.get(best.id) as number)) best = c
      }
      const chosen = best as Member
      current.set(chosen.id, (current.get(chosen.id) as number) - total)
      return chosen.id
    },
    decline: () => undefined,
  }
}

const META = {
  commandId: 'bench-cmd',
  actor: { kind: 'system', component: 'bench-fairness' },
  now: '2026-01-01T00:00:00.000Z',
  correlationId: 'bench',
} as unknown as PoolCommand['meta']

/**
 * The engine itself: every call is a `decide` + `evolve` on the pool's state — `ours` with the
 * current policy (v2), `ours-v1` with routing policy v1 (the engine before issue 12).
 */
const oursRouter = (name: 'ours' | 'ours-v1', decider = poolDecider): Router => {
  let state: PoolState = initialPoolState()
  const run = (body: unknown): readonly PoolEvent[] => {
    const result = decider.decide({ ...(body as object), meta: META } as PoolCommand, state)
    if (result._tag === 'Left') throw new Error(`engine refused a bench command: ${result.left.code}`)
    for (const e of result.right) state = decider.evolve(state, e)
    return result.right
  }
  const sync = (m: Member) =>
    run({
      type: 'SyncPoolMember',
      data: {
        practiceId: m.id,
        eligible: m.present,
        paused: !m.active && m.present,
        fteMilli: m.fteMilli,
        insuranceNetworks: m.networks ?? ALL_NETWORKS,
      },
    })
  return {
    name,
    membership: (_op, m) => {
      sync(m)
    },
    route: (referralId, network, excluded) => {
      const events = run({
        type: 'RouteReferral',
        data: { referralId, insuranceNetworkId: network, excludedPracticeIds: excluded },
      })
      const routed = events.find((e) => e.type === 'ReferralRouted')
      if (routed === undefined || routed.type !== 'ReferralRouted')
        throw new Error('engine found no candidate')
      return routed.data.chosenPracticeId
    },
    decline: (referralId, id, kind) => {
      run({ type: 'RecordDecline', data: { referralId, practiceId: id, kind } })
    },
  }
}

/** "Accepts every network" for the engine: every network any scenario uses. */
const ALL_NETWORKS = ['net-a', 'net-b', 'net-c', 'net-d', 'ins-1', 'ins-2', 'ins-3']

export const makeRouter = (name: AlgorithmName, seed: number): Router => {
  switch (name) {
    case 'random':
      return randomRouter(seed ^ 0x5eed)
    case 'round-robin':
      return roundRobinRouter()
    case 'least-count':
      return leastCountRouter()
    case 'smooth-wrr':
      return smoothWrrRouter()
    case 'ours':
      return oursRouter('ours')
    case 'ours-v1':
      return oursRouter('ours-v1', makePoolDecider(routingPolicyV1))
  }
}

// ---- metrics ----------------------------------------------------------------------------------

/** Jain's fairness index (Σx)² / (n·Σx²): 1 = all equal, 1/n = one member has everything. */
export const jainIndex = (xs: readonly number[]): number => {
  if (xs.length === 0) return 1
  const sum = xs.reduce((s, x) => s + x, 0)
  const squares = xs.reduce((s, x) => s + x * x, 0)
  return squares === 0 ? 1 : (sum * sum) / (xs.length * squares)
}

/** Gini coefficient (mean absolute difference / 2·mean): 0 = all equal. */
export const gini = (xs: readonly number[]): number => {
  if (xs.length < 2) return 0
  const sorted = [...xs].sort((a, b) => a - b)
  const sum = sorted.reduce((s, x) => s + x, 0)
  if (sum === 0) return 0
  const weighted = sorted.reduce((s, x, i) => s + (2 * (i + 1) - sorted.length - 1) * x, 0)
  return weighted / (sorted.length * sum)
}

/**
 * FIFO single-server queues: patient k arrives at `arrivals[k]`, is seen by `server[k]` and
 * needs `service[k]` time there. Returns each patient's waiting time (start of service − arrival).
 */
export const fifoWaits = (
  arrivals: readonly number[],
  server: readonly string[],
  service: readonly number[],
): number[] => {
  const freeAt = new Map<string, number>()
  return arrivals.map((t, k) => {
    const s = server[k] as string
    const start = Math.max(t, freeAt.get(s) ?? Number.NEGATIVE_INFINITY)
    freeAt.set(s, start + (service[k] as number))
    return start - t
  })
}

export interface Metrics {
  readonly scenario: string
  readonly algorithm: AlgorithmName
  readonly referrals: number
  readonly unrouted: number
  readonly offers: number
  /**
   * Largest |fair share − count| of any member after any referral, where each referral's fair
   * share is split over its final candidates (active, accepting its network, not a decliner of
   * it) in proportion to FTE.
   */
  readonly maxAbsLag: number
  /**
   * The same, re-based when a member resumes or rejoins as the engine's invariant is stated: a
   * positive lag (what it is owed) is dropped, a negative one (what it is ahead) kept.
   */
  readonly maxAbsLagRebased: number
  /**
   * Lag of the accepted referrals: every placed referral adds FTE / Σ active FTE to every active
   * member (declines and insurance ignored), minus the member's placed count; re-based on resume;
   * the worst |·| after any referral.
   */
  readonly acceptedLag: number
  /**
   * Lag against the water-filling entitlement: per static period, the placed referrals divided by
   * weighted max-min over who can take them (active and accepting the network); equals the FTE
   * share where that is feasible. Re-based on resume; worst |·| at period ends and every 100
   * referrals.
   */
  readonly waterFillingLag: number
  /**
   * max − min of the FTE-normalised count, count / pool share, over members with a pool share
   * ≥ 1; a member's pool share grows by FTE / Σ active FTE with every referral routed while it is
   * active (insurance and declines ignored), so 1 = exactly its FTE's share of the pool.
   */
  readonly normalisedSpread: number
  /** Jain's index of the same FTE-normalised counts. */
  readonly jain: number
  /** Gini coefficient of the same FTE-normalised counts. */
  readonly gini: number
  /** Longest run of consecutive referrals to one specialist. */
  readonly longestRun: number
  /** Longest run that starts with a specialist's first referral after a join or resume. */
  readonly longestRunAfterJoin: number
  /** Queueing: max − min over specialists of their patients' mean wait (days). */
  readonly waitSpreadDays: number
  /** Queueing: mean wait of all patients (days). */
  readonly meanWaitDays: number
  readonly counts: Readonly<Record<string, number>>
}

/** Days of work one patient needs at 1.0 FTE on average (a specialist at 1.0 FTE sees 1 / this per day). */
const SERVICE_DAYS_AT_FULL_TIME = 1
/** Independent replications of the queueing simulation per run, pooled to tame its variance. */
export const QUEUE_REPLICATIONS = 20

/**
 * Queueing simulation of one routing outcome. Referral k arrives after an exponential gap at rate
 * `utilisation × capacities[k]` (patients per day the active specialists can see), and, if placed,
 * needs an exponential amount of work (mean 1 day at 1.0 FTE) from its specialist, who works at
 * a speed equal to its FTE, first come first served. Replication r uses its own seeded streams,
 * the same for every algorithm. Returns the spread (max − min over specialists) of each
 * specialist's mean wait pooled over the replications, and the overall mean wait.
 */
export const simulateQueues = (
  seed: number,
  utilisation: number,
  capacities: readonly number[],
  placed: readonly ({ readonly id: string; readonly fte: number } | null)[],
  replications: number,
): { waitSpread: number; meanWait: number } => {
  const perServer = new Map<string, { sum: number; n: number }>()
  let total = 0
  let patients = 0
  for (let r = 0; r < replications; r++) {
    const arrivalDraw = unit(mulberry32(seed * 7 + 3 + 1_000_003 * r))
    const serviceDraw = unit(mulberry32(seed * 7 + 4 + 1_000_003 * r))
    let clock = 0
    const arrivals: number[] = []
    const servers: string[] = []
    const services: number[] = []
    capacities.forEach((capacity, k) => {
      const gap = -Math.log(arrivalDraw()) / (utilisation * capacity)
      const work = -Math.log(serviceDraw()) * SERVICE_DAYS_AT_FULL_TIME
      clock += Number.isFinite(gap) ? gap : 0
      const p = placed[k]
      if (p === null || p === undefined) return
      arrivals.push(clock)
      servers.push(p.id)
      services.push(work / p.fte)
    })
    fifoWaits(arrivals, servers, services).forEach((w, k) => {
      const s = servers[k] as string
      const e = perServer.get(s) ?? { sum: 0, n: 0 }
      e.sum += w
      e.n++
      perServer.set(s, e)
      total += w
      patients++
    })
  }
  const means = [...perServer.values()].map((e) => e.sum / e.n)
  return {
    waitSpread: means.length === 0 ? 0 : Math.max(...means) - Math.min(...means),
    meanWait: patients === 0 ? 0 : total / patients,
  }
}

/**
 * Weighted max-min fair (water-filling) split of placed referrals over who could take them: each
 * class is a number of referrals and the members that could take each of them. Peels off, from
 * the top, the member set M with the largest forced load per FTE, Σ{classes that only M can
 * take} / FTE(M): its members get that level × FTE and those classes; then the rest likewise.
 * With a single class (no insurance filter) this is the plain FTE share. Exact for up to 20
 * members (subsets are enumerated).
 */
export const waterFill = (
  classes: readonly { readonly eligible: readonly Member[]; readonly count: number }[],
): Map<string, number> => {
  const out = new Map<string, number>()
  const live = classes.filter((c) => c.count > 0 && c.eligible.length > 0)
  if (live.length === 0) return out
  const ids = [...new Set(live.flatMap((c) => c.eligible.map((m) => m.id)))].sort()
  const weight = new Map(live.flatMap((c) => c.eligible.map((m) => [m.id, m.fteMilli] as const)))
  if (live.length === 1) {
    const c = live[0] as (typeof live)[number]
    const total = c.eligible.reduce((s, m) => s + m.fteMilli, 0)
    for (const m of c.eligible) out.set(m.id, (c.count * m.fteMilli) / total)
    return out
  }
  if (ids.length > 20) throw new Error('waterFill: more than 20 members with insurance classes')
  const bit = new Map(ids.map((id, i) => [id, 1 << i] as const))
  let rest = live.map((c) => ({
    mask: c.eligible.reduce((x, m) => x | (bit.get(m.id) as number), 0),
    count: c.count,
  }))
  let remaining = (1 << ids.length) - 1
  while (remaining !== 0 && rest.length > 0) {
    let best = -1
    let bestMask = 0
    for (let m = remaining; m > 0; m = (m - 1) & remaining) {
      let demand = 0
      for (const c of rest) if ((c.mask & remaining & ~m) === 0) demand += c.count
      if (demand === 0) continue
      let w = 0
      for (const [i, id] of ids.entries()) if (m & (1 << i)) w += weight.get(id) as number
      const level = demand / w
      // Ties: the larger set (the union of maximisers is a maximiser).
      if (level > best * (1 + 1e-12) || (Math.abs(level - best) <= best * 1e-12 && (m | bestMask) === m)) {
        best = level
        bestMask = m
      }
    }
    if (best < 0) break
    for (const [i, id] of ids.entries())
      if (bestMask & (1 << i)) out.set(id, best * (weight.get(id) as number))
    rest = rest.filter((c) => (c.mask & remaining & ~bestMask) !== 0)
    remaining &= ~bestMask
  }
  return out
}

/** Runs one scenario under one algorithm and computes every metric. */
export const runScenario = (scenario: Scenario, algorithm: AlgorithmName): Metrics => {
  const router = makeRouter(algorithm, scenario.seed)
  // Independent streams, identical for every algorithm (common random numbers).
  const networkDraw = unit(mulberry32(scenario.seed * 7 + 1))
  const declineDraw = unit(mulberry32(scenario.seed * 7 + 2))
  const utilisation = scenario.utilisation ?? 0.85
  const declineRate = scenario.declineRate ?? 0
  const expiryRate = scenario.expiryRate ?? 0

  const members = new Map<string, Member>()
  const share = new Map<string, number>()
  const count = new Map<string, number>()
  const expected = new Map<string, number>()
  const fresh = new Set<string>()
  // New metrics (issue 12): re-based per-candidate share, pool-wide share of accepted referrals,
  // water-filling entitlement (per static period: `period` holds its placed referrals by who could
  // take them; `entitled` the entitlement of the periods closed so far).
  const rebasedShare = new Map<string, number>()
  const acceptedShare = new Map<string, number>()
  const entitled = new Map<string, number>()
  let period = new Map<string, { readonly eligible: readonly Member[]; count: number }>()
  let maxAbsLagRebased = 0
  let acceptedLag = 0
  let waterFillingLag = 0
  const periodEntitlement = (): Map<string, number> => waterFill([...period.values()])
  const checkWaterFilling = (): void => {
    const e = periodEntitlement()
    for (const id of members.keys()) {
      const lag = Math.abs((entitled.get(id) ?? 0) + (e.get(id) ?? 0) - (count.get(id) ?? 0))
      if (lag > waterFillingLag) waterFillingLag = lag
    }
  }
  const closePeriod = (): void => {
    if (period.size === 0) return
    checkWaterFilling()
    for (const [id, x] of periodEntitlement()) entitled.set(id, (entitled.get(id) ?? 0) + x)
    period = new Map()
  }
  /** On resume or rejoin: a positive lag (owed) is dropped, a negative one (ahead) kept. */
  const rebase = (id: string): void => {
    const c = count.get(id) ?? 0
    for (const m of [rebasedShare, acceptedShare, entitled]) {
      const x = m.get(id) ?? 0
      if (x > c) m.set(id, c)
    }
  }
  const apply = (op: MembershipOp) => {
    closePeriod()
    let m: Member
    if (op.kind === 'join') {
      const again = members.has(op.specialist.id)
      m = { ...op.specialist, active: true, present: true }
      members.set(m.id, m)
      fresh.add(m.id)
      if (again) rebase(m.id)
    } else {
      const found = members.get(op.id)
      if (found === undefined) throw new Error(`scenario ${scenario.name}: unknown member ${op.id}`)
      m = found
      if (op.kind === 'leave') m.present = m.active = false
      else if (op.kind === 'pause') m.active = false
      else if (op.kind === 'resume') {
        m.active = true
        fresh.add(m.id)
        rebase(m.id)
      } else m.fteMilli = op.fteMilli
    }
    router.membership(op, m)
  }
  for (const s of scenario.initial) apply({ kind: 'join', specialist: s })
  fresh.clear()

  const changes = [...scenario.changes]
  let changeIndex = 0
  let maxAbsLag = 0
  let longestRun = 0
  let longestRunAfterJoin = 0
  let last: string | null = null
  let run = 0
  let runAfterJoin = false
  let unrouted = 0
  let offers = 0
  /** Per referral: the active capacity when it arrived and where it was placed (queueing input). */
  const capacities: number[] = []
  const placed: ({ id: string; fte: number } | null)[] = []
  const sorted = () => [...members.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))

  const memberOffers = new Map<string, number>()
  let gamerResumesAt = -1
  for (let k = 0; k < scenario.referrals; k++) {
    while (changeIndex < changes.length && (changes[changeIndex] as (typeof changes)[number]).before <= k) {
      apply((changes[changeIndex] as (typeof changes)[number]).op)
      changeIndex++
    }
    if (k === gamerResumesAt && scenario.gamer !== undefined) {
      apply({ kind: 'resume', id: scenario.gamer.id })
      gamerResumesAt = -1
    }
    if (k > 0 && k % 100 === 0) checkWaterFilling()
    const all = sorted()
    const network = scenario.networkOf === undefined ? null : scenario.networkOf(networkDraw)
    // Patients seen per day by the active specialists (1 per day at 1.0 FTE).
    const capacity = all
      .filter((m) => m.active)
      .reduce((s, m) => s + m.fteMilli / 1000 / SERVICE_DAYS_AT_FULL_TIME, 0)
    capacities.push(capacity)
    const referralId = `r${k}`
    const excluded: string[] = []
    let holder: string | null = null
    let candidates: Member[] = []
    for (;;) {
      candidates = all.filter(
        (m) =>
          m.active &&
          (network === null || m.networks === null || m.networks.includes(network)) &&
          !excluded.includes(m.id),
      )
      if (candidates.length === 0) break
      const chosen = router.route(referralId, network, excluded, candidates)
      if (!candidates.some((c) => c.id === chosen)) throw new Error(`${algorithm} chose a non-candidate`)
      offers++
      const offer = (memberOffers.get(chosen) ?? 0) + 1
      memberOffers.set(chosen, offer)
      const u = declineDraw()
      const declined =
        scenario.declines !== undefined
          ? scenario.declines(chosen, offer) && candidates.length > 1
          : u < declineRate + expiryRate
      if (declined) {
        router.decline(
          referralId,
          chosen,
          scenario.declines !== undefined || u < declineRate ? 'decline' : 'expiry',
        )
        excluded.push(chosen)
        continue
      }
      holder = chosen
      break
    }
    if (holder === null) {
      unrouted++
      placed.push(null)
      continue
    }
    // Fluid fair share: this referral split over its final candidates in proportion to FTE.
    const total = candidates.reduce((s, c) => s + c.fteMilli, 0)
    for (const c of candidates) share.set(c.id, (share.get(c.id) ?? 0) + c.fteMilli / total)
    // Pool-wide FTE share: over every active member, whatever the referral's network or declines.
    const active = all.filter((m) => m.active)
    const activeTotal = active.reduce((s, m) => s + m.fteMilli, 0)
    for (const m of active) expected.set(m.id, (expected.get(m.id) ?? 0) + m.fteMilli / activeTotal)
    for (const c of candidates) rebasedShare.set(c.id, (rebasedShare.get(c.id) ?? 0) + c.fteMilli / total)
    for (const m of active) acceptedShare.set(m.id, (acceptedShare.get(m.id) ?? 0) + m.fteMilli / activeTotal)
    const eligible = active.filter(
      (m) => network === null || m.networks === null || m.networks.includes(network),
    )
    const key = eligible.map((m) => m.id).join(',')
    const cls = period.get(key) ?? { eligible, count: 0 }
    cls.count++
    period.set(key, cls)
    count.set(holder, (count.get(holder) ?? 0) + 1)
    for (const m of all) {
      const c = count.get(m.id) ?? 0
      const lag = Math.abs((share.get(m.id) ?? 0) - c)
      if (lag > maxAbsLag) maxAbsLag = lag
      const rebased = Math.abs((rebasedShare.get(m.id) ?? 0) - c)
      if (rebased > maxAbsLagRebased) maxAbsLagRebased = rebased
      const accepted = Math.abs((acceptedShare.get(m.id) ?? 0) - c)
      if (accepted > acceptedLag) acceptedLag = accepted
    }
    if (holder === last) run++
    else {
      run = 1
      last = holder
      runAfterJoin = fresh.has(holder)
    }
    fresh.delete(holder)
    longestRun = Math.max(longestRun, run)
    if (runAfterJoin) longestRunAfterJoin = Math.max(longestRunAfterJoin, run)
    const h = members.get(holder) as Member
    placed.push({ id: holder, fte: h.fteMilli / 1000 })
    if (scenario.gamer !== undefined && holder === scenario.gamer.id) {
      apply({ kind: 'pause', id: holder })
      if (scenario.gamer.routeWhilePaused === 0) apply({ kind: 'resume', id: holder })
      else gamerResumesAt = k + 1 + scenario.gamer.routeWhilePaused
    }
  }

  closePeriod()
  const queue = simulateQueues(scenario.seed, utilisation, capacities, placed, QUEUE_REPLICATIONS)
  const ratios = [...members.values()]
    .filter((m) => (expected.get(m.id) ?? 0) >= 1)
    .map((m) => (count.get(m.id) ?? 0) / (expected.get(m.id) as number))
  const r4 = (x: number) => Math.round(x * 10_000) / 10_000
  return {
    scenario: scenario.name,
    algorithm,
    referrals: scenario.referrals,
    unrouted,
    offers,
    maxAbsLag: r4(maxAbsLag),
    maxAbsLagRebased: r4(maxAbsLagRebased),
    acceptedLag: r4(acceptedLag),
    waterFillingLag: r4(waterFillingLag),
    normalisedSpread: ratios.length === 0 ? 0 : r4(Math.max(...ratios) - Math.min(...ratios)),
    jain: r4(jainIndex(ratios)),
    gini: r4(gini(ratios)),
    longestRun,
    longestRunAfterJoin,
    waitSpreadDays: r4(queue.waitSpread),
    meanWaitDays: r4(queue.meanWait),
    counts: Object.fromEntries(sorted().map((m) => [m.id, count.get(m.id) ?? 0])),
  }
}

/** Every scenario under every algorithm. */
export const runAll = (scale = 1, seed = 1): Metrics[] =>
  scenarios(scale, seed).flatMap((s) => ALGORITHMS.map((a) => runScenario(s, a)))

export interface SweepRow {
  readonly algorithm: AlgorithmName
  /** Worst max |lag| over all weight vectors. */
  readonly worstMaxAbsLag: number
  /** Weight vectors on which some member's |lag| reached 1 at some prefix. */
  readonly vectorsWithLagAtLeastOne: number
  readonly longestRun: number
}

/**
 * Static pools with seeded random weight vectors (n 2–30, FTE 0.1–1.0), `referrals` each: does
 * each algorithm keep every member within one referral of its FTE share at every prefix (SPEC
 * routing property 3)?
 */
export const staticSweep = (vectors = 200, referrals = 600, seed = 1): SweepRow[] => {
  const rows = new Map<AlgorithmName, { worst: number; over: number; run: number }>()
  for (let v = 0; v < vectors; v++) {
    const r = mulberry32(10_000 * seed + v)
    const n = 2 + (r() % 29)
    const scenario: Scenario = {
      name: `sweep-${v}`,
      description: 'static weight vector',
      seed: 10_000 * seed + v,
      initial: Array.from({ length: n }, (_, i) => ({
        id: pad(i + 1),
        fteMilli: 100 + (r() % 901),
        networks: null,
      })),
      referrals,
      changes: [],
    }
    for (const a of ALGORITHMS) {
      const m = runScenario(scenario, a)
      const e = rows.get(a) ?? { worst: 0, over: 0, run: 0 }
      e.worst = Math.max(e.worst, m.maxAbsLag)
      if (m.maxAbsLag >= 1) e.over++
      e.run = Math.max(e.run, m.longestRun)
      rows.set(a, e)
    }
  }
  return ALGORITHMS.map((a) => {
    const e = rows.get(a) ?? { worst: 0, over: 0, run: 0 }
    return { algorithm: a, worstMaxAbsLag: e.worst, vectorsWithLagAtLeastOne: e.over, longestRun: e.run }
  })
}
