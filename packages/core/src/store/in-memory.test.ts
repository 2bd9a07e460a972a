import { describeEventStoreConformance } from '../testing/conformance.js'
import { createInMemoryEventStore } from './in-memory.js'

describeEventStoreConformance('in-memory', async () => createInMemoryEventStore())
