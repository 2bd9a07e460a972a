export * from './command-handler.js'
export * from './event-catalog.js'
export * from './phi-sealer.js'
