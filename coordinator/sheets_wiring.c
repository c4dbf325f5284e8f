/* Google Sheets in the running coordinator: configuration, API statuses and
 * the write-back worker (see sheets_wiring.h). */
#include "sheets_wiring.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "jobs.h"
#include "rf_log.h"
#include "rf_util.h"
#include "writeback.h"

#define WB_PAGE 500

static void
copy_str(char *dst, const char *src, size_t len)
{
    if (len == 0) {
        return;
    }
    snprintf(dst, len, "%s", src != NULL ? src : "");
}

void
rf_sheets_config_from(const rf_coord_config *cfg, rf_sheets_config *out)
{
    rf_sheets_config_defaults(out);
    copy_str(out->api_base, cfg->sheets_api_base, sizeof(out->api_base));
    copy_str(out->csv_export_base, cfg->sheets_csv_export_base, sizeof(out->csv_export_base));
    copy_str(out->api_key, cfg->sheets_api_key, sizeof(out->api_key));
    copy_str(out->credentials_file, cfg->sheets_credentials_file, sizeof(out->credentials_file));
    out->csv_export = cfg->sheets_csv_export;
    out->max_rows = cfg->max_rows_per_job;
    out->timeout_ms = cfg->sheets_timeout_ms;
    out->max_retries = cfg->sheets_max_retries;
    out->backoff_initial_ms = cfg->sheets_backoff_initial_ms;
    out->backoff_max_ms = cfg->sheets_backoff_max_ms;
    out->read_calls_per_min = cfg->sheets_read_calls_per_min;
    out->write_calls_per_min = cfg->sheets_write_calls_per_min;
    out->write_batch_ranges = cfg->sheets_write_batch_ranges;
}

int
rf_sheets_api_status(const char *code)
{
    int status = rf_sheets_error_http_status(code);

    if (strcmp(code, "sheets_unavailable") == 0) {
        return 503; /* this coordinator has no client: not the request's fault */
    }

    /* A 404 or 403 from us means "no such job" or "missing scope": a sheet
     * we cannot open is a problem with the request's content instead. */
    if (status == 404 || status == 403) {
        return 422;
    }
    return status;
}

/* ---- the write-back worker ---- */

typedef struct watch {
    char job_id[RF_ID_MAX];
    int64_t written_at; /* the job's updated_at when it was last written, 0 = never */
    bool rate_limited;  /* a write waits on the quota now */
} watch;

struct rf_sheets_wiring {
    rf_store *st;
    const rf_coord_config *cfg;
    rf_sheets_client *client;
    pthread_t thread;
    bool started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
    watch *w;
    size_t n, cap;
};

typedef struct wait_ctx {
    rf_sheets_wiring *wb;
    const char *job_id;
} wait_ctx;

static void
set_rate_limited(rf_sheets_wiring *wb, const char *job_id, bool on)
{
    pthread_mutex_lock(&wb->mu);
    for (size_t i = 0; i < wb->n; i++) {
        if (strcmp(wb->w[i].job_id, job_id) == 0) {
            wb->w[i].rate_limited = on;
        }
    }
    pthread_mutex_unlock(&wb->mu);
}

static bool
on_wait(void *ctx, const char *reason, int64_t wait_ms, int attempt)
{
    wait_ctx *wc = ctx;

    rf_info("sheets: write-back of job %s waits %lld ms (%s, retry %d)", wc->job_id,
            (long long)wait_ms, reason, attempt);
    set_rate_limited(wc->wb, wc->job_id, true);
    return true;
}

static bool
keep_going(void *ctx)
{
    wait_ctx *wc = ctx;
    bool go;

    pthread_mutex_lock(&wc->wb->mu);
    go = !wc->wb->stop;
    pthread_mutex_unlock(&wc->wb->mu);
    return go;
}

static rf_err
record(rf_store *st, const char *job_id, const char *type, json_t *data)
{
    char *text = json_dumps(data, JSON_COMPACT);
    rf_err rv;

    json_decref(data);
    if (text == NULL) {
        return RF_ENOMEM;
    }
    rv = rf_store_begin(st);
    if (rv == RF_OK) {
        rv = rf_store_event_add(st, job_id, type, text, rf_now_ms());
        if (rv == RF_OK) {
            rv = rf_store_commit(st);
        } else {
            rf_store_rollback(st);
        }
    }
    free(text);
    return rv;
}

/* The outcome of every item of the job, as rows to write. Strings point into
 * views (urls into the urls array). */
typedef struct outcome_set {
    rf_video_view *views[64];
    size_t n_views[64];
    size_t pages;
    rf_wb_row *rows;
    char (*urls)[RF_PATH_MAX + 16];
    size_t n;
} outcome_set;

static void
outcomes_clear(outcome_set *o)
{
    for (size_t i = 0; i < o->pages; i++) {
        rf_video_views_free(o->views[i], o->n_views[i]);
    }
    free(o->rows);
    free(o->urls);
    memset(o, 0, sizeof(*o));
}

