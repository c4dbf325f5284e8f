/* Google Sheets in the running coordinator: configuration, API statuses and
 * the write-back worker (see sheets_wiring.h). */
#include "sheets_wiring.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "holdback.h"
#include "jobs.h"
#include "rf_log.h"
#include "rf_util.h"
#include "sources.h"
#include "validate.h"
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

/* ---- the workers ---- */

/* Two threads, so that a write waiting on Google's quota never holds back a
 * job's rows (nor the reverse): the reader reads the sheets of jobs created
 * while Google answered 429, the writer writes finished jobs' results. What
 * is left to do is in the database (jobs.ingest, jobs.written_back_at), so
 * a restart picks up where the last process stopped. */
struct rf_sheets_wiring {
    rf_store *st;
    const rf_coord_config *cfg;
    rf_sheets_client *client;
    pthread_t reader, writer;
    bool reader_started, writer_started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
};

typedef struct wait_ctx {
    rf_sheets_wiring *wb;
    const char *job_id;
    rf_hold_reason reason;
    int64_t checked_at; /* reader: when the job's state was last looked at */
} wait_ctx;

static bool
stopping(rf_sheets_wiring *wb)
{
    bool stop;

    pthread_mutex_lock(&wb->mu);
    stop = wb->stop;
    pthread_mutex_unlock(&wb->mu);
    return stop;
}

static bool
on_wait(void *ctx, const char *reason, int64_t wait_ms, int attempt)
{
    wait_ctx *wc = ctx;

    rf_info("sheets: %s of job %s waits %lld ms (%s, retry %d)",
            wc->reason == RF_HOLD_SHEETS_READ ? "reading the rows" : "write-back", wc->job_id,
            (long long)wait_ms, reason, attempt);
    if (rf_holdback_set(wc->wb->cfg->holdback, wc->job_id, wc->reason, true) != RF_OK) {
        rf_warn("sheets: job %s: out of memory marking it rate_limited", wc->job_id);
    }
    return true;
}

/* A job canceled (or past its deadline) while its rows wait for Google's
 * quota stops waiting; looked at about once a second. */
static bool
job_still_open(rf_sheets_wiring *wb, const char *job_id)
{
    rf_job_rec job;
    bool open = true;

    if (rf_store_begin(wb->st) != RF_OK) {
        return true;
    }
    if (rf_store_job_get(wb->st, job_id, &job) == RF_OK) {
        open = !rf_job_state_terminal(job.state);
    }
    rf_store_rollback(wb->st); /* read only */
    rf_job_rec_clear(&job);
    return open;
}

static bool
keep_going(void *ctx)
{
    wait_ctx *wc = ctx;
    int64_t now = rf_mono_ms();

    if (stopping(wc->wb)) {
        return false;
    }
    if (wc->reason == RF_HOLD_SHEETS_READ && now - wc->checked_at >= 1000) {
        wc->checked_at = now;
        return job_still_open(wc->wb, wc->job_id);
    }
    return true;
}

/* Writes the event and, when written_updated_at > 0, that the results of
 * the job as of that updated_at are written, in one transaction. */
static rf_err
record(rf_store *st, const char *job_id, const char *type, json_t *data, int64_t written_updated_at)
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
        if (rv == RF_OK && written_updated_at > 0) {
            rv = rf_store_job_set_written_back(st, job_id, written_updated_at);
        }
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

/* Google's quota or an outage: worth trying again later. */
static bool
worth_waiting(const char *code)
{
    return strcmp(code, "rate_limited") == 0 || strcmp(code, "service_unavailable") == 0;
}

typedef enum wb_outcome {
    WB_DONE,    /* written, or failed for good: recorded */
    WB_LATER,   /* Google's quota or an outage: the job stays due */
    WB_STOPPED, /* stopping: the job stays due for the next process */
} wb_outcome;

