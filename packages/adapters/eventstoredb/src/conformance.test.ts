import { describeEventStoreConformance } from '@referrals/core/testing'
import { describe } from 'vitest'
import { connectionStringFromEnv } from './connection.js'
import { createEventStoreDbEventStore } from './event-store.js'

// Runs the shared store contract against a real server named by EVENTSTORE_CONNECTION_STRING, e.g.
//   docker run -d -p 2113:2113 eventstore/eventstore:24.10 --insecure
//   EVENTSTORE_CONNECTION_STRING='esdb://localhost:2113?tls=false' npx vitest run packages/adapters/eventstoredb
const connectionString = connectionStringFromEnv()

if (connectionString === null) {
  console.warn('EventStoreDB conformance skipped: EVENTSTORE_CONNECTION_STRING is not set')
}

describe.skipIf(connectionString === null)('EventStoreDB adapter against a live server', () => {
  describeEventStoreConformance('eventstoredb', async () =>
    // The suite calls appendMany with two streams and asserts only that a non-atomic store accepts
    // it; the sequential mode is the one that does (the default rejects multi-stream requests).
    createEventStoreDbEventStore(
      { connectionString: connectionString ?? '' },
      { multiStreamAppend: 'sequential' },
    ),
  )
})
