import * as E from 'fp-ts/lib/Either.js'
import { poolEventCatalog } from '../app/routing-manager.js'
import type { PoolEvent } from '../routing/codecs.js'
import type { Instant } from '../shared/time.js'
import type { EventStore, GlobalPosition } from '../store/port.js'
import type { DatedPoolEvent } from './fairness.js'

const PAGE = 1000

/**
 * The pools' recorded history (every `pool-` stream, upcast and decoded) with each event's pool
 * (the stream name without `pool-`) and occurred-at time, for events that occurred in
 * `[from, to)`; with `withEarlier`, also every event before `from`, marked `before: true` (the
 * fairness report replays them to know each pool's state when the period begins). Reads the log
 * from the start: the fairness report has no projection of its own yet.
 */
export const readPoolHistory = async (
  store: EventStore,
  range: { readonly from: Instant; readonly to: Instant },
  options: { readonly withEarlier?: boolean } = {},
): Promise<DatedPoolEvent[]> => {
  const out: DatedPoolEvent[] = []
  let after: GlobalPosition = 0n
  for (;;) {
    const page = await store.readAll({ after, maxCount: PAGE, streamPrefixes: ['pool-'] })()
    if (E.isLeft(page)) throw new Error(`pool history: ${page.left.message}`)
    for (const stored of page.right) {
      after = stored.globalPosition
      const at = stored.metadata.occurredAt
      const before = at < range.from
      if (at >= range.to || (before && options.withEarlier !== true)) continue
      const decoded = poolEventCatalog.decode({
        type: stored.type,
        schemaVersion: stored.schemaVersion,
        data: stored.data,
      })
      if (E.isLeft(decoded)) throw new Error(`pool history: ${decoded.left.message}`)
      const pool = stored.streamId.slice('pool-'.length)
      out.push(
        before
          ? { pool, at, event: decoded.right as PoolEvent, before }
          : { pool, at, event: decoded.right as PoolEvent },
      )
    }
    if (page.right.length < PAGE) return out
  }
}
