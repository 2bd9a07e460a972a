/**
 * Group commit for single-row writes: while one batch is being written, later calls queue, and
 * the next write takes them all (up to `maxBatch`). A call made while nothing is in flight is
 * written at once, so one caller alone waits no longer than with a statement of its own; under
 * load N callers share one statement and one commit. Each caller is answered when the write that
 * holds its item has finished (committed, for a database statement), with its own result.
 *
 * - Items with the same `keyOf` never share a batch: a later one waits for the next batch, so it
 *   sees what the earlier one wrote, exactly as if they had run one after the other (a
 *   multi-row `INSERT … ON CONFLICT` also cannot touch one row twice).
 * - A batch of several items that fails as a whole is written again one item at a time, so a bad
 *   item fails its own caller only, never the others queued with it.
 */
export interface GroupCommitOptions<T, R> {
  /** Writes the items (distinct keys) and returns one result per item, in the same order. */
  readonly write: (items: readonly T[]) => Promise<readonly R[]>
  readonly keyOf: (item: T) => string
  /** Largest number of items in one write (default 256). */
  readonly maxBatch?: number
}

export interface GroupCommit<T, R> {
  readonly submit: (item: T) => Promise<R>
  /** Writes so far (the batches, plus the one-item rewrites after a failed batch). */
  readonly writes: () => number
}

interface Waiting<T, R> {
  readonly item: T
  readonly key: string
  readonly resolve: (r: R) => void
  readonly reject: (e: unknown) => void
}

export const groupCommit = <T, R>(options: GroupCommitOptions<T, R>): GroupCommit<T, R> => {
  const maxBatch = options.maxBatch ?? 256
  if (!Number.isSafeInteger(maxBatch) || maxBatch < 1)
    throw new TypeError('maxBatch must be a positive integer')
  let queue: Waiting<T, R>[] = []
  let writing = false
  let writes = 0

  const writeChecked = async (items: readonly T[]): Promise<readonly R[]> => {
    writes++
    const results = await options.write(items)
    if (results.length !== items.length)
      throw new Error(`group commit: ${results.length} results for ${items.length} items`)
    return results
  }

  const writeBatch = async (batch: readonly Waiting<T, R>[]): Promise<void> => {
    try {
      const results = await writeChecked(batch.map((w) => w.item))
      for (let i = 0; i < batch.length; i++) batch[i]?.resolve(results[i] as R)
    } catch (error) {
      if (batch.length === 1) {
        batch[0]?.reject(error)
        return
      }
      // Isolate the failure: each item on its own (sequentially: the same order as the batch).
      for (const w of batch) {
        try {
          const [result] = await writeChecked([w.item])
          w.resolve(result as R)
        } catch (own) {
          w.reject(own)
        }
      }
    }
  }

  const drain = async (): Promise<void> => {
    writing = true
    try {
      while (queue.length > 0) {
        const batch: Waiting<T, R>[] = []
        const deferred: Waiting<T, R>[] = []
        const keys = new Set<string>()
        for (const w of queue) {
          if (batch.length < maxBatch && !keys.has(w.key)) {
            keys.add(w.key)
            batch.push(w)
          } else deferred.push(w)
        }
        queue = deferred
        await writeBatch(batch)
      }
    } finally {
      writing = false
    }
  }

  return {
    submit: (item) =>
      new Promise<R>((resolve, reject) => {
        queue.push({ item, key: options.keyOf(item), resolve, reject })
        if (!writing) void drain()
      }),
    writes: () => writes,
  }
}
