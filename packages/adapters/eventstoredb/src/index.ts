export { createEventStoreDbCheckpointStore, type EventStoreDbCheckpointStoreOptions } from './checkpoints.js'
export {
  CONNECTION_STRING_VARIABLE,
  clientFromConnectionString,
  connectionStringFromEnv,
} from './connection.js'
export { type Operation, toStoreError, wrongExpectedVersion } from './errors.js'
export {
  createEventStoreDbEventStore,
  type EventStoreDbConnection,
  type EventStoreDbEventStoreOptions,
} from './event-store.js'
export * from './mapping.js'
export * from './process-manager.js'
export { canonicalUuid, isUuid, uuidV5 } from './uuid.js'
