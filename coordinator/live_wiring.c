/* Live progress wired into the coordinator: see live_wiring.h. */
#include "live_wiring.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "eta.h"
#include "holdback.h"
#include "jobs.h"
#include "rf_log.h"
#include "rf_util.h"
#include "ssrf.h"
#include "webhooks.h"
#include "ws.h"

/* One event waiting for the publisher. */
typedef struct live_event {
    struct live_event *next;
    int64_t event_id; /* events.id, 0 for a progress notification */
    char job_id[RF_ID_MAX];
    char type[RF_NAME_MAX];
    char *data_json;
    int64_t at_ms;
} live_event;

/* Per-job live state: the ETA estimator and whether a progress notification
 * is already queued (later ones are merged into it). */
typedef struct live_job {
    char job_id[RF_ID_MAX];
    rf_eta eta;
    bool progress_queued;
} live_job;

struct rf_live {
    rf_store *st;
    const rf_coord_config *cfg;
    rf_ssrf_policy *policy;
    rf_webhooks_config hcfg;
    rf_webhooks *wh;
    rf_ws *ws;
    rf_auth_params auth;
    unsigned char master[64]; /* webhook_secret_master, when set */
    size_t master_len;

    pthread_mutex_t mu; /* guards the queue, jobs and stop */
    pthread_cond_t cv;
    live_event *head, *tail;
    live_job *jobs;
    size_t n_jobs, cap_jobs;
    bool stop;
    pthread_t publisher;
    bool publisher_started;
};

/* ---- per-job state (lv->mu held) ---- */

static live_job *
job_find(rf_live *lv, const char *job_id, bool create)
{
    for (size_t i = 0; i < lv->n_jobs; i++) {
        if (strcmp(lv->jobs[i].job_id, job_id) == 0) {
            return &lv->jobs[i];
        }
    }
    if (!create) {
        return NULL;
    }
    if (lv->n_jobs == lv->cap_jobs) {
        size_t cap = lv->cap_jobs == 0 ? 16 : lv->cap_jobs * 2;
        live_job *p = realloc(lv->jobs, cap * sizeof(*p));
        if (p == NULL) {
            return NULL;
        }
        lv->jobs = p;
        lv->cap_jobs = cap;
    }
    live_job *j = &lv->jobs[lv->n_jobs++];
    rf_eta_params params;
    memset(j, 0, sizeof(*j));
    rf_strlcpy(j->job_id, job_id, sizeof(j->job_id));
    rf_eta_params_defaults(&params);
    params.tau_ms = lv->cfg->eta_tau_ms;
    rf_eta_init(&j->eta, &params);
    return j;
}

static void
job_forget(rf_live *lv, const char *job_id)
{
    for (size_t i = 0; i < lv->n_jobs; i++) {
        if (strcmp(lv->jobs[i].job_id, job_id) == 0) {
            lv->jobs[i] = lv->jobs[--lv->n_jobs];
            return;
        }
    }
}

/* ---- the store hook: queue only (it runs under the store mutex) ---- */

static void
on_store_event(void *ctx, int64_t event_id, const char *job_id, const char *type,
               const char *data_json, int64_t at_ms)
{
    rf_live *lv = ctx;
    live_event *e;

    if (job_id == NULL || job_id[0] == '\0') {
        return;
    }
    pthread_mutex_lock(&lv->mu);
    if (strcmp(type, "job.progress") == 0) {
        live_job *j = job_find(lv, job_id, true);
        if (j != NULL && j->progress_queued) {
            pthread_mutex_unlock(&lv->mu); /* the queued one reads the newest state */
            return;
        }
        if (j != NULL) {
            j->progress_queued = true;
        }
    }
    e = calloc(1, sizeof(*e));
    if (e != NULL) {
        e->data_json = strdup(data_json != NULL ? data_json : "{}");
    }
    if (e == NULL || e->data_json == NULL) {
        free(e);
        pthread_mutex_unlock(&lv->mu);
        rf_warn("live: out of memory, event %s of job %s not published", type, job_id);
        return;
    }
    e->event_id = event_id;
    rf_strlcpy(e->job_id, job_id, sizeof(e->job_id));
    rf_strlcpy(e->type, type, sizeof(e->type));
    e->at_ms = at_ms;
    if (lv->tail != NULL) {
        lv->tail->next = e;
    } else {
        lv->head = e;
    }
    lv->tail = e;
    pthread_cond_signal(&lv->cv);
    pthread_mutex_unlock(&lv->mu);
}

