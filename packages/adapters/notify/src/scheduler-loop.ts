/**
 * Runs `tick` every `intervalMs` until `signal` aborts; the core has no timers, this is where the
 * deadline scheduler and the outbox delivery get their clock ticks. Ticks never overlap: the next
 * wait starts when a tick has finished. A tick that throws is reported to `onError` and the loop
 * goes on. Resolves once stopped (after the running tick, if any, has finished).
 */
export const runScheduler = async (options: {
  readonly tick: () => Promise<unknown>
  readonly intervalMs: number
  readonly signal: AbortSignal
  readonly onError?: (error: unknown) => void
}): Promise<void> => {
  const { tick, intervalMs, signal } = options
  while (!signal.aborted) {
    try {
      await tick()
    } catch (error) {
      options.onError?.(error)
    }
    if (signal.aborted) return
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer)
        signal.removeEventListener('abort', done)
        resolve()
      }
      const timer = setTimeout(done, intervalMs)
      signal.addEventListener('abort', done, { once: true })
    })
  }
}
