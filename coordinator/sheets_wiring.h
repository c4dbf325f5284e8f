/* Google Sheets wired into the running coordinator (issue 4): the client's
 * configuration from the coordinator's keys, the API status of a Sheets
 * error, and the write-back worker.
 *
 * Write-back worker: one background thread (never an HTTP thread). The API
 * registers each job created with a "writeback" request field; about every
 * sheets_writeback_poll_ms the worker looks at those jobs, and when one is in
 * a terminal state it has not written yet (a retried job that ends again is
 * written again) it writes every row's state, video URL and error into the
 * sheet with rf_sheets_writeback, then records event "sheets.writeback"
 * {rows, calls, updated_cells} or "sheets.writeback_failed" {error_code,
 * message}. While a write waits on Google's quota or a 429 the job reads
 * rate_limited = true. The watch list lives in memory: a job registered
 * before a restart is not written back after it (docs/SHEETS.md).
 *
 * Threads: every function may be called from any thread. */
#ifndef RF_SHEETS_WIRING_H
#define RF_SHEETS_WIRING_H

#include <stdbool.h>

#include "config.h"
#include "rf_err.h"
#include "sheets.h"
#include "store.h"

typedef struct rf_sheets_wiring rf_sheets_wiring;

/* The client configuration from the coordinator's sheets_* keys; max_rows
 * is max_rows_per_job. */
void rf_sheets_config_from(const rf_coord_config *cfg, rf_sheets_config *out);

/* The HTTP status the REST API answers for a Sheets error code. Google's 404
 * and 403 are about the user's sheet, not about our resources, so they are
 * 422 (the request names a sheet we cannot read); the rest as
 * rf_sheets_error_http_status. */
int rf_sheets_api_status(const char *code);

/* Starts the worker. st, cfg and c must outlive it. RF_ENOMEM, RF_EIO. */
rf_err rf_sheets_wiring_start(rf_store *st, const rf_coord_config *cfg, rf_sheets_client *c,
                              rf_sheets_wiring **out);

/* Stops the thread (an unfinished write is abandoned at its next wait) and
 * frees. NULL-safe; sets *w = NULL. */
void rf_sheets_wiring_stop(rf_sheets_wiring **w);

/* Registers a job whose results go back to its sheet. w may be NULL (no-op).
 * RF_ENOMEM. */
rf_err rf_sheets_wiring_watch(rf_sheets_wiring *w, const char *job_id);

/* Whether a write-back of job_id is waiting on Google's quota now. */
bool rf_sheets_wiring_rate_limited(rf_sheets_wiring *w, const char *job_id);

#endif
