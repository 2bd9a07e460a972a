import type { PracticeId } from '../shared/ids.js'
import type { Exclusion, PoolEvent, RankedCandidate, RouteRequest } from './codecs.js'
import { IndexedHeap } from './heap.js'
import { ceilDiv, floorDiv, fractionString } from './rational.js'

/*
 * Weighted least-count by FTE with virtual-time placement (EEVDF / WF2Q with unit requests).
 *
 * Member i has weight w_i (FTE in thousandths); W = Σ w_i over active members. Time is counted in
 * slots: one slot per routing decision, so the pool's virtual time V advances by one slot per
 * decision and member i's fair share of k slots is k·w_i/W. Member i has a virtual start
 * S_i = p_i/w_i (when its next referral becomes due) and a virtual finish F_i = S_i + W/w_i (by
 * when it must have had it); p_i is an integer, so every comparison below is a comparison of
 * BigInt products. Its lag is λ_i = (V·w_i − p_i)/W: fair share minus referrals received.
 *
 *   pick:  among members with S_i ≤ V ("eligible"), the smallest F_i; ties by the smaller S_i,
 *          then practiceId (lexicographic). If nobody is eligible, V first jumps to the smallest S_i.
 *   serve: p_c += W (S_c moves to F_c), then V += 1.
 *   place: joins, leaves, pauses, resumes and FTE changes start a new period. A newcomer or
 *          resumer is placed at the current virtual time (λ = 0): no catch-up burst. Everyone else
 *          keeps its lag (an FTE change only changes the rate from now on: no burst either); the
 *          lag departing members took away is spread over the others by FTE so that Σλ = 0. Lags
 *          are rounded toward zero to multiples of 1/W, kept inside (−1, 1) and re-balanced to
 *          Σλ = 0, and the start condition below is checked; if it fails, all lags are halved (up
 *          to three times) and finally set to zero, which always satisfies it.
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
 * Outside static periods the bound is enforced, not proved: a member whose window has passed
 * (possible after exclusions or refunds) is moved to just inside it, and a member served out of
 * turn (only when every eligible member is excluded) is not pushed to λ ≤ −1.
 *
 * Cost: a decision is O(log n) (two heaps: eligible by F, waiting by S). A decision with
 * exclusions also walks past the excluded members, and an insurance filter scans the active
 * members to list whom it excluded (O(n)). A re-placement is O(n log n) plus the walk of the start
 * condition (at most 20·n + 1000 slots), once per batch of changes.
 */

type Status = 'active' | 'paused' | 'left'

interface Member {
  readonly practiceId: PracticeId
  w: bigint
  status: Status
  count: number
  networks: ReadonlySet<string>
  /** S = p/w slots; meaningful only while active and the engine is clean. */
  p: bigint
}

interface ReferralEntry {
  readonly practiceId: PracticeId
  state: 'assigned' | 'declined' | 'direct' | 'released'
  counted: boolean
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
  readonly ranked: readonly RankedCandidate[]
  readonly candidateCount: number
  readonly exclusions: readonly Exclusion[]
  readonly virtualTime: string
}

export interface LagView {
  readonly practiceId: string
  readonly num: bigint
  readonly den: bigint
}

export class PoolEngine {
  private readonly members = new Map<string, Member>()
  private readonly active = new Set<string>()
  private readonly inactive = new Set<string>()
  private readonly referrals = new Map<string, ReferralEntry>()
  private W = 0n
  private kNum = 0n
  private kDen = 1n
  private dirty = false
  /**
   * Lag numerators (over `snapshotDen`) of the members active when the current batch of
   * membership/FTE changes began; null when no batch is open. A batch closes at the next event
   * that serves, refunds or charges a member, so the placement depends on the events only — not
   * on whether someone ranked or inspected the pool in the middle of a batch.
   */
  private snapshot: Map<string, bigint> | null = null
  private snapshotDen = 1n

  /** Eligible members (S ≤ V) by (F, S, practiceId). */
  private readonly eligible = new IndexedHeap((a, b) => this.lessByFinish(a, b))
  /** Waiting members (S > V) by (S, F, practiceId). */
  private readonly waiting = new IndexedHeap((a, b) => this.lessByStart(a, b))

  member(practiceId: string): MemberView | undefined {
    const m = this.members.get(practiceId)
    return m === undefined
      ? undefined
      : {
          practiceId: m.practiceId,
          status: m.status,
          fteMilli: Number(m.w),
          count: m.count,
          insuranceNetworks: [...m.networks].sort(),
        }
  }

  memberIds(): readonly PracticeId[] {
    return [...this.members.values()].map((m) => m.practiceId).sort()
  }

  referral(referralId: string): Readonly<ReferralEntry> | undefined {
    return this.referrals.get(referralId)
  }

