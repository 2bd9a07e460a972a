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
