import * as E from 'fp-ts/lib/Either.js'
import type { PracticeEvent } from '../practice/codecs.js'
import { type PracticeState, practiceDecider, practiceIdFromStreamId } from '../practice/index.js'
import { recipientProfile } from '../practice/views.js'
import type { Actor, Membership, PlatformRole } from '../shared/actor.js'
import type { RecipientProfile } from '../shared/domain-types.js'
import type { PracticeId, UserId } from '../shared/ids.js'
import type { EventStore, GlobalPosition } from '../store/port.js'
import { serializedRefresh } from './catch-up.js'
import type { EventCatalog } from './event-catalog.js'

/**
 * Every practice's current state, kept by catching up on `practice-` streams in global order.
 * It is a cache of the store, never a source of truth: each process calls `refresh()` before it
 * resolves an actor or a recipient, and decisions that must be serialized still go through a
 * stream's expected version. Practices are few (thousands), so holding them in memory is cheap.
 */
export interface PracticeDirectory {
  readonly refresh: () => Promise<void>
  readonly get: (practiceId: PracticeId) => PracticeState
  readonly all: () => readonly (PracticeState & { readonly exists: true })[]
  readonly profiles: () => readonly RecipientProfile[]
  readonly membershipsOf: (userId: UserId) => readonly Membership[]
  /** The actor for an authenticated user: memberships come from the store, never from the token. */
  readonly resolveActor: (userId: UserId, platformRoles: readonly PlatformRole[]) => Promise<Actor>
}

export const createPracticeDirectory = (
  store: EventStore,
  catalog: EventCatalog<PracticeEvent>,
): PracticeDirectory => {
  const states = new Map<PracticeId, PracticeState>()
  let position: GlobalPosition = 0n

  const catchUp = async () => {
    for (;;) {
      const page = await store.readAll({ after: position, maxCount: 500, streamPrefixes: ['practice-'] })()
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
        }
        // Only once applied: a failure retries this event on the next refresh instead of skipping it.
        position = stored.globalPosition
      }
      if (page.right.length < 500) return
    }
  }

  const refresh = serializedRefresh(catchUp)

  const all = () => [...states.values()].filter((s): s is PracticeState & { exists: true } => s.exists)
  const membershipsOf = (userId: UserId): readonly Membership[] =>
    all().flatMap((p) =>
      p.members.filter((m) => m.userId === userId).map((m) => ({ practiceId: p.practiceId, role: m.role })),
    )

  return {
    refresh,
    get: (id) => states.get(id) ?? practiceDecider.initialState,
    all,
    profiles: () => all().flatMap((p) => recipientProfile(p) ?? []),
    membershipsOf,
    resolveActor: async (userId, platformRoles) => {
      await refresh()
      return { kind: 'user', userId, platformRoles, memberships: membershipsOf(userId) }
    },
  }
}
