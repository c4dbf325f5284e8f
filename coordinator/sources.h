/* Input sources: where a job's rows come from. Each source type is a reader
 * with two steps, so that new types (Google Sheets) slot in as one more table
 * entry:
 *   parse: validate the request's input_source object (no I/O), and
 *   read:  produce the uniform row table (rows.h), which may do I/O.
 * Types now: "csv" with "path" (a local absolute path, if the configuration
 * allows local files) or "url" (http, https, or file:// when allowed, fetched
 * with libcurl under a timeout and a size limit), "rows" (inline JSON
 * objects keyed by the sheet's field names) and "sheet" (a Google Sheet:
 * "sheet_id" (an id or sheet URL), "range" (A1, default A:Z), "gid"; read
 * with cfg->sheets, see sheets.h and docs/SHEETS.md). A sheet that cannot be
 * read fills src->sheet_err with Google's error code and message as well.
 *
 * Failures are RF_EINVAL (or RF_ETOOBIG for a limit) with *err filled so that
 * the API answers 400 validation_error naming the field; RF_ENOMEM otherwise. */
#ifndef RF_SOURCES_H
#define RF_SOURCES_H

#include <jansson.h>
#include <stdbool.h>

#include "config.h"
#include "rf_err.h"
#include "rf_proto.h"
#include "rows.h"
#include "sheets.h"
#include "verr.h"

typedef struct rf_source rf_source;

#define RF_SOURCE_DEFER_WAIT_MS 2000

typedef struct rf_source_reader {
    const char *type;
    rf_err (*parse)(const json_t *obj, const rf_coord_config *cfg, rf_source *src, rf_verr *err);
    rf_err (*read)(rf_source *src, const rf_coord_config *cfg, rf_rows *out, rf_verr *err);
} rf_source_reader;

struct rf_source {
    const rf_source_reader *reader;    /* NULL until parsed */
    char path[RF_PATH_MAX];            /* csv: local file */
    char url[RF_PATH_MAX];             /* csv: URL */
    rf_rows rows;                      /* rows: parsed inline rows */
    size_t row_count;                  /* rows: how many were given */
    char sheet_id[RF_SHEETS_ID_MAX];   /* sheet: the spreadsheet id */
    char sheet_range[RF_A1_TEXT_MAX];  /* sheet: A1 range as given ("" = default) */
    char sheet_gid[RF_SHEETS_GID_MAX]; /* sheet: tab id for the CSV export, or "" */
    rf_gerror sheet_err;               /* sheet: why reading failed (code "" otherwise) */
    int64_t sheet_read_ms;             /* sheet: how long the read took */
    const rf_sheets_hooks *hooks;      /* sheet: waits announced here instead (caller's) */
    bool may_defer;                    /* sheet: set by the caller, see below */
    bool deferred;                     /* sheet: not read yet, see below */
};

/* Validates an input_source object into *out (zeroed first). */
rf_err rf_source_parse(const json_t *obj, const rf_coord_config *cfg, rf_source *out, rf_verr *err);

/* Produces the rows (*out zeroed first, owned by the caller). Refuses a source
 * with no data rows or more than cfg->max_rows_per_job. For "rows" the parsed
 * rows move into *out.
 * A sheet read with src->may_defer set stops at Google's first 429 (or a wait
 * of ours for the per-minute quota over RF_SOURCE_DEFER_WAIT_MS) and returns
 * RF_OK with no rows and src->deferred set: the caller creates the job and
 * reads the rows in the background, where the job can show rate_limited. */
rf_err rf_source_read(rf_source *src, const rf_coord_config *cfg, rf_rows *out, rf_verr *err);

/* A JSON summary for job responses: {"type":"csv","path":...} or
 * {"type":"rows","row_count":N}. New reference, NULL on allocation failure. */
json_t *rf_source_summary(const rf_source *src);

/* Frees what the source holds and zeroes it. NULL-safe. */
void rf_source_clear(rf_source *src);

#endif
