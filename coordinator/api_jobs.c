/* Bulk-job handlers: create (with Idempotency-Key and dry runs), list, get,
 * progress, videos, the actions, and analytics. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "analytics.h"
#include "api_int.h"
#include "cursor.h"
#include "custom_templates.h"
#include "idempotency.h"
#include "jobs.h"
#include "live_wiring.h"
#include "request.h"
#include "rf_log.h"
#include "rf_util.h"
#include "holdback.h"
#include "sheets_wiring.h"
#include "sources.h"

#define LIST_PAGE_DEFAULT 20
#define VIDEOS_PAGE_DEFAULT 50
#define PAGE_MAX 100
#define REPORT_MAX 1000 /* row errors / warnings listed by a dry run */
#define ANALYTICS_MAX_DAYS 366

/* ---- JSON views ---- */

static json_t *
parsed_or(const char *text, json_t *fallback)
{
    json_t *v = text != NULL ? json_loads(text, 0, NULL) : NULL;

    if (v == NULL) {
        return fallback;
    }
    json_decref(fallback);
    return v;
}

static json_t *
actions_json(const char *state)
{
    json_t *a = json_array();

    for (int i = 0; a != NULL && i < 4; i++) {
        if (rf_job_action_allowed(state, (rf_job_action)i)) {
            json_array_append_new(a, json_string(rf_job_action_name((rf_job_action)i)));
        }
    }
    return a;
}

static json_t *
job_json(const rf_job_view *v)
{
    const rf_job_rec *j = &v->job;
    bool failed = strcmp(j->state, "failed") == 0;

    json_t *o = json_pack(
        "{s:s, s:s, s:s, s:s, s:f, s:I, s:I, s:I, s:I, s:I, s:o, s:o, s:o, s:o, s:o, s:o,"
        " s:{s:s, s:s, s:s, s:s, s:s}, s:{s:s, s:o}, s:o, s:o, s:o, s:o, s:b, s:o, s:o}",
        "id", j->id, "title", j->title, "state", j->state, "priority",
        rf_priority_name(j->priority), "percent_complete", v->percent_complete, "items_total",
        (json_int_t)v->items.total, "items_completed", (json_int_t)v->items.completed,
        "items_failed", (json_int_t)v->items.failed, "items_pending",
        (json_int_t)(v->items.pending + v->items.processing), "items_skipped",
        (json_int_t)v->items.skipped, "created_at", rf_api_time(j->created_at), "updated_at",
        rf_api_time(j->updated_at), "started_at", rf_api_time(j->started_at), "finished_at",
        rf_api_time(j->finished_at), "processing_deadline_ms",
        j->processing_deadline_ms > 0 ? json_integer(j->processing_deadline_ms) : json_null(),
        "callback_url", rf_api_str_or_null(j->callback_url), "output", "format", j->format,
        "video_codec", j->video_codec, "audio_codec", j->audio_codec, "resolution", j->resolution,
        "output_bucket", j->output_bucket, "template", "template_id", j->template_id, "overrides",
        parsed_or(j->overrides_json, json_object()), "input_source",
        parsed_or(j->input_json, json_object()), "eta_ms",
        v->eta_ms >= 0 ? json_integer(v->eta_ms) : json_null(), "error_code",
        failed ? rf_api_str_or_null(j->error_code) : json_null(), "error_message",
        failed ? rf_api_str_or_null(j->error_message) : json_null(), "rate_limited", 0,
        "created_by", rf_api_str_or_null(j->created_by), "actions", actions_json(j->state));

    /* Rows still to be read from the sheet (created while Google said 429). */
    if (o != NULL && j->ingest[0] != '\0') {
        json_object_set_new(o, "rows_pending", json_true());
    }
    return o;
}

static json_t *
progress_json(const rf_job_view *v)
{
    return json_pack(
        "{s:s, s:s, s:f, s:{s:I, s:I, s:I, s:I, s:I}, s:{s:o, s:I, s:o}, s:b}", "job_id", v->job.id,
        "state", v->job.state, "percent_complete", v->percent_complete, "items_status", "total",
        (json_int_t)v->items.total, "completed", (json_int_t)v->items.completed, "failed",
        (json_int_t)v->items.failed, "pending",
        (json_int_t)(v->items.pending + v->items.processing), "skipped",
        (json_int_t)v->items.skipped, "timing", "started_at", rf_api_time(v->job.started_at),
        "processing_time_ms", (json_int_t)v->processing_time_ms, "eta_ms",
        v->eta_ms >= 0 ? json_integer(v->eta_ms) : json_null(), "rate_limited", 0);
}

