import * as E from 'fp-ts/lib/Either.js'
import {
  type ReferralAggregate,
  type ReferralCommand,
  type ReferralEvent,
  type ReferralState,
  referralStreamId,
} from '../referral/index.js'
import {
  currentRoutingPolicy,
  deliver,
  explainRouting,
  forkPoolState,
  makePoolDecider,
  POOL_EVENT_SCHEMA_VERSION,
  type PoolCommandBody,
  PoolEvent,
  type PoolState,
  planRouting,
  poolEngine,
  poolUpcasters,
  type ReferralRoutingExplanation,
  type RoutingOutcome,
  type RoutingPolicy,
  type SyncPoolMemberData,
  verifyRouting,
} from '../routing/index.js'
import type { CommandMeta } from '../shared/decider.js'
import { fteMilli, type PoolKey, poolStreamName, receivesCategory } from '../shared/domain-types.js'
import type { IdGenerator } from '../shared/id-generator.js'
import { type PracticeId, type ReferralId, type StreamId, unsafeId } from '../shared/ids.js'
import type { Instant } from '../shared/time.js'
import {
  type AppendRequest,
  type CompanionWrite,
  type EventStore,
  expected,
  type NewEvent,
} from '../store/port.js'
import {
  type Aggregate,
  appendDecided,
  type CommandFailure,
  type Commit,
  type Committed,
  companionFor,
  type Decided,
  decodeStored,
  loadAggregate,
  toNewEvents,
} from './command-handler.js'
import type { PracticeDirectory } from './directory.js'
import type { RequestContext } from './engine.js'
import { defineEventCatalog } from './event-catalog.js'
import type { ReferralIndex } from './referral-index.js'

export const poolEventCatalog = defineEventCatalog({
  codec: PoolEvent,
  schemaVersions: POOL_EVENT_SCHEMA_VERSION,
  upcasters: poolUpcasters,
})

export const poolAggregate = (
  policy: RoutingPolicy = currentRoutingPolicy,
): Aggregate<PoolCommandBody & { readonly meta: CommandMeta }, PoolEvent, PoolState> => ({
  name: 'pool',
  decider: makePoolDecider(policy),
  catalog: poolEventCatalog,
})

/** Referral events after which a pooled referral may need a routing decision (or a pool update). */
const ROUTING_TRIGGERS: ReadonlySet<string> = new Set([
  'ReferralSent',
  'ReferralDeclined',
  'ReferralExpired',
  'ReferralRedirected',
  'ReferralCategoryChanged',
  'ReferralCancelled',
])

export const poolKeyOf = (referral: ReferralAggregate): PoolKey => ({
  regionId: referral.regionId,
  specialtyId: referral.specialtyId,
  categoryId: referral.category.categoryId,
  subcategoryId: referral.category.subcategoryId ?? null,
})

/** What the router needs from the engine that owns it. */
export interface RouterDeps {
  readonly store: EventStore
  readonly ids: IdGenerator
  readonly directory: PracticeDirectory
  readonly referralIndex: ReferralIndex
  readonly referral: Aggregate<ReferralCommand, ReferralEvent, ReferralState>
  /** Stamps command metadata (clock, fresh command id) for a request context. */
  readonly meta: (ctx: RequestContext) => CommandMeta
  readonly policy?: RoutingPolicy
}

/**
 * Routing, owned by the engine. A pooled referral that needs a specialist is routed by one pool
 * decision and one referral command:
 *
 * - where the store appends to several streams atomically (in-memory, PostgreSQL), routing is part
 *   of the command that needs it (`commit`): a send, decline, expiry, redirect or cancellation is
 *   decided, then — in its pool's queue — the pool decision is planned on the referral as the
 *   command leaves it, and the command's events, the referral's routing events and the pool events
 *   go in **one** `appendMany`, each at the version it was decided on;
 * - elsewhere (EventStoreDB), and for a category change (two pools), the command is written on its
 *   own and `afterCommit` routes it: the pool stream is written first; if the process dies before
 *   the referral is written, the pool records the referral as assigned to a practice that never got
 *   it, and the next run for that referral (any later command, a practice change, or `repairAll`)
 *   sees that and delivers to the recorded practice instead of deciding again: the step is
 *   idempotent, and it never fails the command that was committed.
 *
 * Decisions of one pool are serialized in this process by a queue per pool and across processes by
 * the pool stream's expected version: the loser plans again on the new pool state.
 */
