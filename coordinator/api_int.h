/* Private to the HTTP layer (api.c, api_jobs.c, api_templates.c): the
 * request context, the route table's shape and the response helpers. Not
 * for the domain. */
#ifndef RF_API_INT_H
#define RF_API_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <civetweb.h>
#include <jansson.h>

#include "api.h"
#include "auth.h"
#include "ratelimit.h"
#include "sheets.h"
#include "verr.h"

#define RF_API_MAX_PARAMS 2
#define RF_API_PUBLIC (-1) /* route.need: no token, no rate limit */

struct rf_api {
    struct mg_context *ctx;
    rf_store *st;
    const rf_coord_config *cfg;
    rf_ratelimit *limits;
    rf_auth_params auth;
};

typedef enum rf_api_style { RF_STYLE_V1, RF_STYLE_WRAPPED } rf_api_style;

typedef struct rf_req rf_req;
typedef int (*rf_route_fn)(rf_req *r);

typedef struct rf_route {
    const char *method;
    bool api;            /* under /api/v1 and /api; else at the root */
    const char *pattern; /* "{}" matches one non-empty path segment */
    int need;            /* RF_SCOPE_* bits a token must carry, or RF_API_PUBLIC */
    rf_route_fn fn;
} rf_route;

struct rf_req {
    rf_api *api;
    struct mg_connection *conn;
    const struct mg_request_info *ri;
    const rf_route *route;
    rf_api_style style;
    char cid[80];
    char params[RF_API_MAX_PARAMS][128];
    int n_params;
    bool authed;
    rf_principal who;
    char hdrs[1024]; /* header lines (each ending CRLF) sent with every response */
};

/* ---- responses (each returns the status sent) ---- */

/* Sends body (stolen; NULL sends a 500) with r->hdrs and extra (header lines
 * ending in CRLF, or NULL). */
int rf_api_send_json(rf_req *r, int status, json_t *body, const char *extra);

/* Sends an already rendered JSON text. */
int rf_api_send_text(rf_req *r, int status, const char *text, const char *extra);

/* Wraps data (stolen) for the request's path style and renders it:
 * malloc'd text or NULL on allocation failure. */
char *rf_api_render_ok(rf_req *r, json_t *data);

int rf_api_reply_ok(rf_req *r, int status, json_t *data, const char *extra);
int rf_api_reply_error(rf_req *r, int status, const char *code, const char *message, json_t *detail,
                       const char *extra);
int rf_api_reply_verr(rf_req *r, int status, const rf_verr *e);
int rf_api_reply_internal(rf_req *r, rf_err rv);
int rf_api_reply_not_found(rf_req *r, const char *what);
int rf_api_reply_job_not_found(rf_req *r, const char *job_id);

/* ---- request helpers ---- */

/* Reads the whole body, refusing more than max_body_bytes with 413. Returns
 * 0 with *out (malloc'd, NUL-terminated) or the status already sent. */
int rf_api_read_body(rf_req *r, char **out, size_t *out_len);

/* Reads and drops a body nobody will look at (413 when too large). Returns
 * 0 or the status already sent. */
int rf_api_skip_body(rf_req *r);

/* A query parameter: *present when given; false when it is too long. */
bool rf_api_query(rf_req *r, const char *name, char *buf, size_t len, bool *present);

/* The tenant whose data the request may see. */
const char *rf_api_tenant(const rf_req *r);

/* ---- shared JSON views ---- */

json_t *rf_api_time(int64_t ms);
json_t *rf_api_str_or_null(const char *s);

/* ---- handlers ---- */

int rf_h_create(rf_req *r);
int rf_h_list(rf_req *r);
int rf_h_get(rf_req *r);
int rf_h_progress(rf_req *r);
int rf_h_videos(rf_req *r);
int rf_h_pause(rf_req *r);
int rf_h_resume(rf_req *r);
int rf_h_cancel(rf_req *r);
int rf_h_retry(rf_req *r);
int rf_h_webhooks(rf_req *r);       /* api_live.c */
int rf_h_webhook_secret(rf_req *r); /* api_live.c */
int rf_h_analytics(rf_req *r);
int rf_h_templates_list(rf_req *r);
int rf_h_templates_create(rf_req *r);
int rf_h_template_get(rf_req *r);
int rf_h_sheets_connect(rf_req *r);

/* A Google Sheets failure (sheets.h codes) as an API error: status from
 * rf_sheets_api_status, detail {google_status, google_http_status, sheet_id,
 * field}. */
int rf_api_reply_sheet_error(rf_req *r, const rf_gerror *e, const char *sheet_id,
                             const char *field);

#endif