  /** Every active member's lag λ = (V·w − p)/W as an exact fraction (for invariant checks and explain). */
  lags(): readonly LagView[] {
    this.ensureClean()
    return [...this.active].sort().map((id) => {
      const m = this.members.get(id) as Member
      return { practiceId: id, num: this.kNum * m.w - m.p * this.kDen, den: this.kDen * this.W }
    })
  }

  apply(event: PoolEvent): void {
    switch (event.type) {
      case 'MemberJoined': {
        const { practiceId, fteMilli, insuranceNetworks } = event.data
        const existing = this.members.get(practiceId)
        const m: Member = existing ?? {
          practiceId,
          w: 1n,
          status: 'left',
          count: 0,
          networks: new Set(),
          p: 0n,
        }
        this.members.set(practiceId, m)
        if (m.status === 'active') this.markDirty()
        m.w = BigInt(fteMilli)
        m.networks = new Set(insuranceNetworks)
        this.setStatus(m, 'active')
        return
      }
      case 'MemberLeft':
        this.withMember(event.data.practiceId, (m) => this.setStatus(m, 'left'))
        return
      case 'MemberPaused':
        this.withMember(event.data.practiceId, (m) => this.setStatus(m, 'paused'))
        return
      case 'MemberResumed':
        this.withMember(event.data.practiceId, (m) => this.setStatus(m, 'active'))
        return
      case 'MemberFteChanged':
        this.withMember(event.data.practiceId, (m) => {
          if (m.status === 'active') this.markDirty()
          m.w = BigInt(event.data.toFteMilli)
        })
        return
      case 'MemberNetworksChanged':
        this.withMember(event.data.practiceId, (m) => {
          m.networks = new Set(event.data.insuranceNetworks)
        })
        return
      case 'ReferralRouted':
        this.referrals.set(event.data.referralId, {
          practiceId: event.data.chosenPracticeId,
          state: 'assigned',
          counted: true,
        })
        this.serve(event.data.chosenPracticeId)
        return
      case 'RoutingFoundNoCandidate':
        return
      case 'DeclineRecorded': {
        const entry = this.referrals.get(event.data.referralId)
        if (entry === undefined) return
        entry.state = 'declined'
        if (event.data.refunded && entry.counted) {
          entry.counted = false
          this.refund(entry.practiceId)
        }
        return
      }
      case 'DirectReferralRecorded':
        this.referrals.set(event.data.referralId, {
          practiceId: event.data.practiceId,
          state: 'direct',
          counted: event.data.counted,
        })
        if (event.data.counted) this.charge(event.data.practiceId)
        return
      case 'ReferralReleased': {
        const entry = this.referrals.get(event.data.referralId)
        if (entry === undefined) return
        entry.state = 'released'
        if (event.data.refunded && entry.counted) {
          entry.counted = false
          this.refund(entry.practiceId)
        }
        return
      }
      default:
        absurdEvent(event)
    }
  }

  /**
   * Ranks the candidates of a request without changing the pool's meaning (it may finish a pending
   * re-placement, which depends on the applied events only). `limit` ranked candidates are returned.
   */
  rank(request: RouteRequest, limit: number): Ranking {
    this.ensureClean()
    const excluded = new Set<string>(request.excludedPracticeIds)
    const network = request.insuranceNetworkId
    const isCandidate = (id: string): boolean => {
      const m = this.members.get(id) as Member
      return !excluded.has(id) && (network === null || m.networks.has(network))
    }
    const exclusions: Exclusion[] = []
    for (const id of this.inactive) {
      const m = this.members.get(id) as Member
      exclusions.push({
        practiceId: id as Exclusion['practiceId'],
        reason: m.status === 'paused' ? 'paused' : 'not_eligible',
      })
    }
    let excludedActive = 0
    for (const id of excluded) {
      if (this.active.has(id)) {
        excludedActive++
        exclusions.push({ practiceId: id as Exclusion['practiceId'], reason: 'declined' })
      }
    }
    if (network !== null) {
      for (const id of this.active) {
        if (!excluded.has(id) && !(this.members.get(id) as Member).networks.has(network)) {
          excludedActive++
          exclusions.push({ practiceId: id as Exclusion['practiceId'], reason: 'insurance' })
        }
      }
    }
    exclusions.sort((a, b) => (a.practiceId < b.practiceId ? -1 : a.practiceId > b.practiceId ? 1 : 0))

    // Where V stands for this decision: it jumps to the smallest virtual start if nobody is eligible.
    const [vNum, vDen] = this.effectiveVirtualTime()
    const ranked: RankedCandidate[] = []
    const max = Math.max(1, limit)
    const collect = (id: string): boolean => {
      if (isCandidate(id)) ranked.push(this.describe(id, vNum, vDen))
      return ranked.length < max
    }
    this.eligible.walk(collect)
    if (ranked.length < max) this.waiting.walk(collect)
    return {
      chosen: ranked[0]?.practiceId ?? null,
      ranked,
      candidateCount: this.active.size - excludedActive,
      exclusions,
      virtualTime: fractionString(vNum, vDen),
    }
  }