/* Writes the job's outcomes into its sheet and records how it went. */
static wb_outcome
write_back(rf_sheets_wiring *wb, const rf_job_rec *job)
{
    json_t *req = json_loads(job->request_json != NULL ? job->request_json : "", 0, NULL);
    const json_t *src = json_object_get(req, "input_source");
    const json_t *cols_obj = json_object_get(json_object_get(req, "writeback"), "columns");
    const char *sheet_id = json_string_value(json_object_get(src, "sheet_id"));
    const char *range = json_string_value(json_object_get(src, "range"));
    wait_ctx wc = {wb, job->id, RF_HOLD_SHEETS_WRITE, 0};
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
    if (rv != RF_OK) {
        bool stop = stopping(wb);
        if (stop || (worth_waiting(e.code) &&
                     (rf_now_ms() - job->updated_at) / 1000 < wb->cfg->sheets_patience_s)) {
            rf_info("sheets: job %s: write-back %s (%s)", job->id,
                    stop ? "left for the next start" : "tried again later", e.code);
            outcomes_clear(&o);
            json_decref(req);
            return stop ? WB_STOPPED : WB_LATER; /* still rate_limited meanwhile */
        }
        goto fail;
    }
    rf_holdback_set(wb->cfg->holdback, job->id, RF_HOLD_SHEETS_WRITE, false);
    rf_info("sheets: job %s: %zu row outcomes written back (%zu calls, %zu cells)", job->id, o.n,
            stats.calls, stats.updated_cells);
    record(wb->st, job->id, "sheets.writeback",
           json_pack("{s:I, s:I, s:I, s:I}", "rows", (json_int_t)o.n, "calls",
                     (json_int_t)stats.calls, "ranges", (json_int_t)stats.ranges, "updated_cells",
                     (json_int_t)stats.updated_cells),
           job->updated_at);
    outcomes_clear(&o);
    json_decref(req);
    return WB_DONE;
fail:
    rf_holdback_set(wb->cfg->holdback, job->id, RF_HOLD_SHEETS_WRITE, false);
    rf_warn("sheets: job %s: write-back failed: %s: %s", job->id, e.code, e.message);
    record(wb->st, job->id, "sheets.writeback_failed",
           json_pack("{s:s, s:s, s:I, s:I}", "error_code", e.code, "message", e.message, "calls",
                     (json_int_t)stats.calls, "updated_cells", (json_int_t)stats.updated_cells),
           job->updated_at);
    outcomes_clear(&o);
    json_decref(req);
    return WB_DONE;
}

typedef rf_err (*due_fn)(rf_store *st, size_t max, char (*ids)[RF_ID_MAX], size_t *n);

/* One pass: each job the due query lists, loaded and handed to handle, which
 * returns false to end the pass (stopping). */
static void
scan_due(rf_sheets_wiring *wb, due_fn due, bool (*handle)(rf_sheets_wiring *, const rf_job_rec *))
{
    char ids[16][RF_ID_MAX];
    size_t n = 0;

    if (rf_store_begin(wb->st) != RF_OK) {
        return;
    }
    if (due(wb->st, sizeof(ids) / sizeof(ids[0]), ids, &n) != RF_OK) {
        n = 0;
    }
    rf_store_rollback(wb->st); /* read only */
    for (size_t i = 0; i < n && !stopping(wb); i++) {
        rf_job_rec job;
        bool ok, go = true;

        if (rf_store_begin(wb->st) != RF_OK) {
            return;
        }
        ok = rf_store_job_get(wb->st, ids[i], &job) == RF_OK;
        rf_store_rollback(wb->st); /* read only */
        if (ok) {
            go = handle(wb, &job);
        }
        rf_job_rec_clear(&job);
        if (!go) {
            return;
        }
    }
}

static bool
write_one(rf_sheets_wiring *wb, const rf_job_rec *job)
{
    return write_back(wb, job) != WB_STOPPED;
}

/* The writer: every job with write-back that ended since its results were
 * last written. */
static void
scan_writes(rf_sheets_wiring *wb)
{
    scan_due(wb, rf_store_jobs_writeback_due, write_one);
}

/* ---- the reader ---- */

/* The source and validation level from the job's stored request. */
static rf_err
stored_source(const rf_coord_config *cfg, const rf_job_rec *job, rf_source *src, rf_vlevel *level,
              rf_verr *verr)
{
    json_t *req = json_loads(job->request_json != NULL ? job->request_json : "", 0, NULL);
    const char *lv = json_string_value(json_object_get(req, "validation_level"));
    rf_err rv;

    *level = RF_VLEVEL_MODERATE;
    if (lv != NULL && !rf_vlevel_parse(lv, level)) {
        *level = RF_VLEVEL_MODERATE;
    }
    rv = rf_source_parse(json_object_get(req, "input_source"), cfg, src, verr);
    json_decref(req);
    return rv;
}

/* Reads the rows of one job created before its sheet could be read; true
 * (the pass goes on). */
