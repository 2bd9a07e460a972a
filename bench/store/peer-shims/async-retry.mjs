// Stand-in for `async-retry` (see hooks.mjs): same contract — `fn(bail, attempt)` is retried up to
// `retries` times with exponential back-off unless it calls `bail(error)`.
export default async function retry(fn, options = {}) {
  const retries = options.retries ?? 10
  const factor = options.factor ?? 2
  const minTimeout = options.minTimeout ?? 1000
  const maxTimeout = options.maxTimeout ?? Number.POSITIVE_INFINITY
  for (let attempt = 1; ; attempt++) {
    let bailed = false
    try {
      return await fn((error) => {
        bailed = true
        throw error
      }, attempt)
    } catch (error) {
      if (bailed || attempt > retries) throw error
      options.onRetry?.(error, attempt)
      const delay = Math.min(maxTimeout, minTimeout * factor ** (attempt - 1))
      await new Promise((resolve) => setTimeout(resolve, delay))
    }
  }
}