static json_t *
video_json(const rf_video_view *v)
{
    json_t *errors = json_array(), *artifacts = json_array(), *renditions = json_array();

    if (errors == NULL || artifacts == NULL || renditions == NULL) {
        json_decref(errors);
        json_decref(artifacts);
        json_decref(renditions);
        return NULL;
    }
    if (v->item.error_code[0] != '\0' &&
        (strcmp(v->item.state, "failed") == 0 || strcmp(v->item.state, "skipped") == 0)) {
        json_array_append_new(errors, json_pack("{s:s, s:s}", "error_code", v->item.error_code,
                                                "error_message", v->item.error_message));
    }
    for (size_t i = 0; i < v->n_units; i++) {
        const rf_unit_rec *u = &v->units[i];
        if (strcmp(u->state, "completed") == 0) {
            char url[RF_PATH_MAX + 16];
            if (strstr(u->output_path, "://") != NULL) {
                snprintf(url, sizeof(url), "%s", u->output_path);
            } else {
                snprintf(url, sizeof(url), "file://%s", u->output_path);
            }
            json_array_append_new(
                artifacts,
                json_pack("{s:s, s:s, s:s, s:s, s:i, s:i, s:I, s:I, s:s, s:s}", "type", "video",
                          "rendition", u->rendition, "url", url, "path", u->output_path, "width",
                          (int)u->width, "height", (int)u->height, "duration_ms",
                          (json_int_t)u->media_duration_ms, "size_bytes", (json_int_t)u->size_bytes,
                          "sha256", u->sha256, "encoder", u->encoder));
            /* The poster and captions the agent wrote beside the video. */
            if (u->poster_path[0] != '\0') {
                snprintf(url, sizeof(url), "%s%s",
                         strstr(u->poster_path, "://") != NULL ? "" : "file://", u->poster_path);
                json_array_append_new(artifacts, json_pack("{s:s, s:s, s:s, s:s}", "type",
                                                           "thumbnail", "rendition", u->rendition,
                                                           "url", url, "path", u->poster_path));
            }
            if (u->captions_path[0] != '\0') {
                snprintf(url, sizeof(url), "%s%s",
                         strstr(u->captions_path, "://") != NULL ? "" : "file://",
                         u->captions_path);
                json_array_append_new(artifacts, json_pack("{s:s, s:s, s:s, s:s}", "type",
                                                           "captions", "rendition", u->rendition,
                                                           "url", url, "path", u->captions_path));
            }
        }
        json_array_append_new(
            renditions, json_pack("{s:s, s:s, s:i, s:i, s:I, s:I, s:i, s:o, s:o}", "rendition",
                                  u->rendition, "state", u->state, "width", (int)u->width, "height",
                                  (int)u->height, "frames_done", (json_int_t)u->frames_done,
                                  "frames_total", (json_int_t)u->frames_total, "attempts",
                                  (int)u->attempts, "agent_id", rf_api_str_or_null(u->agent_id),
                                  "error_code", rf_api_str_or_null(u->error_code)));
    }
    return json_pack("{s:s, s:i, s:s, s:s, s:o, s:o, s:o}", "id", v->item.id, "row_number",
                     (int)v->item.row_number, "title", v->item.title, "state", v->item.state,
                     "errors", errors, "artifacts", artifacts, "renditions", renditions);
}

/* ---- helpers ---- */

/* Loads a job of the request's tenant: 0 with *v, or the 404/500 sent. */
static int
load_job(rf_req *r, const char *job_id, rf_job_view *v)
{
    rf_err rv = rf_jobs_get(r->api->st, job_id, rf_now_ms(), v);

    if (rv == RF_OK && strcmp(v->job.tenant, rf_api_tenant(r)) != 0) {
        /* Another tenant's job: as if it did not exist (no 403 that would
         * confirm the id). */
        rf_job_view_clear(v);
        rv = RF_ENOTFOUND;
    }
    if (rv == RF_ENOTFOUND) {
        return rf_api_reply_job_not_found(r, job_id);
    }
    if (rv != RF_OK) {
        return rf_api_reply_internal(r, rv);
    }
    /* The measured ETA (live_wiring.h, docs/LIVE.md) replaces the average
     * since start while the job runs; unknown until measured. */
    if (r->api->cfg->live != NULL && strcmp(v->job.state, "running") == 0) {
        uint64_t left = v->frames_total > v->frames_done ? v->frames_total - v->frames_done : 0;
        if (rf_live_eta(r->api->cfg->live, v->job.id, left, &v->eta_ms) != RF_OK) {
            v->eta_ms = -1;
        }
    }
    return 0;
}

/* rate_limited is true while the job is held back by a rate limit
 * (holdback.h: its sheet's reads or writes waiting on Google's quota, or its
 * tenant running every unit it may); rate_limited_reasons names them. */
