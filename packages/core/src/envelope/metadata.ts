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
    t.partial({
      causationId: t.union([EventId, CommandId]),
      /**
       * Tamper evidence (SPEC §3 "Privacy and audit"): the hash of the previous event of the same
       * stream and of this event, over the stored bytes. Written by the hash-chaining store
       * decorator, checked by the verifier; absent on stores that do not chain.
       */
      integrity: t.readonly(t.type({ prev: t.string, hash: t.string })),
    }),
  ]),
)
export type EventMetadata = t.TypeOf<typeof EventMetadata>
