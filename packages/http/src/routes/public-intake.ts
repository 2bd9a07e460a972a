import {
  type CaregiverRelationship,
  type CorrelationId,
  INTAKE_FIELDS as F,
  type FieldProblem,
  IntakeId,
  type IntakePage,
  LinkCode,
  type PublicIntake,
  parseIntakeForm,
  unsafeId,
} from '@referrals/core'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { isLeft } from 'fp-ts/lib/Either.js'
import { addressKey } from '../app.js'
import { DEFAULTS } from '../config.js'

/**
 * The public intake pages of referral programs: `GET /r/:code` (the form) and `POST /r/:code`
 * (its submission), for patients and caregivers without an account. Plain HTML that works
 * without JavaScript. Not part of the API: left out of the OpenAPI document, like the dashboard.
 */

export interface RateBudget {
  readonly max: number
  readonly windowMs: number
}

export interface PublicIntakeLimits {
  /** Submissions per client address (IPv6: per /64). */
  readonly submitsPerAddress: RateBudget
  /** Page views and submissions per link, whoever sends them: one link cannot be flooded. */
  readonly requestsPerLink: RateBudget
}

/** The defaults of `Config.publicIntakeLimits` (`PUBLIC_INTAKE_*` in the environment). */
export const DEFAULT_PUBLIC_INTAKE_LIMITS: PublicIntakeLimits = {
  submitsPerAddress: {
    max: DEFAULTS.publicIntakeSubmitsPerAddress,
    windowMs: DEFAULTS.publicIntakeSubmitWindowMs,
  },
  requestsPerLink: { max: DEFAULTS.publicIntakeRequestsPerLink, windowMs: DEFAULTS.publicIntakeLinkWindowMs },
}

export interface PublicIntakeRouteOptions {
  readonly intake: PublicIntake
  /** Today's date for the date-of-birth check (the engine's clock). */
  readonly today: () => string
  readonly limits?: PublicIntakeLimits
}

/** The honeypot: a field hidden from people (and from assistive technology) that bots fill in. */
export const HONEYPOT_FIELD = 'website'
export const TOKEN_FIELD = 'token'
const FORM_BODY_LIMIT = 32 * 1024
const MAX_FIELDS = 40

// ------------------------------------------------------------------------------------ HTML

const escapeHtml = (s: string): string =>
  s.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string,
  )

/** Paragraphs of owner-written text (consent, disclosure): blank lines separate them. */
const paragraphs = (text: string): string =>
  text
    .split(/\n\s*\n/)
    .map((p) => `<p>${escapeHtml(p.trim()).replace(/\n/g, '<br>')}</p>`)
    .join('\n')

const STYLE = `body{font-family:system-ui,sans-serif;line-height:1.5;max-width:44rem;margin:0 auto;padding:1rem;color:#111}
fieldset{margin:1rem 0;padding:.75rem 1rem;border:1px solid #888}legend{font-weight:600;padding:0 .25rem}
label{display:block;margin-top:.5rem}input[type=text],input[type=email],input[type=tel],select,textarea{display:block;width:100%;max-width:30rem;padding:.4rem;font-size:1rem}
.choice{display:flex;gap:.5rem;align-items:center}.choice label{margin:0}.hint{color:#444;font-size:.95rem;margin:.1rem 0}
.error{color:#a00000;font-weight:600}.summary{border:3px solid #a00000;padding:.5rem 1rem}
.hp{position:absolute;left:-10000px;width:1px;height:1px;overflow:hidden}
button{margin-top:1rem;padding:.6rem 1.2rem;font-size:1.05rem}:focus{outline:3px solid #1d4ed8;outline-offset:2px}`

const layout = (title: string, body: string): string => `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>${escapeHtml(title)}</title>
<style>${STYLE}</style>
</head>
<body>
<main>
${body}
</main>
</body>
</html>
`

const RELATIONSHIP_LABELS: Readonly<Record<CaregiverRelationship, string>> = {
  parent: 'Parent',
  child: 'Son or daughter',
  spouse_or_partner: 'Spouse or partner',
  sibling: 'Brother or sister',
  other_family: 'Other family member',
  legal_guardian: 'Legal guardian',
  friend: 'Friend',
  other: 'Other',
}

