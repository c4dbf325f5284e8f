/* The lease reaper: a thread that every cfg->reaper_interval_ms calls
 * rf_jobs_reap (units of dead or cut-off agents go back to the queue) and
 * rf_jobs_enforce_deadlines (jobs past processing_deadline_ms fail), and
 * once a minute purges expired Idempotency-Key records. */
#ifndef RF_REAPER_H
#define RF_REAPER_H

#include "config.h"
#include "rf_err.h"
#include "store.h"

typedef struct rf_reaper rf_reaper;

/* Starts the thread. st and cfg must outlive the reaper. */
rf_err rf_reaper_start(rf_store *st, const rf_coord_config *cfg, rf_reaper **out);

/* Wakes and joins the thread, frees. NULL-safe; sets *r = NULL. */
void rf_reaper_stop(rf_reaper **r);

#endif