void
rf_live_progress_changed(rf_live *lv, const char *job_id)
{
    if (lv != NULL) {
        on_store_event(lv, 0, job_id, "job.progress", "{}", rf_now_ms());
    }
}

/* ---- message building (publisher and snapshot threads, no lock held) ---- */

static void
file_url(const char *path, char *url, size_t len)
{
    if (strstr(path, "://") != NULL) {
        snprintf(url, len, "%s", path);
    } else {
        snprintf(url, len, "file://%s", path);
    }
}

static void
add_artifact(json_t *arr, const char *type, const char *path, const char *rendition)
{
    char url[RF_PATH_MAX + 16];

    if (path == NULL || path[0] == '\0') {
        return;
    }
    file_url(path, url, sizeof(url));
    json_array_append_new(
        arr, json_pack("{s:s, s:s, s:s}", "type", type, "url", url, "rendition", rendition));
}

/* Artifacts of completed units (video, poster as "thumbnail", captions). */
static json_t *
unit_artifacts(const rf_unit_rec *units, size_t n)
{
    json_t *arr = json_array();

    for (size_t i = 0; arr != NULL && i < n; i++) {
        if (strcmp(units[i].state, "completed") != 0) {
            continue;
        }
        add_artifact(arr, "video", units[i].output_path, units[i].rendition);
        add_artifact(arr, "thumbnail", units[i].poster_path, units[i].rendition);
        add_artifact(arr, "captions", units[i].captions_path, units[i].rendition);
    }
    return arr;
}

static rf_err
item_artifacts(rf_live *lv, const char *item_id, json_t **out)
{
    rf_unit_rec *units = NULL;
    size_t n = 0;
    rf_err rv = rf_store_begin(lv->st);

    *out = NULL;
    if (rv != RF_OK) {
        return rv;
    }
    rv = rf_store_units_of_item(lv->st, item_id, &units, &n);
    rf_store_rollback(lv->st); /* read only */
    if (rv == RF_OK) {
        *out = unit_artifacts(units, n);
        rv = *out != NULL ? RF_OK : RF_ENOMEM;
    }
    free(units);
    return rv;
}

static rf_err
job_artifacts(rf_live *lv, const char *job_id, json_t **out)
{
    rf_unit_rec *units = NULL;
    size_t n = 0;
    rf_err rv = rf_store_begin(lv->st);

    *out = NULL;
    if (rv != RF_OK) {
        return rv;
    }
    rv = rf_store_units_of_job(lv->st, job_id, "completed", &units, &n);
    rf_store_rollback(lv->st);
    if (rv == RF_OK) {
        *out = unit_artifacts(units, n);
        rv = *out != NULL ? RF_OK : RF_ENOMEM;
    }
    free(units);
    return rv;
}

static json_t *
summary_json(const rf_job_view *v)
{
    return json_pack("{s:I, s:I, s:I, s:I}", "items_total", (json_int_t)v->items.total,
                     "items_completed", (json_int_t)v->items.completed, "items_failed",
                     (json_int_t)v->items.failed, "items_skipped", (json_int_t)v->items.skipped);
}

/* The job.progress message of a loaded view; the ETA from the job's
 * estimator (sampled here when sample is true). */
static json_t *
progress_msg(rf_live *lv, const rf_job_view *v, bool sample, int64_t at_ms)
{
    rf_ws_progress p;
    uint64_t remaining = v->frames_total > v->frames_done ? v->frames_total - v->frames_done : 0;
    int64_t eta = -1;

    memset(&p, 0, sizeof(p));
    p.percent_complete = v->percent_complete;
    p.items_completed = (int64_t)v->items.completed;
    p.items_failed = (int64_t)v->items.failed;
    p.items_total = (int64_t)v->items.total;
    p.frames_done = (int64_t)v->frames_done;
    p.frames_total = (int64_t)v->frames_total;
    if (rf_job_state_terminal(v->job.state)) {
        eta = 0;
    } else {
        pthread_mutex_lock(&lv->mu);
        live_job *j = job_find(lv, v->job.id, sample);
        if (j != NULL) {
            if (sample) {
                rf_eta_sample(&j->eta, at_ms, v->frames_done);
            }
            if (strcmp(v->job.state, "running") != 0 ||
                rf_eta_estimate(&j->eta, remaining, &eta) != RF_OK) {
                eta = -1; /* paused or not measured yet: no honest ETA */
            }
        }
        pthread_mutex_unlock(&lv->mu);
    }
    p.eta_ms = eta;
    p.rate_limited = rf_jobs_held_back(lv->st, lv->cfg, &v->job) != 0;
    return rf_ws_msg_progress(v->job.id, &p);
}