  // ---- virtual-time mechanics ----------------------------------------------------------------

  private serve(practiceId: string): void {
    const m = this.members.get(practiceId)
    if (m === undefined) return
    m.count++
    if (m.status !== 'active') return
    this.placeForService()
    this.jumpIfNobodyEligible()
    this.detach(m)
    m.p += this.W
    this.kNum += this.kDen
    // A member served out of turn (only possible with exclusions) is kept above λ = −1.
    const highest = ceilDiv(this.kNum * m.w + this.W * this.kDen, this.kDen) - 1n
    if (m.p > highest) m.p = highest
    this.attach(m)
    this.promoteDue()
    this.clampMissed()
  }

  /** A refund: count back, and the member's lag +1 but never above max(λ, 0). */
  private refund(practiceId: string): void {
    const m = this.members.get(practiceId)
    if (m === undefined) return
    m.count--
    if (m.status !== 'active') return
    this.placeForService()
    const atZero = ceilDiv(this.kNum * m.w, this.kDen) // smallest p with λ ≤ 0
    if (m.p <= atZero) return
    this.detach(m)
    m.p = m.p - this.W > atZero ? m.p - this.W : atZero
    this.attach(m)
  }

  /** A counted direct referral: count +1 and the member's lag −1, kept above −1. */
  private charge(practiceId: string): void {
    const m = this.members.get(practiceId)
    if (m === undefined) return
    m.count++
    if (m.status !== 'active') return
    this.placeForService()
    this.detach(m)
    const highest = ceilDiv(this.kNum * m.w + this.W * this.kDen, this.kDen) - 1n
    m.p = m.p + this.W > highest ? highest : m.p + this.W
    this.attach(m)
  }

  private effectiveVirtualTime(): readonly [bigint, bigint] {
    if (this.eligible.size > 0) return [this.kNum, this.kDen]
    const first = this.waiting.peek()
    if (first === undefined) return [this.kNum, this.kDen]
    const m = this.members.get(first) as Member
    return [m.p, m.w]
  }

  private jumpIfNobodyEligible(): void {
    if (this.eligible.size > 0) return
    ;[this.kNum, this.kDen] = this.effectiveVirtualTime()
    this.promoteDue()
  }

  private promoteDue(): void {
    for (let id = this.waiting.peek(); id !== undefined; id = this.waiting.peek()) {
      const m = this.members.get(id) as Member
      if (m.p * this.kDen > this.kNum * m.w) return
      this.waiting.remove(id)
      this.eligible.push(id)
    }
  }

  /** Keeps λ < 1: a member whose finish has passed V is moved to just inside its window. */
  private clampMissed(): void {
    for (let id = this.eligible.peek(); id !== undefined; id = this.eligible.peek()) {
      const m = this.members.get(id) as Member
      if ((m.p + this.W) * this.kDen > this.kNum * m.w) return
      this.eligible.remove(id)
      m.p = floorDiv(this.kNum * m.w - this.W * this.kDen, this.kDen) + 1n
      this.eligible.push(id)
    }
  }

  private detach(m: Member): void {
    if (!this.eligible.remove(m.practiceId)) this.waiting.remove(m.practiceId)
  }

  private attach(m: Member): void {
    if (m.p * this.kDen <= this.kNum * m.w) this.eligible.push(m.practiceId)
    else this.waiting.push(m.practiceId)
  }

  private setStatus(m: Member, status: Status): void {
    if (m.status === status) return
    this.markDirty()
    if (m.status === 'active') {
      this.active.delete(m.practiceId)
      this.snapshot?.delete(m.practiceId)
      this.detach(m)
    }
    m.status = status
    if (status === 'active') {
      this.active.add(m.practiceId)
      this.inactive.delete(m.practiceId)
    } else {
      this.inactive.add(m.practiceId)
    }
  }

