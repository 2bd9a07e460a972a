import * as E from 'fp-ts/lib/Either.js'
import type { TaskEither } from 'fp-ts/lib/TaskEither.js'
import {
  type CatalogCommandPayload,
  CatalogEvent,
  type CatalogState,
  catalogDecider,
  catalogStreamId,
  categoryStatus,
  type ExistingCatalog,
  specialtyIdFromStreamId,
} from '../catalog/index.js'
import {
  type PracticeCommandPayload,
  PracticeEvent,
  type PracticeState,
  practiceDecider,
  practiceStreamId,
  recipientProfile,
} from '../practice/index.js'
import type { BlindIndex, PhiCipher } from '../privacy/port.js'
import {
  defaultResponsePolicy,
  makeReferralDecider,
  REFERRAL_EVENT_SCHEMA_VERSION,
  type ReferralCommand,
  type ReferralCommandPayload,
  ReferralEvent,
  type ReferralResponsePolicy,
  type ReferralState,
  referralStreamId,
  referralUpcasters,
} from '../referral/index.js'
import { createReferralFactsIndex, type ReferralFactsReadModel } from '../reporting/facts-index.js'
import type { RoutingPolicy } from '../routing/index.js'
import type { Actor } from '../shared/actor.js'
import type { CommandMeta } from '../shared/decider.js'
import type { CategoryRef } from '../shared/domain-types.js'
import type { IdGenerator } from '../shared/id-generator.js'
import {
  type CommandId,
  type CorrelationId,
  type EventId,
  type PatientId,
  type PracticeId,
  type ReferralId,
  type SpecialtyId,
  type StreamId,
  unsafeId,
} from '../shared/ids.js'
import { type Clock, type Instant, millisOf } from '../shared/time.js'
import type { EventStore, StoredEvent } from '../store/port.js'
import {
  type Aggregate,
  type CommandFailure,
  type CommandResult,
  type CompanionOf,
  type ExecuteOptions,
  executeCommand,
  type Loaded,
  loadAggregate,
} from './command-handler.js'
import { createPracticeDirectory, type PracticeDirectory } from './directory.js'
import { defineEventCatalog } from './event-catalog.js'
import { createPhiAccessRecorder } from './phi-access.js'
import { phiSealer } from './phi-sealer.js'
import { createReferralIndex, type ReferralIndex } from './referral-index.js'
import { createRouter, type Routing } from './routing-manager.js'

/** Who asks, and the ids that tie their request to the events it causes. */
export interface RequestContext {
  readonly actor: Actor
  readonly correlationId: CorrelationId
  readonly commandId?: CommandId
  readonly causationId?: EventId | CommandId
}

export interface EngineOptions {
  readonly store: EventStore
  readonly clock: Clock
  readonly ids: IdGenerator
  /** Encrypts PHI before it reaches the store. Without it PHI is stored in the clear (tests, demos). */
  readonly cipher?: PhiCipher
  readonly responsePolicy?: ReferralResponsePolicy
  /** Keyed tokens for patient search in the referral lists. Without it patient search finds nothing. */
  readonly blindIndex?: BlindIndex
  /**
   * Where the sent/received lists live. Default: in memory, rebuilt from the log at start
   * (`createReferralIndex`); `@referrals/postgres` offers PostgreSQL tables.
   */
  readonly referralIndex?: (
    aggregate: Aggregate<ReferralCommand, ReferralEvent, ReferralState>,
  ) => ReferralIndex
  /** The routing policy new pool decisions follow. Default: `currentRoutingPolicy`. */
  readonly routingPolicy?: RoutingPolicy
  /**
   * Where the referral-facts rows of the reports live. Default: in memory, rebuilt from the log at
   * start (`createReferralFactsIndex`); `@referrals/postgres` offers a PostgreSQL table.
   */
  readonly referralFacts?: (
    aggregate: Aggregate<ReferralCommand, ReferralEvent, ReferralState>,
  ) => ReferralFactsReadModel
}

export const practiceAggregate: Aggregate<
  PracticeCommandPayload & { readonly meta: CommandMeta },
  PracticeEvent,
  PracticeState
> = { name: 'practice', decider: practiceDecider, catalog: defineEventCatalog({ codec: PracticeEvent }) }