static void
publish(rf_live *lv, const rf_job_view *v, json_t *msg)
{
    if (msg == NULL) {
        rf_warn("live: out of memory building a message for job %s", v->job.id);
        return;
    }
    if (lv->ws != NULL) {
        rf_ws_publish(lv->ws, v->job.id, v->job.tenant, msg);
    }
    json_decref(msg);
}

/* Queues the webhook of a stored event; the outbox cursor moves to it in
 * the same transaction (store.h), so that an event whose webhook was not
 * queued when the process stopped is found at the next start. */
static void
webhook(rf_live *lv, const rf_job_view *v, const live_event *e, json_t *msg)
{
    const char *type = e->type;
    rf_err rv;

    if (lv->wh == NULL || v->job.callback_url[0] == '\0' || msg == NULL) {
        return;
    }
    rv = rf_webhooks_enqueue(lv->wh, v->job.id, v->job.tenant, v->job.callback_url, type,
                             v->job.state, v->percent_complete, (int64_t)v->items.completed,
                             (int64_t)v->items.failed, (int64_t)v->items.total,
                             json_object_get(msg, "data"), e->event_id, NULL);
    if (rv != RF_OK) {
        rf_warn("live: webhook %s of job %s not queued: %s", type, v->job.id, rf_strerror(rv));
    }
}

static void
handle_event(rf_live *lv, live_event *e)
{
    rf_job_view v;
    json_t *data = json_loads(e->data_json, 0, NULL);
    const char *s;
    rf_err rv;

    if (strcmp(e->type, "job.progress") == 0) {
        pthread_mutex_lock(&lv->mu);
        live_job *j = job_find(lv, e->job_id, false);
        if (j != NULL) {
            j->progress_queued = false; /* later reports queue a new one */
        }
        pthread_mutex_unlock(&lv->mu);
    }
    rv = rf_jobs_get(lv->st, e->job_id, rf_now_ms(), &v);
    if (rv != RF_OK) {
        json_decref(data);
        return;
    }
    if (strcmp(e->type, "job.progress") == 0) {
        publish(lv, &v, progress_msg(lv, &v, true, e->at_ms));
    } else if (strcmp(e->type, "job.state_changed") == 0 && data != NULL) {
        const char *to = json_string_value(json_object_get(data, "new_state"));
        json_t *msg = rf_ws_msg_state_changed(
            e->job_id, json_string_value(json_object_get(data, "prior_state")), to,
            json_string_value(json_object_get(data, "reason")));
        /* The webhook carries the state of this event, not a later one. */
        if (to != NULL) {
            rf_strlcpy(v.job.state, to, sizeof(v.job.state));
        }
        webhook(lv, &v, e, msg);
        publish(lv, &v, msg);
        if (to != NULL && (strcmp(to, "paused") == 0 || strcmp(to, "running") == 0)) {
            pthread_mutex_lock(&lv->mu);
            live_job *j = job_find(lv, e->job_id, false);
            if (j != NULL) {
                rf_eta_reset(&j->eta); /* throughput before a pause says nothing now */
            }
            pthread_mutex_unlock(&lv->mu);
        }
        if (to != NULL && rf_job_state_terminal(to)) {
            publish(lv, &v, progress_msg(lv, &v, false, e->at_ms));
        }
    } else if (strcmp(e->type, "video.completed") == 0 && data != NULL) {
        json_t *arts = NULL;
        s = json_string_value(json_object_get(data, "item_id"));
        if (s != NULL && item_artifacts(lv, s, &arts) == RF_OK) {
            publish(
                lv, &v,
                rf_ws_msg_video_completed(
                    e->job_id, s, json_integer_value(json_object_get(data, "row_number")), arts));
        }
        publish(lv, &v, progress_msg(lv, &v, true, e->at_ms));
    } else if (strcmp(e->type, "video.failed") == 0 && data != NULL) {
        s = json_string_value(json_object_get(data, "item_id"));
        publish(lv, &v,
                rf_ws_msg_video_failed(e->job_id, s != NULL ? s : "",
                                       json_integer_value(json_object_get(data, "row_number")),
                                       json_string_value(json_object_get(data, "error_code")),
                                       json_string_value(json_object_get(data, "error_message"))));
        publish(lv, &v, progress_msg(lv, &v, true, e->at_ms));
    } else if (strcmp(e->type, "job.completed") == 0) {
        json_t *arts = NULL, *msg;
        if (job_artifacts(lv, e->job_id, &arts) != RF_OK) {
            arts = NULL;
        }
        msg = rf_ws_msg_job_completed(e->job_id, summary_json(&v), arts);
        webhook(lv, &v, e, msg);
        publish(lv, &v, msg);
    } else if (strcmp(e->type, "job.failed") == 0 && data != NULL) {
        json_t *msg =
            rf_ws_msg_job_failed(e->job_id, json_string_value(json_object_get(data, "error_code")),
                                 json_string_value(json_object_get(data, "error_message")));
        webhook(lv, &v, e, msg);
        publish(lv, &v, msg);
    }
    if (rf_job_state_terminal(v.job.state)) {
        pthread_mutex_lock(&lv->mu);
        job_forget(lv, e->job_id);
        pthread_mutex_unlock(&lv->mu);
    }
    rf_job_view_clear(&v);
    json_decref(data);
}

