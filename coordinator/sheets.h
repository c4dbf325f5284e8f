/* Google Sheets API v4 client (libcurl): reads a range of a spreadsheet into
 * a cell table and the uniform row table (rows.h), with the three kinds of
 * access users have, chosen in this order:
 *
 *   service account  a key file (gauth.h): Authorization: Bearer <token>
 *   API key          ?key=<key>, for sheets viewable by anyone with the link
 *   CSV export       no credentials at all: {csv_export_base}/spreadsheets/d/
 *                    {id}/export?format=csv[&gid=N | &sheet=NAME], following
 *                    Google's 307 redirect (on this path only); an HTML
 *                    answer is Google's sign-in page: the sheet is not public
 *
 * values.get is GET {api_base}/v4/spreadsheets/{id}/values/{range, percent-
 * encoded}?majorDimension=ROWS&valueRenderOption=FORMATTED_VALUE. Google
 * leaves out trailing empty cells and rows: records are ragged, missing cells
 * are absent fields.
 *
 * Row limit (max_rows data rows, default 10,000): a bounded range that spans
 * more than max_rows + 1 rows is refused before any request
 * (range_too_large). An open-ended range (A2:J, A:J, a bare tab name) is sent
 * as is, because Google refuses ranges past the tab's grid, and its answer is
 * cut after max_rows + 1 rows with truncated set: /sheets/connect reports it
 * as a warning, rf_sheets_read_rows (jobs) refuses it as range_too_large so
 * that no row is dropped silently.
 *
 * Columns: by the header row when the range's first row names fields (any
 * order, case, spaces and underscores ignored: rf_csv_to_rows), else by the
 * user guide's letters, A = idea_title ... J = priority, taken as the sheet's
 * own letters (a range starting at column C has no title column).
 *
 * Errors (rf_gerror.code, each with a message that says what to do):
 *   invalid_sheet_id, invalid_range, range_too_large   (before any request)
 *   sheet_not_found         404 NOT_FOUND
 *   sheet_permission_denied 403 PERMISSION_DENIED "The caller does not have
 *                           permission" (names the service account to share
 *                           the sheet with)
 *   sheet_not_public        CSV export answered with the sign-in page
 *   invalid_range           400 "Unable to parse range" / "exceeds grid limits"
 *   invalid_api_key         400 API_KEY_INVALID, 403 missing API key
 *   sheets_api_disabled     403 SERVICE_DISABLED (API off in the project)
 *   invalid_credentials     401, or the token endpoint refused the key
 *   rate_limited            429 RESOURCE_EXHAUSTED after every retry
 *   service_unavailable     no answer / 5xx after every retry
 *   sheet_request_invalid   any other 4xx (Google's message included)
 *   sheet_data_invalid      an answer that is not the documented JSON / CSV
 *   sheet_empty             (rf_sheets_read_rows) the range has no data row
 *   internal_error          out of memory
 *   writeback_not_allowed   (writeback.h) no service account configured
 *   canceled                the hooks asked to stop while waiting
 * rf_err values: RF_ENOTFOUND (sheet_not_found), RF_ENET (rate_limited,
 * service_unavailable), RF_ETOOBIG (range_too_large), RF_ECANCELED,
 * RF_ENOMEM, RF_EINVAL for everything else.
 *
 * Retries: 429, 5xx and transport failures are retried up to max_retries
 * times with exponential backoff and full jitter (backoff_initial_ms doubling
 * to backoff_max_ms; a Retry-After header is honoured when longer). Calls are
 * also spaced so that no more than read_calls_per_min / write_calls_per_min
 * go out per minute from this client (Google's per-user quota is 60). Every
 * wait is announced through rf_sheets_hooks.on_wait first, so a job can show
 * rate_limited while it waits.
 *
 * Threads: a client may be used by several threads at once (the token cache
 * and the quota windows are locked). curl_global_init must have been called. */
#ifndef RF_SHEETS_H
#define RF_SHEETS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "a1.h"
#include "csv.h"
#include "gauth.h"
#include "rf_err.h"
#include "rows.h"

#define RF_SHEETS_ID_MAX 129    /* spreadsheet id, incl. NUL */
#define RF_SHEETS_GID_MAX 24    /* tab id (digits), incl. NUL */
#define RF_SHEETS_MAX_COLS 1024 /* cells kept per row; the rest are ignored */
#define RF_SHEETS_DEFAULT_RANGE "A:Z"