  /** Before the first change of a batch: remember every active member's lag, to carry it over. */
  private markDirty(): void {
    this.dirty = true
    if (this.snapshot !== null) return
    this.snapshot = new Map()
    for (const id of this.active) {
      const m = this.members.get(id) as Member
      this.snapshot.set(id, this.kNum * m.w - m.p * this.kDen)
    }
    this.snapshotDen = this.kDen * this.W
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
    const ids = [...this.active].sort()
    const members = ids.map((id) => this.members.get(id) as Member)
    let total = 0n
    for (const m of members) total += m.w
    // Carried members keep their lag; what departed members took away is spread over them by FTE.
    const snapshot = this.snapshot ?? new Map<string, bigint>()
    let imbalance = 0n
    let carriedWeight = 0n
    for (const m of members) {
      const num = snapshot.get(m.practiceId)
      if (num !== undefined) {
        imbalance += num
        carriedWeight += m.w
      }
    }
    const lags = members.map((m) => {
      const num = snapshot.get(m.practiceId)
      if (num === undefined) return 0n
      const scaled = (total * (num * carriedWeight - m.w * imbalance)) / (this.snapshotDen * carriedWeight)
      return scaled >= total ? total - 1n : scaled <= -total ? 1n - total : scaled
    })
    balance(lags)
    for (let attempt = 0; !feasiblePlacement(members, lags, total); attempt++) {
      for (const [i, l] of lags.entries()) lags[i] = attempt < 3 ? l / 2n : 0n
      balance(lags)
    }
    for (const [i, m] of members.entries()) m.p = -(lags[i] as bigint)
    this.W = total
    this.kNum = 0n
    this.kDen = 1n
    this.eligible.rebuild(ids.filter((id) => (this.members.get(id) as Member).p <= 0n))
    this.waiting.rebuild(ids.filter((id) => (this.members.get(id) as Member).p > 0n))
    this.dirty = false
  }

  private describe(id: string, vNum: bigint, vDen: bigint): RankedCandidate {
    const m = this.members.get(id) as Member
    return {
      practiceId: id as RankedCandidate['practiceId'],
      count: m.count,
      fteMilli: Number(m.w) as RankedCandidate['fteMilli'],
      eligible: m.p * vDen <= vNum * m.w,
      virtualStart: fractionString(m.p, m.w),
      virtualFinish: fractionString(m.p + this.W, m.w),
      lag: fractionString(vNum * m.w - m.p * vDen, vDen * this.W),
    }
  }

  private lessByFinish(a: string, b: string): boolean {
    const x = this.members.get(a) as Member
    const y = this.members.get(b) as Member
    const f = (x.p + this.W) * y.w - (y.p + this.W) * x.w
    if (f !== 0n) return f < 0n
    const s = x.p * y.w - y.p * x.w
    return s !== 0n ? s < 0n : a < b
  }

  private lessByStart(a: string, b: string): boolean {
    const x = this.members.get(a) as Member
    const y = this.members.get(b) as Member
    const s = x.p * y.w - y.p * x.w
    if (s !== 0n) return s < 0n
    const f = (x.p + this.W) * y.w - (y.p + this.W) * x.w
    return f !== 0n ? f < 0n : a < b
  }

  private withMember(practiceId: string, f: (m: Member) => void): void {
    const m = this.members.get(practiceId)
    if (m !== undefined) f(m)
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
 * The start condition of the bounded-lag argument: for every b ≥ 1, at most b referrals are due
 * within the next b slots — Σ_i max(0, floor((w_i·b + L_i)/W)) ≤ b. It can only fail while some
 * member's debt still hides its first units (b < −L_i/w_i), so only deadlines up to that point are
 * walked; a walk longer than 20·n + 1000 slots counts as failure (the caller then re-places).
 */
const feasiblePlacement = (members: readonly Member[], lags: readonly bigint[], W: bigint): boolean => {
  let horizon = 0n
  for (const [i, m] of members.entries()) {
    const l = lags[i] as bigint
    if (l < 0n && -l / m.w > horizon) horizon = -l / m.w
  }
  if (horizon < 1n) return true
  if (horizon > BigInt(20 * members.length + 1000)) return false
  // Deadlines (in slots) of each member's units j = 1, 2, …: ceil((j·W − L)/w).
  const due = new IndexedHeap((a, b) => {
    const x = next.get(a) as bigint
    const y = next.get(b) as bigint
    return x !== y ? x < y : a < b
  })
  const next = new Map<string, bigint>()
  const unit = new Map<string, bigint>()
  const deadline = (i: number, j: bigint): bigint =>
    ceilDiv(j * W - (lags[i] as bigint), (members[i] as Member).w)
  for (const [i] of members.entries()) {
    const d = deadline(i, 1n)
    if (d <= horizon) {
      next.set(String(i), d)
      unit.set(String(i), 1n)
      due.push(String(i))
    }
  }
  let count = 0n
  for (let key = due.pop(); key !== undefined; key = due.pop()) {
    const d = next.get(key) as bigint
    count++
    const j = (unit.get(key) as bigint) + 1n
    const d2 = deadline(Number(key), j)
    if (d2 <= horizon) {
      next.set(key, d2)
      unit.set(key, j)
      due.push(key)
    }
    const peek = due.peek()
    if ((peek === undefined || (next.get(peek) as bigint) !== d) && count > d) return false
  }
  return true
}

const absurdEvent = (event: never): never => {
  throw new Error(`unhandled pool event ${(event as { type?: string }).type ?? ''}`)
}
