/* Results written back into the user's sheet (opt-in per job): each row's
 * outcome — state, video URL, error — goes into the columns the user names,
 * e.g. {"state": "K", "url": "L", "error": "M"}, with
 *
 *   POST {api_base}/v4/spreadsheets/{id}/values:batchUpdate
 *   {"valueInputOption": "RAW", "data": [{"range": "Sheet1!K2:M5",
 *     "majorDimension": "ROWS", "values": [["completed", "https://...", ""],
 *     ...]}, ...]}
 *
 * RAW keeps every value a literal string, so text from a row or an error
 * message is never evaluated as a formula. Rows with consecutive numbers are
 * merged into one range (at most 500 rows each), adjacent target columns into
 * one block; a call carries at most write_batch_ranges ranges and about
 * 1 MiB, and calls are spaced by the client's write quota and retried with
 * backoff on 429 (sheets.h). A NULL outcome value clears its cell, so that a
 * retried row loses its old error.
 *
 * Writing needs a service account (API keys and public links are read-only)
 * with Editor access to the sheet. */
#ifndef RF_WRITEBACK_H
#define RF_WRITEBACK_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "rf_err.h"
#include "sheets.h"
#include "verr.h"

#define RF_WB_MAX_ROWS_PER_RANGE 500
#define RF_WB_MAX_CALL_BYTES (1024 * 1024)

/* Target columns, 1-based; 0 = not written. */
typedef struct rf_wb_columns {
    uint32_t state;
    uint32_t url;
    uint32_t error;
} rf_wb_columns;

/* Parses {"state": "K", "url": "L", "error": "M"} (any subset, at least one,
 * distinct column letters). RF_EINVAL with *err naming the key under
 * field_prefix (e.g. "writeback.columns"). */
rf_err rf_wb_columns_parse(const json_t *obj, const char *field_prefix, rf_wb_columns *out,
                           rf_verr *err);

/* One row's outcome; strings are borrowed, NULL clears the cell. */
typedef struct rf_wb_row {
    uint32_t row_number; /* sheet row, >= 1 */
    const char *state;
    const char *url;
    const char *error;
} rf_wb_row;

/* The batchUpdate bodies for rows (pure). sheet is the tab ("" = first).
 * Later entries for the same row win. *bodies receives n_bodies new JSON
 * objects (free with rf_wb_bodies_free); *n_ranges the ranges in all. */
rf_err rf_wb_plan(const char *sheet, const rf_wb_columns *cols, const rf_wb_row *rows, size_t n,
                  size_t max_ranges_per_call, json_t ***bodies, size_t *n_bodies, size_t *n_ranges);
void rf_wb_bodies_free(json_t **bodies, size_t n);

typedef struct rf_wb_stats {
    size_t calls;         /* batchUpdate calls that succeeded */
    size_t ranges;        /* ranges they carried */
    size_t updated_cells; /* Google's totalUpdatedCells, summed */
} rf_wb_stats;

/* Writes the outcomes into spreadsheet sheet_id (id or URL), on the tab of
 * range (the job's input range; NULL = first tab). Errors (*e filled):
 * writeback_not_allowed (no service account, or a token without the write
 * scope), sheet_permission_denied (the sheet is not shared with the service
 * account as Editor), and those of rf_sheets_request. On failure *stats says
 * what was written before it; writes are idempotent, so the whole call may be
 * repeated. */
rf_err rf_sheets_writeback(rf_sheets_client *c, const char *sheet_id, const char *range,
                           const rf_wb_columns *cols, const rf_wb_row *rows, size_t n,
                           const rf_sheets_hooks *hooks, rf_wb_stats *stats, rf_gerror *e);

#endif
