// Loaded with `--import` by append-replay.ts. See hooks.mjs.
import { register } from 'node:module'

register('./hooks.mjs', import.meta.url)
