/* HTTP handlers of the live-progress features (docs/LIVE.md): a job's
 * webhook deliveries with every attempt, and the tenant's webhook secret. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_int.h"
#include "jobs.h"
#include "live_wiring.h"
#include "rf_util.h"
#include "webhooks.h"

#define WEBHOOKS_LIST_MAX 1000

static json_t *
attempt_json(const rf_webhook_attempt *a)
{
    return json_pack(
        "{s:i, s:o, s:I, s:o, s:o, s:s, s:o}", "attempt", a->attempt, "started_at",
        rf_api_time(a->started_ms), "duration_ms", (json_int_t)a->duration_ms, "status_code",
        a->status_code > 0 ? json_integer(a->status_code) : json_null(), "error",
        rf_api_str_or_null(a->error), "outcome", a->outcome, "next_attempt_at",
        strcmp(a->outcome, "retry") == 0 ? rf_api_time(a->next_attempt_ms) : json_null());
}

static json_t *
delivery_json(const rf_webhook_row *w)
{
    json_t *attempts = json_array();

    for (int i = 0; attempts != NULL && i < w->n_attempts; i++) {
        json_array_append_new(attempts, attempt_json(&w->attempts[i]));
    }
    return json_pack("{s:s, s:s, s:s, s:s, s:i, s:o, s:o, s:o, s:o}", "id", w->msg_id, "event_type",
                     w->event_type, "url", w->url, "state", w->state, "attempt_count",
                     w->n_attempts, "created_at", rf_api_time(w->created_at), "next_attempt_at",
                     strcmp(w->state, "pending") == 0 ? rf_api_time(w->next_attempt_at)
                                                      : json_null(),
                     "finished_at", rf_api_time(w->finished_at), "attempts", attempts);
}

int
rf_h_webhooks(rf_req *r)
{
    rf_store *st = r->api->st;
    char tenant[RF_NAME_MAX];
    rf_webhook_row *rows = NULL;
    size_t n = 0;
    json_t *list;
    rf_err rv = rf_jobs_tenant(st, r->params[0], tenant);

    if (rv == RF_OK && strcmp(tenant, rf_api_tenant(r)) != 0) {
        rv = RF_ENOTFOUND; /* another tenant's job looks like a missing one */
    }
    if (rv == RF_ENOTFOUND) {
        return rf_api_reply_job_not_found(r, r->params[0]);
    }
    if (rv == RF_OK) {
        rv = rf_store_begin(st);
    }
    if (rv == RF_OK) {
        rv = rf_store_webhook_list(st, r->params[0], WEBHOOKS_LIST_MAX, &rows, &n);
        rf_store_rollback(st); /* read only */
    }
    if (rv != RF_OK) {
        return rf_api_reply_internal(r, rv);
    }
    list = json_array();
    for (size_t i = 0; list != NULL && i < n; i++) {
        json_array_append_new(list, delivery_json(&rows[i]));
    }
    rf_webhook_rows_free(rows, n);
    return rf_api_reply_ok(
        r, 200, json_pack("{s:s, s:o}", "job_id", r->params[0], "deliveries", list), NULL);
}

int
rf_h_webhook_secret(rf_req *r)
{
    char secret[RF_WEBHOOK_SECRET_MAX];
    rf_err rv;

    if (r->api->cfg->live == NULL) {
        return rf_api_reply_error(r, 503, "service_unavailable", "webhooks are not enabled", NULL,
                                  NULL);
    }
    rv = rf_live_secret(r->api->cfg->live, rf_api_tenant(r), secret, sizeof(secret));
    if (rv != RF_OK) {
        return rf_api_reply_internal(r, rv);
    }
    return rf_api_reply_ok(r, 200,
                           json_pack("{s:s, s:s, s:s}", "tenant", rf_api_tenant(r), "secret",
                                     secret, "algorithm", "standard-webhooks-v1-hmac-sha256"),
                           "Cache-Control: no-store\r\n");
}
