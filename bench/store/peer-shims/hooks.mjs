// The peer library's packages import `ansis` (log colours, dumbo) and `async-retry` (command
// handler and processor-lock retries, emmett) as peer dependencies that the lockfile does not
// install. Neither is on the append/read paths this benchmark measures. When the real package is
// missing, these minimal stand-ins are used instead; when it is installed, it wins.
const shims = {
  ansis: new URL('./ansis.mjs', import.meta.url).href,
  'async-retry': new URL('./async-retry.mjs', import.meta.url).href,
}

export async function resolve(specifier, context, nextResolve) {
  const shim = shims[specifier]
  if (shim === undefined) return nextResolve(specifier, context)
  try {
    return await nextResolve(specifier, context)
  } catch {
    return { url: shim, shortCircuit: true }
  }
}