typedef struct rf_sheets_config {
    char api_base[256];          /* https://sheets.googleapis.com */
    char csv_export_base[256];   /* https://docs.google.com */
    char api_key[256];           /* "" = none */
    char credentials_file[1024]; /* service-account key JSON; "" = none */
    bool csv_export;             /* allow the public CSV export without credentials */
    int64_t max_rows;            /* data rows in one range (10000) */
    int64_t max_response_bytes;  /* one answer (64 MiB) */
    int64_t timeout_ms;          /* one HTTP request (30000) */
    int64_t max_retries;         /* retries after the first try (5) */
    int64_t backoff_initial_ms;  /* first retry wait (1000) */
    int64_t backoff_max_ms;      /* longest wait (32000) */
    int64_t read_calls_per_min;  /* reads sent per minute at most (60) */
    int64_t write_calls_per_min; /* batchUpdate calls per minute at most (60) */
    int64_t write_batch_ranges;  /* ranges in one batchUpdate (100) */
    int64_t quota_window_ms;     /* the window of the *_calls_per_min limits (60000;
                                    shorter only in tests) */
} rf_sheets_config;

/* Fills *cfg with the defaults above. */
void rf_sheets_config_defaults(rf_sheets_config *cfg);

typedef enum rf_sheets_access {
    RF_SHEETS_ACCESS_NONE = 0,
    RF_SHEETS_ACCESS_SERVICE_ACCOUNT,
    RF_SHEETS_ACCESS_API_KEY,
    RF_SHEETS_ACCESS_CSV_EXPORT,
} rf_sheets_access;

/* "service_account", "api_key", "csv_export", "none". */
const char *rf_sheets_access_name(rf_sheets_access a);

/* Waits and cancellation. on_wait is called before every wait with reason
 * "rate_limited" (Google's 429), "quota" (our own spacing of calls) or
 * "unavailable" (5xx, network), the wait and the retry number (0 for quota
 * spacing); returning false stops the call (RF_ECANCELED, code "canceled").
 * keep_going, when set, is polled about every 200 ms during a wait. Both are
 * optional; the struct itself may be NULL. */
typedef struct rf_sheets_hooks {
    bool (*on_wait)(void *ctx, const char *reason, int64_t wait_ms, int attempt);
    bool (*keep_going)(void *ctx);
    void *ctx;
} rf_sheets_hooks;

typedef struct rf_sheets_client rf_sheets_client;

/* Creates a client; with credentials_file set the key is loaded and checked
 * now. RF_EINVAL / RF_EIO with a message in err for a bad key file or base
 * URL; RF_ENOMEM. */
rf_err rf_sheets_client_new(const rf_sheets_config *cfg, rf_sheets_client **out, char *err,
                            size_t err_len);

/* Frees and sets *c to NULL. NULL-safe. */
void rf_sheets_client_free(rf_sheets_client **c);

/* How this client reads (RF_SHEETS_ACCESS_NONE: no credentials and the CSV
 * export disabled: every fetch fails with invalid_credentials). */
rf_sheets_access rf_sheets_client_access(const rf_sheets_client *c);

/* The service account's email ("" without one): users share sheets with it. */
const char *rf_sheets_client_email(const rf_sheets_client *c);

/* The client's configuration (read-only) and its token cache, NULL without a
 * service account. */
const rf_sheets_config *rf_sheets_client_config(const rf_sheets_client *c);
rf_gauth *rf_sheets_client_gauth(rf_sheets_client *c);

/* Accepts a spreadsheet id or a sheet URL (https://docs.google.com/
 * spreadsheets/d/{id}/edit#gid=N) and writes the id, and the tab id found in
 * the URL ("" if none) when gid is not NULL. RF_EINVAL (e: invalid_sheet_id)
 * for anything else: ids are 1..128 of [A-Za-z0-9_-]. */
rf_err rf_sheets_parse_id(const char *text, char id[RF_SHEETS_ID_MAX], char gid[RF_SHEETS_GID_MAX],
                          rf_gerror *e);

/* A range as read: record i of table is sheet row row_start + i, cell j of a
 * record is column col_start + j. Records are ragged as Google sends them. */
typedef struct rf_sheet_values {
    rf_csv_table table;
    uint32_t row_start;
    uint32_t col_start;
    char range[RF_A1_TEXT_MAX];  /* what was read: Google's echo, or the request */
    char sheet[RF_A1_SHEET_MAX]; /* the tab named in the request ("" = first) */
    rf_sheets_access access;
    bool truncated;     /* open-ended range with more than max_rows + 1 rows */
    int64_t elapsed_ms; /* request time, waits included */
} rf_sheet_values;