static void *
publisher_main(void *arg)
{
    rf_live *lv = arg;

    pthread_mutex_lock(&lv->mu);
    for (;;) {
        live_event *e;
        while (lv->head == NULL && !lv->stop) {
            pthread_cond_wait(&lv->cv, &lv->mu);
        }
        if (lv->head == NULL) {
            break; /* stopping and drained */
        }
        e = lv->head;
        lv->head = e->next;
        if (lv->head == NULL) {
            lv->tail = NULL;
        }
        pthread_mutex_unlock(&lv->mu);
        handle_event(lv, e);
        free(e->data_json);
        free(e);
        pthread_mutex_lock(&lv->mu);
    }
    pthread_mutex_unlock(&lv->mu);
    return NULL;
}

/* ---- WebSocket callbacks (civetweb worker threads) ---- */

static rf_err
ws_auth(void *ctx, const char *token, rf_ws_principal *out)
{
    rf_live *lv = ctx;
    rf_principal who;
    char why[256] = "";
    size_t used = 0;
    rf_err rv;

    memset(out, 0, sizeof(*out));
    if (lv->cfg->auth_disabled) {
        rf_strlcpy(out->tenant, "default", sizeof(out->tenant));
        rf_strlcpy(out->scopes, "jobs:read jobs:write", sizeof(out->scopes));
        return RF_OK;
    }
    rv = rf_auth_verify(&lv->auth, token, rf_now_ms() / 1000, &who, why, sizeof(why));
    if (rv != RF_OK) {
        rf_info("ws: token refused: %s", why);
        return rv;
    }
    rf_strlcpy(out->tenant, who.tenant, sizeof(out->tenant));
    for (unsigned bit = 1; bit <= RF_SCOPE_ALL; bit <<= 1) {
        const char *name = (who.scopes & bit) != 0 ? rf_auth_scope_name(bit) : NULL;
        if (name != NULL && used + strlen(name) + 2 < sizeof(out->scopes)) {
            used += (size_t)snprintf(out->scopes + used, sizeof(out->scopes) - used, "%s%s",
                                     used > 0 ? " " : "", name);
        }
    }
    return RF_OK;
}