/** The program's FAQ, insurance and scheduling guidance (owner-written, escaped). */
const guidanceSections = (page: IntakePage): string => {
  const g = page.guidance
  if (g === null) return ''
  const parts: string[] = []
  if (g.faq.length > 0)
    parts.push(`<section aria-labelledby="faq-heading">
<h2 id="faq-heading">Questions and answers</h2>
<dl>
${g.faq.map((e) => `<dt>${escapeHtml(e.question)}</dt>\n<dd>${paragraphs(e.answer)}</dd>`).join('\n')}
</dl>
</section>`)
  if (g.insuranceGuidance !== undefined)
    parts.push(`<section aria-labelledby="insurance-heading">
<h2 id="insurance-heading">Insurance</h2>
${paragraphs(g.insuranceGuidance)}
</section>`)
  if (g.schedulingGuidance !== undefined)
    parts.push(`<section aria-labelledby="scheduling-heading">
<h2 id="scheduling-heading">Booking your appointment</h2>
${paragraphs(g.schedulingGuidance)}
</section>`)
  return parts.join('\n')
}

const formPage = (
  code: string,
  token: string,
  page: IntakePage,
  problems: readonly FieldProblem[] = [],
): string => {
  const problemOf = (field: string) => problems.find((p) => p.field === field)
  const errorId = (field: string) => `${field}-error`
  const described = (field: string, hint?: string) => {
    const ids = [...(hint === undefined ? [] : [hint]), ...(problemOf(field) ? [errorId(field)] : [])]
    return ids.length === 0 ? '' : ` aria-describedby="${ids.join(' ')}"`
  }
  const invalid = (field: string) => (problemOf(field) ? ' aria-invalid="true"' : '')
  const errorText = (field: string) => {
    const p = problemOf(field)
    return p === undefined ? '' : `<p class="error" id="${errorId(field)}">${escapeHtml(p.message)}</p>`
  }
  const input = (
    field: string,
    label: string,
    options: { type?: string; required?: boolean; autocomplete?: string; hint?: string } = {},
  ) => {
    const hintId = options.hint === undefined ? undefined : `${field}-hint`
    return `<label for="${field}">${escapeHtml(label)}${options.required ? '' : ' (optional)'}</label>
${options.hint === undefined ? '' : `<p class="hint" id="${hintId}">${escapeHtml(options.hint)}</p>`}
${errorText(field)}<input type="${options.type ?? 'text'}" id="${field}" name="${field}"${options.required ? ' required' : ''}${options.autocomplete ? ` autocomplete="${options.autocomplete}"` : ''}${described(field, hintId)}${invalid(field)}>`
  }
  const checkbox = (field: string, label: string) =>
    `${errorText(field)}<div class="choice"><input type="checkbox" id="${field}" name="${field}" value="yes"${described(field)}${invalid(field)}><label for="${field}">${escapeHtml(label)}</label></div>`
  const radio = (value: string, label: string) =>
    `<div class="choice"><input type="radio" id="${F.submittedBy}-${value}" name="${F.submittedBy}" value="${value}"${value === 'patient' ? ' checked' : ''}><label for="${F.submittedBy}-${value}">${escapeHtml(label)}</label></div>`
  const summary =
    problems.length === 0
      ? ''
      : `<div class="summary" role="alert" tabindex="-1" id="problems"><h2>There is a problem with your answers</h2><p>For your privacy the form is shown empty again; please fill it in once more.</p><ul>${problems
          .map((p) => `<li><a href="#${escapeHtml(p.field)}">${escapeHtml(p.message)}</a></li>`)
          .join('')}</ul></div>`
  const consent = page.consent
  return layout(
    `${problems.length > 0 ? 'Error: ' : ''}Referral request – ${page.clinicName}`,
    `<h1>${escapeHtml(page.clinicName)}</h1>
<p>${escapeHtml(page.programName)}: ask to be referred. This form sends your details to the clinic; it takes a few minutes. Do not use it for emergencies: call your local emergency number.</p>
${summary}
${guidanceSections(page)}
<section aria-labelledby="consent-heading">
<h2 id="consent-heading">Consent (version ${consent.version})</h2>
${paragraphs(consent.consentText)}
<h3>Disclosure</h3>
${paragraphs(consent.disclosureText)}
</section>
<form method="post" action="/r/${escapeHtml(code)}" novalidate>
<input type="hidden" name="${TOKEN_FIELD}" value="${escapeHtml(token)}">
<input type="hidden" name="${F.consentVersion}" value="${consent.version}">
<div class="hp" aria-hidden="true"><label for="${HONEYPOT_FIELD}">Leave this field empty</label><input type="text" id="${HONEYPOT_FIELD}" name="${HONEYPOT_FIELD}" tabindex="-1" autocomplete="off"></div>
<fieldset>
<legend>Who is filling in this form?</legend>
${errorText(F.submittedBy)}${radio('patient', 'I am the patient')}
${radio('caregiver', 'I am a caregiver filling it in for the patient')}
<label for="${F.relationship}">If you are a caregiver: your relationship to the patient</label>
${errorText(F.relationship)}<select id="${F.relationship}" name="${F.relationship}"${described(F.relationship)}${invalid(F.relationship)}>
<option value="">Choose…</option>
${Object.entries(RELATIONSHIP_LABELS)
  .map(([value, label]) => `<option value="${value}">${escapeHtml(label)}</option>`)
  .join('\n')}
</select>
</fieldset>
<fieldset>
<legend>About the patient</legend>
${input(F.patientGivenName, 'First name', { required: true, autocomplete: 'given-name' })}
${input(F.patientFamilyName, 'Last name', { required: true, autocomplete: 'family-name' })}
${input(F.patientDateOfBirth, 'Date of birth', { required: true, autocomplete: 'bday', hint: 'Year-month-day, for example 1980-04-23.' })}
${input(F.patientEmail, 'Email address', { type: 'email', autocomplete: 'email' })}
${input(F.patientPhone, 'Phone number', { type: 'tel', autocomplete: 'tel' })}
</fieldset>
<fieldset>
<legend>About you, if you are a caregiver</legend>
${input(F.caregiverGivenName, 'Your first name', { hint: 'Needed when you fill this in for someone else.' })}
${input(F.caregiverFamilyName, 'Your last name')}
${input(F.caregiverEmail, 'Your email address', { type: 'email' })}
${input(F.caregiverPhone, 'Your phone number', { type: 'tel' })}
</fieldset>
<fieldset>
<legend>What would you like help with? (optional)</legend>
<label for="${F.reason}">In your own words</label>
${errorText(F.reason)}<textarea id="${F.reason}" name="${F.reason}" rows="4" maxlength="2000"${described(F.reason)}${invalid(F.reason)}></textarea>
</fieldset>
<fieldset>
<legend>How may the clinic contact you?</legend>
<p class="hint">Messages never contain medical details: only the clinic's name, place, the kind of service and a link to book.</p>
${checkbox(F.contactEmail, 'By email')}
${checkbox(F.contactSms, 'By text message')}
${checkbox(F.contactPhone, 'By phone call')}
${checkbox(F.contactMail, 'By post')}
</fieldset>
<fieldset>
<legend>Your consent</legend>
${checkbox(F.consentAgreed, `I have read the consent and disclosure text above (version ${consent.version}) and agree to it.`)}
</fieldset>
<button type="submit">Send my referral request</button>
</form>`,
  )
}

