import type { PracticeId, ReferralId } from '../shared/ids.js'
import type { Exclusion, Fraction, PoolEvent, RecordedCandidate, RouteRequest } from './codecs.js'
import { IndexHeap, RANKED_PREFIX, RankedHeap } from './heap.js'
import { IdTable } from './id-table.js'
import {
  ceilDiv,
  ceilProductDiv,
  checkSafe,
  cmpProducts,
  floorDiv,
  floorProductDiv,
  gcdNumber,
  productDifference,
} from './rational.js'

/*
 * Weighted least-count by FTE with virtual-time placement (EEVDF / WF2Q with unit requests).
 *
 * Member i has weight w_i (FTE in thousandths); W = Σ w_i over active members. Time is counted in
 * slots: one slot per routing decision, so the pool's virtual time V advances by one slot per
 * decision and member i's fair share of k slots is k·w_i/W. Member i has a virtual start
 * S_i = p_i/w_i (when its next referral becomes due) and a virtual finish F_i = S_i + W/w_i (by
 * when it must have had it); p_i is an integer, so every comparison below is a comparison of
 * integer products. Its lag is λ_i = (V·w_i − p_i)/W: fair share minus referrals received.
 *
 *   pick:  among members with S_i ≤ V ("eligible"), the smallest F_i; ties by the smaller S_i,
 *          then practiceId (lexicographic). If nobody is eligible, V first jumps to the smallest S_i.
 *   serve: p_c += W (S_c moves to F_c), then V += 1.
 *   place: joins, leaves, pauses, resumes (any status change, a paused member's leave included)
 *          and FTE changes of active members start a new period. A paused member's FTE change
 *          does not: nobody active changes rate, so V runs on and no lag moves; the member's kept
 *          lag (in referrals) comes back with it at its new FTE. A newcomer is placed
 *          at the current virtual time (λ = 0): no catch-up burst. Everyone else keeps its lag (an
 *          FTE change only changes the rate from now on: no burst either). Policy v2: a member
 *          that pauses or leaves takes its lag with it, keeping it only if negative (what it is
 *          ahead of its share), and comes back (resume, rejoin) with that lag: pausing never wipes a
 *          debt, and a positive lag is forfeited so no resumer floods. (Policy v1 placed resumers
 *          and rejoiners at λ = 0.) The lag departing members took away, and the debt returning
 *          members bring, is spread over the members that stayed, by FTE, so that Σλ = 0. Lags are
 *          rounded to multiples of 1/W (a returner's downwards, toward more debt; the others toward
 *          zero), kept inside (−1, 1) and re-balanced to Σλ = 0 (v2: by the stayers only), and the
 *          start condition below is checked; if it fails, the stayers' lags are halved (v2; v1:
 *          all lags) up to three times, then all lags are halved and finally set to zero, which
 *          always satisfies it.
 *
 * INVARIANT (bounded lag): in a static period — no membership/FTE change, no exclusion, refund or
 * direct referral — every member stays within less than one referral of its entitlement at every
 * prefix: −1 < λ_i < 1, i.e. its count is floor or ceil of (count at the start + λ_i at the start
 * + k·w_i/W) after k decisions. A newcomer's entitlement is just k·w_i/W.
 *
 * Why. Start condition (checked at every placement, true for all-zero lags): Σλ = 0, |λ_i| < 1,
 * and for every b ≥ 1 at most b referrals are due within b slots, Σ_i max(0, floor(w_i·b/W + λ_i))
 * ≤ b. Read member i's referrals as unit jobs: the j-th may go in the integer slots of
 * [x_i + j·L_i, x_i + (j+1)·L_i), with L_i = W/w_i ≥ 1 and x_i = −λ_i·L_i. Serving only eligible
 * members keeps λ_i > −1 (after a service λ_i ≥ w_i/W − 1); λ_i < 1 is exactly "no job misses the
 * end of its window". Unit jobs with integer windows on one server all meet their deadlines under
 * earliest-deadline-first iff every slot interval [a, b) has room for the jobs that must fall in
 * it. For a = 0 that is the start condition. For a ≥ 1 the windows of member i inside (a−1, b]
 * are disjoint and have length L_i, so there are fewer than w_i·(b−a+1)/W of them and fewer than
 * b−a+1 in total. Σλ = 0 is kept by every decision (V adds Σw_i/W = 1, the served member loses 1),
 * so some λ_i ≥ 0: there is always an eligible member and V never jumps in a static period. With
 * equal weights and λ = 0 at the start, "smallest F" is "smallest count" and every least-count
 * member is eligible: the choice is exactly plain least-count with the practiceId tie-break.
 *
 * PAUSES (policy v2). Let a member's active share be Σ w/W over the referrals routed while it was
 * active, and D = active share − count. Within a period λ − D is constant; at its own pause and
 * resume (or leave and rejoin) λ can only go down relative to D (a positive lag is forfeited, a
 * negative one is kept and rounded down), and other members' changes do not touch it except by the
 * spreading above. So a member that pauses, resumes, leaves and rejoins at will among static
 * others has D ≥ λ > −1: it never receives more than its active share plus one (gaming.test.ts).
 *
 * DECLINES (policy v2). A refund is exact: the refunded member's lag goes up by one (p −= W) and
 * the slot it had used is given back to the pool (the next decision does not advance V), so an
 * offer that is declined leaves every lag as it was, and the lags are the lags of the *accepted*
 * referrals: λ_i = λ_i(start) + A_i − c_i, with A_i = Σ w_i/W over the referrals accepted in the
 * period and c_i the member's accepted count. A member served out of turn (every eligible member
 * declined this referral) keeps its whole debt: it is not served again until the others have had
 * theirs. The one cap: after a decision nobody is owed 2 referrals or more (LAG_CAP) beyond the
 * refunded slots no decision has used yet (they bring every lag down by one each, by themselves:
 * a sole member that declined three referrals nobody else could take is owed 3); a member past
 * it — it declined, or was filtered out by insurance, while already overdue, so it cannot take its
 * share — forfeits the excess, and the excess is credited to the member served in that decision
 * (which took a referral in its place), so Σλ is unchanged.
 *
 * BOUND (declines). After every decision of a period: Σλ = s and λ_i < 2 + s for every member, s
 * the pending refunded slots (0 whenever every refund was followed by a service), hence
 * λ_i > −2(n−1); and exactly
 *     c_i − A_i = λ_i(start) − λ_i − F_i + G_i,
 * F_i the referrals' worth member i forfeited to the cap, G_i what it was credited (both 0 unless
 * someone kept declining while overdue). So without forfeits every accepted count stays within
 * 2n − 1 of its FTE share of the accepted referrals under any decline pattern, and no member is
 * ever owed a burst of more than two. Forfeits are unavoidable when decliners cannot take their
 * share (a member of FTE share 0.6 that declines every second offer can accept at most half of the
 * referrals); when they can — the members that decline need, with the offers they decline, less
 * than 90 % of the decisions — the property tests (gaming.test.ts) find no forfeit and every
 * accepted count within 2 of its share (the example, 1.0 and 0.2 FTE with the 1.0 member
 * declining every 7th offer: within 1). Policy v1 capped a decliner's refund at max(λ, 0) and
 * clamped out-of-turn debt at −1, so declines moved load from the decliners' share onto the
 * others without bound (0.2-FTE member: 1,200 referrals against a share of 800 after 4,800).
 *
 * ARITHMETIC. p_i, V = vNum/vDen and W are integers held in numbers: vDen is 1 or a member's FTE
 * (≤ 10,000), W ≤ 10,000 · n, and p_i ≈ V·w_i ± (a few)·W, all far below 2^53 for any real pool.
 * Comparisons multiply two of them; a product past 2^53 is detected and redone in BigInt
 * (`rational.ts`), so decisions are exact whatever the magnitudes, and stored values are checked
 * to stay safe integers. Placement (rare) works in BigInt throughout.
 *
 * Cost: a decision is O(log n) (two heaps of member indexes: eligible by F, waiting by S) plus
 * O(k log k) to list the k recorded candidates, with no allocation beyond the event. A decision
 * with exclusions also walks past the excluded members, and an insurance filter scans the active
 * members to list whom it excluded (O(n)). A re-placement is O(n log n) plus the walk of the start
 * condition (at most 20·n + 1000 slots), once per batch of changes.
 *
 * Memory: per member a few numbers; per referral still held by a member (assigned or direct,
 * and declined until it is re-routed) one entry of the referral book (an `IdTable`: its id and a
 * small integer). A released referral is forgotten. No event history is kept: explanations replay the stored events.
 */