static bool
ingest(rf_sheets_wiring *wb, const rf_job_rec *job)
{
    wait_ctx wc = {wb, job->id, RF_HOLD_SHEETS_READ, rf_mono_ms()};
    rf_sheets_hooks hooks = {on_wait, keep_going, &wc};
    int64_t waited_s = (rf_now_ms() - job->created_at) / 1000;
    rf_source src;
    rf_rows rows = {0};
    rf_vlevel level;
    rf_verr verr;
    const char *code, *message;
    rf_err rv;

    memset(&src, 0, sizeof(src));
    memset(&verr, 0, sizeof(verr));
    rv = stored_source(wb->cfg, job, &src, &level, &verr);
    if (rv == RF_OK) {
        src.hooks = &hooks;
        rv = rf_source_read(&src, wb->cfg, &rows, &verr);
    }
    if (rv == RF_OK) {
        rv = rf_jobs_ingest(wb->st, wb->cfg, job->id, level, &rows, src.sheet_read_ms, rf_now_ms());
        if (rv != RF_OK && rv != RF_ECONFLICT) {
            rf_warn("sheets: job %s: storing its rows failed: %s", job->id, rf_strerror(rv));
        }
        goto out;
    }
    code = src.sheet_err.code[0] != '\0' ? src.sheet_err.code : verr.reason;
    message = src.sheet_err.code[0] != '\0' ? src.sheet_err.message : verr.message;
    if (strcmp(code, "canceled") == 0) {
        goto out; /* stopping, or the job ended: nothing to record */
    }
    /* Google's quota or an outage: the job keeps waiting, up to a limit. */
    if (worth_waiting(code) && waited_s < wb->cfg->sheets_patience_s) {
        rf_holdback_set(wb->cfg->holdback, job->id, RF_HOLD_SHEETS_READ,
                        strcmp(code, "rate_limited") == 0);
        rf_info("sheets: job %s: its sheet is still not readable (%s); trying again", job->id,
                code);
        rf_rows_free(&rows);
        rf_source_clear(&src);
        return true;
    }
    rf_warn("sheets: job %s fails: its rows could not be read: %s: %s", job->id, code, message);
    rv = rf_jobs_ingest_failed(wb->st, job->id, code[0] != '\0' ? code : "sheet_unreadable",
                               message, rf_now_ms());
    if (rv != RF_OK && rv != RF_ECONFLICT) {
        rf_warn("sheets: job %s: recording the failure failed: %s", job->id, rf_strerror(rv));
    }
out:
    rf_holdback_set(wb->cfg->holdback, job->id, RF_HOLD_SHEETS_READ, false);
    rf_rows_free(&rows);
    rf_source_clear(&src);
    return true;
}

/* The reader: jobs whose rows are still to be read, oldest first. */
static void
scan_reads(rf_sheets_wiring *wb)
{
    scan_due(wb, rf_store_jobs_ingest_due, ingest);
}

/* ---- threads ---- */

typedef struct worker_arg {
    rf_sheets_wiring *wb;
    void (*scan)(rf_sheets_wiring *wb);
} worker_arg;

static void
wait_poll(rf_sheets_wiring *wb)
{
    struct timespec ts;
    int64_t poll = wb->cfg->sheets_writeback_poll_ms;

    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += poll / 1000;
    ts.tv_nsec += (poll % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&wb->cv, &wb->mu, &ts);
}

static void *
worker(void *arg)
{
    worker_arg wa = *(worker_arg *)arg;
    rf_sheets_wiring *wb = wa.wb;

    free(arg);
    pthread_mutex_lock(&wb->mu);
    while (!wb->stop) {
        pthread_mutex_unlock(&wb->mu);
        wa.scan(wb);
        pthread_mutex_lock(&wb->mu);
        if (!wb->stop) {
            wait_poll(wb);
        }
    }
    pthread_mutex_unlock(&wb->mu);
    return NULL;
}

static bool
start_worker(rf_sheets_wiring *wb, pthread_t *t, void (*scan)(rf_sheets_wiring *wb))
{
    worker_arg *wa = malloc(sizeof(*wa));

    if (wa == NULL) {
        return false;
    }
    wa->wb = wb;
    wa->scan = scan;
    if (pthread_create(t, NULL, worker, wa) != 0) {
        free(wa);
        return false;
    }
    return true;
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
    wb->reader_started = start_worker(wb, &wb->reader, scan_reads);
    wb->writer_started = wb->reader_started && start_worker(wb, &wb->writer, scan_writes);
    if (!wb->writer_started) {
        rf_sheets_wiring_stop(&wb);
        return RF_EIO;
    }
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
    if (wb->reader_started) {
        pthread_join(wb->reader, NULL);
    }
    if (wb->writer_started) {
        pthread_join(wb->writer, NULL);
    }
    pthread_cond_destroy(&wb->cv);
    pthread_mutex_destroy(&wb->mu);
    free(wb);
    *w = NULL;
}

void
rf_sheets_wiring_kick(rf_sheets_wiring *wb)
{
    if (wb == NULL) {
        return;
    }
    pthread_mutex_lock(&wb->mu);
    pthread_cond_broadcast(&wb->cv);
    pthread_mutex_unlock(&wb->mu);
}