static rf_err
outcomes_load(rf_store *st, const char *job_id, outcome_set *o)
{
    uint32_t after = 0;
    bool more = true;
    size_t cap = 0;
    rf_err rv = RF_OK;

    memset(o, 0, sizeof(*o));
    while (more && o->pages < sizeof(o->views) / sizeof(o->views[0])) {
        rf_video_view *v = NULL;
        size_t n = 0;

        rv = rf_jobs_videos(st, job_id, NULL, after, WB_PAGE, &v, &n, &more);
        if (rv != RF_OK) {
            return rv;
        }
        o->views[o->pages] = v;
        o->n_views[o->pages] = n;
        o->pages++;
        if (o->n + n > cap) {
            cap = o->n + n;
            rf_wb_row *rows = realloc(o->rows, (cap > 0 ? cap : 1) * sizeof(*rows));
            if (rows == NULL) {
                return RF_ENOMEM;
            }
            o->rows = rows;
            char(*urls)[RF_PATH_MAX + 16] = realloc(o->urls, (cap > 0 ? cap : 1) * sizeof(*urls));
            if (urls == NULL) {
                return RF_ENOMEM;
            }
            o->urls = urls;
        }
        for (size_t i = 0; i < n; i++) {
            const rf_video_view *vv = &v[i];
            rf_wb_row *r = &o->rows[o->n];

            after = vv->item.row_number;
            o->urls[o->n][0] = '\0';
            for (size_t k = 0; k < vv->n_units && o->urls[o->n][0] == '\0'; k++) {
                const rf_unit_rec *u = &vv->units[k];
                if (strcmp(u->state, "completed") == 0) {
                    snprintf(o->urls[o->n], sizeof(o->urls[o->n]), "%s%s",
                             strstr(u->output_path, "://") != NULL ? "" : "file://",
                             u->output_path);
                }
            }
            r->row_number = vv->item.row_number;
            r->state = vv->item.state;
            r->url = NULL; /* set below: urls may still move */
            /* NULL clears an error left by an earlier run of the row */
            r->error = vv->item.error_message[0] != '\0' ? vv->item.error_message : NULL;
            o->n++;
        }
    }
    /* the first completed rendition's artifact URL; NULL clears the cell */
    for (size_t i = 0; i < o->n; i++) {
        o->rows[i].url = o->urls[i][0] != '\0' ? o->urls[i] : NULL;
    }
    return rv;
}

static void
write_back(rf_sheets_wiring *wb, const rf_job_rec *job)
{
    json_t *req = json_loads(job->request_json != NULL ? job->request_json : "", 0, NULL);
    const json_t *src = json_object_get(req, "input_source");
    const json_t *cols_obj = json_object_get(json_object_get(req, "writeback"), "columns");
    const char *sheet_id = json_string_value(json_object_get(src, "sheet_id"));
    const char *range = json_string_value(json_object_get(src, "range"));
    wait_ctx wc = {wb, job->id};
    rf_sheets_hooks hooks = {on_wait, keep_going, &wc};
    rf_wb_columns cols;
    rf_wb_stats stats = {0};
    outcome_set o;
    rf_verr verr;
    rf_gerror e;
    rf_err rv;

    memset(&e, 0, sizeof(e));
    memset(&o, 0, sizeof(o));
    if (sheet_id == NULL ||
        rf_wb_columns_parse(cols_obj, "writeback.columns", &cols, &verr) != RF_OK) {
        rf_gerror_set(&e, "writeback_invalid", 0, "", "the job's writeback request is unreadable");
        rv = RF_EINVAL;
        goto fail;
    }
    rv = outcomes_load(wb->st, job->id, &o);
    if (rv != RF_OK) {
        rf_gerror_set(&e, "internal_error", 0, "", "reading the job's rows failed: %s",
                      rf_strerror(rv));
        goto fail;
    }
    rv = rf_sheets_writeback(wb->client, sheet_id, range, &cols, o.rows, o.n, &hooks, &stats, &e);
    set_rate_limited(wb, job->id, false);
    if (rv != RF_OK) {
        goto fail;
    }
    rf_info("sheets: job %s: %zu row outcomes written back (%zu calls, %zu cells)", job->id, o.n,
            stats.calls, stats.updated_cells);
    record(wb->st, job->id, "sheets.writeback",
           json_pack("{s:I, s:I, s:I, s:I}", "rows", (json_int_t)o.n, "calls",
                     (json_int_t)stats.calls, "ranges", (json_int_t)stats.ranges, "updated_cells",
                     (json_int_t)stats.updated_cells));
    outcomes_clear(&o);
    json_decref(req);
    return;
fail:
    set_rate_limited(wb, job->id, false);
    rf_warn("sheets: job %s: write-back failed: %s: %s", job->id, e.code, e.message);
    record(wb->st, job->id, "sheets.writeback_failed",
           json_pack("{s:s, s:s, s:I, s:I}", "error_code", e.code, "message", e.message, "calls",
                     (json_int_t)stats.calls, "updated_cells", (json_int_t)stats.updated_cells));
    outcomes_clear(&o);
    json_decref(req);
}

