/* The domain of POST /sheets/connect: read a sheet range once and describe
 * it, so that users (and the seeds' SheetManager.validateSheetData, which
 * runs unchanged on it) can check a sheet before creating a job from it.
 *
 * Request body: {"sheet_id": "<id or sheet URL>", "range": "A1:Z1000",
 * "share_permissions": "read" | "write" (optional), "validation_level":
 * "strict" | "moderate" | "permissive" (optional, default moderate), "gid":
 * "<tab id>" (optional, for the CSV export)}.
 *
 * Answer (a jansson object):
 *   sheet_id, range (the range as requested, for input_source.range),
 *   resolved_range (what Google read, e.g. "Sheet1!A1:Z1000"),
 *   status "connected", access ("service_account" | "api_key" |
 *   "csv_export"), service_account_email (with a service account),
 *   read_ms,
 *   sample: {
 *     columns        sheet column letters the rows span ("A".."J"),
 *     header_detected, header (the header cells or null),
 *     column_mapping {field: letter} as rows will be read,
 *     preview_fields ["idea_title", "script_content", "image_url",
 *                     "description", ... the other fields in guide order],
 *     preview        up to 5 first non-empty data rows as arrays in
 *                    preview_fields order: the seeds' clients read row[0]
 *                    as the title, row[1] as the script and row[2] as an
 *                    image URL; we have no image column, so row[2] is "",
 *     preview_rows   their sheet row numbers,
 *     row_count      data rows in the range (header excluded),
 *     empty_rows     of which blank (skipped by a job)
 *   },
 *   validation: {level, valid, errors [{row, field, message}], warnings
 *     [strings: "3 empty rows will be skipped", "Large batch size may take
 *     extended processing time" (over 1,000 rows), no header, unknown
 *     columns, permissive repairs], rows {accepted, refused, skipped,
 *     repaired}}
 * valid is false when a job on this range would refuse rows or the whole
 * range (more than max_rows data rows in an open-ended range). */
#ifndef RF_SHEETS_CONNECT_H
#define RF_SHEETS_CONNECT_H

#include <stdbool.h>

#include <jansson.h>

#include "rf_err.h"
#include "sheets.h"
#include "validate.h"
#include "verr.h"

#define RF_CONNECT_PREVIEW_ROWS 5
#define RF_CONNECT_MAX_MESSAGES 20
#define RF_CONNECT_LARGE_BATCH 1000

typedef struct rf_sheets_connect_req {
    char sheet_id[RF_SHEETS_ID_MAX];
    char gid[RF_SHEETS_GID_MAX];
    char range[RF_A1_TEXT_MAX]; /* "" = RF_SHEETS_DEFAULT_RANGE */
    bool want_write;            /* share_permissions "write" */
    rf_vlevel level;
} rf_sheets_connect_req;

/* Validates a request body (no I/O) into *out. RF_EINVAL with *err naming
 * the field (sheet_id, range, share_permissions, validation_level, gid). */
rf_err rf_sheets_connect_parse(const json_t *body, rf_sheets_connect_req *out, rf_verr *err);

/* Builds the answer from values already read (no I/O). max_rows is the job
 * row limit. *out is a new reference; RF_ENOMEM otherwise. */
rf_err rf_sheets_connect_report(const rf_sheet_values *v, const char *sheet_id, const char *range,
                                rf_vlevel level, int64_t max_rows,
                                const char *service_account_email, json_t **out);

/* Reads the range with the client and builds the answer. Errors are those of
 * rf_sheets_fetch (*e filled, map e->code to a status with
 * rf_sheets_error_http_status). With want_write and no service account the
 * answer still comes, with a warning that results cannot be written back. */
rf_err rf_sheets_connect(rf_sheets_client *c, const rf_sheets_connect_req *req,
                         const rf_sheets_hooks *hooks, json_t **out, rf_gerror *e);

#endif
