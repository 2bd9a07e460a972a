/** Minimal typing of the `smpp` package (node-smpp 0.5): only what sms.ts and its tests use. */
declare module 'smpp' {
  import type { EventEmitter } from 'node:events'
  import type { Server as NetServer } from 'node:net'

  export interface PduFields {
    readonly command: string
    readonly command_status: number
    readonly sequence_number: number
    readonly [field: string]: unknown
  }
  export interface Pdu extends PduFields {
    response(options?: Record<string, unknown>): Pdu
    isResponse(): boolean
  }
  export type PduCallback = (pdu: Pdu) => void

  export class Session extends EventEmitter {
    constructor(options: Record<string, unknown>)
    send(pdu: Pdu, responseCallback?: PduCallback, sendCallback?: () => void): boolean
    close(callback?: () => void): void
    destroy(callback?: () => void): void
    pause(): void
    resume(): void
    bind_transceiver(options: Record<string, unknown>, responseCallback?: PduCallback): boolean
    submit_sm(options: Record<string, unknown>, responseCallback?: PduCallback): boolean
    deliver_sm(options: Record<string, unknown>, responseCallback?: PduCallback): boolean
    unbind(responseCallback?: PduCallback): boolean
    enquire_link(responseCallback?: PduCallback): boolean
  }
  export class Server extends NetServer {
    readonly sessions: Session[]
  }
  export function connect(
    options: {
      readonly url: string
      readonly auto_enquire_link_period?: number
      readonly connectTimeout?: number
    },
    listener?: () => void,
  ): Session
  export function createServer(listener: (session: Session) => void): Server
  export const ESME_ROK: number
  export const ESME_RSYSERR: number
  export const ESME_RINVDSTADR: number
  export const ESME_RBINDFAIL: number
  export const ESME_RMSGQFUL: number
  export const ESME_RTHROTTLED: number
  export const ESME_RINVPASWD: number
  const smpp: {
    connect: typeof connect
    createServer: typeof createServer
    ESME_ROK: number
    ESME_RSYSERR: number
    ESME_RINVDSTADR: number
    ESME_RBINDFAIL: number
    ESME_RMSGQFUL: number
    ESME_RTHROTTLED: number
    ESME_RINVPASWD: number
  }
  export default smpp
}
