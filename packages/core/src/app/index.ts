export * from './command-handler.js'
export * from './event-catalog.js'
