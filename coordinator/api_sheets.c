/* POST /sheets/connect (both path styles, scope sheets:connect) and the
 * answer to a job whose Google Sheet cannot be read. */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "api_int.h"
#include "rf_log.h"
#include "sheets_connect.h"
#include "sheets_wiring.h"

/* Google's reason, as a sheet error body:
 * {error_code: e.code, error_message: what to do, detail: {google_status,
 * google_http_status, sheet_id, field}}. */
int
rf_api_reply_sheet_error(rf_req *r, const rf_gerror *e, const char *sheet_id, const char *field)
{
    int status = rf_sheets_api_status(e->code);
    char extra[64] = "";

    if (status == 429) {
        /* Google's quota is per minute: a retry much sooner fails again. */
        snprintf(extra, sizeof(extra), "Retry-After: 60\r\n");
    }
    return rf_api_reply_error(
        r, status, e->code, e->message,
        json_pack("{s:s, s:o, s:s, s:s}", "google_status", e->google_status, "google_http_status",
                  e->http_status > 0 ? json_integer(e->http_status) : json_null(), "sheet_id",
                  sheet_id != NULL ? sheet_id : "", "field", field != NULL ? field : ""),
        extra[0] != '\0' ? extra : NULL);
}

static bool
connect_on_wait(void *ctx, const char *reason, int64_t wait_ms, int attempt)
{
    rf_req *r = ctx;

    rf_info("sheets: /sheets/connect [%s] waits %lld ms (%s, retry %d)", r->cid, (long long)wait_ms,
            reason, attempt);
    return true;
}

int
rf_h_sheets_connect(rf_req *r)
{
    rf_sheets_client *client = r->api->cfg->sheets;
    rf_sheets_hooks hooks = {connect_on_wait, NULL, r};
    rf_sheets_connect_req req;
    json_t *root = NULL, *answer = NULL;
    json_error_t jerr;
    char *body = NULL;
    size_t len = 0;
    rf_verr verr;
    rf_gerror e;
    int status;
    rf_err rv;

    memset(&verr, 0, sizeof(verr));
    memset(&e, 0, sizeof(e));
    status = rf_api_read_body(r, &body, &len);
    if (status != 0) {
        return status;
    }
    root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        rf_verr_set(&verr, "body", "malformed_json", "malformed JSON at line %d, column %d: %s",
                    jerr.line, jerr.column, jerr.text);
        status = rf_api_reply_verr(r, 400, &verr);
        goto out;
    }
    if (rf_sheets_connect_parse(root, &req, &verr) != RF_OK) {
        status = rf_api_reply_verr(r, 400, &verr);
        goto out;
    }
    if (client == NULL) {
        status = rf_api_reply_error(r, 503, "sheets_unavailable",
                                    "this coordinator has no Google Sheets client configured", NULL,
                                    NULL);
        goto out;
    }
    rv = rf_sheets_connect(client, &req, &hooks, &answer, &e);
    if (rv == RF_ENOMEM) {
        status = rf_api_reply_internal(r, rv);
        goto out;
    }
    if (rv != RF_OK) {
        rf_info("http: /sheets/connect [%s] %s: %s", r->cid, e.code, e.message);
        status = rf_api_reply_sheet_error(r, &e, req.sheet_id, "sheet_id");
        goto out;
    }
    status = rf_api_reply_ok(r, 200, answer, NULL);
    answer = NULL;
out:
    json_decref(answer);
    json_decref(root);
    free(body);
    return status;
}