const confirmationPage = (page: IntakePage): string =>
  layout(
    `Request received – ${page.clinicName}`,
    `<h1>Thank you: your request was received</h1>
<p role="status" id="confirmation">${escapeHtml(page.clinicName)} has your referral request and will contact you in the ways you agreed to.</p>
<p>You can close this page.</p>`,
  )

const plainPage = (title: string, text: string): string =>
  layout(title, `<h1>${escapeHtml(title)}</h1>\n<p>${escapeHtml(text)}</p>`)

const NOT_FOUND = plainPage('Page not found', 'There is no referral form at this address.')
const GONE = plainPage('This form is closed', 'This referral form no longer accepts requests.')
const TOO_MANY = plainPage('Too many requests', 'Please wait a few minutes and try again.')
const NOT_ACCEPTED = plainPage('Your request could not be sent', 'Please open the form again and fill it in.')

// ------------------------------------------------------------------------------------ parsing

/** A form body as field → first value, in an object without a prototype (no pollution). */
const parseForm = (body: string): Record<string, string> | null => {
  const params = new URLSearchParams(body)
  const fields: Record<string, string> = Object.create(null)
  let count = 0
  for (const [name, value] of params) {
    if (++count > MAX_FIELDS) return null
    if (!(name in fields)) fields[name] = value
  }
  return fields
}

const FORM = 'application/x-www-form-urlencoded'

// ------------------------------------------------------------------------------------ routes