export const catalogAggregate: Aggregate<
  CatalogCommandPayload & { readonly meta: CommandMeta },
  CatalogEvent,
  CatalogState
> = { name: 'catalog', decider: catalogDecider, catalog: defineEventCatalog({ codec: CatalogEvent }) }

export const referralEventCatalog = defineEventCatalog({
  codec: ReferralEvent,
  schemaVersions: REFERRAL_EVENT_SCHEMA_VERSION,
  upcasters: referralUpcasters,
})

export const referralAggregate = (
  policy: ReferralResponsePolicy = defaultResponsePolicy,
  cipher?: PhiCipher,
): Aggregate<ReferralCommand, ReferralEvent, ReferralState> => ({
  name: 'referral',
  decider: makeReferralDecider(policy),
  catalog: referralEventCatalog,
  ...(cipher
    ? {
        sealer: phiSealer<ReferralState>(cipher, (state, data) =>
          state.exists ? state.patientId : ((data as { readonly patientId?: PatientId }).patientId ?? null),
        ),
      }
    : {}),
})

/**
 * Routing that follows a command written on its own (EventStoreDB, a category change, a practice
 * change). The command has succeeded whatever happens
 * here: a failure (store blip, exhausted retries) must not turn it into an error the client
 * retries. What was not done is picked up by `routing.repairAll`, which the service runs
 * periodically (and which is idempotent).
 */
const afterCommit = async (work: () => Promise<void> | undefined): Promise<void> => {
  try {
    await work()
  } catch {
    // deliberately ignored: see above
  }
}

/** `execute`'s options: `preloaded` is the referral as the caller just read it (no second read). */
export interface ReferralExecuteOptions extends ExecuteOptions {
  readonly preloaded?: Loaded<ReferralEvent, ReferralState>
  /**
   * A write of the caller's committed in the command's transaction (routing included) where the
   * store takes its kind; `companionWritten` in the result says whether it was (see `CompanionOf`).
   */
  readonly companion?: CompanionOf<ReferralState>
}

/** Options for reading an aggregate as it was: events recorded after `asOf` are left out. */
export interface ReadOptions {
  readonly asOf?: Instant
}

/** The catalog entry a referral is filed under: its subcategory when it names one. */
const mostSpecific = (ref: CategoryRef) => ref.subcategoryId ?? ref.categoryId

const until = (options: ReadOptions | undefined) =>
  options?.asOf === undefined
    ? undefined
    : (e: StoredEvent) => millisOf(e.recordedAt) > millisOf(options.asOf as Instant)

/**
 * The application layer: resolves the facts commands need (actor memberships, recipient profiles,
 * catalog entries), stamps command metadata from the Clock and IdGenerator ports, runs deciders
 * through `executeCommand`, and lets routing react. Every consistency guarantee comes from the
 * store's expected versions, so any number of engines may share one store.
 */