/** v2: the most a member can be owed (in referrals) after a decision; see DECLINES above. */
export const LAG_CAP = 2

const ACTIVE = 0
const PAUSED = 1
const LEFT = 2
type StatusCode = typeof ACTIVE | typeof PAUSED | typeof LEFT
const STATUS_NAMES = ['active', 'paused', 'left'] as const
type Status = (typeof STATUS_NAMES)[number]

/** Algorithm version: the routing policy version of the last decision applied (1 before any). */
type Mode = 1 | 2

export interface ReferralEntry {
  readonly practiceId: PracticeId
  readonly state: 'assigned' | 'declined' | 'direct' | 'released'
  readonly counted: boolean
}

export interface MemberView {
  readonly practiceId: PracticeId
  readonly status: Status
  readonly fteMilli: number
  readonly count: number
  readonly insuranceNetworks: readonly string[]
}

export interface Ranking {
  readonly chosen: PracticeId | null
  readonly ranked: readonly RecordedCandidate[]
  readonly candidateCount: number
  readonly exclusions: readonly Exclusion[]
  readonly virtualTime: Fraction
  readonly totalWeight: number
}

export interface LagView {
  readonly practiceId: string
  readonly num: bigint
  readonly den: bigint
  /**
   * Policy v2: referrals' worth this member forfeited to the lag cap (minus what it was credited
   * for taking a forfeiter's place), since it first joined; a float, for inspection and tests.
   */
  readonly forfeited: number
}

// ---- per-referral bookkeeping ----------------------------------------------------------------

const ASSIGNED = 0
const DIRECT = 1
const DECLINED = 2
const REFERRAL_STATES = ['assigned', 'direct', 'declined'] as const
/** Marks, in a book's own layer, an entry deleted from the shared layer. */
const GONE = -1

const encodeReferral = (member: number, state: number, counted: boolean): number =>
  member * 8 + state * 2 + (counted ? 1 : 0)

/** A packed entry, or the practiceId of a non-member holding a direct (uncounted) referral. */
type BookValue = number | PracticeId

/**
 * Referral id → holder, state and counted flag, packed in one small integer. Two layers so that a
 * fork is cheap: `base` is written in place while no fork can see it (`frozen` false: the common
 * case, one `IdTable`: see id-table.ts); after a fork both engines share it, frozen, and write to their own `own` layer,
 * which is folded into a fresh private `base` when it outgrows it (amortised O(1) per write) or,
 * at the next fork, when it holds more than 1,024 entries (so a fork copies at most that many, and
 * the O(book) fold happens at most once per 1,024 writes).
 */
class ReferralBook {
  private own: Map<string, BookValue> | null = null

  constructor(
    private base: IdTable = new IdTable(),
    private frozen = false,
  ) {}

  get(id: string): BookValue | undefined {
    if (this.own !== null) {
      const v = this.own.get(id)
      if (v !== undefined) return v === GONE ? undefined : v
    }
    return this.base.get(id) as BookValue | undefined
  }

  set(id: string, value: BookValue): void {
    if (!this.frozen) {
      this.base.set(id, value)
      return
    }
    if (this.own === null) this.own = new Map()
    const own = this.own
    own.set(id, value)
    if (own.size > 1024 && own.size > this.base.size) this.fold()
  }

  delete(id: string): void {
    if (!this.frozen) this.base.delete(id)
    else if (this.base.has(id)) this.set(id, GONE)
    else this.own?.delete(id)
  }

