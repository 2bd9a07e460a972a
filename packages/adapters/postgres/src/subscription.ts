import type {
  CheckpointStore,
  GlobalPosition,
  StoredEvent,
  SubscribeOptions,
  Subscription,
} from '@referrals/core'
import type pg from 'pg'
import { type CheckedOutClient, checkout, PostgresStoreError, toStoreError } from './errors.js'

export interface SubscriptionDeps {
  readonly pool: pg.Pool
  readonly schema: string
  readonly checkpoints: CheckpointStore
  readonly pollIntervalMs: number
  /** LISTEN on this channel (on the lock connection) and wake on each notification. */
  readonly notifyChannel: string | undefined
  readonly read: (
    after: GlobalPosition,
    maxCount: number,
    streamPrefixes: readonly string[] | undefined,
  ) => Promise<{ readonly events: readonly StoredEvent[]; readonly horizon: GlobalPosition }>
  readonly lastPosition: () => Promise<GlobalPosition>
  /** Appends made through this store wake the subscription at once; returns an unregister. */
  readonly registerWaker: (wake: () => void) => () => void
  readonly onStopped: () => void
}

interface Waiter {
  readonly target: GlobalPosition
  readonly resolve: () => void
}

/**
 * A checkpointed catch-up subscription.
 *
 * Single worker: before reading, the loop takes the session advisory lock
 * `(hashtext('referrals.subscription:<schema>'), hashtext(subscriptionId))` on a connection it keeps
 * for its lifetime. Another process subscribing with the same id waits (retrying every poll
 * interval) until the first stops or dies — PostgreSQL drops a session lock with its connection.
 * The checkpoint is saved after every handled event with compare-and-swap, so even a worker whose
 * connection was cut and whose lock was taken over cannot overwrite its successor's progress: its
 * next save fails and it stops with an error.
 *
 * caughtUp: reads the highest position written (`target`). The subscription is caught up when it
 * has handled an event at or past `target`, or when a read that returned a partial batch was made
 * under a visibility horizon above `target` (every event up to `target` was then readable, and all
 * of those matching the filter were in that batch).
 */
export const startSubscription = (deps: SubscriptionDeps, options: SubscribeOptions): Subscription => {
  const batchSize = options.batchSize ?? 500
  let stopped = false
  let done = false
  let position: GlobalPosition = 0n
  let drainedBelow: GlobalPosition = -1n
  let waiters: Waiter[] = []
  let wakeSleeper: (() => void) | undefined
  let lock: CheckedOutClient | undefined

  const settleWaiters = () => {
    const still: Waiter[] = []
    for (const w of waiters) {
      if (done || position >= w.target || drainedBelow > w.target) w.resolve()
      else still.push(w)
    }
    waiters = still
  }
  // A wake that arrives while the loop is reading (not sleeping) is remembered, so the next sleep
  // returns at once instead of missing an append made between the read and the sleep.
  let wakePending = false
  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      if (wakePending) {
        wakePending = false
        resolve()
        return
      }
      const finish = () => {
        clearTimeout(timer)
        wakeSleeper = undefined
        resolve()
      }
      const timer = setTimeout(finish, ms)
      wakeSleeper = finish
    })
  const wake = () => {
    if (wakeSleeper === undefined) wakePending = true
    else wakeSleeper()
  }
  const unregister = deps.registerWaker(wake)

  const acquireLock = async (): Promise<boolean> => {
    lock = await checkout(deps.pool)
    const lockClient = lock.client
    lockClient.on('error', wake)
    while (!stopped) {
      const r = await lockClient.query<{ locked: boolean }>(
        'SELECT pg_try_advisory_lock(hashtext($1), hashtext($2)) AS locked',
        [`referrals.subscription:${deps.schema}`, options.subscriptionId],
      )
      if (r.rows[0]?.locked === true) {
        if (deps.notifyChannel !== undefined) {
          lockClient.on('notification', wake)
          await lockClient.query(`LISTEN "${deps.notifyChannel}"`)
        }
        return true
      }
      await sleep(deps.pollIntervalMs)
    }
    return false
  }

  const run = async () => {
    if (!(await acquireLock())) return
    let saved = await deps.checkpoints.load(options.subscriptionId)
    position = saved ?? 0n
    while (!stopped) {
      // Without its connection the advisory lock is gone and another worker may take over: stop.
      if (lock?.failure() !== undefined) {
        throw new PostgresStoreError(
          toStoreError(lock.failure(), `subscription ${options.subscriptionId} lost its lock connection`),
        )
      }
      const { events, horizon } = await deps.read(position, batchSize, options.streamPrefixes)
      for (const event of events) {
        if (stopped) return
        await options.handler(event)
        if (!(await deps.checkpoints.save(options.subscriptionId, saved, event.globalPosition))) {
          throw new Error(`checkpoint of subscription ${options.subscriptionId} was moved by another worker`)
        }
        saved = event.globalPosition
        position = event.globalPosition
      }
      if (events.length < batchSize) drainedBelow = horizon
      settleWaiters()
      if (events.length < batchSize && !stopped) await sleep(deps.pollIntervalMs)
    }
  }

  const finished = run()
    .catch((error: unknown) => {
      if (!stopped) options.onError?.(error)
    })
    .finally(() => {
      done = true
      unregister()
      // Destroying the connection releases the advisory lock whatever state the session is in.
      lock?.client.removeListener('error', wake)
      lock?.release(true)
      lock = undefined
      settleWaiters()
      deps.onStopped()
    })

  return {
    caughtUp: async () => {
      if (done) return
      const target = await deps.lastPosition()
      await new Promise<void>((resolve) => {
        waiters.push({ target, resolve })
        settleWaiters()
        wake()
      })
    },
    stop: async () => {
      stopped = true
      wake()
      await finished
    },
  }
}
