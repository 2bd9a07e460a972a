import type { AddressInfo } from 'node:net'
import smpp, { type Pdu, type Server, type Session } from 'smpp'

export interface SmscBind {
  readonly systemId: unknown
  readonly password: unknown
}
export interface SmscSubmit {
  readonly pdu: Pdu
  readonly messageId: string
  /** `short_message` as `smpp` decodes it on the server: the text, and the UDH elements when UDHI is set. */
  readonly message: string
  readonly udh: readonly (readonly number[])[] | undefined
}

export interface SmscOptions {
  readonly systemId: string
  readonly password: string
  /** 0: a free port. */
  readonly port?: number
}

/**
 * A local SMSC for tests, on the `smpp` package's server: checks the bind credentials
 * (bind_transceiver), acknowledges each submit_sm with a message id and then, when the submit asked
 * for one (registered_delivery bit 0), sends a delivery receipt (`deliver_sm`, esm_class 0x04)
 * whose `stat:` the test chooses per submit (`state.receipt(n)`, n counting from 1; null: no
 * receipt now — `sendReceipt` can send one later). `state.submitStatus(n)` answers a submit with an
 * error status instead. `state.answer(n)` says what becomes of submit n's response: `'respond'`
 * (default), `'swallow'` (the SMSC takes the message — it counts in `submits`, its receipt still
 * comes — but the submit_sm_resp is lost) or `'drop'` (taken, then the connection is cut before
 * the response). `state.echoReference` (default true) copies the submit's
 * `user_message_reference` into its receipt, as SMPP 3.4 §4.6.1 allows.
 */
export const startSmsc = async (options: SmscOptions) => {
  const binds: SmscBind[] = []
  const submits: SmscSubmit[] = []
  const sessions = new Set<Session>()
  const state = {
    receipt: (_n: number): string | null => 'DELIVRD',
    submitStatus: (_n: number): number => 0,
    answer: (_n: number): 'respond' | 'swallow' | 'drop' => 'respond',
    echoReference: true,
  }
  let port = options.port ?? 0
  const receiptFor = (session: Session, submit: SmscSubmit, stat: string) => {
    session.deliver_sm({
      source_addr: submit.pdu.destination_addr,
      destination_addr: submit.pdu.source_addr,
      esm_class: 0x04,
      short_message: `id:${submit.messageId} sub:001 dlvrd:${stat === 'DELIVRD' ? '001' : '000'} submit date:2612070930 done date:2612070931 stat:${stat} err:000 text:`,
      receipted_message_id: submit.messageId,
      ...(state.echoReference && typeof submit.pdu.user_message_reference === 'number'
        ? { user_message_reference: submit.pdu.user_message_reference }
        : {}),
    })
  }
  const server: Server = smpp.createServer((session: Session) => {
    sessions.add(session)
    session.on('close', () => sessions.delete(session))
    session.on('error', () => undefined)
    session.on('bind_transceiver', (pdu: Pdu) => {
      binds.push({ systemId: pdu.system_id, password: pdu.password })
      if (pdu.system_id !== options.systemId || pdu.password !== options.password) {
        session.send(pdu.response({ command_status: smpp.ESME_RINVPASWD }))
        session.close()
        return
      }
      session.send(pdu.response())
    })
    session.on('enquire_link', (pdu: Pdu) => session.send(pdu.response()))
    session.on('unbind', (pdu: Pdu) => {
      session.send(pdu.response())
      session.close()
    })
    session.on('submit_sm', (pdu: Pdu) => {
      const n = submits.length + 1
      const messageId = `m${port}-${n}`
      const sm = pdu.short_message as { message: string; udh?: Buffer[] }
      const submit: SmscSubmit = { pdu, messageId, message: sm.message, udh: sm.udh?.map((b) => [...b]) }
      submits.push(submit)
      const status = state.submitStatus(n)
      if (status !== 0) {
        session.send(pdu.response({ command_status: status }))
        return
      }
      const answer = state.answer(n)
      if (answer === 'drop') {
        session.destroy()
        return
      }
      if (answer === 'respond') session.send(pdu.response({ message_id: messageId }))
      const stat = (Number(pdu.registered_delivery) & 1) === 1 ? state.receipt(n) : null
      if (stat !== null) receiptFor(session, submit, stat)
    })
  })
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', () => resolve()))
  port = (server.address() as AddressInfo).port
  return {
    binds,
    submits,
    state,
    port,
    url: `smpp://127.0.0.1:${port}`,
    /** Sends the receipt of submit `n` (from 1) now, on every bound session. */
    sendReceipt: (n: number, stat: string) => {
      const submit = submits[n - 1]
      if (submit === undefined) throw new Error(`no submit ${n}`)
      for (const s of sessions) receiptFor(s, submit, stat)
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of [...server.sessions]) s.destroy()
        server.close(() => resolve())
      }),
  }
}
export type Smsc = Awaited<ReturnType<typeof startSmsc>>