  get size(): number {
    let n = this.base.size
    for (const [id, v] of this.own ?? []) {
      const inBase = this.base.has(id)
      if (v === GONE) n -= inBase ? 1 : 0
      else if (!inBase) n++
    }
    return n
  }

  fork(): ReferralBook {
    if (this.own !== null && this.own.size > 1024) this.fold()
    this.frozen = true
    const child = new ReferralBook(this.base, true)
    if (this.own !== null) child.own = new Map(this.own)
    return child
  }

  private fold(): void {
    const merged = this.base.clone()
    for (const [id, v] of this.own ?? []) {
      if (v === GONE) merged.delete(id)
      else merged.set(id, v)
    }
    this.base = merged
    this.own = null
    this.frozen = false
  }
}

const EMPTY: readonly never[] = Object.freeze([])

const byPracticeId = (a: Exclusion, b: Exclusion): number =>
  a.practiceId < b.practiceId ? -1 : a.practiceId > b.practiceId ? 1 : 0

export class PoolEngine {
  // Members by index (an index is never reused; departed members keep theirs).
  private ids: PracticeId[] = []
  private readonly index = new Map<string, number>()
  private w: number[] = []
  private status: StatusCode[] = []
  private count: number[] = []
  /** S = p/w slots; meaningful only while active and the engine is clean. */
  private p: number[] = []
  /** S and F as doubles (p/w, (p+W)/w): the comparators decide by them unless they are too close. */
  private sKey: number[] = []
  private fKey: number[] = []
  private networks: ReadonlySet<string>[] = []
  /** Rank of each member's practiceId among all members (the tie-break), maintained on join. */
  private idRank: number[] = []
  /** v2: the lag a member took with it when it paused or left (≤ 0), exact: savedNum / savedDen. */
  private savedNum: bigint[] = []
  private savedDen: bigint[] = []
  /** v2: referrals' worth forfeited (+) or credited (−) by the cap, for inspection (a float). */
  private forfeited: number[] = []
  private activeCount = 0
  private readonly referrals: ReferralBook

  private W = 0
  private vNum = 0
  private vDen = 1
  private mode: Mode = 1
  /** v2: slots given back by refunds, consumed by the next decisions instead of advancing V. */
  private owedSlots = 0
  private dirty = false
  /**
   * Lag numerators (over `snapshotDen`) of the members active when the current batch of
   * membership/FTE changes began; null when no batch is open. A batch closes at the next event
   * that serves, refunds or charges a member, so the placement depends on the events only — not
   * on whether someone ranked or inspected the pool in the middle of a batch.
   */
  private snapshot: Map<number, bigint> | null = null
  private snapshotDen = 1n
  /** Sorted exclusions of the inactive members, shared by decisions until a status changes. */
  private inactiveExclusions: readonly Exclusion[] | null = null

  /** Eligible members (S ≤ V) by (F, S, practiceId). */
  private eligible: RankedHeap
  /** Waiting members (S > V) by (S, F, practiceId). */
  private waiting: RankedHeap

  /** Number of events applied: a state is current while its length equals this. */
  applied = 0

  constructor(referrals?: ReferralBook) {
    this.referrals = referrals ?? new ReferralBook()
    this.eligible = new RankedHeap(this.fKey, (a, b) => this.exactLessByFinish(a, b))
    this.waiting = new RankedHeap(this.sKey, (a, b) => this.exactLessByStart(a, b))
  }

  /** An independent copy: O(members) plus at most 1,024 referral entries (see ReferralBook). */
  clone(): PoolEngine {
    const c = new PoolEngine(this.referrals.fork())
    c.ids = this.ids.slice()
    for (const [k, v] of this.index) c.index.set(k, v)
    c.w = this.w.slice()
    c.status = this.status.slice()
    c.count = this.count.slice()
    c.p = this.p.slice()
    c.sKey = this.sKey.slice()
    c.fKey = this.fKey.slice()
    c.networks = this.networks.slice()
    c.idRank = this.idRank.slice()
    c.savedNum = this.savedNum.slice()
    c.savedDen = this.savedDen.slice()
    c.forfeited = this.forfeited.slice()
    c.activeCount = this.activeCount
    c.W = this.W
    c.vNum = this.vNum
    c.vDen = this.vDen
    c.mode = this.mode
    c.owedSlots = this.owedSlots
    c.dirty = this.dirty
    c.snapshot = this.snapshot === null ? null : new Map(this.snapshot)
    c.snapshotDen = this.snapshotDen
    c.inactiveExclusions = this.inactiveExclusions
    c.eligible = this.eligible.cloneWith(c.fKey, (a, b) => c.exactLessByFinish(a, b))
    c.waiting = this.waiting.cloneWith(c.sKey, (a, b) => c.exactLessByStart(a, b))
    c.applied = this.applied
    return c
  }

  member(practiceId: string): MemberView | undefined {
    const i = this.index.get(practiceId)
    return i === undefined
      ? undefined
      : {
          practiceId: this.ids[i] as PracticeId,
          status: STATUS_NAMES[this.status[i] as StatusCode],
          fteMilli: this.w[i] as number,
          count: this.count[i] as number,
          insuranceNetworks: [...(this.networks[i] as ReadonlySet<string>)].sort(),
        }
  }

  memberIds(): readonly PracticeId[] {
    return [...this.ids].sort()
  }

  /** The pool's record of a referral; undefined if it never was routed here or was released. */
  referral(referralId: string): ReferralEntry | undefined {
    const v = this.referrals.get(referralId)
    if (v === undefined) return undefined
    if (typeof v === 'string') return { practiceId: v, state: 'direct', counted: false }
    return {
      practiceId: this.ids[Math.floor(v / 8)] as PracticeId,
      state: REFERRAL_STATES[(v >> 1) & 3] as ReferralEntry['state'],
      counted: (v & 1) === 1,
    }
  }

  /** Whether a practice holds the referral (assigned or direct): `referral` without allocating. */
  holds(referralId: string): boolean {
    const v = this.referrals.get(referralId)
    return v !== undefined && (typeof v === 'string' || ((v >> 1) & 3) !== DECLINED)
  }

  /** How many referrals the pool keeps an entry for (held or declined, not yet re-routed). */
  referralEntries(): number {
    return this.referrals.size
  }