static json_t *
with_rate_limited(rf_req *r, const rf_job_rec *job, json_t *body)
{
    unsigned reasons = rf_jobs_held_back(r->api->st, r->api->cfg, job);
    json_t *names;

    if (body == NULL || reasons == 0) {
        return body;
    }
    names = json_array();
    for (unsigned i = 0; i < RF_HOLD_REASONS; i++) {
        if ((reasons & (1u << i)) != 0) {
            json_array_append_new(names, json_string(rf_hold_reason_name(1u << i)));
        }
    }
    json_object_set_new(body, "rate_limited", json_true());
    json_object_set_new(body, "rate_limited_reasons", names);
    return body;
}

static int
send_job(rf_req *r, const char *job_id, int status)
{
    rf_job_view v;
    char location[256];
    int out = load_job(r, job_id, &v);

    if (out != 0) {
        return out;
    }
    snprintf(location, sizeof(location), "Location: /api/%sbulk-jobs/%s\r\n",
             r->style == RF_STYLE_V1 ? "v1/" : "", v.job.id);
    out = rf_api_reply_ok(r, status, with_rate_limited(r, &v.job, job_json(&v)),
                          status == 201 ? location : NULL);
    rf_job_view_clear(&v);
    return out;
}

/* A page_size query parameter: 1..PAGE_MAX (more is treated as PAGE_MAX). */
static bool
page_size_param(rf_req *r, long def, long *out)
{
    char text[32];
    bool present;
    char *end = NULL;
    long v;

    *out = def;
    if (!rf_api_query(r, "page_size", text, sizeof(text), &present)) {
        return false;
    }
    if (!present) {
        return true;
    }
    v = strtol(text, &end, 10);
    if (text[0] == '\0' || *end != '\0' || v < 1) {
        return false;
    }
    *out = v > PAGE_MAX ? PAGE_MAX : v;
    return true;
}

static bool
bool_param(rf_req *r, const char *name)
{
    char text[16];
    bool present;

    if (!rf_api_query(r, name, text, sizeof(text), &present) || !present) {
        return false;
    }
    return strcasecmp(text, "true") == 0 || strcmp(text, "1") == 0 ||
           strcasecmp(text, "yes") == 0 || text[0] == '\0';
}

/* The seeds' clients read a page's items as body["data"] on /api/v1 (their
 * troubleshooting guide: videos["data"]); the named key stays for everyone
 * else. The /api style already wraps the page in "data". */
static void
alias_data(rf_req *r, json_t *body, const char *key)
{
    if (body != NULL && r->style == RF_STYLE_V1) {
        json_object_set(body, "data", json_object_get(body, key));
    }
}

/* ---- create ---- */

static double
round_to(double v, int digits)
{
    double f = pow(10.0, digits);
    return round(v * f) / f;
}

static int
answer_dry_run(rf_req *r, const rf_job_spec *spec, const rf_rows *rows)
{
    rf_dry_run d;
    rf_estimate est;
    json_t *errors = NULL, *warnings = NULL, *body;
    size_t ne = 0, nw = 0;
    rf_err rv = rf_jobs_dry_run(r->api->cfg, spec, rows, &d);

    if (rv != RF_OK) {
        return rf_api_reply_internal(r, rv);
    }
    rv = rf_estimate_job(r->api->st, r->api->cfg, spec->resolution, d.output_ms, rf_now_ms(), &est);
    if (rv != RF_OK) {
        rf_dry_run_clear(&d);
        return rf_api_reply_internal(r, rv);
    }
    errors = json_array();
    warnings = json_array();
    for (size_t i = 0; errors != NULL && warnings != NULL && i < d.n_rows; i++) {
        const rf_row_report *row = &d.rows[i];
        if (row->error[0] != '\0' && ne++ < REPORT_MAX) {
            json_array_append_new(errors, json_pack("{s:i, s:s}", "row_number",
                                                    (int)row->row_number, "message", row->error));
        }
        if (row->warning[0] != '\0' && nw++ < REPORT_MAX) {
            json_array_append_new(warnings,
                                  json_pack("{s:i, s:s}", "row_number", (int)row->row_number,
                                            "message", row->warning));
        }
    }
    body = json_pack(
        "{s:b, s:b, s:{s:I, s:I, s:I, s:I, s:o, s:o, s:b}, s:I, s:I,"
        " s:{s:I, s:f, s:s, s:f, s:s, s:I, s:f}}",
        "dry_run", 1, "valid", d.invalid_rows == 0 && d.valid_rows > 0, "validation_report",
        "rows_total", (json_int_t)d.n_rows, "valid_rows", (json_int_t)d.valid_rows, "invalid_rows",
        (json_int_t)d.invalid_rows, "skipped_rows", (json_int_t)d.skipped_rows, "errors", errors,
        "warnings", warnings, "truncated", ne > REPORT_MAX || nw > REPORT_MAX, "items_total",
        (json_int_t)d.n_rows, "renditions_total", (json_int_t)d.renditions, "estimate",
        "processing_time_ms", (json_int_t)est.processing_time_ms, "cost", round_to(est.cost, 6),
        "currency", r->api->cfg->cost_currency, "output_seconds", (double)d.output_ms / 1000.0,
        "basis", est.from_history ? "history" : "configured", "parallel_slots",
        (json_int_t)est.parallel_slots, "render_factor", round_to(est.render_factor, 3));
    rf_dry_run_clear(&d);
    return rf_api_reply_ok(r, 200, body, NULL);
}

