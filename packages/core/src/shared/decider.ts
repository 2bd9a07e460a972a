import type { Either } from 'fp-ts/lib/Either.js'
import type { Actor } from './actor.js'
import type { DomainError } from './errors.js'
import type { CommandId, CorrelationId, EventId } from './ids.js'
import type { Instant } from './time.js'

/**
 * What every command carries besides its payload. `now` is stamped by the application layer from
 * the Clock port, so deciders stay pure and replays are deterministic.
 */
export interface CommandMeta {
  readonly commandId: CommandId
  readonly actor: Actor
  readonly now: Instant
  readonly correlationId: CorrelationId
  readonly causationId?: EventId | CommandId
}

/** A domain event before it is stored: a past-tense fact. */
export interface DomainEvent<Type extends string = string, Data = unknown> {
  readonly type: Type
  readonly data: Data
}

/** The one decider shape used everywhere (Emmett / Chassaing). */
export interface Decider<Command, Event, State> {
  readonly decide: (command: Command, state: State) => Either<DomainError, readonly Event[]>
  readonly evolve: (state: State, event: Event) => State
  readonly initialState: State
}

export const fold = <Event, State>(
  decider: Pick<Decider<unknown, Event, State>, 'evolve' | 'initialState'>,
  events: readonly Event[],
): State => events.reduce(decider.evolve, decider.initialState)