  /**
   * Policy v2: slots given back by refunds that no decision has consumed yet (Σλ equals this;
   * 0 once every refund has been followed by a service).
   */
  pendingRefundSlots(): number {
    this.ensureClean()
    return this.owedSlots
  }

  /** Every active member's lag λ = (V·w − p)/W as an exact fraction (for invariant checks and explain). */
  lags(): readonly LagView[] {
    this.ensureClean()
    const out: LagView[] = []
    for (let i = 0; i < this.ids.length; i++) {
      if (this.status[i] !== ACTIVE) continue
      out.push({
        practiceId: this.ids[i] as string,
        ...this.lagOf(i),
        forfeited: this.forfeited[i] as number,
      })
    }
    return out.sort((a, b) => (a.practiceId < b.practiceId ? -1 : 1))
  }

  private lagOf(i: number): { num: bigint; den: bigint } {
    const w = BigInt(this.w[i] as number)
    return {
      num: BigInt(this.vNum) * w - BigInt(this.p[i] as number) * BigInt(this.vDen),
      den: BigInt(this.vDen) * BigInt(this.W),
    }
  }

  apply(event: PoolEvent): void {
    this.applied++
    switch (event.type) {
      case 'MemberJoined': {
        const { practiceId, fteMilli, insuranceNetworks } = event.data
        let i = this.index.get(practiceId)
        if (i === undefined) i = this.addMember(practiceId)
        else if (this.status[i] === ACTIVE) this.markDirty()
        this.w[i] = fteMilli
        this.networks[i] = new Set(insuranceNetworks)
        this.setStatus(i, ACTIVE)
        return
      }
      case 'MemberLeft':
        this.withMember(event.data.practiceId, (i) => this.setStatus(i, LEFT))
        return
      case 'MemberPaused':
        this.withMember(event.data.practiceId, (i) => this.setStatus(i, PAUSED))
        return
      case 'MemberResumed':
        this.withMember(event.data.practiceId, (i) => this.setStatus(i, ACTIVE))
        return
      case 'MemberFteChanged':
        this.withMember(event.data.practiceId, (i) => {
          if (this.status[i] === ACTIVE) this.markDirty()
          this.w[i] = event.data.toFteMilli
        })
        return
      case 'MemberNetworksChanged':
        this.withMember(event.data.practiceId, (i) => {
          this.networks[i] = new Set(event.data.insuranceNetworks)
        })
        return
      case 'ReferralRouted': {
        this.mode = event.data.policy.version
        // Usually the member the last ranking put first: no lookup by string key then.
        const c = this.lastChosen
        const i =
          c >= 0 && this.ids[c] === event.data.chosenPracticeId
            ? c
            : this.index.get(event.data.chosenPracticeId)
        if (i === undefined) {
          // Only in a tampered log: nobody to serve; remember who holds it, as a non-member.
          this.referrals.set(event.data.referralId, event.data.chosenPracticeId)
          return
        }
        this.referrals.set(event.data.referralId, encodeReferral(i, ASSIGNED, true))
        this.serve(i)
        return
      }
      case 'RoutingFoundNoCandidate':
        this.mode = event.data.policy.version
        return
      case 'DeclineRecorded': {
        const v = this.referrals.get(event.data.referralId)
        if (v === undefined || typeof v === 'string') return
        const holder = Math.floor(v / 8)
        this.referrals.set(event.data.referralId, encodeReferral(holder, DECLINED, false))
        if (event.data.refunded && (v & 1) === 1) this.refund(holder)
        return
      }
      case 'DirectReferralRecorded': {
        const i = this.index.get(event.data.practiceId)
        if (i === undefined) {
          this.referrals.set(event.data.referralId, event.data.practiceId)
          return
        }
        this.referrals.set(event.data.referralId, encodeReferral(i, DIRECT, event.data.counted))
        if (event.data.counted) this.charge(i)
        return
      }
      case 'ReferralReleased': {
        const v = this.referrals.get(event.data.referralId)
        if (v === undefined) return
        this.referrals.delete(event.data.referralId)
        if (typeof v === 'string') return
        if (event.data.refunded && (v & 1) === 1) this.refund(Math.floor(v / 8))
        return
      }
      default:
        absurdEvent(event)
    }
  }

  // ---- ranking -------------------------------------------------------------------------------

  // Scratch state of the current `rank` walk (no allocation per decision).
  private walkExcluded: ReadonlySet<number> | null = null
  private walkNetwork: string | null = null
  private walkIdx: number[] = []
  private walkMax = 1
  /** Index of the first candidate of the last ranking (−1: none): a memo for the event that follows. */
  private lastChosen = -1
  private readonly collect = (i: number): boolean => {
    if (
      (this.walkExcluded === null || !this.walkExcluded.has(i)) &&
      (this.walkNetwork === null || (this.networks[i] as ReadonlySet<string>).has(this.walkNetwork))
    ) {
      this.walkIdx.push(i)
    }
    return this.walkIdx.length < this.walkMax
  }