/* Replays a stored answer, or shows the job again when only its id was kept
 * (the coordinator stopped between creating it and storing the answer). */
static int
replay(rf_req *r, const rf_idem_hit *hit)
{
    const char *h = "Idempotent-Replayed: true\r\n";
    char location[256];

    if (hit->body != NULL) {
        location[0] = '\0';
        if (hit->job_id[0] != '\0') {
            snprintf(location, sizeof(location), "Location: /api/%sbulk-jobs/%s\r\n",
                     r->style == RF_STYLE_V1 ? "v1/" : "", hit->job_id);
        }
        snprintf(r->hdrs + strlen(r->hdrs), sizeof(r->hdrs) - strlen(r->hdrs), "%s", h);
        return rf_api_send_text(r, hit->status, hit->body, location);
    }
    snprintf(r->hdrs + strlen(r->hdrs), sizeof(r->hdrs) - strlen(r->hdrs), "%s", h);
    return send_job(r, hit->job_id, 201);
}

int
rf_h_create(rf_req *r)
{
    rf_api *api = r->api;
    const char *tenant = rf_api_tenant(r);
    rf_ctpl_lookup lookup = {api->st, tenant};
    rf_job_owner owner = {tenant, r->who.sub};
    rf_job_spec spec;
    rf_rows rows = {0};
    rf_verr verr;
    char *body = NULL, *text = NULL;
    size_t len = 0;
    char job_id[RF_ID_MAX], hash[65];
    const char *key = NULL;
    bool dry_run = bool_param(r, "dry_run");
    bool holding_key = false;
    rf_job_view v;
    int status;
    rf_err rv;

    memset(&spec, 0, sizeof(spec));
    memset(&verr, 0, sizeof(verr));
    status = rf_api_read_body(r, &body, &len);
    if (status != 0) {
        return status;
    }
    if (!dry_run) {
        key = mg_get_header(r->conn, "Idempotency-Key");
    }
    if (key != NULL && !rf_idem_key_valid(key)) {
        rf_verr_set(&verr, "Idempotency-Key", "invalid_value",
                    "the Idempotency-Key header must be 1 to %d printable ASCII characters",
                    RF_IDEM_KEY_MAX);
        status = rf_api_reply_verr(r, 400, &verr);
        goto out;
    }
    /* A body that is not JSON is refused below like any invalid one; it
     * never becomes an idempotency record. */
    if (key != NULL &&
        rf_idem_request_hash(r->ri->request_method, r->ri->local_uri, body, len, hash) == RF_OK) {
        rf_idem_verdict verdict;
        rf_idem_hit hit;
        rv = rf_idem_begin(api->st, tenant, key, hash, rf_now_ms(),
                           api->cfg->idempotency_ttl_s * 1000,
                           api->cfg->idempotency_inflight_s * 1000, &verdict, &hit);
        if (rv != RF_OK) {
            status = rf_api_reply_internal(r, rv);
            goto out;
        }
        if (verdict == RF_IDEM_REPLAY) {
            rf_info("http: idempotent replay for tenant %s [cid %s]", tenant, r->cid);
            status = replay(r, &hit);
            rf_idem_hit_clear(&hit);
            goto out;
        }
        rf_idem_hit_clear(&hit);
        if (verdict == RF_IDEM_MISMATCH) {
            status =
                rf_api_reply_error(r, 409, "idempotency_conflict",
                                   "this Idempotency-Key was already used with a different request",
                                   json_pack("{s:s}", "idempotency_key", key), NULL);
            goto out;
        }
        if (verdict == RF_IDEM_IN_FLIGHT) {
            status = rf_api_reply_error(
                r, 409, "idempotency_conflict",
                "a request with this Idempotency-Key is still being processed; retry later",
                json_pack("{s:s, s:b}", "idempotency_key", key, "in_flight", 1), NULL);
            goto out;
        }
        holding_key = true;
    }
    rv = rf_job_request_parse_ex(body, len, api->cfg, rf_ctpl_lookup_resolved, &lookup, &spec,
                                 &verr);
    if (rv == RF_OK) {
        /* A sheet Google will not read now is read in the background, with
         * the job showing rate_limited; a dry run waits for its answer. */
        spec.source.may_defer = !dry_run;
        rv = rf_source_read(&spec.source, api->cfg, &rows, &verr);
    }
    if ((rv == RF_EINVAL || rv == RF_ETOOBIG) && spec.source.sheet_err.code[0] != '\0') {
        rf_info("http: job request refused [%s]: %s", r->cid, spec.source.sheet_err.message);
        status = rf_api_reply_sheet_error(r, &spec.source.sheet_err, spec.source.sheet_id,
                                          "input_source");
        goto out;
    }
    if (rv == RF_EINVAL && strcmp(verr.reason, "writeback_not_allowed") == 0) {
        status = rf_api_reply_error(r, 422, "writeback_not_allowed", verr.message,
                                    json_pack("{s:s}", "field", verr.field), NULL);
        goto out;
    }
    if (rv == RF_EINVAL || rv == RF_ETOOBIG) {
        rf_info("http: job request refused [%s]: %s", r->cid, verr.message);
        status = rf_api_reply_verr(r, 400, &verr);
        goto out;
    }
    if (rv != RF_OK) {
        status = rf_api_reply_internal(r, rv);
        goto out;
    }
    if (spec.callback_url[0] != '\0' && api->cfg->live != NULL) {
        /* SSRF guard (docs/LIVE.md): refused like any invalid field. A name
         * that does not resolve yet is accepted: every delivery attempt
         * checks again and abandons a refused target. */
        char why[256] = "";
        rf_err crv = rf_live_check_callback(api->cfg->live, spec.callback_url, why, sizeof(why));
        if (crv == RF_EINVAL || crv == RF_ECONFLICT) {
            rf_verr_set(&verr, "callback_url", "forbidden_target",
                        "callback_url is not an allowed webhook target: %s", why);
            rf_info("http: job request refused [%s]: %s", r->cid, verr.message);
            status = rf_api_reply_verr(r, 400, &verr);
            goto out;
        }
    }
    if (dry_run) {
        status = answer_dry_run(r, &spec, &rows);
        goto out;
    }
    rv = rf_jobs_create_as(api->st, api->cfg, &owner, &spec, &rows, holding_key ? key : NULL,
                           rf_now_ms(), job_id);
    if (rv != RF_OK) {
        status = rf_api_reply_internal(r, rv);
        goto out;
    }
    if (spec.source.deferred) {
        if (rf_holdback_set(api->cfg->holdback, job_id, RF_HOLD_SHEETS_READ, true) != RF_OK) {
            rf_warn("http: job %s: out of memory marking it rate_limited", job_id);
        }
        rf_sheets_wiring_kick(api->cfg->sheets_wb);
    }
    rv = rf_jobs_get(api->st, job_id, rf_now_ms(), &v);
    if (rv != RF_OK) {
        status = rf_api_reply_internal(r, rv);
        goto out;
    }
    text = rf_api_render_ok(r, with_rate_limited(r, &v.job, job_json(&v)));
    rf_job_view_clear(&v);
    if (text == NULL) {
        status = rf_api_reply_internal(r, RF_ENOMEM);
        goto out;
    }
    if (holding_key) {
        rv = rf_idem_complete(api->st, tenant, key, 201, text, rf_now_ms());
        if (rv != RF_OK) {
            rf_warn("http: storing the idempotent answer failed [cid %s]: %s", r->cid,
                    rf_strerror(rv));
        }
        holding_key = false; /* the job exists: the record stays */
    }
    {
        char location[256];
        snprintf(location, sizeof(location), "Location: /api/%sbulk-jobs/%s\r\n",
                 r->style == RF_STYLE_V1 ? "v1/" : "", job_id);
        status = rf_api_send_text(r, 201, text, location);
    }
out:
    if (holding_key) {
        /* Nothing was created: the key may be used again. */
        rv = rf_idem_abort(api->st, tenant, key);
        if (rv != RF_OK) {
            rf_warn("http: releasing an idempotency key failed [cid %s]", r->cid);
        }
    }
    free(text);
    free(body);
    rf_rows_free(&rows);
    rf_job_spec_clear(&spec);
    return status;
}

