import type { EventStore } from '../store/port.js'

/** Wraps a store and counts what the engine asks of it: appends, multi-stream appends, reads per stream. */
export const countingStore = (inner: EventStore) => {
  const calls = { append: 0, appendMany: 0, readAll: 0, reads: new Map<string, number>() }
  const store: EventStore = {
    ...inner,
    append: (request) => {
      calls.append++
      return inner.append(request)
    },
    appendMany: (requests, options) => {
      calls.appendMany++
      return inner.appendMany(requests, options)
    },
    readStream: (streamId, options) => {
      calls.reads.set(streamId, (calls.reads.get(streamId) ?? 0) + 1)
      return inner.readStream(streamId, options)
    },
    readAll: (options) => {
      calls.readAll++
      return inner.readAll(options)
    },
  }
  const reset = () => {
    calls.append = 0
    calls.appendMany = 0
    calls.readAll = 0
    calls.reads.clear()
  }
  return { store, calls, reset }
}