  /**
   * Ranks the candidates of a request without changing the pool's meaning (it may finish a pending
   * re-placement, which depends on the applied events only). `limit` ranked candidates are returned.
   */
  rank(request: RouteRequest, limit: number): Ranking {
    this.ensureClean()
    const network = request.insuranceNetworkId
    let excluded: Set<number> | null = null
    let excludedActive = 0
    let exclusions: readonly Exclusion[]
    const inactive = this.inactiveList()
    if (request.excludedPracticeIds.length === 0 && network === null) {
      exclusions = inactive
    } else {
      const list: Exclusion[] = inactive.slice()
      excluded = new Set()
      for (const id of request.excludedPracticeIds) {
        const i = this.index.get(id)
        if (i === undefined || excluded.has(i)) continue
        excluded.add(i)
        if (this.status[i] === ACTIVE) {
          excludedActive++
          list.push({ practiceId: this.ids[i] as PracticeId, reason: 'declined' })
        }
      }
      if (network !== null) {
        for (let i = 0; i < this.ids.length; i++) {
          if (this.status[i] !== ACTIVE || excluded.has(i)) continue
          if (!(this.networks[i] as ReadonlySet<string>).has(network)) {
            excludedActive++
            list.push({ practiceId: this.ids[i] as PracticeId, reason: 'insurance' })
          }
        }
      }
      exclusions = list.sort(byPracticeId)
    }

    // Where V stands for this decision: it jumps to the smallest virtual start if nobody is eligible.
    let vNum = this.vNum
    let vDen = this.vDen
    if (this.eligible.size === 0 && this.waiting.size > 0) {
      const first = this.waiting.peek()
      vNum = this.p[first] as number
      vDen = this.w[first] as number
    }
    this.walkIdx.length = 0
    this.lastChosen = -1
    const max = Math.max(1, limit)
    if (excluded === null && network === null && max <= RANKED_PREFIX) {
      // The common case: the first candidates are the sorted prefixes of the two heaps.
      const e = Math.min(max, this.eligible.sortedSize)
      for (let k = 0; k < e; k++) this.walkIdx.push(this.eligible.sortedAt(k))
      const r = Math.min(max - e, this.waiting.sortedSize)
      for (let k = 0; k < r; k++) this.walkIdx.push(this.waiting.sortedAt(k))
    } else {
      this.walkExcluded = excluded
      this.walkNetwork = network
      this.walkMax = max
      this.eligible.walk(this.collect)
      if (this.walkIdx.length < this.walkMax) this.waiting.walk(this.collect)
      this.walkExcluded = null
    }
    if (this.walkIdx.length > 0) this.lastChosen = this.walkIdx[0] as number
    const ranked: RecordedCandidate[] = new Array(this.walkIdx.length)
    for (let k = 0; k < this.walkIdx.length; k++) {
      const i = this.walkIdx[k] as number
      const p = this.p[i] as number
      const w = this.w[i] as number
      ranked[k] = {
        practiceId: this.ids[i] as PracticeId,
        count: this.count[i] as number,
        fteMilli: w as RecordedCandidate['fteMilli'],
        eligible: cmpProducts(p, vDen, vNum, w) <= 0,
        startUnits: p,
      }
    }
    let num = vNum
    let den = vDen
    if (den !== 1) {
      const g = gcdNumber(num, den)
      num /= g
      den /= g
    }
    return {
      chosen: ranked[0]?.practiceId ?? null,
      ranked,
      candidateCount: this.activeCount - excludedActive,
      exclusions,
      virtualTime: { num, den },
      totalWeight: this.W === 0 ? 1 : this.W,
    }
  }

  private inactiveList(): readonly Exclusion[] {
    if (this.inactiveExclusions !== null) return this.inactiveExclusions
    const list: Exclusion[] = []
    for (let i = 0; i < this.ids.length; i++) {
      const s = this.status[i]
      if (s === ACTIVE) continue
      list.push({ practiceId: this.ids[i] as PracticeId, reason: s === PAUSED ? 'paused' : 'not_eligible' })
    }
    this.inactiveExclusions = list.length === 0 ? EMPTY : Object.freeze(list.sort(byPracticeId))
    return this.inactiveExclusions
  }

  // ---- virtual-time mechanics ----------------------------------------------------------------

  private serve(i: number): void {
    this.count[i] = (this.count[i] as number) + 1
    if (this.status[i] !== ACTIVE) return
    this.placeForService()
    this.jumpIfNobodyEligible()
    if (this.mode === 2 && this.eligible.has(i)) {
      this.serveEligible(i)
      return
    }
    this.detach(i)
    this.setP(i, (this.p[i] as number) + this.W)
    if (this.mode === 1) {
      this.vNum = checkSafe(this.vNum + this.vDen)
      // v1: a member served out of turn (only possible with exclusions) is kept above λ = −1.
      const highest = ceilProductDiv(this.vNum, this.w[i] as number, this.vDen) + this.W - 1
      if ((this.p[i] as number) > highest) this.setP(i, highest)
      this.attach(i)
      this.promoteDue()
      this.clampMissed()
      return
    }
    if (this.owedSlots > 0) this.owedSlots--
    else this.vNum = checkSafe(this.vNum + this.vDen)
    this.attach(i)
    this.promoteDue()
    this.forfeitOverdue(i)
  }

  /** v2 service of an eligible member (the usual case): its entry is re-positioned in place. */
  private serveEligible(i: number): void {
    this.setP(i, (this.p[i] as number) + this.W)
    if (this.owedSlots > 0) this.owedSlots--
    else this.vNum = checkSafe(this.vNum + this.vDen)
    if (cmpProducts(this.p[i] as number, this.vDen, this.vNum, this.w[i] as number) <= 0)
      this.eligible.update(i)
    else {
      this.eligible.remove(i)
      this.waiting.push(i)
    }
    this.promoteDue()
    this.forfeitOverdue(i)
  }

  /** A refund: count back; v2: lag +1 and the slot given back; v1: lag +1 but never above max(λ, 0). */
  private refund(i: number): void {
    this.count[i] = (this.count[i] as number) - 1
    if (this.status[i] !== ACTIVE) {
      if (this.mode === 2) {
        // A paused member's kept debt shrinks by the refunded referral (it never turns positive).
        const num = (this.savedNum[i] as bigint) + (this.savedDen[i] as bigint)
        this.savedNum[i] = num > 0n ? 0n : num
      }
      return
    }
    this.placeForService()
    const w = this.w[i] as number
    if (this.mode === 2) {
      this.detach(i)
      this.setP(i, (this.p[i] as number) - this.W)
      this.owedSlots++
      this.attach(i)
      return
    }
    const atZero = ceilProductDiv(this.vNum, w, this.vDen) // smallest p with λ ≤ 0
    const p = this.p[i] as number
    if (p <= atZero) return
    this.detach(i)
    this.setP(i, p - this.W > atZero ? p - this.W : atZero)
    this.attach(i)
  }