/* ---- list ---- */

int
rf_h_list(rf_req *r)
{
    char sort_text[32], order_text[16], state[32], token[RF_CURSOR_MAX];
    bool has_sort, has_order, has_state, has_token;
    rf_job_query q;
    long page_size;
    rf_job_view *views = NULL;
    size_t n = 0;
    bool more = false;
    uint64_t total = 0;
    json_t *list, *body;
    rf_verr verr;
    rf_err rv;

    memset(&q, 0, sizeof(q));
    q.tenant = rf_api_tenant(r);
    q.desc = true;
    if (!page_size_param(r, LIST_PAGE_DEFAULT, &page_size)) {
        rf_verr_set(&verr, "page_size", "invalid_value",
                    "page_size must be a whole number from 1 to %d", PAGE_MAX);
        return rf_api_reply_verr(r, 400, &verr);
    }
    q.limit = (size_t)page_size;
    if (!rf_api_query(r, "sort", sort_text, sizeof(sort_text), &has_sort)) {
        has_sort = true;
        snprintf(sort_text, sizeof(sort_text), "?");
    }
    if (has_sort) {
        if (strcmp(sort_text, "created_at") == 0) {
            q.sort = RF_JOB_SORT_CREATED_AT;
        } else if (strcmp(sort_text, "updated_at") == 0) {
            q.sort = RF_JOB_SORT_UPDATED_AT;
        } else if (strcmp(sort_text, "percent_complete") == 0) {
            q.sort = RF_JOB_SORT_PERCENT;
        } else {
            rf_verr_set(&verr, "sort", "invalid_value",
                        "sort must be one of created_at, updated_at, percent_complete");
            return rf_api_reply_verr(r, 400, &verr);
        }
    }
    if (!rf_api_query(r, "order", order_text, sizeof(order_text), &has_order) ||
        (has_order && strcmp(order_text, "asc") != 0 && strcmp(order_text, "desc") != 0)) {
        rf_verr_set(&verr, "order", "invalid_value", "order must be asc or desc");
        return rf_api_reply_verr(r, 400, &verr);
    }
    if (has_order) {
        q.desc = strcmp(order_text, "desc") == 0;
    }
    if (!rf_api_query(r, "state", state, sizeof(state), &has_state) ||
        (has_state && !rf_job_state_valid(state))) {
        rf_verr_set(&verr, "state", "invalid_value",
                    "state must be one of pending, running, pausing, paused, completing, "
                    "completed, canceling, canceled, failed");
        return rf_api_reply_verr(r, 400, &verr);
    }
    q.state = has_state ? state : NULL;
    if (!rf_api_query(r, "page_token", token, sizeof(token), &has_token) ||
        (has_token &&
         rf_cursor_job_decode(token, q.sort, q.desc, q.state, &q.after_key, q.after_id) != RF_OK)) {
        rf_verr_set(&verr, "page_token", "invalid_value",
                    "page_token is not a token of this listing (same sort, order and state)");
        return rf_api_reply_verr(r, 400, &verr);
    }
    q.has_after = has_token;
    rv = rf_jobs_list(r->api->st, &q, rf_now_ms(), &views, &n, &more, &total);
    if (rv != RF_OK) {
        return rf_api_reply_internal(r, rv);
    }
    list = json_array();
    for (size_t i = 0; list != NULL && i < n; i++) {
        json_t *j = with_rate_limited(r, &views[i].job, job_json(&views[i]));
        if (j == NULL || json_array_append_new(list, j) != 0) {
            json_decref(list);
            list = NULL;
        }
    }
    if (more && n > 0) {
        char next[RF_CURSOR_MAX];
        const rf_job_rec *last = &views[n - 1].job;
        rv = rf_cursor_job_encode(q.sort, q.desc, q.state, rf_job_sort_key(last, q.sort), last->id,
                                  next, sizeof(next));
        body = rv == RF_OK
                   ? json_pack("{s:o, s:s, s:I, s:i}", "jobs", list, "next_page_token", next,
                               "total_count", (json_int_t)total, "page_size", (int)page_size)
                   : NULL;
    } else {
        body = json_pack("{s:o, s:n, s:I, s:i}", "jobs", list, "next_page_token", "total_count",
                         (json_int_t)total, "page_size", (int)page_size);
    }
    rf_job_views_free(views, n);
    alias_data(r, body, "jobs");
    return rf_api_reply_ok(r, 200, body, NULL);
}