export const createEngine = (options: EngineOptions) => {
  const { store, clock, ids } = options
  const deps = { store, ids }
  const referral = referralAggregate(options.responsePolicy, options.cipher)
  const directory: PracticeDirectory = createPracticeDirectory(
    store,
    practiceAggregate.catalog,
    catalogAggregate.catalog,
  )
  const referralIndex: ReferralIndex =
    options.referralIndex?.(referral) ??
    createReferralIndex({
      store,
      aggregate: referral,
      ...(options.blindIndex === undefined ? {} : { blindIndex: options.blindIndex }),
    })
  const referralFacts: ReferralFactsReadModel =
    options.referralFacts?.(referral) ?? createReferralFactsIndex({ store, aggregate: referral })

  const meta = (ctx: RequestContext): CommandMeta => ({
    commandId: ctx.commandId ?? unsafeId<CommandId>(ids.next()),
    actor: ctx.actor,
    now: clock.now(),
    correlationId: ctx.correlationId,
    ...(ctx.causationId === undefined ? {} : { causationId: ctx.causationId }),
  })
  const router = createRouter({
    store,
    ids,
    directory,
    referralIndex,
    referral,
    meta,
    ...(options.routingPolicy === undefined ? {} : { policy: options.routingPolicy }),
  })

  const loadCatalog = (specialtyId: SpecialtyId, read?: ReadOptions) =>
    loadAggregate(catalogAggregate, store, catalogStreamId(specialtyId), until(read))

  const practices = {
    load: (practiceId: PracticeId, read?: ReadOptions) =>
      loadAggregate(practiceAggregate, store, practiceStreamId(practiceId), until(read)),
    execute:
      (
        practiceId: PracticeId,
        payload: PracticeCommandPayload,
        ctx: RequestContext,
        opts?: ExecuteOptions,
      ): TaskEither<CommandFailure, CommandResult<PracticeEvent, PracticeState>> =>
      async () => {
        const r = await executeCommand(
          practiceAggregate,
          deps,
          practiceStreamId(practiceId),
          { ...payload, meta: meta(ctx) },
          opts,
        )()
        if (E.isRight(r) && r.right.produced.length > 0) {
          await directory.refresh()
          await afterCommit(() => router.routeWaiting(ctx))
        }
        return r
      },
  }

  /** Every defined specialty's catalog, folded from the `catalog-` streams (they are small). */
  const allCatalogs = async (): Promise<E.Either<CommandFailure, readonly ExistingCatalog[]>> => {
    const states = new Map<SpecialtyId, CatalogState>()
    let after: StoredEvent['globalPosition'] | undefined
    for (;;) {
      const page = await store.readAll({
        ...(after === undefined ? {} : { after }),
        maxCount: 500,
        streamPrefixes: ['catalog-'],
      })()
      if (E.isLeft(page)) return page
      for (const stored of page.right) {
        after = stored.globalPosition
        const specialtyId = specialtyIdFromStreamId(stored.streamId)
        if (specialtyId === null) continue
        const decoded = catalogAggregate.catalog.decode(stored)
        if (E.isLeft(decoded)) return decoded
        states.set(
          specialtyId,
          catalogDecider.evolve(states.get(specialtyId) ?? catalogDecider.initialState, decoded.right),
        )
      }
      if (page.right.length < 500) break
    }
    return E.right([...states.values()].filter((c): c is ExistingCatalog => c.exists))
  }

  const catalog = {
    load: loadCatalog,
    /** Every specialty's catalog (categories and coding map): what FHIR import resolves codings with. */
    all: allCatalogs,
    execute:
      (
        specialtyId: SpecialtyId,
        payload: CatalogCommandPayload,
        ctx: RequestContext,
        opts?: ExecuteOptions,
      ): TaskEither<CommandFailure, CommandResult<CatalogEvent, CatalogState>> =>
      async () => {
        const r = await executeCommand(
          catalogAggregate,
          deps,
          catalogStreamId(specialtyId),
          { ...payload, meta: meta(ctx) },
          opts,
        )()
        // The directory holds the catalogs sends are checked against: this process sees its own change at once.
        if (E.isRight(r) && r.right.produced.length > 0) await directory.refresh()
        return r
      },
  }

  /** Resolves the facts a referral command needs from other aggregates (never from the client). */
  const withContext = async (
    payload: ReferralCommandPayload,
    state: ReferralState,
    commandMeta: CommandMeta,
    fresh: boolean,
  ): Promise<E.Either<CommandFailure, ReferralCommand>> => {
    // Catalogs and recipients come from the directory, refreshed unless the request's actor
    // resolution just did (`claimFreshness`): a send reads no catalog stream of its own.
    const refreshed = async (): Promise<E.Either<CommandFailure, void>> => {
      if (fresh) return E.right(undefined)
      try {
        await directory.refresh()
        return E.right(undefined)
      } catch {
        return E.left({
          _tag: 'StoreUnavailable',
          reason: 'unavailable',
          message: 'the practice directory could not be read',
        })
      }
    }
    const categoryOf = async (specialtyId: SpecialtyId, categoryId: Parameters<typeof categoryStatus>[1]) => {
      const r = await refreshed()
      return E.isLeft(r) ? r : E.right(categoryStatus(directory.catalogOf(specialtyId), categoryId))
    }
    const recipientOf = async (practiceId: PracticeId) => {
      if (!fresh) await directory.refresh()
      return recipientProfile(directory.get(practiceId))
    }
    switch (payload.type) {
      case 'SendReferral': {
        const category = await categoryOf(payload.data.specialtyId, mostSpecific(payload.data.category))
        if (E.isLeft(category)) return category
        const target = payload.data.target
        const recipient = target.kind === 'direct' ? await recipientOf(target.practiceId) : undefined
        return E.right({
          ...payload,
          meta: commandMeta,
          context: { category: category.right, ...(recipient === undefined ? {} : { recipient }) },
        })
      }
      case 'ChangeCategory': {
        if (!state.exists) return E.right({ ...payload, meta: commandMeta, context: { category: null } })
        const category = await categoryOf(state.specialtyId, mostSpecific(payload.data.category))
        if (E.isLeft(category)) return category
        return E.right({ ...payload, meta: commandMeta, context: { category: category.right } })
      }
      case 'RedirectReferral': {
        const target = payload.data.target
        const recipient = target.kind === 'direct' ? await recipientOf(target.practiceId) : undefined
        return E.right({
          ...payload,
          meta: commandMeta,
          context: recipient === undefined ? {} : { recipient },
        })
      }
      default:
        return E.right({ ...payload, meta: commandMeta } as ReferralCommand)
    }
  }

  const emptyStream = (streamId: StreamId): Loaded<ReferralEvent, ReferralState> => ({
    streamId,
    version: 0,
    state: referral.decider.initialState,
    events: [],
    stored: [],
  })

  const referrals = {
    aggregate: referral,
    load: (
      referralId: ReferralId,
      read?: ReadOptions,
    ): TaskEither<CommandFailure, Loaded<ReferralEvent, ReferralState>> =>
      loadAggregate(referral, store, referralStreamId(referralId), until(read)),
    /**
     * Runs a referral command (user or system). Context facts are resolved on every attempt from
     * the current store. A pooled referral the command leaves waiting for a specialist is routed in
     * the same transaction where the store can (see `createRouter`), so the result is the
     * referral's final state; otherwise it is routed right after, and read again.
     */
    execute:
      (
        referralId: ReferralId,
        payload: ReferralCommandPayload,
        ctx: RequestContext,
        opts?: ReferralExecuteOptions,
      ): TaskEither<CommandFailure, CommandResult<ReferralEvent, ReferralState>> =>
      async () => {
        const streamId: StreamId = referralStreamId(referralId)
        const commandMeta = meta(ctx)
        // A send creates its stream: it is decided on the empty stream without reading it. If the
        // stream exists after all (a repeated send), the append at `no_stream` is refused and
        // `executeCommand` reads the stream and decides again, as on any concurrent write.
        const current =
          opts?.preloaded !== undefined
            ? E.right(opts.preloaded)
            : payload.type === 'SendReferral'
              ? E.right(emptyStream(streamId))
              : await loadAggregate(referral, store, streamId)()
        if (E.isLeft(current)) return current
        const fresh = directory.claimFreshness(ctx.actor)
        const command = await withContext(payload, current.right.state, commandMeta, fresh)
        if (E.isLeft(command)) return command
        const routingCtx = { ...ctx, causationId: commandMeta.commandId }
        const { commit, followUp } = router.commitFor(referralId, routingCtx, fresh)
        // The command decides on the state its context was resolved from (re-read only on a conflict).
        const r = await executeCommand(referral, deps, streamId, command.right, {
          ...opts,
          preloaded: current.right,
          commit,
        })()
        if (E.isLeft(r) || !followUp()) return r
        await afterCommit(() => router.afterCommit(referralId, routingCtx, r.right.produced))
        const reloaded = await loadAggregate(referral, store, streamId)()
        if (E.isLeft(reloaded)) return r
        const updatedAt = reloaded.right.stored.at(-1)?.recordedAt
        return E.right({
          ...reloaded.right,
          produced: r.right.produced,
          ...(updatedAt === undefined ? {} : { updatedAt }),
        })
      },
  }

  return {
    store,
    clock,
    ids,
    directory,
    referralIndex,
    referralFacts,
    practices,
    catalog,
    referrals,
    /** Records one PHI read, group-committed with concurrent ones (`createPhiAccessRecorder`). */
    recordPhiAccess: createPhiAccessRecorder({ store, ids, clock }),
    /** Routing: explanations, verification, `repairAll` (see `createRouter`). */
    routing: router as Routing,
    meta,
  }
}

export type Engine = ReturnType<typeof createEngine>