  /** A counted direct referral: count +1; v2: a service outside the routing; v1: lag −1, kept above −1. */
  private charge(i: number): void {
    if (this.mode === 2) {
      this.serve(i)
      return
    }
    this.count[i] = (this.count[i] as number) + 1
    if (this.status[i] !== ACTIVE) return
    this.placeForService()
    this.detach(i)
    const highest = ceilProductDiv(this.vNum, this.w[i] as number, this.vDen) + this.W - 1
    const next = (this.p[i] as number) + this.W
    this.setP(i, next > highest ? highest : next)
    this.attach(i)
  }

  private jumpIfNobodyEligible(): void {
    if (this.eligible.size > 0 || this.waiting.size === 0) return
    const first = this.waiting.peek()
    this.vNum = this.p[first] as number
    this.vDen = this.w[first] as number
    this.promoteDue()
  }

  private promoteDue(): void {
    for (let i = this.waiting.peek(); i >= 0; i = this.waiting.peek()) {
      if (cmpProducts(this.p[i] as number, this.vDen, this.vNum, this.w[i] as number) > 0) return
      this.waiting.remove(i)
      this.eligible.push(i)
    }
  }

  /** v1: keeps λ < 1: a member whose finish has passed V is moved to just inside its window. */
  private clampMissed(): void {
    for (let i = this.eligible.peek(); i >= 0; i = this.eligible.peek()) {
      const w = this.w[i] as number
      if (cmpProducts((this.p[i] as number) + this.W, this.vDen, this.vNum, w) > 0) return
      this.eligible.remove(i)
      this.setP(i, floorProductDiv(this.vNum, w, this.vDen) - this.W + 1)
      this.eligible.push(i)
    }
  }

  /**
   * v2: keeps every lag below LAG_CAP plus the pending refunded slots: a member owed that much or
   * more (it declined, or was
   * filtered out by insurance, while overdue) forfeits the excess, which is credited to `served`
   * (which took a referral in its place), unless it is itself. Only overdue members (F ≤ V) can be
   * past the cap, and they come first in the eligible heap, so the walk stops at the first member
   * that is not overdue: O(1) when nobody is overdue (every static period).
   */
  private forfeitOverdue(served: number): void {
    const top = this.eligible.peek()
    if (
      top < 0 ||
      cmpProducts((this.p[top] as number) + this.W, this.vDen, this.vNum, this.w[top] as number) > 0
    )
      return
    this.overdue.length = 0
    this.eligible.walk(this.collectOverdue)
    for (const i of this.overdue) {
      const w = this.w[i] as number
      // λ ≥ C  ⟺  p ≤ V·w − C·W; clamp to the smallest p above it (λ just below C). C counts the
      // refunded slots still pending: the next decisions use them without advancing V, so they
      // bring the lags down by themselves (a sole member that declined three times is owed 3).
      const limit = floorProductDiv(this.vNum, w, this.vDen) - (LAG_CAP + this.owedSlots) * this.W
      const p = this.p[i] as number
      if (p > limit) continue
      const forfeited = limit + 1 - p
      this.detach(i)
      this.setP(i, limit + 1)
      this.attach(i)
      this.forfeited[i] = (this.forfeited[i] as number) + forfeited / this.W
      if (i !== served && this.status[served] === ACTIVE) {
        this.forfeited[served] = (this.forfeited[served] as number) - forfeited / this.W
        this.detach(served)
        this.setP(served, (this.p[served] as number) - forfeited)
        this.attach(served)
      }
    }
    this.overdue.length = 0
  }

  private readonly overdue: number[] = []
  private readonly collectOverdue = (i: number): boolean => {
    if (cmpProducts((this.p[i] as number) + this.W, this.vDen, this.vNum, this.w[i] as number) > 0)
      return false
    this.overdue.push(i)
    return true
  }

  private detach(i: number): void {
    if (!this.eligible.remove(i)) this.waiting.remove(i)
  }

  private attach(i: number): void {
    if (cmpProducts(this.p[i] as number, this.vDen, this.vNum, this.w[i] as number) <= 0)
      this.eligible.push(i)
    else this.waiting.push(i)
  }

  private addMember(practiceId: PracticeId): number {
    const i = this.ids.length
    this.ids.push(practiceId)
    this.index.set(practiceId, i)
    this.w.push(1)
    this.status.push(LEFT)
    this.count.push(0)
    this.p.push(0)
    this.sKey.push(0)
    this.fKey.push(0)
    this.networks.push(new Set())
    this.savedNum.push(0n)
    this.savedDen.push(1n)
    this.forfeited.push(0)
    // Re-rank the ids (joins of new members are rare: O(n log n)).
    const order = this.ids
      .map((_, k) => k)
      .sort((a, b) => ((this.ids[a] as string) < (this.ids[b] as string) ? -1 : 1))
    this.idRank = new Array(this.ids.length)
    for (const [r, k] of order.entries()) this.idRank[k] = r
    return i
  }

  private setStatus(i: number, status: StatusCode): void {
    if (this.status[i] === status) return
    this.markDirty()
    this.inactiveExclusions = null
    if (this.status[i] === ACTIVE) {
      this.activeCount--
      // What the member takes with it (v2 uses it when it comes back): its lag if negative. A
      // member that came back within this batch (not placed since, so not in the snapshot) still
      // holds what it brought back.
      const num = this.snapshot?.get(i)
      if (num !== undefined) {
        this.savedNum[i] = num < 0n ? num : 0n
        this.savedDen[i] = num < 0n ? this.snapshotDen : 1n
      }
      this.snapshot?.delete(i)
      this.detach(i)
    }
    this.status[i] = status
    if (status === ACTIVE) this.activeCount++
  }

  /** Before the first change of a batch: remember every active member's lag, to carry it over. */
  private markDirty(): void {
    this.dirty = true
    if (this.snapshot !== null) return
    this.snapshot = new Map()
    const vNum = BigInt(this.vNum)
    const vDen = BigInt(this.vDen)
    for (let i = 0; i < this.ids.length; i++) {
      if (this.status[i] !== ACTIVE) continue
      this.snapshot.set(i, vNum * BigInt(this.w[i] as number) - BigInt(this.p[i] as number) * vDen)
    }
    this.snapshotDen = vDen * BigInt(this.W)
  }