/* ---- one job ---- */

int
rf_h_get(rf_req *r)
{
    return send_job(r, r->params[0], 200);
}

int
rf_h_progress(rf_req *r)
{
    rf_job_view v;
    int status = load_job(r, r->params[0], &v);

    if (status != 0) {
        return status;
    }
    status = rf_api_reply_ok(r, 200, with_rate_limited(r, &v.job, progress_json(&v)), NULL);
    rf_job_view_clear(&v);
    return status;
}

int
rf_h_videos(rf_req *r)
{
    static const char *const states[] = {"pending", "processing", "completed", "failed", "skipped"};
    char state[32] = "", token[RF_CURSOR_MAX] = "", tenant[RF_NAME_MAX];
    bool has_state, has_token, ok = false;
    long page_size;
    uint32_t after = 0;
    rf_video_view *views = NULL;
    size_t n = 0;
    bool more = false;
    json_t *list, *body;
    rf_verr verr;
    rf_err rv;

    if (!rf_api_query(r, "state", state, sizeof(state), &has_state)) {
        has_state = true;
        snprintf(state, sizeof(state), "?");
    }
    if (has_state && state[0] != '\0') {
        for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++) {
            ok = ok || strcmp(states[i], state) == 0;
        }
        if (!ok) {
            rf_verr_set(&verr, "state", "invalid_value",
                        "state must be one of pending, processing, completed, failed, skipped");
            return rf_api_reply_verr(r, 400, &verr);
        }
    }
    if (!page_size_param(r, VIDEOS_PAGE_DEFAULT, &page_size)) {
        rf_verr_set(&verr, "page_size", "invalid_value",
                    "page_size must be a whole number from 1 to %d", PAGE_MAX);
        return rf_api_reply_verr(r, 400, &verr);
    }
    if (!rf_api_query(r, "page_token", token, sizeof(token), &has_token) ||
        (has_token && token[0] != '\0' && rf_cursor_row_decode(token, &after) != RF_OK)) {
        rf_verr_set(&verr, "page_token", "invalid_value", "page_token is not a valid token");
        return rf_api_reply_verr(r, 400, &verr);
    }
    rv = rf_jobs_tenant(r->api->st, r->params[0], tenant);
    if (rv == RF_ENOTFOUND || (rv == RF_OK && strcmp(tenant, rf_api_tenant(r)) != 0)) {
        return rf_api_reply_job_not_found(r, r->params[0]);
    }
    if (rv == RF_OK) {
        rv = rf_jobs_videos(r->api->st, r->params[0], has_state && state[0] != '\0' ? state : NULL,
                            after, (size_t)page_size, &views, &n, &more);
    }
    if (rv == RF_ENOTFOUND) {
        return rf_api_reply_job_not_found(r, r->params[0]);
    }
    if (rv != RF_OK) {
        return rf_api_reply_internal(r, rv);
    }
    list = json_array();
    for (size_t i = 0; list != NULL && i < n; i++) {
        json_t *v = video_json(&views[i]);
        if (v == NULL || json_array_append_new(list, v) != 0) {
            json_decref(list);
            list = NULL;
        }
    }
    if (more && n > 0) {
        char next[64];
        rv = rf_cursor_row_encode(views[n - 1].item.row_number, next, sizeof(next));
        body =
            rv == RF_OK ? json_pack("{s:o, s:s}", "videos", list, "next_page_token", next) : NULL;
    } else {
        body = json_pack("{s:o, s:n}", "videos", list, "next_page_token");
    }
    rf_video_views_free(views, n);
    alias_data(r, body, "videos");
    return rf_api_reply_ok(r, 200, body, NULL);
}

