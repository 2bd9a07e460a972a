export * from './canonical-json.js'
export * from './chain.js'
export * from './hash-chained-store.js'
export * from './verify.js'