  /** Places the pool if needed and closes the batch of changes: a member is about to be charged. */
  private placeForService(): void {
    this.ensureClean()
    this.snapshot = null
  }

  /**
   * Re-placement after a batch of membership/FTE changes (lazily, before the next decision): see
   * "place" above. Lags are integers in units of 1/W of the new total weight.
   */
  private ensureClean(): void {
    if (!this.dirty) return
    const members: number[] = []
    for (let i = 0; i < this.ids.length; i++) if (this.status[i] === ACTIVE) members.push(i)
    members.sort((a, b) => (this.idRank[a] as number) - (this.idRank[b] as number))
    const ws = members.map((i) => BigInt(this.w[i] as number))
    let total = 0n
    for (const w of ws) total += w
    const snapshot = this.snapshot ?? new Map<number, bigint>()
    const lags =
      this.mode === 1
        ? this.placeV1(members, ws, total, snapshot)
        : this.placeV2(members, ws, total, snapshot)
    this.W = Number(total)
    for (const [k, i] of members.entries()) this.setP(i, Number(-(lags[k] as bigint)))
    this.vNum = 0
    this.vDen = 1
    this.owedSlots = 0
    this.eligible.rebuild(members.filter((i) => (this.p[i] as number) <= 0))
    this.waiting.rebuild(members.filter((i) => (this.p[i] as number) > 0))
    this.dirty = false
  }

  /** v1 placement (kept exactly, for old streams): carried members keep their lag, everyone else 0. */
  private placeV1(members: number[], ws: bigint[], total: bigint, snapshot: Map<number, bigint>): bigint[] {
    let imbalance = 0n
    let carriedWeight = 0n
    for (const [k, i] of members.entries()) {
      const num = snapshot.get(i)
      if (num !== undefined) {
        imbalance += num
        carriedWeight += ws[k] as bigint
      }
    }
    const lags = members.map((i, k) => {
      const num = snapshot.get(i)
      if (num === undefined) return 0n
      const scaled =
        (total * (num * carriedWeight - (ws[k] as bigint) * imbalance)) / (this.snapshotDen * carriedWeight)
      return scaled >= total ? total - 1n : scaled <= -total ? 1n - total : scaled
    })
    balance(lags)
    for (let attempt = 0; !feasiblePlacement(ws, lags, total); attempt++) {
      for (const [k, l] of lags.entries()) lags[k] = attempt < 3 ? l / 2n : 0n
      balance(lags)
    }
    return lags
  }

  /**
   * v2 placement: stayers keep their lag, returners (resume, rejoin) bring back their kept debt,
   * newcomers start at 0; the stayers absorb the difference by FTE.
   */
  private placeV2(members: number[], ws: bigint[], total: bigint, snapshot: Map<number, bigint>): bigint[] {
    const lags: bigint[] = new Array(members.length).fill(0n)
    const stayers: number[] = []
    // Σ of the lags that stay fixed (returners), in units of 1/total.
    let fixed = 0n
    let carriedWeight = 0n
    let carriedSum = 0n // over snapshotDen
    for (const [k, i] of members.entries()) {
      const num = snapshot.get(i)
      if (num !== undefined) {
        stayers.push(k)
        carriedWeight += ws[k] as bigint
        carriedSum += num
        continue
      }
      const saved = this.savedNum[i] as bigint
      if (saved < 0n) {
        // Rounded down (more debt), kept above −1.
        const units = floorDiv(saved * total, this.savedDen[i] as bigint)
        lags[k] = units <= -total ? 1n - total : units
        fixed += lags[k] as bigint
      }
    }
    if (stayers.length === 0) return lags.map(() => 0n)
    // Stayer k: λ_k − w_k·(Σ carried + Σ fixed)/carriedWeight, toward zero, inside (−1, 1).
    for (const k of stayers) {
      const num = snapshot.get(members[k] as number) as bigint
      const w = ws[k] as bigint
      const scaled =
        (total * (num * carriedWeight - w * carriedSum) - w * fixed * this.snapshotDen) /
        (this.snapshotDen * carriedWeight)
      lags[k] = scaled >= total ? total - 1n : scaled <= -total ? 1n - total : scaled
    }
    balanceTo(lags, stayers, -fixed, total)
    if (feasiblePlacement(ws, lags, total)) return lags
    for (let attempt = 0; attempt < 3; attempt++) {
      for (const k of stayers) lags[k] = (lags[k] as bigint) / 2n
      balanceTo(lags, stayers, -fixed, total)
      if (feasiblePlacement(ws, lags, total)) return lags
    }
    for (let attempt = 0; !feasiblePlacement(ws, lags, total); attempt++) {
      for (const [k, l] of lags.entries()) lags[k] = attempt < 3 ? l / 2n : 0n
      balance(lags)
    }
    return lags
  }

  private setP(i: number, p: number): void {
    this.p[i] = checkSafe(p)
    const w = this.w[i] as number
    this.sKey[i] = p / w
    this.fKey[i] = (p + this.W) / w
  }

  private exactLessByFinish(a: number, b: number): boolean {
    const p = this.p
    const w = this.w
    const pa = p[a] as number
    const pb = p[b] as number
    const wa = w[a] as number
    const wb = w[b] as number
    const f = cmpProducts(pa + this.W, wb, pb + this.W, wa)
    if (f !== 0) return f < 0
    const s = cmpProducts(pa, wb, pb, wa)
    return s !== 0 ? s < 0 : (this.idRank[a] as number) < (this.idRank[b] as number)
  }

  private exactLessByStart(a: number, b: number): boolean {
    const p = this.p
    const w = this.w
    const pa = p[a] as number
    const pb = p[b] as number
    const wa = w[a] as number
    const wb = w[b] as number
    const s = cmpProducts(pa, wb, pb, wa)
    if (s !== 0) return s < 0
    const f = cmpProducts(pa + this.W, wb, pb + this.W, wa)
    return f !== 0 ? f < 0 : (this.idRank[a] as number) < (this.idRank[b] as number)
  }

  private withMember(practiceId: string, f: (i: number) => void): void {
    const i = this.index.get(practiceId)
    if (i !== undefined) f(i)
  }
}