/* ---- actions ---- */

static int
action(rf_req *r, rf_job_action a)
{
    rf_action_result res;
    int status = rf_api_skip_body(r);
    rf_err rv;

    if (status != 0) {
        return status;
    }
    rv = rf_jobs_action(r->api->st, r->api->cfg, rf_api_tenant(r), r->params[0], a, r->who.sub,
                        rf_now_ms(), &res);
    if (rv == RF_ENOTFOUND) {
        return rf_api_reply_job_not_found(r, r->params[0]);
    }
    if (rv == RF_ECONFLICT) {
        return rf_api_reply_error(r, 409, res.code, res.message,
                                  json_pack("{s:s, s:s, s:o}", "action", rf_job_action_name(a),
                                            "state", res.state, "allowed_actions",
                                            actions_json(res.state)),
                                  NULL);
    }
    if (rv != RF_OK) {
        return rf_api_reply_internal(r, rv);
    }
    return send_job(r, r->params[0], 200);
}

int
rf_h_pause(rf_req *r)
{
    return action(r, RF_ACTION_PAUSE);
}

int
rf_h_resume(rf_req *r)
{
    return action(r, RF_ACTION_RESUME);
}

int
rf_h_cancel(rf_req *r)
{
    return action(r, RF_ACTION_CANCEL);
}

int
rf_h_retry(rf_req *r)
{
    return action(r, RF_ACTION_RETRY);
}

/* ---- analytics ---- */

/* "YYYY-MM-DD" -> Unix ms of that day's 00:00 UTC. */
static bool
parse_date(const char *s, int64_t *ms)
{
    struct tm tm;
    int y, m, d;
    char tail;
    time_t t;

    if (strlen(s) != 10 || sscanf(s, "%4d-%2d-%2d%c", &y, &m, &d, &tail) != 3 || s[4] != '-' ||
        s[7] != '-' || y < 1970 || y > 9999 || m < 1 || m > 12 || d < 1 || d > 31) {
        return false;
    }
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = y - 1900;
    tm.tm_mon = m - 1;
    tm.tm_mday = d;
    t = timegm(&tm);
    /* timegm normalises 2025-02-30 into March: refuse dates that moved. */
    if (t == (time_t)-1 || tm.tm_mday != d || tm.tm_mon != m - 1) {
        return false;
    }
    *ms = (int64_t)t * 1000;
    return true;
}

