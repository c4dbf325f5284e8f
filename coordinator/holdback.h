/* Why a job is held back by a rate limit right now: the flag behind the
 * API's and the live feed's rate_limited. Reasons are bits, set and cleared
 * by whoever waits (the Sheets reader and writer, the scheduler's tenant
 * quota); a job is rate_limited while any bit is set. It lives in memory: a
 * wait does not outlast the process that waits.
 *
 * Threads: every function may be called from any thread. */
#ifndef RF_HOLDBACK_H
#define RF_HOLDBACK_H

#include <stdbool.h>

#include "rf_err.h"

typedef enum rf_hold_reason {
    RF_HOLD_SHEETS_READ = 1u << 0,  /* reading the job's sheet waits on Google's quota */
    RF_HOLD_SHEETS_WRITE = 1u << 1, /* writing results back waits on Google's quota */
    RF_HOLD_TENANT_QUOTA = 1u << 2, /* the tenant has every unit it may run at once */
} rf_hold_reason;

#define RF_HOLD_REASONS 3 /* bits 0 .. RF_HOLD_REASONS - 1 */

typedef struct rf_holdback rf_holdback;

/* Called (no lock held) when a job's rate_limited flips. */
typedef void (*rf_holdback_fn)(void *ctx, const char *job_id, bool rate_limited);

rf_err rf_holdback_new(rf_holdback_fn on_change, void *ctx, rf_holdback **out);

/* NULL-safe; sets *h = NULL. */
void rf_holdback_free(rf_holdback **h);

/* Sets or clears one reason for job_id. h may be NULL (no-op). RF_ENOMEM. */
rf_err rf_holdback_set(rf_holdback *h, const char *job_id, rf_hold_reason reason, bool on);

/* The reasons set for job_id (0: not held back). h may be NULL. A job
 * that ended is held back only by a write-back of its results: pass
 * ended = true for it, and what else winds down is not reported. */
unsigned rf_holdback_get(rf_holdback *h, const char *job_id, bool ended);

/* The name of one reason bit ("sheets_read", "sheets_write",
 * "tenant_quota"), NULL for anything else. */
const char *rf_hold_reason_name(unsigned bit);

#endif