/**
 * Makes integer lags sum to zero by shrinking the side in excess, proportionally (remainder one
 * unit each in order); no lag changes sign or grows in magnitude.
 */
const balance = (lags: bigint[]): void => {
  const sum = lags.reduce((s, l) => s + l, 0n)
  if (sum === 0n) return
  const sign = sum > 0n ? 1n : -1n
  const excess = sign * sum
  const side = lags.reduce((s, l) => (sign * l > 0n ? s + sign * l : s), 0n)
  let left = excess
  for (const [i, l] of lags.entries()) {
    if (sign * l <= 0n) continue
    const cut = (excess * sign * l) / side
    lags[i] = l - sign * cut
    left -= cut
  }
  for (const [i, l] of lags.entries()) {
    if (left === 0n) return
    if (sign * l > 0n) {
      lags[i] = l - sign
      left--
    }
  }
}

/**
 * Makes the lags at `subset` sum to `target`: first by shrinking the side in excess (as `balance`,
 * no lag changes sign), then, if that side is used up, by moving lags the other way one unit at a
 * time within (−total, total). Lags outside `subset` are not touched; if the subset cannot reach
 * the target at all, the other lags are moved toward zero.
 */
const balanceTo = (lags: bigint[], subset: readonly number[], target: bigint, total: bigint): void => {
  const part = subset.map((k) => lags[k] as bigint)
  const sum = part.reduce((s, l) => s + l, 0n)
  let diff = sum - target // > 0: the subset must come down
  if (diff === 0n) return
  const sign = diff > 0n ? 1n : -1n
  // Shrink the subset's lags on the side of the excess (proportionally, none changes sign).
  const side = part.reduce((s, l) => (sign * l > 0n ? s + sign * l : s), 0n)
  const take = sign * diff < side ? sign * diff : side
  if (take > 0n) {
    let left = take
    for (const [j, l] of part.entries()) {
      if (sign * l <= 0n) continue
      const cut = (take * sign * l) / side
      part[j] = l - sign * cut
      left -= cut
    }
    for (const [j, l] of part.entries()) {
      if (left === 0n) break
      if (sign * l > 0n) {
        part[j] = l - sign
        left--
      }
    }
    diff -= sign * take
  }
  // Then push lags past zero, round-robin, within (−total, total).
  for (let moved = true; diff !== 0n && moved; ) {
    moved = false
    for (const [j, l] of part.entries()) {
      if (diff === 0n) break
      const next = l - sign
      if (next <= -total || next >= total) continue
      part[j] = next
      diff -= sign
      moved = true
    }
  }
  for (const [j, k] of subset.entries()) lags[k] = part[j] as bigint
  if (diff !== 0n) {
    // The subset has no room left (several returners with debt, few stayers): the others move —
    // a returner's debt shrinks (diff < 0) or grows (diff > 0) — so that Σλ = 0 still holds.
    const inSubset = new Set(subset)
    for (let k = 0; k < lags.length && diff !== 0n; k++) {
      if (inSubset.has(k)) continue
      while (diff > 0n && (lags[k] as bigint) > 1n - total) {
        lags[k] = (lags[k] as bigint) - 1n
        diff--
      }
      while (diff < 0n && (lags[k] as bigint) < 0n) {
        lags[k] = (lags[k] as bigint) + 1n
        diff++
      }
    }
  }
}

/**
 * The start condition of the bounded-lag argument: for every b ≥ 1, at most b referrals are due
 * within the next b slots — Σ_i max(0, floor((w_i·b + L_i)/W)) ≤ b. It can only fail while some
 * member's debt still hides its first units (b < −L_i/w_i), so only deadlines up to that point are
 * walked; a walk longer than 20·n + 1000 slots counts as failure (the caller then re-places).
 */
const feasiblePlacement = (ws: readonly bigint[], lags: readonly bigint[], W: bigint): boolean => {
  let horizon = 0n
  for (const [i, w] of ws.entries()) {
    const l = lags[i] as bigint
    if (l < 0n && -l / w > horizon) horizon = -l / w
  }
  if (horizon < 1n) return true
  if (horizon > BigInt(20 * ws.length + 1000)) return false
  // Deadlines (in slots) of each member's units j = 1, 2, …: ceil((j·W − L)/w).
  const next: bigint[] = new Array(ws.length).fill(0n)
  const unit: bigint[] = new Array(ws.length).fill(0n)
  const due = new IndexHeap(new Array(ws.length).fill(0), (a, b) => {
    const x = next[a] as bigint
    const y = next[b] as bigint
    return x !== y ? x < y : a < b
  })
  const deadline = (i: number, j: bigint): bigint => ceilDiv(j * W - (lags[i] as bigint), ws[i] as bigint)
  for (let i = 0; i < ws.length; i++) {
    const d = deadline(i, 1n)
    if (d <= horizon) {
      next[i] = d
      unit[i] = 1n
      due.push(i)
    }
  }
  let count = 0n
  for (let key = due.pop(); key >= 0; key = due.pop()) {
    const d = next[key] as bigint
    count++
    const j = (unit[key] as bigint) + 1n
    const d2 = deadline(key, j)
    if (d2 <= horizon) {
      next[key] = d2
      unit[key] = j
      due.push(key)
    }
    const peek = due.peek()
    if ((peek < 0 || (next[peek] as bigint) !== d) && count > d) return false
  }
  return true
}

/** The lag a candidate had at a decision, as an exact fraction, from the recorded numbers. */
export const recordedLag = (
  c: Pick<RecordedCandidate, 'fteMilli' | 'startUnits'>,
  virtualTime: Fraction,
  totalWeight: number,
): { num: bigint; den: bigint } => ({
  num: BigInt(productDifference(virtualTime.num, c.fteMilli, c.startUnits, virtualTime.den)),
  den: BigInt(virtualTime.den) * BigInt(totalWeight),
})

export type { ReferralId }

const absurdEvent = (event: never): never => {
  throw new Error(`unhandled pool event ${(event as { type?: string }).type ?? ''}`)
}
