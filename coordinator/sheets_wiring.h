/* Google Sheets wired into the running coordinator (issue 4): the client's
 * configuration from the coordinator's keys, the API status of a Sheets
 * error, and the write-back worker.
 *
 * Two background threads (never an HTTP thread), polling the database about
 * every sheets_writeback_poll_ms and woken at once by rf_sheets_wiring_kick:
 *
 * Reader: a job created while Google answered 429 (sources.h, may_defer)
 * waits in pending with ingest "sheet". The reader reads its rows, with the
 * job rate_limited while it waits on Google's quota, and hands them to
 * rf_jobs_ingest. Google's quota or an outage keeps the job waiting up to
 * sheets_patience_s after its creation; any other error (sheet gone,
 * access revoked, too many rows) fails the job with that error_code. A job
 * canceled meanwhile stops the wait.
 *
 * Writer: when a job created with a "writeback" request field is in a
 * terminal state it has not written yet (a retried job that ends again is
 * written again) it writes every row's state, video URL and error into the
 * sheet with rf_sheets_writeback, then records event "sheets.writeback"
 * {rows, calls, updated_cells} or "sheets.writeback_failed" {error_code,
 * message}, in the same transaction as jobs.written_back_at. While a write
 * waits on Google's quota or a 429 the job reads rate_limited = true.
 *
 * What is left to do lives in the database: a restart resumes both.
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

/* Wakes both threads now (a job was created with rows to read). w may be
 * NULL (no-op). */
void rf_sheets_wiring_kick(rf_sheets_wiring *w);

#endif