static rf_err
ws_snapshot(void *ctx, const char *job_id, const char *tenant, json_t **msgs)
{
    rf_live *lv = ctx;
    rf_job_view v;
    json_t *arr;
    rf_err rv = rf_jobs_get(lv->st, job_id, rf_now_ms(), &v);

    *msgs = NULL;
    if (rv != RF_OK) {
        return rv;
    }
    if (tenant != NULL && strcmp(v.job.tenant, tenant) != 0) {
        rf_job_view_clear(&v);
        return RF_ENOTFOUND; /* another tenant's job looks like a missing one */
    }
    arr = json_array();
    if (arr != NULL) {
        json_array_append_new(
            arr, rf_ws_msg_state_changed(job_id, v.job.state, v.job.state, "snapshot"));
        json_array_append_new(arr, progress_msg(lv, &v, false, 0));
        if (strcmp(v.job.state, "completed") == 0) {
            json_t *arts = NULL;
            if (job_artifacts(lv, job_id, &arts) != RF_OK) {
                arts = NULL;
            }
            json_array_append_new(arr, rf_ws_msg_job_completed(job_id, summary_json(&v), arts));
        } else if (strcmp(v.job.state, "failed") == 0) {
            json_array_append_new(
                arr, rf_ws_msg_job_failed(job_id, v.job.error_code, v.job.error_message));
        }
    }
    rf_job_view_clear(&v);
    *msgs = arr;
    return arr != NULL ? RF_OK : RF_ENOMEM;
}

/* ---- webhook store ops over the coordinator's store ---- */

static rf_err
wh_enqueue(void *ctx, rf_webhook_delivery *d)
{
    rf_live *lv = ctx;
    rf_err rv = rf_store_begin(lv->st);

    if (rv != RF_OK) {
        return rv;
    }
    rv = rf_store_webhook_enqueue(lv->st, d);
    if (rv != RF_OK) {
        rf_store_rollback(lv->st);
        return rv;
    }
    return rf_store_commit(lv->st);
}

static rf_err
wh_claim(void *ctx, int64_t now_ms, int64_t lease_ms, rf_webhook_delivery *out,
         int64_t *next_due_ms)
{
    rf_live *lv = ctx;
    rf_err rv = rf_store_begin(lv->st);

    if (rv != RF_OK) {
        return rv;
    }
    rv = rf_store_webhook_claim(lv->st, now_ms, lease_ms, out, next_due_ms);
    if (rv != RF_OK) {
        rf_store_rollback(lv->st);
        return rv;
    }
    rv = rf_store_commit(lv->st);
    if (rv != RF_OK) {
        rf_webhook_delivery_clear(out);
    }
    return rv;
}

static rf_err
wh_record(void *ctx, const rf_webhook_attempt *a)
{
    rf_live *lv = ctx;
    rf_err rv = rf_store_begin(lv->st);

    if (rv != RF_OK) {
        return rv;
    }
    rv = rf_store_webhook_record(lv->st, a, rf_now_ms());
    if (rv != RF_OK) {
        rf_store_rollback(lv->st);
        return rv;
    }
    return rf_store_commit(lv->st);
}

static rf_err
wh_disable(void *ctx, const char *url, int64_t now_ms)
{
    rf_live *lv = ctx;
    rf_err rv = rf_store_begin(lv->st);

    if (rv != RF_OK) {
        return rv;
    }
    rv = rf_store_webhook_disable(lv->st, url, now_ms);
    if (rv != RF_OK) {
        rf_store_rollback(lv->st);
        return rv;
    }
    return rf_store_commit(lv->st);
}

static const rf_webhook_store_ops wh_ops = {wh_enqueue, wh_claim, wh_record, wh_disable};

static rf_err
wh_secret(void *ctx, const char *tenant, char *out, size_t len)
{
    return rf_live_secret(ctx, tenant, out, len);
}

rf_err
rf_live_secret(rf_live *lv, const char *tenant, char *out, size_t len)
{
    char fresh[RF_WEBHOOK_SECRET_MAX];
    rf_err rv;

    if (lv->master_len > 0) {
        return rf_webhook_secret_derive(lv->master, lv->master_len, tenant, out, len);
    }
    rv = rf_store_begin(lv->st);
    if (rv != RF_OK) {
        return rv;
    }
    rv = rf_store_webhook_secret_get(lv->st, tenant, out, len);
    if (rv == RF_ENOTFOUND) {
        /* First use: the stored one wins if another thread raced us. */
        rv = rf_webhook_secret_new(fresh, sizeof(fresh));
        if (rv == RF_OK) {
            rv = rf_store_webhook_secret_put(lv->st, tenant, fresh, rf_now_ms());
        }
        if (rv == RF_OK) {
            rv = rf_store_webhook_secret_get(lv->st, tenant, out, len);
        }
    }
    if (rv != RF_OK) {
        rf_store_rollback(lv->st);
        return rv;
    }
    return rf_store_commit(lv->st);
}

