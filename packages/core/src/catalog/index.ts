export * from './codecs.js'
export * from './decider.js'
export * from './stream.js'
export * from './views.js'
