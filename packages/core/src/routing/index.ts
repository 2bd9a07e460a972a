export * from './backtest.js'
export * from './codecs.js'
export * from './decider.js'
export * from './explain.js'