export const createRouter = (deps: RouterDeps) => {
  const pool = poolAggregate(deps.policy)
  const { store, ids, referral } = deps
  const loadReferral = (referralId: ReferralId) =>
    loadAggregate(referral, store, referralStreamId(referralId))

  /** The router acts as itself, under a fresh command id, caused by the request that triggered it. */
  const systemMeta = (ctx: RequestContext): CommandMeta =>
    deps.meta({
      actor: { kind: 'system', component: 'router' },
      correlationId: ctx.correlationId,
      ...(ctx.causationId === undefined ? {} : { causationId: ctx.causationId }),
    })

  /** What each practice of the specialty looks like to this pool now. */
  const memberSyncs = (key: PoolKey, state: PoolState): SyncPoolMemberData[] => {
    const current = new Set<string>(poolEngine(state).memberIds())
    const ref = {
      categoryId: key.categoryId,
      ...(key.subcategoryId ? { subcategoryId: key.subcategoryId } : {}),
    }
    const syncs: SyncPoolMemberData[] = []
    const seen = new Set<string>()
    for (const p of deps.directory.profiles()) {
      seen.add(p.practiceId)
      const eligible =
        p.verified &&
        p.specialtyId === key.specialtyId &&
        p.regions.includes(key.regionId) &&
        receivesCategory(p, ref) &&
        p.fte !== null
      if (!eligible && !current.has(p.practiceId)) continue
      syncs.push({
        practiceId: p.practiceId,
        eligible,
        fteMilli: (p.fte === null ? 1000 : fteMilli(p.fte)) as SyncPoolMemberData['fteMilli'],
        insuranceNetworks: p.insuranceNetworks,
        paused: p.status === 'paused',
      })
    }
    // Members whose practice no longer has a specialist profile leave the pool.
    for (const practiceId of current) {
      if (seen.has(practiceId)) continue
      const member = poolEngine(state).member(practiceId)
      if (member === undefined || member.status === 'left') continue
      syncs.push({
        practiceId: unsafeId<PracticeId>(practiceId),
        eligible: false,
        fteMilli: member.fteMilli as SyncPoolMemberData['fteMilli'],
        insuranceNetworks: [],
      })
    }
    return syncs
  }

  /**
   * Pools are read on every routing decision, so each process keeps the pools it has seen and only
   * reads the events appended since (by any process). The cache is an optimisation, never a source
   * of truth: every decision is still appended at the version it was decided on.
   */
  interface CachedPool {
    state: PoolState
    version: number
    /**
     * This process wrote the pool's last known version and its read before found nothing new: the
     * next batch is planned on the cache without reading the stream (`loadPool(…, true)`), and the
     * append's expected version checks the guess — a conflict reads the stream and plans again.
     */
    sole?: boolean
  }
  /** A pool as read for a decision: `caughtUp` counts the events read from the store just now. */
  interface LoadedPool extends CachedPool {
    readonly caughtUp: number
  }
  const pools = new Map<StreamId, CachedPool>()
  const loadPool = async (
    streamId: StreamId,
    optimistic = false,
  ): Promise<E.Either<CommandFailure, LoadedPool>> => {
    const entry: CachedPool = pools.get(streamId) ?? { state: pool.decider.initialState, version: 0 }
    pools.set(streamId, entry)
    if (optimistic && entry.sole === true)
      return E.right({ state: forkPoolState(entry.state), version: entry.version, caughtUp: 0 })
    entry.sole = false
    const read = await store.readStream(streamId, { fromVersion: entry.version + 1 })()
    if (E.isLeft(read)) return read
    for (const stored of read.right) {
      const decoded = await decodeStored(pool, stored)
      if (E.isLeft(decoded)) return decoded
      entry.state = pool.decider.evolve(entry.state, decoded.right)
      entry.version = stored.version
    }
    // A snapshot: routing evolves its own copy of `state` and only writes back after its append.
    return E.right({ state: forkPoolState(entry.state), version: entry.version, caughtUp: read.right.length })
  }
  /**
   * After a successful append, the decided state is the pool's state at `version`. `sole`: the pool
   * was planned on without finding another writer's events (read nothing new, or not read).
   */
  const remember = (streamId: StreamId, from: LoadedPool | CachedPool, state: PoolState, version: number) => {
    const entry = pools.get(streamId)
    if (entry === undefined || entry.version !== from.version) return
    entry.state = state
    entry.version = version
    entry.sole = 'caughtUp' in from && from.caughtUp === 0
  }
  /** Another writer got to the pool first: the next batch reads it. */
  const distrust = (streamId: StreamId) => {
    const entry = pools.get(streamId)
    if (entry !== undefined) entry.sole = false
  }

  /** The id of the last decision that assigned `referralId` in a pool stream ('repaired' if none is found). */
  const recordedDecisionId = async (
    poolStream: StreamId,
    referralId: ReferralId,
  ): Promise<E.Either<CommandFailure, string>> => {
    const loaded = await loadAggregate(pool, store, poolStream)()
    if (E.isLeft(loaded)) return loaded
    const decision = [...loaded.right.events]
      .reverse()
      .find((e) => e.type === 'ReferralRouted' && e.data.referralId === referralId)
    return E.right(decision?.type === 'ReferralRouted' ? decision.data.decisionId : 'repaired')
  }

  /** One routing step for a referral as it stands, ready to write: the pool and referral appends. */
  interface PlannedStep {
    readonly outcome: RoutingOutcome
    readonly poolRequest: AppendRequest | null
    readonly referralEvents: readonly ReferralEvent[]
    readonly referralNewEvents: readonly NewEvent[]
    /** Call once the pool append is stored at `version`. */
    readonly poolWritten: (version: number) => void
    readonly poolStream: StreamId
    /** The router's `now` (the routing events' occurredAt). */
    readonly at: Instant
    /** The pool after this step. */
    readonly poolState: PoolState
  }

  const planStep = async (
    referralId: ReferralId,
    referralStream: StreamId,
    r: ReferralState & { exists: true },
    referralEvents: readonly ReferralEvent[],
    ctx: RequestContext,
  ): Promise<E.Either<CommandFailure, PlannedStep>> => {
    const poolStream = unsafeId<StreamId>(poolStreamName(poolKeyOf(r)))
    const loadedPool = await loadPool(poolStream)
    if (E.isLeft(loadedPool)) return loadedPool
    // The directory is read after the pool, so it is at least as new as any sync the pool holds;
    // a newer sync written meanwhile by another process makes this decision's append fail.
    await deps.directory.refresh()
    return planOn(
      referralId,
      referralStream,
      r,
      referralEvents,
      ctx,
      loadedPool.right,
      loadedPool.right.state,
    )
  }

  /**
   * Plans one step on `state`, the pool as `loaded` (read at `loaded.version`) plus the steps
   * planned before this one in the same batch; `state` is evolved in place.
   */
  const planOn = async (
    referralId: ReferralId,
    referralStream: StreamId,
    r: ReferralState & { exists: true },
    referralEvents: readonly ReferralEvent[],
    ctx: RequestContext,
    loaded: CachedPool,
    state: PoolState,
  ): Promise<E.Either<CommandFailure, PlannedStep>> => {
    const poolStream = unsafeId<StreamId>(poolStreamName(poolKeyOf(r)))
    const meta = systemMeta(ctx)
    const planned = planRouting({
      referralId,
      referral: r,
      referralEvents,
      pool: state,
      memberSyncs: memberSyncs(poolKeyOf(r), state),
      poolDecider: pool.decider,
      referralDecider: referral.decider,
      meta,
    })
    if (E.isLeft(planned)) return planned
    const { pool: poolState, poolEvents } = planned.right
    let outcome: RoutingOutcome = planned.right.outcome
    let routingEvents = planned.right.referralEvents
    if (outcome.kind === 'repair') {
      // The decision the referral never received is in the stored pool events (the state keeps no history).
      const decisionId = await recordedDecisionId(poolStream, referralId)
      if (E.isLeft(decisionId)) return decisionId
      outcome = { kind: 'delivered', practiceId: outcome.practiceId, decisionId: decisionId.right }
      const decided = referral.decider.decide(deliver(outcome.practiceId, decisionId.right, meta), r)
      if (E.isLeft(decided)) return decided
      routingEvents = decided.right
    }
    const v = loaded.version
    const poolRequest: AppendRequest | null =
      poolEvents.length === 0
        ? null
        : {
            streamId: poolStream,
            expected: v === 0 ? expected.noStream : expected.exact(v),
            events: await toNewEvents(pool, ids, poolStream, state, poolEvents, meta),
          }
    return E.right({
      outcome,
      poolRequest,
      referralEvents: routingEvents,
      referralNewEvents: await toNewEvents(referral, ids, referralStream, r, routingEvents, meta),
      poolWritten: (version) => remember(poolStream, loaded, poolState, version),
      poolStream,
      at: meta.now,
      poolState,
    })
  }

  /**
   * Routing in one pool is serialized inside this process (a queue per pool stream), so concurrent
   * requests do not race each other into version conflicts; across processes the pool stream's
   * expected version still decides, and the loser plans again.
   */
  const queues = new Map<string, Promise<unknown>>()
  const inPoolQueue = <A>(key: string, work: () => Promise<A>): Promise<A> => {
    const previous = queues.get(key) ?? Promise.resolve()
    const run = previous.then(work, work)
    const tail = run.catch(() => undefined)
    queues.set(key, tail)
    void tail.then(() => {
      if (queues.get(key) === tail) queues.delete(key)
    })
    return run
  }

  /** How often a step is planned again when another process wrote to the pool first. */
  const POOL_ATTEMPTS = 50
  const poolConflict = (e: CommandFailure, poolStream: StreamId) =>
    e._tag === 'WrongExpectedVersion' && e.streamId === poolStream

  interface Waiting {
    readonly d: Decided<ReferralEvent, ReferralState>
    readonly after: ReferralState & { exists: true }
    readonly referralId: ReferralId
    readonly ctx: RequestContext
    /** The directory was refreshed after this command's request began (see `claimFreshness`). */
    readonly directoryFresh: boolean
  }
  type GroupOutcome = E.Either<CommandFailure, Committed<ReferralEvent>> | 'alone'
  interface Batcher {
    readonly waiting: { readonly item: Waiting; readonly done: (o: GroupOutcome) => void }[]
    draining: boolean
  }
  /** At most this many commands share one transaction. */
  const MAX_BATCH = 64
  const batchers = new Map<string, Batcher>()

  /**
   * Group commit per pool: commands that need a decision in a pool wait in its batcher; while one
   * transaction is being written, the next ones queue, and the next drain plans them in arrival
   * order, each on the pool as the previous one left it — the decisions one-at-a-time routing would
   * make in that order — and writes them all in one `appendMany` (one pool append of N steps plus
   * N referral appends). Each caller is answered when that transaction commits. A conflict on the
   * pool stream (another process) plans the whole batch again on the new pool state; a conflict on
   * one referral stream sends that command back to `executeCommand` (which decides it again) and the
   * rest are planned again. At most one command per referral stream goes in a batch.
   */
  const groupCommit = (key: string, item: Waiting): Promise<GroupOutcome> =>
    new Promise((done) => {
      const b = batchers.get(key) ?? { waiting: [], draining: false }
      batchers.set(key, b)
      b.waiting.push({ item, done })
      if (!b.draining) {
        b.draining = true
        void inPoolQueue(key, () => drain(key, b))
      }
    })

  const drain = async (key: string, b: Batcher): Promise<void> => {
    try {
      while (b.waiting.length > 0) {
        const batch: Batcher['waiting'] = []
        const streams = new Set<string>()
        for (let i = 0; i < b.waiting.length && batch.length < MAX_BATCH; ) {
          const w = b.waiting[i] as Batcher['waiting'][number]
          if (streams.has(w.item.d.streamId)) {
            i++
            continue
          }
          streams.add(w.item.d.streamId)
          batch.push(w)
          b.waiting.splice(i, 1)
        }
        await commitBatch(batch).catch((error: unknown) => {
          for (const w of batch) w.done(E.left(unexpected(error)))
        })
      }
    } finally {
      b.draining = false
      if (b.waiting.length === 0) batchers.delete(key)
      else {
        b.draining = true
        void inPoolQueue(key, () => drain(key, b))
      }
    }
  }

  const unexpected = (error: unknown): CommandFailure => ({
    _tag: 'StoreUnavailable',
    reason: 'unknown',
    message: `routing failed: ${error instanceof Error ? error.name : 'error'}`,
  })

  const commitBatch = async (batch: Batcher['waiting']): Promise<void> => {
    let items = batch
    for (let attempt = 0; attempt < POOL_ATTEMPTS && items.length > 0; attempt++) {
      const first = items[0] as Batcher['waiting'][number]
      const poolStream = unsafeId<StreamId>(poolStreamName(poolKeyOf(first.item.after)))
      // The first attempt plans on the cache where this process is the pool's only writer so far.
      const loaded = await loadPool(poolStream, attempt === 0).catch(
        (): E.Either<CommandFailure, LoadedPool> => E.left(unreadable),
      )
      if (E.isLeft(loaded)) {
        for (const w of items) w.done('alone')
        return
      }
      // The directory must be at least as new as the pool's member syncs (so a decision never
      // syncs a member back to an older profile) and as the requests being planned. It is read
      // again unless both hold already: the pool holds only events this process wrote (it read
      // none just now) and every request refreshed the directory itself after it began.
      if (loaded.right.caughtUp > 0 || attempt > 0 || items.some((w) => !w.item.directoryFresh))
        await deps.directory.refresh()
      let state = loaded.right.state
      const steps: { readonly w: Batcher['waiting'][number]; readonly step: PlannedStep }[] = []
      let replan = false
      for (const w of items) {
        const { d, after, referralId, ctx } = w.item
        const step = await planOn(referralId, d.streamId, after, d.events, ctx, loaded.right, state).catch(
          (): E.Either<CommandFailure, PlannedStep> => E.left(unreadable),
        )
        if (E.isLeft(step)) {
          // This one is written alone; the pool state may be half-evolved: plan the rest again.
          w.done('alone')
          items = items.filter((x) => x !== w)
          replan = true
          break
        }
        state = step.right.poolState
        steps.push({ w, step: step.right })
      }
      if (replan) {
        attempt--
        continue
      }
      const poolEvents = steps.flatMap((s) => s.step.poolRequest?.events ?? [])
      const v = loaded.right.version
      const requests: AppendRequest[] =
        poolEvents.length === 0
          ? []
          : [
              {
                streamId: poolStream,
                expected: v === 0 ? expected.noStream : expected.exact(v),
                events: poolEvents,
              },
            ]
      for (const { w, step } of steps) {
        const { d } = w.item
        requests.push({
          streamId: d.streamId,
          expected: d.version === 0 ? expected.noStream : expected.exact(d.version),
          events: [...d.newEvents, ...step.referralNewEvents],
        })
      }
      // Each command's companion (its HTTP answer), for the outcome `executeCommand` will return.
      const companions: CompanionWrite[] = []
      const withCompanion = new Set<Batcher['waiting'][number]>()
      for (const { w, step } of steps) {
        const { d, after } = w.item
        const companion = companionFor(store, d, {
          state: step.referralEvents.reduce(referral.decider.evolve, after),
          version: d.version + d.newEvents.length + step.referralNewEvents.length,
          updatedAt: step.referralEvents.length === 0 ? d.decidedAt : step.at,
        })
        if (companion === undefined) continue
        companions.push(companion)
        withCompanion.add(w)
      }
      const written = await store.appendMany(requests, companions.length === 0 ? undefined : { companions })()
      if (E.isRight(written)) {
        const poolResult = written.right.find((r) => r.streamId === poolStream)
        if (poolResult !== undefined) remember(poolStream, loaded.right, state, poolResult.version)
        for (const { w, step } of steps) {
          const { d } = w.item
          const result = written.right.find((r) => r.streamId === d.streamId)
          w.done(
            E.right({
              version: result?.version ?? d.version + d.newEvents.length + step.referralNewEvents.length,
              added: step.referralEvents,
              ...(step.referralEvents.length === 0 ? {} : { addedAt: step.at }),
              ...(withCompanion.has(w) ? { companionWritten: true as const } : {}),
            }),
          )
        }
        return
      }
      const failure = written.left
      if (poolConflict(failure, poolStream)) {
        distrust(poolStream)
        continue
      }
      if (failure._tag === 'WrongExpectedVersion') {
        // One referral changed meanwhile: its command is decided again; the others are planned again.
        const stale = items.filter((w) => w.item.d.streamId === failure.streamId)
        for (const w of stale) w.done(E.left(failure))
        items = items.filter((w) => w.item.d.streamId !== failure.streamId)
        if (stale.length > 0) attempt--
        else {
          for (const w of items) w.done(E.left(failure))
          return
        }
        continue
      }
      for (const w of items) w.done(E.left(failure))
      return
    }
    for (const w of items) w.done(appendFailed)
  }

  /** Does a command that produced `events`, leaving the referral in `after`, need a routing step? */
  const needsRouting = (events: readonly ReferralEvent[], after: ReferralState) =>
    after.exists && after.route === 'pooled' && events.some((e) => ROUTING_TRIGGERS.has(e.type))

  /**
   * Where routing can be part of the command (an atomic store, one pool): the commit `execute`
   * uses. Otherwise it writes the command alone and `afterCommit` finishes (`followUp`).
   */
  const commitFor = (
    referralId: ReferralId,
    ctx: RequestContext,
    directoryFresh = false,
  ): { readonly commit: Commit<ReferralEvent, ReferralState>; readonly followUp: () => boolean } => {
    let followUp = false
    const commit: Commit<ReferralEvent, ReferralState> = async (d) => {
      followUp = false
      const after = d.stateAfter
      const routes = needsRouting(d.decided, after)
      // A category change touches two pools: it is written alone and re-filed after (`refile`).
      const refiles = d.decided.some((e) => e.type === 'ReferralCategoryChanged')
      if (!routes || refiles || !store.capabilities.atomicMultiStreamAppend || !after.exists) {
        followUp = routes || refiles
        // The command's answer is only final without a follow-up: else its companion is written apart.
        return appendOnly(followUp ? withoutCompanion(d) : d)
      }
      const outcome = await groupCommit(poolStreamName(poolKeyOf(after)), {
        d,
        after,
        referralId,
        ctx,
        directoryFresh,
      })
      if (outcome === 'alone') {
        // Routing never refuses the command: if the pool cannot be read or planned, the command
        // is written alone and routed right after or by `repairAll`.
        followUp = true
        return appendOnly(withoutCompanion(d))
      }
      return outcome
    }
    return { commit, followUp: () => followUp }
  }

  const appendOnly = appendDecided(store)
  /** A command routed after its commit returns a later state than its commit: no companion with it. */
  const withoutCompanion = ({
    companion: _,
    ...d
  }: Decided<ReferralEvent, ReferralState>): Decided<ReferralEvent, ReferralState> => d
  const unreadable: CommandFailure = {
    _tag: 'StoreUnavailable',
    reason: 'unavailable',
    message: 'the pool could not be read',
  }
  const appendFailed: E.Either<CommandFailure, Committed<ReferralEvent>> = E.left({
    _tag: 'StoreUnavailable',
    reason: 'timeout',
    message: 'pool stream kept changing; gave up',
  })

  /** The routing step on its own (after a committed command, a practice change, or a repair). */
  const routeOnce = async (
    referralId: ReferralId,
    ctx: RequestContext,
  ): Promise<E.Either<CommandFailure, RoutingOutcome>> => {
    const loaded = await loadReferral(referralId)()
    if (E.isLeft(loaded)) return loaded
    const r = loaded.right.state
    if (!r.exists || r.route !== 'pooled') return E.right({ kind: 'not_needed' })
    const step = await planStep(referralId, loaded.right.streamId, r, loaded.right.events, ctx)
    if (E.isLeft(step)) return step
    const { poolRequest, referralNewEvents, outcome } = step.right
    const requests: AppendRequest[] = poolRequest === null ? [] : [poolRequest]
    if (referralNewEvents.length > 0) {
      requests.push({
        streamId: loaded.right.streamId,
        expected: expected.exact(loaded.right.version),
        events: referralNewEvents,
      })
    }
    if (requests.length === 0) return E.right(outcome)
    if (store.capabilities.atomicMultiStreamAppend) {
      const written = await store.appendMany(requests)()
      if (E.isLeft(written)) return written
      const poolResult = written.right.find((w) => w.streamId === step.right.poolStream)
      if (poolResult !== undefined) step.right.poolWritten(poolResult.version)
      return E.right(outcome)
    }
    for (const request of requests) {
      const written = await store.append(request)()
      if (E.isLeft(written)) return written
      if (request.streamId === step.right.poolStream) step.right.poolWritten(written.right.version)
    }
    return E.right(outcome)
  }

  /** Routes one referral if it needs it; plans again when another writer got to the pool or referral first. */
  const route = async (
    referralId: ReferralId,
    ctx: RequestContext,
  ): Promise<E.Either<CommandFailure, RoutingOutcome>> => {
    const loaded = await loadReferral(referralId)()
    if (E.isLeft(loaded)) return loaded
    const r = loaded.right.state
    if (!r.exists || r.route !== 'pooled') return E.right({ kind: 'not_needed' })
    return inPoolQueue(poolStreamName(poolKeyOf(r)), async () => {
      let last: E.Either<CommandFailure, RoutingOutcome> = E.right({ kind: 'not_needed' })
      for (let attempt = 0; attempt < POOL_ATTEMPTS; attempt++) {
        last = await routeOnce(referralId, ctx)
        if (E.isRight(last) || last.left._tag !== 'WrongExpectedVersion') return last
      }
      return last
    })
  }

  /** Every referral waiting in the intake queue is tried again (after a join, resume, verification…). */
  const routeWaiting = async (ctx: RequestContext): Promise<void> => {
    for (const s of await deps.referralIndex.unassigned()) {
      if (s.route === 'pooled') await route(s.referralId, ctx)
    }
  }

  /** Applies one pool command to a pool stream on its own (expected version, retried on conflict). */
  const onPool = async (
    streamId: StreamId,
    body: PoolCommandBody,
    ctx: RequestContext,
  ): Promise<E.Either<CommandFailure, void>> => {
    for (let attempt = 0; attempt < 20; attempt++) {
      const loaded = await loadAggregate(pool, store, streamId)()
      if (E.isLeft(loaded)) return loaded
      const meta = systemMeta(ctx)
      const decided = pool.decider.decide(
        { ...body, meta } as PoolCommandBody & { meta: CommandMeta },
        loaded.right.state,
      )
      if (E.isLeft(decided)) return decided
      if (decided.right.length === 0) return E.right(undefined)
      const events = await toNewEvents(pool, ids, streamId, loaded.right.state, decided.right, meta)
      const v = loaded.right.version
      const written = await store.append({
        streamId,
        expected: v === 0 ? expected.noStream : expected.exact(v),
        events,
      })()
      if (E.isRight(written)) return E.right(undefined)
      if (written.left._tag !== 'WrongExpectedVersion') return written
    }
    return appendFailed as E.Either<CommandFailure, never>
  }

  /**
   * A category change re-files the referral: the old pool releases it (its holder's count is
   * refunded) and, while a practice holds it, the new pool records it as held by that practice
   * (counted toward its load per the policy's `countDirectReferrals`). Both steps are idempotent.
   */
  const refile = async (referralId: ReferralId, ctx: RequestContext): Promise<void> => {
    const loaded = await loadReferral(referralId)()
    if (E.isLeft(loaded) || !loaded.right.state.exists) return
    const r = loaded.right.state
    if (r.previousCategory === null || r.route !== 'pooled') return
    const oldKey = poolKeyOf({ ...r, category: r.previousCategory })
    await onPool(
      unsafeId<StreamId>(poolStreamName(oldKey)),
      { type: 'ReleaseReferral', data: { referralId } },
      ctx,
    )
    if (r.recipientPracticeId !== null) {
      await onPool(
        unsafeId<StreamId>(poolStreamName(poolKeyOf(r))),
        { type: 'RecordDirectReferral', data: { referralId, practiceId: r.recipientPracticeId } },
        ctx,
      )
    }
  }

  /** What routing still has to do after a command written on its own (see `commitFor`). */
  const afterCommit = async (
    referralId: ReferralId,
    ctx: RequestContext,
    produced: readonly ReferralEvent[],
  ): Promise<void> => {
    if (produced.some((e) => e.type === 'ReferralCategoryChanged')) await refile(referralId, ctx)
    if (produced.some((e) => ROUTING_TRIGGERS.has(e.type))) await route(referralId, ctx)
  }

  const poolEventsOf = async (referralId: ReferralId) => {
    const loaded = await loadReferral(referralId)()
    if (E.isLeft(loaded)) return loaded
    const r = loaded.right.state
    if (!r.exists) return E.right(null)
    const streamId = unsafeId<StreamId>(poolStreamName(poolKeyOf(r)))
    const p = await loadAggregate(pool, store, streamId)()
    return E.isLeft(p) ? p : E.right({ streamId, events: p.right.events })
  }

  return {
    route,
    routeWaiting,
    commitFor,
    afterCommit,
    /** Completes half-done routing steps (EventStoreDB after a crash): safe to run at any time. */
    repairAll: (ctx: RequestContext) => routeWaiting(ctx),
    explain: async (
      referralId: ReferralId,
    ): Promise<E.Either<CommandFailure, ReferralRoutingExplanation | null>> => {
      const p = await poolEventsOf(referralId)
      if (E.isLeft(p)) return p
      return E.right(p.right === null ? null : explainRouting(p.right.events, referralId))
    },
    verifyPoolOf: async (referralId: ReferralId) => {
      const p = await poolEventsOf(referralId)
      if (E.isLeft(p)) return p
      return E.right(p.right === null ? null : verifyRouting(p.right.events))
    },
  }
}

export type Router = ReturnType<typeof createRouter>
/** What the HTTP layer and tools use of the router (explanations, verification, repair). */
export type Routing = Pick<Router, 'route' | 'routeWaiting' | 'repairAll' | 'explain' | 'verifyPoolOf'>