export const publicIntakeRoutes = async (
  app: FastifyInstance,
  options: PublicIntakeRouteOptions,
): Promise<void> => {
  const { intake } = options
  const limits = options.limits ?? DEFAULT_PUBLIC_INTAKE_LIMITS
  // Scoped to this plugin: the API itself takes JSON only.
  app.addContentTypeParser(
    FORM,
    { parseAs: 'string', bodyLimit: FORM_BODY_LIMIT },
    (_request, body, done) => {
      done(null, parseForm(String(body)))
    },
  )
  const perAddress = app.createRateLimit({
    max: limits.submitsPerAddress.max,
    timeWindow: limits.submitsPerAddress.windowMs,
    keyGenerator: (request) => `intake-submit:${addressKey(request.ip)}`,
  })
  const perLink = app.createRateLimit({
    max: limits.requestsPerLink.max,
    timeWindow: limits.requestsPerLink.windowMs,
    keyGenerator: (request) => `intake-link:${(request.params as { code?: string }).code ?? ''}`,
  })

  const html = (reply: FastifyReply, status: number, body: string) =>
    reply.code(status).type('text/html; charset=utf-8').send(body)
  const limited = async (
    reply: FastifyReply,
    checks: readonly ((r: FastifyRequest) => ReturnType<typeof perLink>)[],
    request: FastifyRequest,
  ): Promise<boolean> => {
    for (const check of checks) {
      const state = await check(request)
      if (!state.isAllowed && state.isExceeded) {
        reply.header('retry-after', String(state.ttlInSeconds))
        html(reply, 429, TOO_MANY)
        return true
      }
    }
    return false
  }
  const correlationOf = (request: FastifyRequest) => unsafeId<CorrelationId>(request.id)

  app.get<{ Params: { code: string } }>(
    '/r/:code',
    { config: { public: true }, schema: { hide: true } },
    async (request, reply) => {
      const { code } = request.params
      if (!LinkCode.is(code)) return html(reply, 404, NOT_FOUND)
      if (await limited(reply, [perLink], request)) return reply
      const opened = await intake.open(code, correlationOf(request))
      if (opened.kind === 'not_found') return html(reply, 404, NOT_FOUND)
      if (opened.kind === 'gone') return html(reply, 410, GONE)
      return html(reply, 200, formPage(code, opened.intakeId, opened.page))
    },
  )

  app.post<{ Params: { code: string } }>(
    '/r/:code',
    { config: { public: true }, schema: { hide: true }, bodyLimit: FORM_BODY_LIMIT },
    async (request, reply) => {
      const { code } = request.params
      if (!LinkCode.is(code)) return html(reply, 404, NOT_FOUND)
      if (await limited(reply, [perAddress, perLink], request)) return reply
      const contentType = String(request.headers['content-type'] ?? '')
      if (!contentType.toLowerCase().startsWith(FORM))
        return html(reply, 415, plainPage('Unsupported form', 'Send the form from its page.'))
      const fields = request.body as Record<string, string> | null
      if (fields === null || typeof fields !== 'object') return html(reply, 400, NOT_ACCEPTED)
      // A person never sees the honeypot, so a value in it is a bot: nothing is recorded.
      if ((fields[HONEYPOT_FIELD] ?? '') !== '') return html(reply, 400, NOT_ACCEPTED)
      const token = fields[TOKEN_FIELD] ?? ''
      const parsed = parseIntakeForm(fields, options.today())
      if (isLeft(parsed)) {
        const view = await intake.view(code)
        if (view.kind === 'not_found') return html(reply, 404, NOT_FOUND)
        if (view.kind === 'gone') return html(reply, 410, GONE)
        // The token is the server's own (an intake id); anything else is not shown again.
        return html(reply, 422, formPage(code, IntakeId.is(token) ? token : '', view.page, parsed.left))
      }
      const outcome = await intake.submit(code, token, parsed.right, correlationOf(request))
      switch (outcome.kind) {
        case 'submitted':
          return html(reply, 200, confirmationPage(outcome.page))
        case 'invalid':
          return html(reply, 422, formPage(code, token, outcome.page, outcome.problems))
        case 'expired':
          return html(
            reply,
            400,
            plainPage(
              'This form has expired',
              'Please open the referral link again and fill in the new form.',
            ),
          )
        case 'not_found':
          return html(reply, 404, NOT_FOUND)
        case 'gone':
          return html(reply, 410, GONE)
      }
    },
  )
}
