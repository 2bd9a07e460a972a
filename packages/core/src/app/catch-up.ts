import * as E from 'fp-ts/lib/Either.js'
import type { CommandMeta, DomainEvent } from '../shared/decider.js'
import type { EventStore, GlobalPosition, StoredEvent } from '../store/port.js'
import { type Aggregate, decodeStored } from './command-handler.js'

/**
 * Turns a catch-up step into a `refresh()` with read-your-writes semantics: when it resolves,
 * everything appended before the call has been applied. Callers that arrive while a catch-up runs
 * do not join it (it may have read the store before their own writes): they share the next one,
 * which starts as soon as the running one ends. A failed catch-up rejects its callers and the next
 * call starts afresh.
 */
export const serializedRefresh = (catchUp: () => Promise<void>): (() => Promise<void>) => {
  let running: Promise<void> | null = null
  let next: Promise<void> | null = null
  const start = (): Promise<void> => {
    const run = catchUp().finally(() => {
      if (running === run) running = null
    })
    running = run
    return run
  }
  return () => {
    if (running === null) return start()
    next ??= running
      .catch(() => undefined)
      .then(() => {
        next = null
        return start()
      })
    return next
  }
}

/**
 * The catch-up step of an in-memory read model over one aggregate's streams: reads the events
 * after `position` page by page, decodes each (through the aggregate's sealer and upcasters) and
 * hands it to `apply`, then `advance`s past it — only once applied, so a failure retries that
 * event on the next refresh instead of skipping it. Failures throw, naming `label` (never data).
 */
export const catchUpDecoded =
  <C extends { readonly meta: CommandMeta }, Ev extends DomainEvent, S>(options: {
    readonly store: EventStore
    readonly aggregate: Aggregate<C, Ev, S>
    readonly streamPrefix: string
    readonly label: string
    readonly position: () => GlobalPosition
    readonly advance: (position: GlobalPosition) => void
    readonly apply: (event: Ev, stored: StoredEvent) => void
  }) =>
  async (): Promise<void> => {
    const PAGE = 500
    for (;;) {
      const page = await options.store.readAll({
        after: options.position(),
        maxCount: PAGE,
        streamPrefixes: [options.streamPrefix],
      })()
      if (E.isLeft(page)) throw new Error(`${options.label}: ${page.left.message}`)
      for (const stored of page.right) {
        const decoded = await decodeStored(options.aggregate, stored)
        if (E.isLeft(decoded)) throw new Error(`${options.label}: ${decoded.left.message}`)
        options.apply(decoded.right, stored)
        options.advance(stored.globalPosition)
      }
      if (page.right.length < PAGE) return
    }
  }