/* One pass: writes every watched job that ended since its last write. */
static void
scan(rf_sheets_wiring *wb)
{
    size_t i = 0;

    for (;;) {
        char job_id[RF_ID_MAX];
        int64_t written_at;
        rf_job_rec job;
        bool due;
        rf_err rv;

        pthread_mutex_lock(&wb->mu);
        if (wb->stop || i >= wb->n) {
            pthread_mutex_unlock(&wb->mu);
            return;
        }
        copy_str(job_id, wb->w[i].job_id, sizeof(job_id));
        written_at = wb->w[i].written_at;
        pthread_mutex_unlock(&wb->mu);
        i++;

        memset(&job, 0, sizeof(job));
        rv = rf_store_begin(wb->st);
        if (rv != RF_OK) {
            continue;
        }
        rv = rf_store_job_get(wb->st, job_id, &job);
        rf_store_rollback(wb->st); /* read only */
        due = rv == RF_OK && rf_job_state_terminal(job.state) && job.updated_at != written_at;
        if (due) {
            write_back(wb, &job);
            pthread_mutex_lock(&wb->mu);
            for (size_t k = 0; k < wb->n; k++) {
                if (strcmp(wb->w[k].job_id, job_id) == 0) {
                    wb->w[k].written_at = job.updated_at;
                }
            }
            pthread_mutex_unlock(&wb->mu);
        }
        rf_job_rec_clear(&job);
    }
}

static void *
worker(void *arg)
{
    rf_sheets_wiring *wb = arg;

    pthread_mutex_lock(&wb->mu);
    while (!wb->stop) {
        struct timespec ts;
        int64_t poll = wb->cfg->sheets_writeback_poll_ms;

        pthread_mutex_unlock(&wb->mu);
        scan(wb);
        pthread_mutex_lock(&wb->mu);
        if (wb->stop) {
            break;
        }
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += poll / 1000;
        ts.tv_nsec += (poll % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&wb->cv, &wb->mu, &ts);
    }
    pthread_mutex_unlock(&wb->mu);
    return NULL;
}

rf_err
rf_sheets_wiring_start(rf_store *st, const rf_coord_config *cfg, rf_sheets_client *c,
                       rf_sheets_wiring **out)
{
    rf_sheets_wiring *wb = calloc(1, sizeof(*wb));

    *out = NULL;
    if (wb == NULL) {
        return RF_ENOMEM;
    }
    wb->st = st;
    wb->cfg = cfg;
    wb->client = c;
    pthread_mutex_init(&wb->mu, NULL);
    pthread_cond_init(&wb->cv, NULL);
    if (pthread_create(&wb->thread, NULL, worker, wb) != 0) {
        pthread_cond_destroy(&wb->cv);
        pthread_mutex_destroy(&wb->mu);
        free(wb);
        return RF_EIO;
    }
    wb->started = true;
    *out = wb;
    return RF_OK;
}

void
rf_sheets_wiring_stop(rf_sheets_wiring **w)
{
    rf_sheets_wiring *wb;

    if (w == NULL || *w == NULL) {
        return;
    }
    wb = *w;
    pthread_mutex_lock(&wb->mu);
    wb->stop = true;
    pthread_cond_broadcast(&wb->cv);
    pthread_mutex_unlock(&wb->mu);
    if (wb->started) {
        pthread_join(wb->thread, NULL);
    }
    pthread_cond_destroy(&wb->cv);
    pthread_mutex_destroy(&wb->mu);
    free(wb->w);
    free(wb);
    *w = NULL;
}

rf_err
rf_sheets_wiring_watch(rf_sheets_wiring *wb, const char *job_id)
{
    rf_err rv = RF_OK;

    if (wb == NULL) {
        return RF_OK;
    }
    pthread_mutex_lock(&wb->mu);
    if (wb->n == wb->cap) {
        size_t cap = wb->cap > 0 ? wb->cap * 2 : 16;
        watch *grown = realloc(wb->w, cap * sizeof(*grown));
        if (grown == NULL) {
            rv = RF_ENOMEM;
            goto out;
        }
        wb->w = grown;
        wb->cap = cap;
    }
    memset(&wb->w[wb->n], 0, sizeof(wb->w[wb->n]));
    copy_str(wb->w[wb->n].job_id, job_id, sizeof(wb->w[wb->n].job_id));
    wb->n++;
out:
    pthread_mutex_unlock(&wb->mu);
    return rv;
}

bool
rf_sheets_wiring_rate_limited(rf_sheets_wiring *wb, const char *job_id)
{
    bool on = false;

    if (wb == NULL || job_id == NULL) {
        return false;
    }
    pthread_mutex_lock(&wb->mu);
    for (size_t i = 0; i < wb->n; i++) {
        if (strcmp(wb->w[i].job_id, job_id) == 0) {
            on = wb->w[i].rate_limited;
        }
    }
    pthread_mutex_unlock(&wb->mu);
    return on;
}