/* ---- life cycle ---- */

static rf_err
load_master(rf_live *lv)
{
    char *text = NULL;
    size_t len = 0;
    rf_err rv;

    if (lv->cfg->webhook_secret_master[0] == '\0') {
        return RF_OK;
    }
    rv = rf_read_file(lv->cfg->webhook_secret_master, 4096, &text, &len);
    if (rv != RF_OK) {
        rf_error("webhook_secret_master %s: %s", lv->cfg->webhook_secret_master, rf_strerror(rv));
        return RF_EINVAL;
    }
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r' || text[len - 1] == ' ')) {
        len--;
    }
    if (len < 16) {
        rf_error("webhook_secret_master %s: at least 16 bytes are needed",
                 lv->cfg->webhook_secret_master);
        free(text);
        return RF_EINVAL;
    }
    lv->master_len = len < sizeof(lv->master) ? len : sizeof(lv->master);
    memcpy(lv->master, text, lv->master_len);
    free(text);
    return RF_OK;
}

/* Events committed before the last process stopped whose webhooks it did
 * not queue go to the publisher first (nothing else writes events yet). */
static rf_err
queue_backlog(rf_live *lv)
{
    int64_t after = -1; /* from the outbox cursor */
    size_t total = 0;

    for (;;) {
        rf_event_rec *ev = NULL;
        size_t n = 0;
        rf_err rv = rf_store_begin(lv->st);

        if (rv != RF_OK) {
            return rv;
        }
        rv = rf_store_webhook_backlog(lv->st, after, 256, &ev, &n);
        rf_store_rollback(lv->st); /* read only */
        if (rv != RF_OK) {
            rf_error("live: reading the webhook backlog failed: %s", rf_strerror(rv));
            return rv;
        }
        for (size_t i = 0; i < n; i++) {
            on_store_event(lv, ev[i].id, ev[i].job_id, ev[i].type, ev[i].data_json,
                           ev[i].created_at);
            after = ev[i].id;
        }
        total += n;
        rf_event_recs_free(ev, n);
        if (n < 256) {
            break;
        }
    }
    if (total > 0) {
        rf_info("live: %zu events from before the restart have their webhooks queued now", total);
        return RF_OK;
    }
    /* Nothing owed: the events since the cursor (of jobs without a
     * callback_url) need not be scanned again at the next start. */
    rf_err rv = rf_store_begin(lv->st);
    if (rv == RF_OK) {
        rv = rf_store_webhook_cursor_to_end(lv->st);
        if (rv == RF_OK) {
            rv = rf_store_commit(lv->st);
        } else {
            rf_store_rollback(lv->st);
        }
    }
    return rv;
}

