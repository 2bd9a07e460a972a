export * from './checkpoints.js'
export * from './companion.js'
export * from './embedded.js'
export * from './errors.js'
export * from './event-store.js'
export {
  DEFAULT_SCHEMA,
  LATEST_SCHEMA_VERSION,
  MAX_EVENTS_PER_TRANSACTION,
  type MigrateOptions,
  type MigrateResult,
  migrate,
} from './migrations.js'
export * from './projection.js'
export * from './referral-facts.js'
export * from './referral-read-model.js'