/* Reads range (A1 notation, NULL or "" = RF_SHEETS_DEFAULT_RANGE) of the
 * spreadsheet sheet_id (an id or URL) into *out (zeroed first; clear it with
 * rf_sheet_values_clear on success and failure alike). gid (NULL or "")
 * selects a tab for the CSV export. Errors: see the top of this file. */
rf_err rf_sheets_fetch(rf_sheets_client *c, const char *sheet_id, const char *range,
                       const char *gid, const rf_sheets_hooks *hooks, rf_sheet_values *out,
                       rf_gerror *e);

/* Maps the table to rows (*out zeroed first, owned by the caller): header by
 * name or letters A..J (see above), row_number = the sheet row. *had_header
 * may be NULL. RF_ENOMEM only. */
rf_err rf_sheet_values_to_rows(const rf_sheet_values *v, rf_rows *out, bool *had_header);

/* Frees the table and zeroes *v. NULL-safe. */
void rf_sheet_values_clear(rf_sheet_values *v);

/* What a job's "sheet" input source reads: rf_sheets_fetch, then the rows;
 * refuses (range_too_large, RF_ETOOBIG) a truncated answer or more than
 * max_rows data rows, and (sheet_data_invalid, RF_EINVAL) a range with no
 * data row. Empty rows are kept (the job skips them). */
rf_err rf_sheets_read_rows(rf_sheets_client *c, const char *sheet_id, const char *range,
                           const char *gid, const rf_sheets_hooks *hooks, rf_rows *out,
                           bool *had_header, rf_gerror *e);

/* ---- HTTP with retries, shared with writeback.c ---- */

typedef enum rf_sheets_quota {
    RF_SHEETS_QUOTA_READ = 0,
    RF_SHEETS_QUOTA_WRITE = 1
} rf_sheets_quota;

/* What an error refers to, for messages. */
typedef struct rf_sheets_errctx {
    const char *sheet_id;
    const char *range;
    rf_sheets_access access;
    const char *client_email; /* "" or NULL without a service account */
    bool write;               /* a write (batchUpdate) */
} rf_sheets_errctx;

typedef struct rf_sheets_response {
    long status;
    char *body; /* NUL-terminated heap copy, may be NULL when empty */
    size_t len;
    char content_type[128];
} rf_sheets_response;

void rf_sheets_response_clear(rf_sheets_response *r);

/* Sends one request (GET when json_body is NULL, else POST of JSON), with
 * the access's credentials (scope: the OAuth scope for a service account;
 * the API key is added as &key= when access is API_KEY and url has a '?'),
 * retries and quota spacing. follow_redirects only for the CSV export.
 * RF_OK with *resp filled on a 2xx; otherwise Google's answer is mapped by
 * rf_sheets_map_error (*resp cleared) and its rf_err returned. */
rf_err rf_sheets_request(rf_sheets_client *c, rf_sheets_access access, const char *scope,
                         rf_sheets_quota quota, const char *url, const char *json_body,
                         bool follow_redirects, const rf_sheets_hooks *hooks,
                         const rf_sheets_errctx *ctx, rf_sheets_response *resp, rf_gerror *e);

/* ---- pure pieces, exposed for tests ---- */

/* Maps a Google error answer (status and JSON body as documented: {"error":
 * {"code", "message", "status", "details", "errors"}}; any body is accepted)
 * to *e and returns the rf_err listed at the top of this file. */
rf_err rf_sheets_map_error(long status, const char *body, size_t len, const rf_sheets_errctx *ctx,
                           rf_gerror *e);

/* Parses a values.get answer for the requested range into *out (zeroed
 * first), keeping at most max_records records (truncated set when more came).
 * RF_EINVAL (sheet_data_invalid) when it is not the documented JSON. */
rf_err rf_sheets_values_parse(const char *json, size_t len, const rf_a1_range *req,
                              size_t max_records, rf_sheet_values *out, rf_gerror *e);

/* Turns a CSV export of a whole tab into the values of the requested range
 * (cropped to its rows and columns, trailing empty cells and records dropped
 * as Google's JSON does). RF_EINVAL (sheet_data_invalid) for bad CSV. */
rf_err rf_sheets_csv_values(const char *csv, size_t len, const rf_a1_range *req, size_t max_records,
                            rf_sheet_values *out, rf_gerror *e);

/* The HTTP status an API answer should carry for an error code (404 for
 * sheet_not_found, 403 for the sharing ones, 400 for the request's own
 * mistakes, 429 rate_limited, 502 for our credentials or Google's answers,
 * 503 service_unavailable, 409 canceled, 500 otherwise). */
int rf_sheets_error_http_status(const char *code);

#endif
