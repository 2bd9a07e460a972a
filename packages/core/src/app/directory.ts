import * as E from 'fp-ts/lib/Either.js'
import {
  type CatalogEvent,
  type CatalogState,
  catalogDecider,
  specialtyIdFromStreamId,
} from '../catalog/index.js'
import type { PracticeEvent } from '../practice/codecs.js'
import { type PracticeState, practiceDecider, practiceIdFromStreamId } from '../practice/index.js'
import { recipientProfile } from '../practice/views.js'
import type { Actor, Membership, PlatformRole } from '../shared/actor.js'
import type { RecipientProfile } from '../shared/domain-types.js'
import type { PracticeId, SpecialtyId, UserId } from '../shared/ids.js'
import type { EventStore, GlobalPosition } from '../store/port.js'
import { serializedRefresh } from './catch-up.js'
import type { EventCatalog } from './event-catalog.js'

/**
 * Every practice's current state and every specialty's catalog, kept by catching up on the
 * `practice-` and `catalog-` streams in global order (one `readAll` for both). It is a cache of the
 * store, never a source of truth: each process calls `refresh()` before it resolves an actor, a
 * recipient or a category, and decisions that must be serialized still go through a stream's
 * expected version. Practices and catalogs are few (thousands), so holding them in memory is cheap.
 */
export interface PracticeDirectory {
  readonly refresh: () => Promise<void>
  readonly get: (practiceId: PracticeId) => PracticeState
  readonly all: () => readonly (PracticeState & { readonly exists: true })[]
  readonly profiles: () => readonly RecipientProfile[]
  readonly membershipsOf: (userId: UserId) => readonly Membership[]
  /** The actor for an authenticated user: memberships come from the store, never from the token. */
  readonly resolveActor: (userId: UserId, platformRoles: readonly PlatformRole[]) => Promise<Actor>
  /** A specialty's catalog as of the last refresh (the initial state when it has none). */
  readonly catalogOf: (specialtyId: SpecialtyId) => CatalogState
  /**
   * Whether `actor` came from this directory's `resolveActor` and was not claimed yet: its
   * resolution refreshed the directory after the request that holds it began, so a command of
   * that request needs no refresh of its own (anything committed before the request is applied;
   * a change committed since is concurrent with it). True at most once per actor object, so an
   * actor kept and reused for later commands gets a refresh for each of them.
   */
  readonly claimFreshness: (actor: Actor) => boolean
}

export const createPracticeDirectory = (
  store: EventStore,
  catalog: EventCatalog<PracticeEvent>,
  catalogEvents?: EventCatalog<CatalogEvent>,
): PracticeDirectory => {
  const states = new Map<PracticeId, PracticeState>()
  const catalogs = new Map<SpecialtyId, CatalogState>()
  const freshActors = new WeakSet<Actor>()
  let position: GlobalPosition = 0n
  const prefixes = catalogEvents === undefined ? ['practice-'] : ['practice-', 'catalog-']
  /** Memoised views of `states`, dropped when a practice changes (most refreshes change nothing). */
  let allCache: (PracticeState & { exists: true })[] | null = null
  let profilesCache: readonly RecipientProfile[] | null = null

  const catchUp = async () => {
    for (;;) {
      const page = await store.readAll({ after: position, maxCount: 500, streamPrefixes: prefixes })()
      if (E.isLeft(page)) throw new Error(`practice directory: ${page.left.message}`)
      for (const stored of page.right) {
        const practiceId = practiceIdFromStreamId(stored.streamId)
        if (practiceId !== null) {
          const decoded = catalog.decode(stored)
          if (E.isLeft(decoded)) throw new Error(`practice directory: ${decoded.left.message}`)
          states.set(
            practiceId,
            practiceDecider.evolve(states.get(practiceId) ?? practiceDecider.initialState, decoded.right),
          )
          allCache = null
          profilesCache = null
        } else if (catalogEvents !== undefined) {
          const specialtyId = specialtyIdFromStreamId(stored.streamId)
          if (specialtyId !== null) {
            const decoded = catalogEvents.decode(stored)
            if (E.isLeft(decoded)) throw new Error(`practice directory: ${decoded.left.message}`)
            catalogs.set(
              specialtyId,
              catalogDecider.evolve(catalogs.get(specialtyId) ?? catalogDecider.initialState, decoded.right),
            )
          }
        }
        // Only once applied: a failure retries this event on the next refresh instead of skipping it.
        position = stored.globalPosition
      }
      if (page.right.length < 500) return
    }
  }

  const refresh = serializedRefresh(catchUp)

  const all = () => {
    allCache ??= [...states.values()].filter((s): s is PracticeState & { exists: true } => s.exists)
    return allCache
  }
  const membershipsOf = (userId: UserId): readonly Membership[] =>
    all().flatMap((p) =>
      p.members.filter((m) => m.userId === userId).map((m) => ({ practiceId: p.practiceId, role: m.role })),
    )

  return {
    refresh,
    get: (id) => states.get(id) ?? practiceDecider.initialState,
    all,
    profiles: () => {
      profilesCache ??= all().flatMap((p) => recipientProfile(p) ?? [])
      return profilesCache
    },
    membershipsOf,
    resolveActor: async (userId, platformRoles) => {
      await refresh()
      const actor: Actor = { kind: 'user', userId, platformRoles, memberships: membershipsOf(userId) }
      freshActors.add(actor)
      return actor
    },
    catalogOf: (specialtyId) => catalogs.get(specialtyId) ?? catalogDecider.initialState,
    claimFreshness: (actor) => freshActors.delete(actor),
  }
}
