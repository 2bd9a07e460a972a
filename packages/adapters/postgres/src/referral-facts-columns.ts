import { REFERRAL_FACT_FIELDS } from '@referrals/core'

/** The `referral_facts` column of a facts field (`sentAt` → `sent_at`): one naming rule for the facts SQL. */
export const factColumn = (field: string): string => field.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)

/** Every facts column, in `REFERRAL_FACT_FIELDS` order. */
export const FACT_COLUMNS: readonly string[] = REFERRAL_FACT_FIELDS.map(factColumn)
