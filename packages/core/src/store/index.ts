export * from './append-rules.js'
export * from './in-memory.js'
export * from './port.js'