rf_err
rf_live_start(rf_store *st, const rf_coord_config *cfg, rf_live **out)
{
    rf_live *lv = calloc(1, sizeof(*lv));
    char err[256] = "";
    rf_err rv;

    *out = NULL;
    if (lv == NULL) {
        return RF_ENOMEM;
    }
    lv->st = st;
    lv->cfg = cfg;
    pthread_mutex_init(&lv->mu, NULL);
    pthread_cond_init(&lv->cv, NULL);
    rv = rf_ssrf_policy_new(cfg->webhook_allow, &lv->policy, err, sizeof(err));
    if (rv != RF_OK) {
        rf_error("webhook_allow: %s", err);
        goto fail;
    }
    rf_webhooks_config_defaults(&lv->hcfg);
    rv = rf_webhooks_parse_schedule(&lv->hcfg, cfg->webhook_schedule, err, sizeof(err));
    if (rv != RF_OK) {
        rf_error("webhook_schedule: %s", err);
        goto fail;
    }
    lv->hcfg.jitter = cfg->webhook_jitter;
    lv->hcfg.timeout_ms = cfg->webhook_timeout_ms;
    if (lv->hcfg.connect_timeout_ms > cfg->webhook_timeout_ms) {
        lv->hcfg.connect_timeout_ms = cfg->webhook_timeout_ms;
    }
    if (lv->hcfg.claim_lease_ms <= 2 * cfg->webhook_timeout_ms) {
        lv->hcfg.claim_lease_ms = 2 * cfg->webhook_timeout_ms + 1000;
    }
    lv->hcfg.workers = (int)cfg->webhook_workers;
    lv->hcfg.follow_redirects = cfg->webhook_follow_redirects;
    rv = load_master(lv);
    if (rv != RF_OK) {
        goto fail;
    }
    rv = rf_webhooks_start(&lv->hcfg, lv->policy, &wh_ops, lv, wh_secret, lv, &lv->wh);
    if (rv != RF_OK) {
        goto fail;
    }
    if (pthread_create(&lv->publisher, NULL, publisher_main, lv) != 0) {
        rv = RF_ENOMEM;
        goto fail;
    }
    lv->publisher_started = true;
    rf_store_set_event_hook(st, on_store_event, lv);
    rv = queue_backlog(lv);
    if (rv != RF_OK) {
        goto fail;
    }
    *out = lv;
    return RF_OK;
fail:
    rf_live_stop(&lv);
    return rv;
}

rf_err
rf_live_attach_ws(rf_live *lv, struct mg_context *ctx, const rf_auth_params *auth)
{
    rf_ws_config wcfg;
    rf_err rv;

    lv->auth = *auth;
    rf_ws_config_defaults(&wcfg);
    wcfg.max_clients = (size_t)lv->cfg->ws_max_clients;
    wcfg.queue_max_msgs = (size_t)lv->cfg->ws_queue_max_msgs;
    wcfg.queue_max_bytes = (size_t)lv->cfg->ws_queue_max_bytes;
    wcfg.progress_min_interval_ms = lv->cfg->ws_progress_interval_ms;
    wcfg.heartbeat_ms = lv->cfg->ws_heartbeat_ms;
    wcfg.close_grace_ms = lv->cfg->ws_close_grace_ms;
    rf_strlcpy(wcfg.required_scope, "jobs:read", sizeof(wcfg.required_scope));
    wcfg.snapshot = ws_snapshot;
    wcfg.snapshot_ctx = lv;
    rv = rf_ws_attach(ctx, &wcfg, ws_auth, lv, &lv->ws);
    if (rv != RF_OK) {
        rf_error("ws: cannot attach the live feed: %s", rf_strerror(rv));
    }
    return rv;
}

void
rf_live_stop(rf_live **lvp)
{
    rf_live *lv;

    if (lvp == NULL || *lvp == NULL) {
        return;
    }
    lv = *lvp;
    if (lv->publisher_started) {
        rf_store_set_event_hook(lv->st, NULL, NULL);
        pthread_mutex_lock(&lv->mu);
        lv->stop = true;
        pthread_cond_broadcast(&lv->cv);
        pthread_mutex_unlock(&lv->mu);
        pthread_join(lv->publisher, NULL);
    }
    rf_webhooks_stop(&lv->wh);
    rf_ws_free(&lv->ws);
    rf_ssrf_policy_free(&lv->policy);
    while (lv->head != NULL) {
        live_event *e = lv->head;
        lv->head = e->next;
        free(e->data_json);
        free(e);
    }
    free(lv->jobs);
    pthread_cond_destroy(&lv->cv);
    pthread_mutex_destroy(&lv->mu);
    free(lv);
    *lvp = NULL;
}

rf_err
rf_live_check_callback(rf_live *lv, const char *url, char *err, size_t err_len)
{
    rf_ssrf_target t;

    return rf_ssrf_check_url(lv->policy, url, &t, err, err_len);
}

rf_err
rf_live_eta(rf_live *lv, const char *job_id, uint64_t frames_remaining, int64_t *eta_ms)
{
    rf_err rv = RF_ENOTFOUND;

    *eta_ms = -1;
    pthread_mutex_lock(&lv->mu);
    live_job *j = job_find(lv, job_id, false);
    if (j != NULL) {
        rv = rf_eta_estimate(&j->eta, frames_remaining, eta_ms);
    }
    pthread_mutex_unlock(&lv->mu);
    return rv;
}
