import type { AllStreamResolvedEvent, AllStreamSubscription, EventStoreDBClient } from '@eventstore/db-client'
import type { CheckpointStore, GlobalPosition, SubscribeOptions, Subscription } from '@referrals/core'
import * as E from 'fp-ts/lib/Either.js'
import { toStoreError } from './errors.js'
import { fromRecordedEvent, matchesPrefixes, toAllPosition } from './mapping.js'
import { engineStreamFilter, headOfAll, readAllFiltered } from './reads.js'

export interface CatchUpOptions {
  readonly client: EventStoreDBClient
  readonly checkpoints: CheckpointStore
  readonly idleTimeoutMs: number
}

/**
 * A checkpointed catch-up subscription on `$all` with a server-side stream-name filter.
 *
 * Events are handled one at a time, in commit-position order; after each handled event the
 * checkpoint is saved (compare-and-swap), so a restart resumes strictly after it. The client stream
 * is paused while `batchSize` events wait, so a slow handler does not buffer the whole store.
 *
 * `caughtUp()` takes the head of `$all` when it is called, asks the server (filtered read) for the
 * last engine event between the last handled position and that head, and resolves once that event
 * has been handled — or at once when there is none, or when the subscription has stopped.
 */
export const startCatchUpSubscription = (deps: CatchUpOptions, options: SubscribeOptions): Subscription => {
  const { client, checkpoints } = deps
  const batchSize = Math.max(1, options.batchSize ?? 100)
  const prefixes = options.streamPrefixes
  const queue: AllStreamResolvedEvent[] = []
  const progressWaiters = new Set<() => void>()
  let stopped = false
  let handled: GlobalPosition = 0n
  let stream: AllStreamSubscription | null = null
  let failure: { readonly error: unknown } | null = null
  let drainedAfterFailure = false
  let wake: (() => void) | null = null
  /** `handled` is meaningful once the checkpoint is loaded and the stream is open (or it stopped). */
  let markStarted: () => void = () => undefined
  const started = new Promise<void>((resolve) => {
    markStarted = resolve
  })

  const notifyProgress = () => {
    for (const waiter of [...progressWaiters]) waiter()
  }
  const nudge = () => {
    const w = wake
    wake = null
    w?.()
  }

  const run = async (): Promise<void> => {
    const loaded = await checkpoints.load(options.subscriptionId)
    let saved = loaded
    handled = loaded ?? 0n
    if (stopped) return
    const s = client.subscribeToAll({
      fromPosition: toAllPosition(handled),
      filter: engineStreamFilter(prefixes),
    })
    stream = s
    markStarted()
    s.on('data', (resolved: AllStreamResolvedEvent) => {
      queue.push(resolved)
      if (queue.length >= batchSize) s.pause()
      nudge()
    })
    s.on('error', (error: unknown) => {
      // The client's error may carry server text; report the mapped, data-free message instead.
      failure ??= { error: new Error(toStoreError(error, 'subscribe').message) }
      nudge()
    })
    s.on('end', () => {
      failure ??= { error: new Error(`subscription ${options.subscriptionId} was ended by the server`) }
      nudge()
    })
    while (!stopped) {
      const next = queue.shift()
      if (next === undefined) {
        if (s.isPaused()) s.resume()
        if (failure !== null) {
          // An error overtakes events the client stream still buffers: let those arrive first
          // (once), so the failure is reported after handling what was received.
          if (!drainedAfterFailure) {
            drainedAfterFailure = true
            await new Promise((resolve) => setImmediate(resolve))
            continue
          }
          throw failure.error
        }
        await new Promise<void>((resolve) => {
          wake = resolve
        })
        continue
      }
      const recorded = next.event
      if (recorded === undefined || recorded.position.commit <= handled) continue
      if (!matchesPrefixes(recorded.streamId, prefixes)) continue
      const event = fromRecordedEvent(recorded)
      if (E.isLeft(event)) throw new Error(event.left.message)
      await options.handler(event.right)
      const position = event.right.globalPosition
      if (!(await checkpoints.save(options.subscriptionId, saved, position))) {
        throw new Error(`checkpoint of subscription ${options.subscriptionId} was moved by another worker`)
      }
      saved = position
      handled = position
      notifyProgress()
    }
  }

  const running = run()
    .catch((error: unknown) => {
      if (stopped) return
      stopped = true
      notifyProgress()
      options.onError?.(error)
    })
    .finally(markStarted)

  const waitUntilHandled = (position: GlobalPosition) =>
    new Promise<void>((resolve) => {
      const check = () => {
        if (stopped || handled >= position) {
          progressWaiters.delete(check)
          resolve()
        }
      }
      progressWaiters.add(check)
      check()
    })

  return {
    caughtUp: async () => {
      await started
      if (stopped) return
      const head = await headOfAll(client, 'subscribe')
      if (E.isLeft(head)) throw new Error(head.left.message)
      if (head.right <= handled) return
      const pending = await readAllFiltered(client, {
        after: handled,
        maxCount: Number.MAX_SAFE_INTEGER,
        prefixes,
        until: head.right,
        idleTimeoutMs: deps.idleTimeoutMs,
        keep: 'last',
      })
      if (E.isLeft(pending)) throw new Error(pending.left.message)
      // The scan may run past the head; events after it were appended after this call.
      const last = pending.right[0]
      if (last !== undefined)
        await waitUntilHandled(last.globalPosition <= head.right ? last.globalPosition : head.right)
    },
    stop: async () => {
      stopped = true
      markStarted()
      notifyProgress()
      nudge()
      // Stopping over a broken connection still stops: the server drops the call with the channel.
      await stream?.unsubscribe().catch(() => undefined)
      await running
    },
  }
}