static void
format_date(int64_t ms, char *out, size_t len)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(out, len, "%Y-%m-%d", &tm);
}

static json_t *
rate_or_null(double v, int digits)
{
    return v < 0 ? json_null() : json_real(round_to(v, digits));
}

static json_t *
group_json(const rf_analytics_group *g)
{
    return json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:o, s:o, s:f, s:f}", "template_id",
                     g->template_id, "total_jobs", (json_int_t)g->jobs, "total_items",
                     (json_int_t)g->items_total, "items_completed", (json_int_t)g->items_completed,
                     "items_failed", (json_int_t)g->items_failed, "items_skipped",
                     (json_int_t)g->items_skipped, "renditions_completed",
                     (json_int_t)g->renditions_completed, "success_rate",
                     rate_or_null(g->success_rate, 4), "avg_processing_time",
                     rate_or_null(g->avg_processing_s, 1), "cost", round_to(g->cost, 6),
                     "output_seconds", round_to((double)g->output_ms / 1000.0, 1));
}

int
rf_h_analytics(rf_req *r)
{
    char start[32], end[32], group_by[32], sd[16], ed[16];
    bool has_start, has_end, has_group;
    int64_t from_ms, to_ms, now = rf_now_ms();
    rf_analytics a;
    json_t *groups, *by_template, *body;
    rf_verr verr;
    rf_err rv;

    if (!rf_api_query(r, "end_date", end, sizeof(end), &has_end) ||
        (has_end && !parse_date(end, &to_ms))) {
        rf_verr_set(&verr, "end_date", "invalid_value", "end_date must be a date YYYY-MM-DD");
        return rf_api_reply_verr(r, 400, &verr);
    }
    if (!has_end) {
        to_ms = now - now % 86400000; /* today */
    }
    if (!rf_api_query(r, "start_date", start, sizeof(start), &has_start) ||
        (has_start && !parse_date(start, &from_ms))) {
        rf_verr_set(&verr, "start_date", "invalid_value", "start_date must be a date YYYY-MM-DD");
        return rf_api_reply_verr(r, 400, &verr);
    }
    if (!has_start) {
        from_ms = to_ms - 29LL * 86400000; /* 30 days ending with end_date */
    }
    if (from_ms > to_ms) {
        rf_verr_set(&verr, "start_date", "invalid_value", "start_date is after end_date");
        return rf_api_reply_verr(r, 400, &verr);
    }
    if ((to_ms - from_ms) / 86400000 + 1 > ANALYTICS_MAX_DAYS) {
        rf_verr_set(&verr, "start_date", "out_of_range", "the date range is longer than %d days",
                    ANALYTICS_MAX_DAYS);
        return rf_api_reply_verr(r, 400, &verr);
    }
    if (!rf_api_query(r, "group_by", group_by, sizeof(group_by), &has_group) ||
        (has_group && strcmp(group_by, "template_id") != 0)) {
        rf_verr_set(&verr, "group_by", "invalid_value", "group_by must be template_id");
        return rf_api_reply_verr(r, 400, &verr);
    }
    /* end_date is inclusive: the range ends at the next midnight. */
    rv = rf_analytics_run(r->api->st, r->api->cfg, rf_api_tenant(r), from_ms, to_ms + 86400000, &a);
    if (rv != RF_OK) {
        return rf_api_reply_internal(r, rv);
    }
    groups = json_array();
    by_template = json_object();
    for (size_t i = 0; groups != NULL && by_template != NULL && i < a.n_groups; i++) {
        json_array_append_new(groups, group_json(&a.groups[i]));
        json_object_set_new(by_template, a.groups[i].template_id,
                            json_real(round_to(a.groups[i].cost, 6)));
    }
    format_date(from_ms, sd, sizeof(sd));
    format_date(to_ms, ed, sizeof(ed));
    body = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:o, s:o, s:{s:s, s:f, s:o}, s:o}",
                     "start_date", sd, "end_date", ed, "group_by", "template_id", "total_jobs",
                     (json_int_t)a.total.jobs, "total_items", (json_int_t)a.total.items_total,
                     "items_completed", (json_int_t)a.total.items_completed, "items_failed",
                     (json_int_t)a.total.items_failed, "success_rate",
                     rate_or_null(a.total.success_rate, 4), "avg_processing_time",
                     rate_or_null(a.total.avg_processing_s, 1), "cost_summary", "currency",
                     r->api->cfg->cost_currency, "total", round_to(a.total.cost, 6), "by_template",
                     by_template, "groups", groups);
    rf_analytics_clear(&a);
    return rf_api_reply_ok(r, 200, body, NULL);
}
