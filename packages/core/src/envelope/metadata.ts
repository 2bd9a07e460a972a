import * as t from 'io-ts'
import { Actor } from '../shared/actor.js'
import { CommandId, CorrelationId, EventId } from '../shared/ids.js'
import { Instant } from '../shared/time.js'

/** Metadata stored with every event (SPEC §2). */
export const EventMetadata = t.readonly(
  t.intersection([
    t.type({
      actor: Actor,
      correlationId: CorrelationId,
      commandId: CommandId,
      occurredAt: Instant,
    }),
    t.partial({ causationId: t.union([EventId, CommandId]) }),
  ]),
)
export type EventMetadata = t.TypeOf<typeof EventMetadata>
