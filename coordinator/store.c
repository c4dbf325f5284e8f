/* SQLite persistence. Statements are prepared per call: the store is not a
 * hot path compared with rendering, and it keeps every function
 * self-contained. */
#include "store.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "rf_log.h"
#include "rf_util.h"

/* An event written (or a notification queued) in the open transaction,
 * handed to the event hook once the transaction commits. */
typedef struct pending_event {
    int64_t id; /* events.id; 0 for a notification that is not stored */
    char job_id[RF_ID_MAX];
    char type[RF_NAME_MAX];
    char *data_json;
    int64_t at_ms;
} pending_event;

struct rf_store {
    sqlite3 *db;
    pthread_mutex_t mu;
    bool in_tx;
    rf_store_event_fn hook; /* NULL: events are only stored */
    void *hook_ctx;
    pending_event *pending; /* this transaction's events, for the hook */
    size_t n_pending, cap_pending;
};

/* Migrations: entry i moves the schema from user_version i to i + 1. Never
 * edit a released entry; append a new one. */
static const char *const migrations[] = {
    /* 1: initial schema */
    "CREATE TABLE jobs ("
    " id TEXT PRIMARY KEY,"
    " tenant TEXT NOT NULL DEFAULT 'default',"
    " title TEXT NOT NULL,"
    " priority INTEGER NOT NULL DEFAULT 1,"
    " state TEXT NOT NULL,"
    " request_json TEXT NOT NULL,"
    " input_json TEXT NOT NULL DEFAULT '{}',"
    " format TEXT NOT NULL,"
    " video_codec TEXT NOT NULL,"
    " audio_codec TEXT NOT NULL,"
    " resolution TEXT NOT NULL,"
    " output_bucket TEXT NOT NULL,"
    " template_id TEXT NOT NULL,"
    " overrides_json TEXT NOT NULL DEFAULT '{}',"
    " processing_deadline_ms INTEGER,"
    " callback_url TEXT,"
    " created_at INTEGER NOT NULL,"
    " updated_at INTEGER NOT NULL,"
    " started_at INTEGER,"
    " finished_at INTEGER,"
    " error_code TEXT,"
    " error_message TEXT);"
    "CREATE INDEX jobs_dispatch ON jobs(state, priority DESC, created_at);"
    "CREATE INDEX jobs_created ON jobs(created_at);"
    "CREATE TABLE items ("
    " id TEXT PRIMARY KEY,"
    " job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,"
    " row_number INTEGER NOT NULL,"
    " state TEXT NOT NULL,"
    " data_json TEXT NOT NULL DEFAULT '{}',"
    " title TEXT NOT NULL DEFAULT '',"
    " error_code TEXT,"
    " error_message TEXT,"
    " priority INTEGER NOT NULL DEFAULT 1,"
    " created_at INTEGER NOT NULL,"
    " updated_at INTEGER NOT NULL);"
    "CREATE INDEX items_job_row ON items(job_id, row_number);"
    "CREATE INDEX items_job_state ON items(job_id, state);"
    "CREATE TABLE units ("
    " id TEXT PRIMARY KEY,"
    " item_id TEXT NOT NULL REFERENCES items(id) ON DELETE CASCADE,"
    " job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,"
    " rendition TEXT NOT NULL,"
    " width INTEGER NOT NULL,"
    " height INTEGER NOT NULL,"
    " fps INTEGER NOT NULL,"
    " duration_ms INTEGER NOT NULL,"
    " frames_total INTEGER NOT NULL,"
    " frames_done INTEGER NOT NULL DEFAULT 0,"
    " state TEXT NOT NULL,"
    " lease_id TEXT,"
    " agent_id TEXT,"
    " lease_expires_at INTEGER,"
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " output_path TEXT NOT NULL,"
    " size_bytes INTEGER,"
    " sha256 TEXT,"
    " media_duration_ms INTEGER,"
    " encoder TEXT,"
    " render_ms INTEGER,"
    " error_code TEXT,"
    " error_message TEXT,"
    " created_at INTEGER NOT NULL,"
    " updated_at INTEGER NOT NULL);"
    "CREATE INDEX units_state_job ON units(state, job_id);"
    "CREATE INDEX units_item ON units(item_id, rendition);"
    "CREATE INDEX units_job ON units(job_id);"
    "CREATE INDEX units_lease_expiry ON units(state, lease_expires_at);"
    "CREATE TABLE agents ("
    " id TEXT PRIMARY KEY,"
    " hostname TEXT NOT NULL,"
    " capabilities_json TEXT NOT NULL,"
    " first_seen INTEGER NOT NULL,"
    " last_seen INTEGER NOT NULL);"
    "CREATE TABLE events ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " job_id TEXT,"
    " type TEXT NOT NULL,"
    " data_json TEXT NOT NULL,"
    " created_at INTEGER NOT NULL);"
    "CREATE INDEX events_job ON events(job_id, id);",
    /* 2: tenants and owners, deadlines, a stored progress sort key,
     * idempotency records, custom templates */
    "ALTER TABLE jobs ADD COLUMN created_by TEXT;"
    "ALTER TABLE jobs ADD COLUMN deadline_at INTEGER;"
    "ALTER TABLE jobs ADD COLUMN permille INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE jobs ADD COLUMN template_json TEXT;"
    "UPDATE jobs SET deadline_at = created_at + processing_deadline_ms"
    " WHERE processing_deadline_ms IS NOT NULL;"
    "UPDATE jobs SET permille = 1000 WHERE state IN ('completed', 'failed', 'canceled');"
    "CREATE INDEX jobs_tenant_created ON jobs(tenant, created_at, id);"
    "CREATE INDEX jobs_tenant_updated ON jobs(tenant, updated_at, id);"
    "CREATE INDEX jobs_tenant_permille ON jobs(tenant, permille, id);"
    "CREATE INDEX jobs_deadline ON jobs(deadline_at) WHERE deadline_at IS NOT NULL;"
    "CREATE TABLE idempotency ("
    " tenant TEXT NOT NULL,"
    " key TEXT NOT NULL,"
    " request_hash TEXT NOT NULL,"
    " state TEXT NOT NULL,"
    " status INTEGER,"
    " response_body TEXT,"
    " job_id TEXT,"
    " created_at INTEGER NOT NULL,"
    " updated_at INTEGER NOT NULL,"
    " PRIMARY KEY (tenant, key));"
    "CREATE INDEX idempotency_created ON idempotency(created_at);"
    "CREATE TABLE templates ("
    " tenant TEXT NOT NULL,"
    " id TEXT NOT NULL,"
    " name TEXT NOT NULL,"
    " description TEXT NOT NULL DEFAULT '',"
    " settings_json TEXT NOT NULL,"
    " created_by TEXT,"
    " created_at INTEGER NOT NULL,"
    " updated_at INTEGER NOT NULL,"
    " PRIMARY KEY (tenant, id));",
    /* 3: live progress: webhook outbox, attempts, disabled endpoints,
     * per-tenant webhook secrets; poster and captions of each unit */
    "CREATE TABLE webhook_deliveries ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " msg_id TEXT NOT NULL UNIQUE, job_id TEXT NOT NULL, tenant TEXT NOT NULL,"
    " event_type TEXT NOT NULL, url TEXT NOT NULL, body TEXT NOT NULL,"
    " state TEXT NOT NULL DEFAULT 'pending',"
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " next_attempt_at INTEGER NOT NULL, claimed_until INTEGER NOT NULL DEFAULT 0,"
    " created_at INTEGER NOT NULL, finished_at INTEGER);"
    "CREATE INDEX webhook_deliveries_pending ON webhook_deliveries(state, job_id, id);"
    "CREATE INDEX webhook_deliveries_job ON webhook_deliveries(job_id, id);"
    "CREATE TABLE webhook_attempts ("
    " delivery_id INTEGER NOT NULL REFERENCES webhook_deliveries(id) ON DELETE CASCADE,"
    " attempt INTEGER NOT NULL, started_at INTEGER NOT NULL, duration_ms INTEGER NOT NULL,"
    " status_code INTEGER NOT NULL, error TEXT NOT NULL, outcome TEXT NOT NULL,"
    " next_attempt_at INTEGER, PRIMARY KEY (delivery_id, attempt));"
    "CREATE TABLE webhook_disabled_endpoints (url TEXT PRIMARY KEY, disabled_at INTEGER NOT NULL);"
    "CREATE TABLE webhook_secrets (tenant TEXT PRIMARY KEY, secret TEXT NOT NULL,"
    " created_at INTEGER NOT NULL);"
    "ALTER TABLE units ADD COLUMN poster_path TEXT;"
    "ALTER TABLE units ADD COLUMN captions_path TEXT;",
    /* 4: rows read in the background (a sheet that answered 429 while the
     * job was created), and write-back bookkeeping that survives a restart.
     * Jobs finished before this version count as written back. */
    "ALTER TABLE jobs ADD COLUMN ingest TEXT;"
    "ALTER TABLE jobs ADD COLUMN writeback INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE jobs ADD COLUMN written_back_at INTEGER;"
    "UPDATE jobs SET writeback = 1 WHERE json_valid(request_json)"
    " AND json_type(request_json, '$.writeback') = 'object';"
    "UPDATE jobs SET written_back_at = updated_at"
    " WHERE writeback = 1 AND state IN ('completed', 'failed', 'canceled');"
    "CREATE INDEX jobs_ingest ON jobs(created_at) WHERE ingest IS NOT NULL;"
    "CREATE INDEX jobs_writeback ON jobs(updated_at) WHERE writeback = 1;",
    /* 5: the webhook outbox's cursor: the last event whose delivery is
     * queued, moved in the delivery's transaction, so that events committed
     * but not yet handed to the outbox when the process stopped are queued
     * at the next start. Existing databases start at their last event. */
    "CREATE TABLE webhook_cursor (id INTEGER PRIMARY KEY CHECK (id = 1),"
    " event_id INTEGER NOT NULL);"
    "INSERT INTO webhook_cursor (id, event_id) SELECT 1, COALESCE(MAX(id), 0) FROM events;",
};

#define N_MIGRATIONS ((int)(sizeof(migrations) / sizeof(migrations[0])))

static void pending_clear(rf_store *st);

static rf_err
db_fail(rf_store *st, const char *what)
{
    rf_error("store: %s: %s", what, sqlite3_errmsg(st->db));
    return RF_ESTORE;
}

static rf_err
exec(rf_store *st, const char *sql, const char *what)
{
    char *msg = NULL;

    if (sqlite3_exec(st->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        rf_error("store: %s: %s", what, msg != NULL ? msg : sqlite3_errmsg(st->db));
        sqlite3_free(msg);
        return RF_ESTORE;
    }
    return RF_OK;
}

static rf_err
prep(rf_store *st, const char *sql, sqlite3_stmt **out)
{
    if (sqlite3_prepare_v2(st->db, sql, -1, out, NULL) != SQLITE_OK) {
        *out = NULL;
        return db_fail(st, "prepare");
    }
    return RF_OK;
}

/* Runs a statement that returns no rows and finalizes it. */
static rf_err
step_done(rf_store *st, sqlite3_stmt *s, const char *what)
{
    rf_err rv = RF_OK;

    if (sqlite3_step(s) != SQLITE_DONE) {
        rv = db_fail(st, what);
    }
    sqlite3_finalize(s);
    return rv;
}

static void
bind_text(sqlite3_stmt *s, int i, const char *v)
{
    sqlite3_bind_text(s, i, v, -1, SQLITE_TRANSIENT);
}

static void
bind_text_opt(sqlite3_stmt *s, int i, const char *v)
{
    if (v == NULL || v[0] == '\0') {
        sqlite3_bind_null(s, i);
    } else {
        sqlite3_bind_text(s, i, v, -1, SQLITE_TRANSIENT);
    }
}

static void
bind_int_opt(sqlite3_stmt *s, int i, int64_t v)
{
    if (v == 0) {
        sqlite3_bind_null(s, i);
    } else {
        sqlite3_bind_int64(s, i, v);
    }
}

static void
col_text(sqlite3_stmt *s, int i, char *dst, size_t len)
{
    const unsigned char *v = sqlite3_column_text(s, i);
    rf_err rv = rf_strlcpy(dst, v != NULL ? (const char *)v : "", len);
    (void)rv; /* values were length-checked when written */
}

static char *
col_dup(sqlite3_stmt *s, int i)
{
    const unsigned char *v = sqlite3_column_text(s, i);
    return strdup(v != NULL ? (const char *)v : "");
}

int
rf_store_schema_version(void)
{
    return N_MIGRATIONS;
}

static rf_err
read_user_version(rf_store *st, int *out)
{
    sqlite3_stmt *s = NULL;
    rf_err rv = prep(st, "PRAGMA user_version", &s);

    if (rv != RF_OK) {
        return rv;
    }
    if (sqlite3_step(s) != SQLITE_ROW) {
        rv = db_fail(st, "read user_version");
    } else {
        *out = sqlite3_column_int(s, 0);
    }
    sqlite3_finalize(s);
    return rv;
}

static rf_err
migrate(rf_store *st)
{
    int version = 0;
    rf_err rv = read_user_version(st, &version);

    if (rv != RF_OK) {
        return rv;
    }
    if (version > N_MIGRATIONS) {
        rf_error("store: database schema version %d is newer than this coordinator's %d", version,
                 N_MIGRATIONS);
        return RF_EVERSION;
    }
    for (int v = version; v < N_MIGRATIONS; v++) {
        char pragma[64];
        rv = exec(st, "BEGIN IMMEDIATE", "begin migration");
        if (rv != RF_OK) {
            return rv;
        }
        snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d", v + 1);
        rv = exec(st, migrations[v], "migration");
        if (rv == RF_OK) {
            rv = exec(st, pragma, "set user_version");
        }
        if (rv == RF_OK) {
            rv = exec(st, "COMMIT", "commit migration");
        }
        if (rv != RF_OK) {
            exec(st, "ROLLBACK", "rollback migration");
            return rv;
        }
        rf_info("store: migrated schema to version %d", v + 1);
    }
    return RF_OK;
}

rf_err
rf_store_open(const char *path, rf_store **out)
{
    rf_store *st = NULL;
    rf_err rv = RF_OK;
    int rc;

    *out = NULL;
    st = calloc(1, sizeof(*st));
    if (st == NULL) {
        return RF_ENOMEM;
    }
    pthread_mutex_init(&st->mu, NULL);
    rc = sqlite3_open_v2(path, &st->db,
                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, NULL);
    if (rc != SQLITE_OK) {
        rf_error("store: cannot open %s: %s", path,
                 st->db != NULL ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc));
        rv = RF_ESTORE;
        goto out;
    }
    sqlite3_busy_timeout(st->db, 5000);
    rv = exec(st, "PRAGMA journal_mode = WAL", "enable WAL");
    if (rv == RF_OK) {
        rv = exec(st, "PRAGMA synchronous = NORMAL", "set synchronous");
    }
    if (rv == RF_OK) {
        rv = exec(st, "PRAGMA foreign_keys = ON", "enable foreign keys");
    }
    if (rv == RF_OK) {
        rv = migrate(st);
    }
out:
    if (rv != RF_OK) {
        rf_store_close(&st);
        return rv;
    }
    *out = st;
    return RF_OK;
}

void
rf_store_close(rf_store **stp)
{
    rf_store *st;

    if (stp == NULL || *stp == NULL) {
        return;
    }
    st = *stp;
    if (st->db != NULL) {
        sqlite3_close_v2(st->db);
    }
    pthread_mutex_destroy(&st->mu);
    pending_clear(st);
    free(st->pending);
    free(st);
    *stp = NULL;
}

rf_err
rf_store_user_version(rf_store *st, int *out)
{
    rf_err rv;

    pthread_mutex_lock(&st->mu);
    rv = read_user_version(st, out);
    pthread_mutex_unlock(&st->mu);
    return rv;
}

rf_err
rf_store_begin(rf_store *st)
{
    rf_err rv;

    pthread_mutex_lock(&st->mu);
    rv = exec(st, "BEGIN IMMEDIATE", "begin");
    if (rv != RF_OK) {
        pthread_mutex_unlock(&st->mu);
        return rv;
    }
    st->in_tx = true;
    return RF_OK;
}

static void
pending_clear(rf_store *st)
{
    for (size_t i = 0; i < st->n_pending; i++) {
        free(st->pending[i].data_json);
    }
    st->n_pending = 0;
}

rf_err
rf_store_commit(rf_store *st)
{
    rf_err rv = exec(st, "COMMIT", "commit");

    if (rv != RF_OK) {
        exec(st, "ROLLBACK", "rollback after failed commit");
    }
    /* Still under the mutex, so hooks see events in commit order; the hook
     * only queues them (store.h), it never publishes from here. */
    for (size_t i = 0; rv == RF_OK && st->hook != NULL && i < st->n_pending; i++) {
        pending_event *e = &st->pending[i];
        st->hook(st->hook_ctx, e->id, e->job_id, e->type, e->data_json, e->at_ms);
    }
    pending_clear(st);
    st->in_tx = false;
    pthread_mutex_unlock(&st->mu);
    return rv;
}

void
rf_store_rollback(rf_store *st)
{
    if (st == NULL || !st->in_tx) {
        return;
    }
    exec(st, "ROLLBACK", "rollback");
    pending_clear(st); /* nothing of a rolled-back transaction is published */
    st->in_tx = false;
    pthread_mutex_unlock(&st->mu);
}

void
rf_store_set_event_hook(rf_store *st, rf_store_event_fn fn, void *ctx)
{
    pthread_mutex_lock(&st->mu);
    st->hook = fn;
    st->hook_ctx = ctx;
    pthread_mutex_unlock(&st->mu);
}

rf_err
rf_store_notify(rf_store *st, const char *job_id, const char *type, const char *data_json,
                int64_t now_ms)
{
    pending_event *e;

    if (st->hook == NULL) {
        return RF_OK;
    }
    if (st->n_pending == st->cap_pending) {
        size_t cap = st->cap_pending == 0 ? 16 : st->cap_pending * 2;
        pending_event *p = realloc(st->pending, cap * sizeof(*p));
        if (p == NULL) {
            return RF_ENOMEM;
        }
        st->pending = p;
        st->cap_pending = cap;
    }
    e = &st->pending[st->n_pending];
    memset(e, 0, sizeof(*e));
    rf_strlcpy(e->job_id, job_id != NULL ? job_id : "", sizeof(e->job_id));
    rf_strlcpy(e->type, type, sizeof(e->type));
    e->data_json = strdup(data_json != NULL ? data_json : "{}");
    if (e->data_json == NULL) {
        return RF_ENOMEM;
    }
    e->at_ms = now_ms;
    st->n_pending++;
    return RF_OK;
}

/* ---- jobs ---- */

#define JOB_COLS                                                                                   \
    "id, tenant, title, priority, state, request_json, input_json, overrides_json, format,"        \
    " video_codec, audio_codec, resolution, output_bucket, template_id, processing_deadline_ms,"   \
    " callback_url, created_at, updated_at, started_at, finished_at, error_code, error_message,"   \
    " created_by, deadline_at, permille, template_json, ingest, writeback, written_back_at"

rf_err
rf_store_job_insert(rf_store *st, const rf_job_rec *j)
{
    sqlite3_stmt *s = NULL;
    rf_err rv = prep(st,
                     "INSERT INTO jobs (" JOB_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9,"
                     " ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24,"
                     " ?25, ?26, ?27, ?28, ?29)",
                     &s);

    if (rv != RF_OK) {
        return rv;
    }
    bind_text(s, 1, j->id);
    bind_text(s, 2, j->tenant[0] != '\0' ? j->tenant : "default");
    bind_text(s, 3, j->title);
    sqlite3_bind_int(s, 4, j->priority);
    bind_text(s, 5, j->state);
    bind_text(s, 6, j->request_json != NULL ? j->request_json : "{}");
    bind_text(s, 7, j->input_json != NULL ? j->input_json : "{}");
    bind_text(s, 8, j->overrides_json != NULL ? j->overrides_json : "{}");
    bind_text(s, 9, j->format);
    bind_text(s, 10, j->video_codec);
    bind_text(s, 11, j->audio_codec);
    bind_text(s, 12, j->resolution);
    bind_text(s, 13, j->output_bucket);
    bind_text(s, 14, j->template_id);
    bind_int_opt(s, 15, j->processing_deadline_ms);
    bind_text_opt(s, 16, j->callback_url);
    sqlite3_bind_int64(s, 17, j->created_at);
    sqlite3_bind_int64(s, 18, j->updated_at);
    bind_int_opt(s, 19, j->started_at);
    bind_int_opt(s, 20, j->finished_at);
    bind_text_opt(s, 21, j->error_code);
    bind_text_opt(s, 22, j->error_message);
    bind_text_opt(s, 23, j->created_by);
    bind_int_opt(s, 24, j->deadline_at);
    sqlite3_bind_int(s, 25, j->permille);
    bind_text_opt(s, 26, j->template_json);
    bind_text_opt(s, 27, j->ingest);
    sqlite3_bind_int(s, 28, j->writeback ? 1 : 0);
    bind_int_opt(s, 29, j->written_back_at);
    return step_done(st, s, "insert job");
}

static rf_err
read_job(sqlite3_stmt *s, rf_job_rec *j)
{
    memset(j, 0, sizeof(*j));
    col_text(s, 0, j->id, sizeof(j->id));
    col_text(s, 1, j->tenant, sizeof(j->tenant));
    col_text(s, 2, j->title, sizeof(j->title));
    j->priority = sqlite3_column_int(s, 3);
    col_text(s, 4, j->state, sizeof(j->state));
    j->request_json = col_dup(s, 5);
    j->input_json = col_dup(s, 6);
    j->overrides_json = col_dup(s, 7);
    col_text(s, 8, j->format, sizeof(j->format));
    col_text(s, 9, j->video_codec, sizeof(j->video_codec));
    col_text(s, 10, j->audio_codec, sizeof(j->audio_codec));
    col_text(s, 11, j->resolution, sizeof(j->resolution));
    col_text(s, 12, j->output_bucket, sizeof(j->output_bucket));
    col_text(s, 13, j->template_id, sizeof(j->template_id));
    j->processing_deadline_ms = sqlite3_column_int64(s, 14);
    col_text(s, 15, j->callback_url, sizeof(j->callback_url));
    j->created_at = sqlite3_column_int64(s, 16);
    j->updated_at = sqlite3_column_int64(s, 17);
    j->started_at = sqlite3_column_int64(s, 18);
    j->finished_at = sqlite3_column_int64(s, 19);
    col_text(s, 20, j->error_code, sizeof(j->error_code));
    col_text(s, 21, j->error_message, sizeof(j->error_message));
    col_text(s, 22, j->created_by, sizeof(j->created_by));
    j->deadline_at = sqlite3_column_int64(s, 23);
    j->permille = sqlite3_column_int(s, 24);
    j->template_json = col_dup(s, 25);
    col_text(s, 26, j->ingest, sizeof(j->ingest));
    j->writeback = sqlite3_column_int(s, 27) != 0;
    j->written_back_at = sqlite3_column_int64(s, 28);
    if (j->request_json == NULL || j->input_json == NULL || j->overrides_json == NULL ||
        j->template_json == NULL) {
        rf_job_rec_clear(j);
        return RF_ENOMEM;
    }
    return RF_OK;
}

rf_err
rf_store_job_get(rf_store *st, const char *id, rf_job_rec *out)
{
    sqlite3_stmt *s = NULL;
    rf_err rv = prep(st, "SELECT " JOB_COLS " FROM jobs WHERE id = ?1", &s);
    int rc;

    memset(out, 0, sizeof(*out));
    if (rv != RF_OK) {
        return rv;
    }
    bind_text(s, 1, id);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        rv = read_job(s, out);
    } else if (rc == SQLITE_DONE) {
        rv = RF_ENOTFOUND;
    } else {
        rv = db_fail(st, "get job");
    }
    sqlite3_finalize(s);
    return rv;
}

rf_err
rf_store_job_update_state(rf_store *st, const rf_job_rec *j)
{
    sqlite3_stmt *s = NULL;
    rf_err rv = prep(st,
                     "UPDATE jobs SET state = ?2, updated_at = ?3, started_at = ?4,"
                     " finished_at = ?5, error_code = ?6, error_message = ?7, deadline_at = ?8,"
                     " permille = ?9 WHERE id = ?1",
                     &s);

    if (rv != RF_OK) {
        return rv;
    }
    bind_text(s, 1, j->id);
    bind_text(s, 2, j->state);
    sqlite3_bind_int64(s, 3, j->updated_at);
    bind_int_opt(s, 4, j->started_at);
    bind_int_opt(s, 5, j->finished_at);
    bind_text_opt(s, 6, j->error_code);
    bind_text_opt(s, 7, j->error_message);
    bind_int_opt(s, 8, j->deadline_at);
    sqlite3_bind_int(s, 9, j->permille);
    return step_done(st, s, "update job state");
}

rf_err
rf_store_job_set_progress(rf_store *st, const char *id, int permille, int64_t updated_at)
{
    sqlite3_stmt *s = NULL;
    rf_err rv = prep(st, "UPDATE jobs SET permille = ?2, updated_at = ?3 WHERE id = ?1", &s);

    if (rv != RF_OK) {
        return rv;
    }
    bind_text(s, 1, id);
    sqlite3_bind_int(s, 2, permille);
    sqlite3_bind_int64(s, 3, updated_at);
    return step_done(st, s, "set job progress");
}

void
rf_job_rec_clear(rf_job_rec *j)
{
    if (j == NULL) {
        return;
    }
    free(j->request_json);
    free(j->input_json);
    free(j->overrides_json);
    free(j->template_json);
    memset(j, 0, sizeof(*j));
}

void
rf_job_recs_free(rf_job_rec *jobs, size_t n)
{
    if (jobs == NULL) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        rf_job_rec_clear(&jobs[i]);
    }
    free(jobs);
}

/* The sort column of each rf_job_sort (constants: never user text). */
static const char *
sort_column(rf_job_sort sort)
{
    switch (sort) {
    case RF_JOB_SORT_UPDATED_AT:
        return "updated_at";
    case RF_JOB_SORT_PERCENT:
        return "permille";
    case RF_JOB_SORT_CREATED_AT:
        break;
    }
    return "created_at";
}

rf_err
rf_store_jobs_list(rf_store *st, const rf_job_query *q, rf_job_rec **out, size_t *n)
{
    const char *col = sort_column(q->sort);
    const char *dir = q->desc ? "DESC" : "ASC";
    const char *cmp = q->desc ? "<" : ">";
    char sql[1024];
    sqlite3_stmt *s = NULL;
    rf_job_rec *jobs = NULL;
    size_t count = 0;
    rf_err rv;
    int rc;

    *out = NULL;
    *n = 0;
    /* Row values make the keyset condition one comparison that the
     * (tenant, key, id) index serves. */
    snprintf(sql, sizeof(sql),
             "SELECT " JOB_COLS " FROM jobs WHERE tenant = ?1 AND (?2 IS NULL OR state = ?2)"
             " AND (?3 = 0 OR (%s, id) %s (?4, ?5)) ORDER BY %s %s, id %s LIMIT ?6",
             col, cmp, col, dir, dir);
    rv = prep(st, sql, &s);
    if (rv != RF_OK) {
        return rv;
    }
    bind_text(s, 1, q->tenant);
    bind_text_opt(s, 2, q->state);
    sqlite3_bind_int(s, 3, q->has_after ? 1 : 0);
    sqlite3_bind_int64(s, 4, q->after_key);
    bind_text(s, 5, q->after_id);
    sqlite3_bind_int64(s, 6, (sqlite3_int64)q->limit);
    jobs = calloc(q->limit > 0 ? q->limit : 1, sizeof(*jobs));
    if (jobs == NULL) {
        rv = RF_ENOMEM;
        goto out;
    }
    while ((rc = sqlite3_step(s)) == SQLITE_ROW && count < q->limit) {
        rv = read_job(s, &jobs[count]);
        if (rv != RF_OK) {
            goto out;
        }
        count++;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        rv = db_fail(st, "list jobs");
    }
out:
    sqlite3_finalize(s);
    if (rv != RF_OK) {
        rf_job_recs_free(jobs, count);
        return rv;
    }
    *out = jobs;
    *n = count;
    return RF_OK;
}

rf_err
rf_store_jobs_count(rf_store *st, const char *tenant, const char *state, uint64_t *out)
{
    sqlite3_stmt *s = NULL;
    rf_err rv =
        prep(st, "SELECT COUNT(*) FROM jobs WHERE tenant = ?1 AND (?2 IS NULL OR state = ?2)", &s);

    *out = 0;
    if (rv != RF_OK) {
        return rv;
    }
    bind_text(s, 1, tenant);
    bind_text_opt(s, 2, state);
    if (sqlite3_step(s) == SQLITE_ROW) {
        *out = (uint64_t)sqlite3_column_int64(s, 0);
    } else {
        rv = db_fail(st, "count jobs");
    }
    sqlite3_finalize(s);
    return rv;
}

/* Up to max job ids from a query whose ?1 is arg and ?2 the limit. */
static rf_err
select_job_ids(rf_store *st, const char *sql, int64_t arg, size_t max, char (*ids)[RF_ID_MAX],
               size_t *n, const char *what)
{
    sqlite3_stmt *s = NULL;
    rf_err rv = prep(st, sql, &s);
    int rc = SQLITE_DONE;

    *n = 0;
    if (rv != RF_OK) {
        return rv;
    }
    sqlite3_bind_int64(s, 1, arg); /* SQLITE_RANGE, harmless, where ?1 is unused */
    sqlite3_bind_int64(s, 2, (sqlite3_int64)max);
    while (*n < max && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        col_text(s, 0, ids[*n], RF_ID_MAX);
        (*n)++;
    }
    if (*n < max && rc != SQLITE_DONE) {
        rv = db_fail(st, what);
    }
    sqlite3_finalize(s);
    return rv;
}

rf_err
rf_store_jobs_past_deadline(rf_store *st, int64_t now_ms, size_t max, char (*ids)[RF_ID_MAX],
                            size_t *n)
{
    return select_job_ids(st,
                          "SELECT id FROM jobs WHERE deadline_at IS NOT NULL AND deadline_at <= ?1"
                          " AND state IN ('pending', 'running', 'pausing', 'paused', 'completing')"
                          " ORDER BY deadline_at, id LIMIT ?2",
                          now_ms, max, ids, n, "select jobs past their deadline");
}

rf_err
rf_store_jobs_ingest_due(rf_store *st, size_t max, char (*ids)[RF_ID_MAX], size_t *n)
{
    return select_job_ids(st,
                          "SELECT id FROM jobs WHERE ingest IS NOT NULL"
                          " AND state NOT IN ('completed', 'failed', 'canceled')"
                          " ORDER BY created_at, id LIMIT ?2",
                          0, max, ids, n, "select jobs whose rows are still to be read");
}

rf_err
rf_store_jobs_writeback_due(rf_store *st, size_t max, char (*ids)[RF_ID_MAX], size_t *n)
{
    return select_job_ids(st,
                          "SELECT id FROM jobs WHERE writeback = 1"
                          " AND state IN ('completed', 'failed', 'canceled')"
                          " AND (written_back_at IS NULL OR written_back_at != updated_at)"
                          " ORDER BY updated_at, id LIMIT ?2",
                          0, max, ids, n, "select jobs to write back");
}

rf_err
rf_store_job_set_ingest(rf_store *st, const char *id, const char *ingest)
{
    sqlite3_stmt *s = NULL;
    rf_err rv = prep(st, "UPDATE jobs SET ingest = ?2 WHERE id = ?1", &s);

    if (rv != RF_OK) {
        return rv;
    }
    bind_text(s, 1, id);
    bind_text_opt(s, 2, ingest);
    return step_done(st, s, "set job ingest");
}

rf_err
rf_store_job_set_written_back(rf_store *st, const char *id, int64_t updated_at)
{
    sqlite3_stmt *s = NULL;
    rf_err rv = prep(st, "UPDATE jobs SET written_back_at = ?2 WHERE id = ?1", &s);

    if (rv != RF_OK) {
        return rv;
    }
    bind_text(s, 1, id);
    sqlite3_bind_int64(s, 2, updated_at);
    return step_done(st, s, "set job written back");
}

/* ---- items ---- */

#define ITEM_COLS                                                                                  \
    "id, job_id, row_number, state, data_json, title, error_code, error_message, priority,"        \
    " created_at, updated_at"

rf_err
rf_store_item_insert(rf_store *st, const rf_item_rec *it)
{
    sqlite3_stmt *s = NULL;
    rf_err rv = prep(st,
                     "INSERT INTO items (" ITEM_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8,"
                     " ?9, ?10, ?11)",
                     &s);

    if (rv != RF_OK) {
        return rv;
    }
    bind_text(s, 1, it->id);
    bind_text(s, 2, it->job_id);
    sqlite3_bind_int64(s, 3, it->row_number);
    bind_text(s, 4, it->state);
    bind_text(s, 5, it->data_json != NULL ? it->data_json : "{}");
    bind_text(s, 6, it->title);
    bind_text_opt(s, 7, it->error_code);
    bind_text_opt(s, 8, it->error_message);
    sqlite3_bind_int(s, 9, it->priority);
    sqlite3_bind_int64(s, 10, it->created_at);
    sqlite3_bind_int64(s, 11, it->updated_at);
    return step_done(st, s, "insert item");
}

static rf_err
read_item(sqlite3_stmt *s, rf_item_rec *it)
{
    memset(it, 0, sizeof(*it));
    col_text(s, 0, it->id, sizeof(it->id));
    col_text(s, 1, it->job_id, sizeof(it->job_id));
    it->row_number = (uint32_t)sqlite3_column_int64(s, 2);
    col_text(s, 3, it->state, sizeof(it->state));
    it->data_json = col_dup(s, 4);
    col_text(s, 5, it->title, sizeof(it->title));
    col_text(s, 6, it->error_code, sizeof(it->error_code));
    col_text(s, 7, it->error_message, sizeof(it->error_message));
    it->priority = sqlite3_column_int(s, 8);
    it->created_at = sqlite3_column_int64(s, 9);
    it->updated_at = sqlite3_column_int64(s, 10);
    return it->data_json != NULL ? RF_OK : RF_ENOMEM;
}

rf_err
rf_store_item_get(rf_store *st, const char *id, rf_item_rec *out)
{
    sqlite3_stmt *s = NULL;
    rf_err rv = prep(st, "SELECT " ITEM_COLS " FROM items WHERE id = ?1", &s);
    int rc;

    memset(out, 0, sizeof(*out));
    if (rv != RF_OK) {
        return rv;
    }
    bind_text(s, 1, id);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        rv = read_item(s, out);
    } else if (rc == SQLITE_DONE) {
        rv = RF_ENOTFOUND;
    } else {
        rv = db_fail(st, "get item");
    }
    sqlite3_finalize(s);
    return rv;
}

rf_err
rf_store_item_update_state(rf_store *st, const rf_item_rec *it)
{
    sqlite3_stmt *s = NULL;
    rf_err rv = prep(st,
                     "UPDATE items SET state = ?2, error_code = ?3, error_message = ?4,"
                     " updated_at = ?5 WHERE id = ?1",
                     &s);

    if (rv != RF_OK) {
        return rv;
    }
    bind_text(s, 1, it->id);
    bind_text(s, 2, it->state);
    bind_text_opt(s, 3, it->error_code);
    bind_text_opt(s, 4, it->error_message);
    sqlite3_bind_int64(s, 5, it->updated_at);
    return step_done(st, s, "update item state");
}

/* Steps a prepared, bound statement into a new array of up to limit records
 * of elem bytes, each filled by rd. On failure frees what was read with
 * free_recs and returns the error. Always finalizes s. */
typedef rf_err (*row_reader)(sqlite3_stmt *s, void *rec);

static rf_err
collect_rows(rf_store *st, sqlite3_stmt *s, size_t elem, size_t limit, row_reader rd,
             void (*free_recs)(void *recs, size_t n), const char *what, void **out, size_t *n)
{
    char *recs = calloc(limit > 0 ? limit : 1, elem);
    size_t count = 0;
    rf_err rv = RF_OK;
    int rc = SQLITE_DONE;

    if (recs == NULL) {
        rv = RF_ENOMEM;
        goto out;
    }
    while (count < limit && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        rv = rd(s, recs + count * elem);
        count++; /* a half-read record is freed with the others */
        if (rv != RF_OK) {
            goto out;
        }
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        rv = db_fail(st, what);
    }
out:
    sqlite3_finalize(s);
    if (rv != RF_OK) {
        if (recs != NULL) {
            free_recs(recs, count);
        }
        return rv;
    }
    *out = recs;
    *n = count;
    return RF_OK;
}

static rf_err
read_item_row(sqlite3_stmt *s, void *rec)
{
    return read_item(s, rec);
}

static void
free_item_rows(void *recs, size_t n)
{
    rf_item_recs_free(recs, n);
}

rf_err
rf_store_items_list(rf_store *st, const char *job_id, const char *state, uint32_t after_row,
                    size_t limit, rf_item_rec **out, size_t *n)
{
    sqlite3_stmt *s = NULL;
    void *recs = NULL;
    rf_err rv;

    *out = NULL;
    *n = 0;
    rv = prep(st,
              "SELECT " ITEM_COLS " FROM items WHERE job_id = ?1 AND row_number > ?2"
              " AND (?3 IS NULL OR state = ?3) ORDER BY row_number, id LIMIT ?4",
              &s);
    if (rv != RF_OK) {
        return rv;
    }
    bind_text(s, 1, job_id);
    sqlite3_bind_int64(s, 2, after_row);
    bind_text_opt(s, 3, state);
    sqlite3_bind_int64(s, 4, (sqlite3_int64)limit);
    rv = collect_rows(st, s, sizeof(rf_item_rec), limit, read_item_row, free_item_rows,
                      "list items", &recs, n);
    *out = recs;
    return rv;
}

void
rf_item_rec_clear(rf_item_rec *it)
{
    if (it == NULL) {
        return;
    }
    free(it->data_json);
    memset(it, 0, sizeof(*it));
}

void
rf_item_recs_free(rf_item_rec *items, size_t n)
{
    if (items == NULL) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        rf_item_rec_clear(&items[i]);
    }
    free(items);
}

/* ---- units ---- */

#define UNIT_COLS                                                                                  \
    "id, item_id, job_id, rendition, width, height, fps, duration_ms, frames_total, frames_done,"  \
    " state, lease_id, agent_id, lease_expires_at, attempts, output_path, size_bytes, sha256,"     \
    " media_duration_ms, encoder, render_ms, error_code, error_message, created_at, updated_at,"   \
    " poster_path, captions_path"

rf_err
rf_store_unit_insert(rf_store *st, const rf_unit_rec *u)
{
    sqlite3_stmt *s = NULL;
    rf_err rv = prep(st,
                     "INSERT INTO units (" UNIT_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8,"
                     " ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23,"
                     " ?24, ?25, ?26, ?27)",
                     &s);

    if (rv != RF_OK) {
        return rv;
    }
    bind_text(s, 1, u->id);
    bind_text(s, 2, u->item_id);
    bind_text(s, 3, u->job_id);
    bind_text(s, 4, u->rendition);
    sqlite3_bind_int64(s, 5, u->width);
    sqlite3_bind_int64(s, 6, u->height);
    sqlite3_bind_int64(s, 7, u->fps);
    sqlite3_bind_int64(s, 8, u->duration_ms);
    sqlite3_bind_int64(s, 9, u->frames_total);
    sqlite3_bind_int64(s, 10, u->frames_done);
    bind_text(s, 11, u->state);
    bind_text_opt(s, 12, u->lease_id);
    bind_text_opt(s, 13, u->agent_id);
    bind_int_opt(s, 14, u->lease_expires_at);
    sqlite3_bind_int64(s, 15, u->attempts);
    bind_text(s, 16, u->output_path);
    bind_int_opt(s, 17, (int64_t)u->size_bytes);
    bind_text_opt(s, 18, u->sha256);
    bind_int_opt(s, 19, u->media_duration_ms);
    bind_text_opt(s, 20, u->encoder);
    bind_int_opt(s, 21, u->render_ms);
    bind_text_opt(s, 22, u->error_code);
    bind_text_opt(s, 23, u->error_message);
    sqlite3_bind_int64(s, 24, u->created_at);
    sqlite3_bind_int64(s, 25, u->updated_at);
    bind_text_opt(s, 26, u->poster_path);
    bind_text_opt(s, 27, u->captions_path);
    return step_done(st, s, "insert unit");
}

static void
read_unit(sqlite3_stmt *s, rf_unit_rec *u)
{
    memset(u, 0, sizeof(*u));
    col_text(s, 0, u->id, sizeof(u->id));
    col_text(s, 1, u->item_id, sizeof(u->item_id));
    col_text(s, 2, u->job_id, sizeof(u->job_id));
    col_text(s, 3, u->rendition, sizeof(u->rendition));
    u->width = (uint32_t)sqlite3_column_int64(s, 4);
    u->height = (uint32_t)sqlite3_column_int64(s, 5);
    u->fps = (uint32_t)sqlite3_column_int64(s, 6);
    u->duration_ms = (uint32_t)sqlite3_column_int64(s, 7);
    u->frames_total = (uint32_t)sqlite3_column_int64(s, 8);
    u->frames_done = (uint32_t)sqlite3_column_int64(s, 9);
    col_text(s, 10, u->state, sizeof(u->state));
    col_text(s, 11, u->lease_id, sizeof(u->lease_id));
    col_text(s, 12, u->agent_id, sizeof(u->agent_id));
    u->lease_expires_at = sqlite3_column_int64(s, 13);
    u->attempts = (uint32_t)sqlite3_column_int64(s, 14);
    col_text(s, 15, u->output_path, sizeof(u->output_path));
    u->size_bytes = (uint64_t)sqlite3_column_int64(s, 16);
    col_text(s, 17, u->sha256, sizeof(u->sha256));
    u->media_duration_ms = (uint32_t)sqlite3_column_int64(s, 18);
    col_text(s, 19, u->encoder, sizeof(u->encoder));
    u->render_ms = (uint32_t)sqlite3_column_int64(s, 20);
    col_text(s, 21, u->error_code, sizeof(u->error_code));
    col_text(s, 22, u->error_message, sizeof(u->error_message));
    u->created_at = sqlite3_column_int64(s, 23);
    u->updated_at = sqlite3_column_int64(s, 24);
    col_text(s, 25, u->poster_path, sizeof(u->poster_path));
    col_text(s, 26, u->captions_path, sizeof(u->captions_path));
}

rf_err
rf_store_unit_get(rf_store *st, const char *id, rf_unit_rec *out)
{
    sqlite3_stmt *s = NULL;
    rf_err rv = prep(st, "SELECT " UNIT_COLS " FROM units WHERE id = ?1", &s);
    int rc;

    memset(out, 0, sizeof(*out));
    if (rv != RF_OK) {
        return rv;
    }
    bind_text(s, 1, id);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        read_unit(s, out);
    } else if (rc == SQLITE_DONE) {
        rv = RF_ENOTFOUND;
    } else {
        rv = db_fail(st, "get unit");
    }
    sqlite3_finalize(s);
    return rv;
}

rf_err
rf_store_unit_update(rf_store *st, const rf_unit_rec *u)
{
    sqlite3_stmt *s = NULL;
    rf_err rv = prep(st,
                     "UPDATE units SET frames_total = ?2, frames_done = ?3, state = ?4,"
                     " lease_id = ?5, agent_id = ?6, lease_expires_at = ?7, attempts = ?8,"
                     " output_path = ?9, size_bytes = ?10, sha256 = ?11, media_duration_ms = ?12,"
                     " encoder = ?13, render_ms = ?14, error_code = ?15, error_message = ?16,"
                     " updated_at = ?17, poster_path = ?18, captions_path = ?19 WHERE id = ?1",
                     &s);

    if (rv != RF_OK) {
        return rv;
    }
    bind_text(s, 1, u->id);
    sqlite3_bind_int64(s, 2, u->frames_total);
    sqlite3_bind_int64(s, 3, u->frames_done);
    bind_text(s, 4, u->state);
    bind_text_opt(s, 5, u->lease_id);
    bind_text_opt(s, 6, u->agent_id);
    bind_int_opt(s, 7, u->lease_expires_at);
    sqlite3_bind_int64(s, 8, u->attempts);
    bind_text(s, 9, u->output_path);
    bind_int_opt(s, 10, (int64_t)u->size_bytes);
    bind_text_opt(s, 11, u->sha256);
    bind_int_opt(s, 12, u->media_duration_ms);
    bind_text_opt(s, 13, u->encoder);
    bind_int_opt(s, 14, u->render_ms);
    bind_text_opt(s, 15, u->error_code);
    bind_text_opt(s, 16, u->error_message);
    sqlite3_bind_int64(s, 17, u->updated_at);
    bind_text_opt(s, 18, u->poster_path);
    bind_text_opt(s, 19, u->captions_path);
    return step_done(st, s, "update unit");
}

/* The encoders (as the agent's HELLO lists them) that can produce each of a
 * job's codecs: a unit goes only to an agent that has one for its video and
 * one for its audio. An agent that lists no encoder of a kind at all (an
 * older agent that announces nothing) is not restricted for that kind. */
#define CODEC_ENCODERS                                                                             \
    "(VALUES ('h264', 'libx264'), ('h264', 'h264_nvenc'), ('h264', 'h264_vaapi'),"                 \
    " ('h265', 'libx265'), ('h265', 'hevc_nvenc'), ('h265', 'hevc_vaapi'),"                        \
    " ('vp9', 'libvpx-vp9'), ('vp9', 'vp9_vaapi'), ('aac', 'aac'), ('opus', 'libopus'))"
#define AGENT_HAS(cond)                                                                            \
    " EXISTS (SELECT 1 FROM agents a, json_each(a.capabilities_json, '$.encoders') "               \
    "e, " CODEC_ENCODERS " m WHERE a.id = ?1 AND e.value = m.column2 AND " cond ")"
#define AGENT_CAN(col, kinds)                                                                      \
    " (" AGENT_HAS("m.column1 = " col) " OR NOT" AGENT_HAS("m.column1 IN " kinds) ")"

/* Tenants with at least cap units leased (cap: an SQL parameter). One
 * grouped scan of the leased units, evaluated once per query. */
#define TENANTS_AT_CAP(cap)                                                                        \
    "SELECT j2.tenant FROM units u2 JOIN jobs j2 ON j2.id = u2.job_id"                             \
    " WHERE u2.state = 'leased' GROUP BY j2.tenant HAVING COUNT(*) >= " cap

rf_err
rf_store_tenant_at_cap(rf_store *st, const char *tenant, int64_t cap, bool *at_cap)
{
    sqlite3_stmt *s = NULL;
    rf_err rv = prep(st,
                     "SELECT COUNT(*) FROM units u JOIN jobs j ON j.id = u.job_id"
                     " WHERE u.state = 'leased' AND j.tenant = ?1",
                     &s);
    int rc;

    *at_cap = false;
    if (rv != RF_OK) {
        return rv;
    }
    bind_text(s, 1, tenant);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *at_cap = cap > 0 && sqlite3_column_int64(s, 0) >= cap;
    } else {
        rv = db_fail(st, "count a tenant's leased units");
    }
    sqlite3_finalize(s);
    return rv;
}

rf_err
rf_store_unit_next_queued(rf_store *st, const char *agent_id, int64_t tenant_max_leased,
                          char id[RF_ID_MAX], bool *found)
{
    sqlite3_stmt *s = NULL;
    rf_err rv = prep(
        st,
        "SELECT u.id FROM units u"
        " JOIN jobs j ON j.id = u.job_id"
        " JOIN items i ON i.id = u.item_id"
        " WHERE u.state = 'queued' AND j.state IN ('pending', 'running')"
        " AND (?2 <= 0 OR j.tenant NOT IN (" TENANTS_AT_CAP(
            "?2") "))"
                  " AND (?1 IS NULL OR (" AGENT_CAN(
                      "j.video_codec",
                      "('h264', 'h265', 'vp9')") " AND " AGENT_CAN("j.audio_codec",
                                                                   "('aac', 'opus')") "))"
                                                                                      " ORDER BY "
                                                                                      "j.priority "
                                                                                      "DESC, "
                                                                                      "j.created_"
                                                                                      "at "
                                                                                      "ASC, j.id "
                                                                                      "ASC,"
                                                                                      " i.priority "
                                                                                      "DESC, "
                                                                                      "i.row_"
                                                                                      "number ASC, "
                                                                                      "u.rendition "
                                                                                      "ASC, u.id "
                                                                                      "ASC LIMIT 1",
        &s);
    int rc;

    *found = false;
    if (rv != RF_OK) {
        return rv;
    }
    bind_text_opt(s, 1, agent_id);
    sqlite3_bind_int64(s, 2, tenant_max_leased);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        col_text(s, 0, id, RF_ID_MAX);
        *found = true;
    } else if (rc != SQLITE_DONE) {
        rv = db_fail(st, "select next unit");
    }
    sqlite3_finalize(s);
    return rv;
}

rf_err
rf_store_units_expired(rf_store *st, int64_t now_ms, size_t max, char (*ids)[RF_ID_MAX], size_t *n)
{
    sqlite3_stmt *s = NULL;
    rf_err rv = prep(st,
                     "SELECT id FROM units WHERE state = 'leased' AND lease_expires_at < ?1"
                     " ORDER BY lease_expires_at, id LIMIT ?2",
                     &s);
    int rc;

    *n = 0;
    if (rv != RF_OK) {
        return rv;
    }
    sqlite3_bind_int64(s, 1, now_ms);
    sqlite3_bind_int64(s, 2, (sqlite3_int64)max);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW && *n < max) {
        col_text(s, 0, ids[*n], RF_ID_MAX);
        (*n)++;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        rv = db_fail(st, "select expired units");
    }
    sqlite3_finalize(s);
    return rv;
}

rf_err
rf_store_units_of_item(rf_store *st, const char *item_id, rf_unit_rec **out, size_t *n)
{
    sqlite3_stmt *s = NULL;
    rf_unit_rec *units = NULL;
    size_t count = 0, cap = 0;
    rf_err rv;
    int rc;

    *out = NULL;
    *n = 0;
    rv = prep(st, "SELECT " UNIT_COLS " FROM units WHERE item_id = ?1 ORDER BY rendition, id", &s);
    if (rv != RF_OK) {
        return rv;
    }
    bind_text(s, 1, item_id);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (count == cap) {
            size_t ncap = cap == 0 ? 4 : cap * 2;
            rf_unit_rec *grown = realloc(units, ncap * sizeof(*grown));
            if (grown == NULL) {
                rv = RF_ENOMEM;
                goto out;
            }
            units = grown;
            cap = ncap;
        }
        read_unit(s, &units[count++]);
    }
    if (rc != SQLITE_DONE) {
        rv = db_fail(st, "list units of item");
    }
out:
    sqlite3_finalize(s);
    if (rv != RF_OK) {
        free(units);
        return rv;
    }
    *out = units;
    *n = count;
    return RF_OK;
}

rf_err
rf_store_units_of_job(rf_store *st, const char *job_id, const char *state, rf_unit_rec **out,
                      size_t *n)
{
    sqlite3_stmt *s = NULL;
    rf_unit_rec *units = NULL;
    size_t count = 0, cap = 0;
    rf_err rv;
    int rc;

    *out = NULL;
    *n = 0;
    rv = prep(st,
              "SELECT " UNIT_COLS " FROM units WHERE job_id = ?1 AND (?2 IS NULL OR state = ?2)"
              " ORDER BY id",
              &s);
    if (rv != RF_OK) {
        return rv;
    }
    bind_text(s, 1, job_id);
    bind_text_opt(s, 2, state);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (count == cap) {
            size_t ncap = cap == 0 ? 8 : cap * 2;
            rf_unit_rec *grown = realloc(units, ncap * sizeof(*grown));
            if (grown == NULL) {
                rv = RF_ENOMEM;
                goto out;
            }
            units = grown;
            cap = ncap;
        }
        read_unit(s, &units[count++]);
    }
    if (rc != SQLITE_DONE) {
        rv = db_fail(st, "list units of job");
    }
out:
    sqlite3_finalize(s);
    if (rv != RF_OK) {
        free(units);
        return rv;
    }
    *out = units;
    *n = count;
    return RF_OK;
}

/* Runs a "SELECT state, COUNT(*) ... GROUP BY state" query for one id and
 * adds each count to the slot named like its state (and to *total). */
static rf_err
count_by_state(rf_store *st, const char *sql, const char *id, const char *const *names,
               uint32_t *const *slots, size_t n_slots, uint32_t *total, const char *what)
{
    sqlite3_stmt *s = NULL;
    rf_err rv = prep(st, sql, &s);
    int rc;

    if (rv != RF_OK) {
        return rv;
    }
    bind_text(s, 1, id);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *state = (const char *)sqlite3_column_text(s, 0);
        uint32_t c = (uint32_t)sqlite3_column_int64(s, 1);
        *total += c;
        for (size_t i = 0; state != NULL && i < n_slots; i++) {
            if (strcmp(state, names[i]) == 0) {
                *slots[i] = c;
            }
        }
    }
    if (rc != SQLITE_DONE) {
        rv = db_fail(st, what);
    }
    sqlite3_finalize(s);
    return rv;
}

rf_err
rf_store_item_unit_counts(rf_store *st, const char *item_id, rf_unit_counts *out)
{
    static const char *const names[] = {"queued", "leased", "completed", "failed", "canceled"};
    uint32_t *const slots[] = {&out->queued, &out->leased, &out->completed, &out->failed,
                               &out->canceled};

    memset(out, 0, sizeof(*out));
    return count_by_state(st, "SELECT state, COUNT(*) FROM units WHERE item_id = ?1 GROUP BY state",
                          item_id, names, slots, 5, &out->total, "count units");
}

rf_err
rf_store_job_unit_counts(rf_store *st, const char *job_id, rf_unit_counts *out)
{
    static const char *const names[] = {"queued", "leased", "completed", "failed", "canceled"};
    uint32_t *const slots[] = {&out->queued, &out->leased, &out->completed, &out->failed,
                               &out->canceled};

    memset(out, 0, sizeof(*out));
    return count_by_state(st, "SELECT state, COUNT(*) FROM units WHERE job_id = ?1 GROUP BY state",
                          job_id, names, slots, 5, &out->total, "count units of job");
}

rf_err
rf_store_job_item_counts(rf_store *st, const char *job_id, rf_item_counts *out)
{
    static const char *const names[] = {"pending", "processing", "completed", "failed", "skipped"};
    uint32_t *const slots[] = {&out->pending, &out->processing, &out->completed, &out->failed,
                               &out->skipped};

    memset(out, 0, sizeof(*out));
    return count_by_state(st, "SELECT state, COUNT(*) FROM items WHERE job_id = ?1 GROUP BY state",
                          job_id, names, slots, 5, &out->total, "count items");
}

rf_err
rf_store_job_frames(rf_store *st, const char *job_id, uint64_t *done, uint64_t *total)
{
    sqlite3_stmt *s = NULL;
    rf_err rv = prep(st,
                     "SELECT COALESCE(SUM(CASE WHEN state IN ('completed', 'failed')"
                     " THEN frames_total ELSE MIN(frames_done, frames_total) END), 0),"
                     " COALESCE(SUM(frames_total), 0) FROM units WHERE job_id = ?1",
                     &s);

    *done = 0;
    *total = 0;
    if (rv != RF_OK) {
        return rv;
    }
    bind_text(s, 1, job_id);
    if (sqlite3_step(s) == SQLITE_ROW) {
        *done = (uint64_t)sqlite3_column_int64(s, 0);
        *total = (uint64_t)sqlite3_column_int64(s, 1);
    } else {
        rv = db_fail(st, "sum frames");
    }
    sqlite3_finalize(s);
    return rv;
}

/* ---- events ---- */

rf_err
rf_store_event_add(rf_store *st, const char *job_id, const char *type, const char *data_json,
                   int64_t now_ms)
{
    sqlite3_stmt *s = NULL;
    rf_err rv = prep(st,
                     "INSERT INTO events (job_id, type, data_json, created_at)"
                     " VALUES (?1, ?2, ?3, ?4)",
                     &s);

    if (rv != RF_OK) {
        return rv;
    }
    bind_text_opt(s, 1, job_id);
    bind_text(s, 2, type);
    bind_text(s, 3, data_json != NULL ? data_json : "{}");
    sqlite3_bind_int64(s, 4, now_ms);
    rv = step_done(st, s, "insert event");
    if (rv == RF_OK) {
        int64_t id = sqlite3_last_insert_rowid(st->db);
        size_t queued = st->n_pending;
        rv = rf_store_notify(st, job_id, type, data_json, now_ms);
        if (rv == RF_OK && st->n_pending > queued) {
            st->pending[queued].id = id;
        }
    }
    return rv;
}

static rf_err
read_event_row(sqlite3_stmt *s, void *rec)
{
    rf_event_rec *e = rec;

    e->id = sqlite3_column_int64(s, 0);
    col_text(s, 1, e->job_id, sizeof(e->job_id));
    col_text(s, 2, e->type, sizeof(e->type));
    e->data_json = col_dup(s, 3);
    e->created_at = sqlite3_column_int64(s, 4);
    return e->data_json != NULL ? RF_OK : RF_ENOMEM;
}

static void
free_event_rows(void *recs, size_t n)
{
    rf_event_recs_free(recs, n);
}

rf_err
rf_store_events_list(rf_store *st, const char *job_id, int64_t after_id, size_t limit,
                     rf_event_rec **out, size_t *n)
{
    sqlite3_stmt *s = NULL;
    void *recs = NULL;
    rf_err rv;

    *out = NULL;
    *n = 0;
    rv = prep(st,
              "SELECT id, job_id, type, data_json, created_at FROM events"
              " WHERE job_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
              &s);
    if (rv != RF_OK) {
        return rv;
    }
    bind_text(s, 1, job_id);
    sqlite3_bind_int64(s, 2, after_id);
    sqlite3_bind_int64(s, 3, (sqlite3_int64)limit);
    rv = collect_rows(st, s, sizeof(rf_event_rec), limit, read_event_row, free_event_rows,
                      "list events", &recs, n);
    *out = recs;
    return rv;
}

void
rf_event_recs_free(rf_event_rec *events, size_t n)
{
    if (events == NULL) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        free(events[i].data_json);
    }
    free(events);
}

/* ---- idempotency ---- */

#define IDEM_COLS                                                                                  \
    "tenant, key, request_hash, state, status, response_body, job_id, created_at, updated_at"

rf_err
rf_store_idem_get(rf_store *st, const char *tenant, const char *key, rf_idem_rec *out)
{
    sqlite3_stmt *s = NULL;
    rf_err rv =
        prep(st, "SELECT " IDEM_COLS " FROM idempotency WHERE tenant = ?1 AND key = ?2", &s);
    int rc;

    memset(out, 0, sizeof(*out));
    if (rv != RF_OK) {
        return rv;
    }
    bind_text(s, 1, tenant);
    bind_text(s, 2, key);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        col_text(s, 0, out->tenant, sizeof(out->tenant));
        col_text(s, 1, out->key, sizeof(out->key));
        col_text(s, 2, out->request_hash, sizeof(out->request_hash));
        col_text(s, 3, out->state, sizeof(out->state));
        out->status = sqlite3_column_int(s, 4);
        if (sqlite3_column_type(s, 5) != SQLITE_NULL) {
            out->response_body = col_dup(s, 5);
            if (out->response_body == NULL) {
                rv = RF_ENOMEM;
            }
        }
        col_text(s, 6, out->job_id, sizeof(out->job_id));
        out->created_at = sqlite3_column_int64(s, 7);
        out->updated_at = sqlite3_column_int64(s, 8);
    } else if (rc == SQLITE_DONE) {
        rv = RF_ENOTFOUND;
    } else {
        rv = db_fail(st, "get idempotency record");
    }
    sqlite3_finalize(s);
    return rv;
}

static void
bind_idem(sqlite3_stmt *s, const rf_idem_rec *r)
{
    bind_text(s, 1, r->tenant);
    bind_text(s, 2, r->key);
    bind_text(s, 3, r->request_hash);
    bind_text(s, 4, r->state);
    bind_int_opt(s, 5, r->status);
    bind_text_opt(s, 6, r->response_body);
    bind_text_opt(s, 7, r->job_id);
    sqlite3_bind_int64(s, 8, r->created_at);
    sqlite3_bind_int64(s, 9, r->updated_at);
}

rf_err
rf_store_idem_insert(rf_store *st, const rf_idem_rec *r)
{
    sqlite3_stmt *s = NULL;
    rf_err rv = prep(st,
                     "INSERT INTO idempotency (" IDEM_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7,"
                     " ?8, ?9)",
                     &s);
    int rc;

    if (rv != RF_OK) {
        return rv;
    }
    bind_idem(s, r);
    rc = sqlite3_step(s);
    if (rc == SQLITE_CONSTRAINT) {
        rv = RF_ECONFLICT;
    } else if (rc != SQLITE_DONE) {
        rv = db_fail(st, "insert idempotency record");
    }
    sqlite3_finalize(s);
    return rv;
}

rf_err
rf_store_idem_update(rf_store *st, const rf_idem_rec *r)
{
    sqlite3_stmt *s = NULL;
    rf_err rv = prep(st,
                     "UPDATE idempotency SET request_hash = ?3, state = ?4, status = ?5,"
                     " response_body = ?6, job_id = ?7, created_at = ?8, updated_at = ?9"
                     " WHERE tenant = ?1 AND key = ?2",
                     &s);

    if (rv != RF_OK) {
        return rv;
    }
    bind_idem(s, r);
    return step_done(st, s, "update idempotency record");
}

rf_err
rf_store_idem_delete(rf_store *st, const char *tenant, const char *key)
{
    sqlite3_stmt *s = NULL;
    rf_err rv = prep(st, "DELETE FROM idempotency WHERE tenant = ?1 AND key = ?2", &s);

    if (rv != RF_OK) {
        return rv;
    }
    bind_text(s, 1, tenant);
    bind_text(s, 2, key);
    return step_done(st, s, "delete idempotency record");
}

rf_err
rf_store_idem_purge(rf_store *st, int64_t before_ms, size_t *n)
{
    sqlite3_stmt *s = NULL;
    rf_err rv = prep(st, "DELETE FROM idempotency WHERE created_at < ?1", &s);

    if (n != NULL) {
        *n = 0;
    }
    if (rv != RF_OK) {
        return rv;
    }
    sqlite3_bind_int64(s, 1, before_ms);
    rv = step_done(st, s, "purge idempotency records");
    if (rv == RF_OK && n != NULL) {
        *n = (size_t)sqlite3_changes(st->db);
    }
    return rv;
}

void
rf_idem_rec_clear(rf_idem_rec *r)
{
    if (r == NULL) {
        return;
    }
    free(r->response_body);
    memset(r, 0, sizeof(*r));
}

/* ---- custom templates ---- */

#define TPL_COLS "tenant, id, name, description, settings_json, created_by, created_at, updated_at"

rf_err
rf_store_tpl_insert(rf_store *st, const rf_tpl_rec *t)
{
    sqlite3_stmt *s = NULL;
    rf_err rv = prep(
        st, "INSERT INTO templates (" TPL_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)", &s);
    int rc;

    if (rv != RF_OK) {
        return rv;
    }
    bind_text(s, 1, t->tenant);
    bind_text(s, 2, t->id);
    bind_text(s, 3, t->name);
    bind_text(s, 4, t->description);
    bind_text(s, 5, t->settings_json != NULL ? t->settings_json : "{}");
    bind_text_opt(s, 6, t->created_by);
    sqlite3_bind_int64(s, 7, t->created_at);
    sqlite3_bind_int64(s, 8, t->updated_at);
    rc = sqlite3_step(s);
    if (rc == SQLITE_CONSTRAINT) {
        rv = RF_ECONFLICT;
    } else if (rc != SQLITE_DONE) {
        rv = db_fail(st, "insert template");
    }
    sqlite3_finalize(s);
    return rv;
}

static rf_err
read_tpl(sqlite3_stmt *s, rf_tpl_rec *t)
{
    memset(t, 0, sizeof(*t));
    col_text(s, 0, t->tenant, sizeof(t->tenant));
    col_text(s, 1, t->id, sizeof(t->id));
    col_text(s, 2, t->name, sizeof(t->name));
    col_text(s, 3, t->description, sizeof(t->description));
    t->settings_json = col_dup(s, 4);
    col_text(s, 5, t->created_by, sizeof(t->created_by));
    t->created_at = sqlite3_column_int64(s, 6);
    t->updated_at = sqlite3_column_int64(s, 7);
    return t->settings_json != NULL ? RF_OK : RF_ENOMEM;
}

rf_err
rf_store_tpl_get(rf_store *st, const char *tenant, const char *id, rf_tpl_rec *out)
{
    sqlite3_stmt *s = NULL;
    rf_err rv = prep(st, "SELECT " TPL_COLS " FROM templates WHERE tenant = ?1 AND id = ?2", &s);
    int rc;

    memset(out, 0, sizeof(*out));
    if (rv != RF_OK) {
        return rv;
    }
    bind_text(s, 1, tenant);
    bind_text(s, 2, id);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        rv = read_tpl(s, out);
    } else if (rc == SQLITE_DONE) {
        rv = RF_ENOTFOUND;
    } else {
        rv = db_fail(st, "get template");
    }
    sqlite3_finalize(s);
    return rv;
}

static rf_err
read_tpl_row(sqlite3_stmt *s, void *rec)
{
    return read_tpl(s, rec);
}

static void
free_tpl_rows(void *recs, size_t n)
{
    rf_tpl_recs_free(recs, n);
}

rf_err
rf_store_tpl_list(rf_store *st, const char *tenant, size_t limit, rf_tpl_rec **out, size_t *n)
{
    sqlite3_stmt *s = NULL;
    void *recs = NULL;
    rf_err rv;

    *out = NULL;
    *n = 0;
    rv = prep(st, "SELECT " TPL_COLS " FROM templates WHERE tenant = ?1 ORDER BY id LIMIT ?2", &s);
    if (rv != RF_OK) {
        return rv;
    }
    bind_text(s, 1, tenant);
    sqlite3_bind_int64(s, 2, (sqlite3_int64)limit);
    rv = collect_rows(st, s, sizeof(rf_tpl_rec), limit, read_tpl_row, free_tpl_rows,
                      "list templates", &recs, n);
    *out = recs;
    return rv;
}

void
rf_tpl_rec_clear(rf_tpl_rec *t)
{
    if (t == NULL) {
        return;
    }
    free(t->settings_json);
    memset(t, 0, sizeof(*t));
}

void
rf_tpl_recs_free(rf_tpl_rec *recs, size_t n)
{
    if (recs == NULL) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        rf_tpl_rec_clear(&recs[i]);
    }
    free(recs);
}

/* ---- analytics ---- */

/* The row for (template_id, resolution), appended when new. */
static rf_err
analytics_slot(rf_analytics_row **rows, size_t *n, size_t *cap, sqlite3_stmt *s,
               rf_analytics_row **slot)
{
    char tpl[RF_NAME_MAX], res[RF_NAME_MAX];

    col_text(s, 0, tpl, sizeof(tpl));
    col_text(s, 1, res, sizeof(res));
    for (size_t i = 0; i < *n; i++) {
        if (strcmp((*rows)[i].template_id, tpl) == 0 && strcmp((*rows)[i].resolution, res) == 0) {
            *slot = &(*rows)[i];
            return RF_OK;
        }
    }
    if (*n == *cap) {
        size_t ncap = *cap == 0 ? 8 : *cap * 2;
        rf_analytics_row *grown = realloc(*rows, ncap * sizeof(*grown));
        if (grown == NULL) {
            return RF_ENOMEM;
        }
        *rows = grown;
        *cap = ncap;
    }
    *slot = &(*rows)[(*n)++];
    memset(*slot, 0, sizeof(**slot));
    memcpy((*slot)->template_id, tpl, sizeof(tpl));
    memcpy((*slot)->resolution, res, sizeof(res));
    return RF_OK;
}

#define HW_ENCODER                                                                                 \
    "(u.encoder LIKE '%nvenc%' OR u.encoder LIKE '%vaapi%' OR u.encoder LIKE '%qsv%')"

rf_err
rf_store_analytics(rf_store *st, const char *tenant, int64_t from_ms, int64_t to_ms,
                   rf_analytics_row **out, size_t *n)
{
    static const char *const sql[3] = {
        "SELECT template_id, resolution, COUNT(*),"
        " SUM(CASE WHEN finished_at IS NOT NULL AND started_at IS NOT NULL THEN 1 ELSE 0 END),"
        " COALESCE(SUM(CASE WHEN finished_at IS NOT NULL AND started_at IS NOT NULL"
        " THEN finished_at - started_at ELSE 0 END), 0)"
        " FROM jobs WHERE tenant = ?1 AND created_at >= ?2 AND created_at < ?3"
        " GROUP BY template_id, resolution",
        "SELECT j.template_id, j.resolution, COUNT(*),"
        " SUM(CASE WHEN i.state = 'completed' THEN 1 ELSE 0 END),"
        " SUM(CASE WHEN i.state = 'failed' THEN 1 ELSE 0 END),"
        " SUM(CASE WHEN i.state = 'skipped' THEN 1 ELSE 0 END)"
        " FROM items i JOIN jobs j ON j.id = i.job_id"
        " WHERE j.tenant = ?1 AND j.created_at >= ?2 AND j.created_at < ?3"
        " GROUP BY j.template_id, j.resolution",
        "SELECT j.template_id, j.resolution, COUNT(*), COALESCE(SUM(u.media_duration_ms), 0),"
        " COALESCE(SUM(CASE WHEN " HW_ENCODER " THEN u.render_ms ELSE 0 END), 0),"
        " COALESCE(SUM(CASE WHEN " HW_ENCODER " THEN 0 ELSE u.render_ms END), 0)"
        " FROM units u JOIN jobs j ON j.id = u.job_id"
        " WHERE u.state = 'completed' AND j.tenant = ?1 AND j.created_at >= ?2"
        " AND j.created_at < ?3 GROUP BY j.template_id, j.resolution",
    };
    rf_analytics_row *rows = NULL;
    size_t count = 0, cap = 0;
    rf_err rv = RF_OK;

    *out = NULL;
    *n = 0;
    for (int q = 0; q < 3 && rv == RF_OK; q++) {
        sqlite3_stmt *s = NULL;
        int rc;

        rv = prep(st, sql[q], &s);
        if (rv != RF_OK) {
            break;
        }
        bind_text(s, 1, tenant);
        sqlite3_bind_int64(s, 2, from_ms);
        sqlite3_bind_int64(s, 3, to_ms);
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
            rf_analytics_row *r = NULL;
            rv = analytics_slot(&rows, &count, &cap, s, &r);
            if (rv != RF_OK) {
                break;
            }
            if (q == 0) {
                r->jobs = (uint64_t)sqlite3_column_int64(s, 2);
                r->jobs_finished = (uint64_t)sqlite3_column_int64(s, 3);
                r->processing_ms = sqlite3_column_int64(s, 4);
            } else if (q == 1) {
                r->items_total = (uint64_t)sqlite3_column_int64(s, 2);
                r->items_completed = (uint64_t)sqlite3_column_int64(s, 3);
                r->items_failed = (uint64_t)sqlite3_column_int64(s, 4);
                r->items_skipped = (uint64_t)sqlite3_column_int64(s, 5);
            } else {
                r->units_completed = (uint64_t)sqlite3_column_int64(s, 2);
                r->output_ms = (uint64_t)sqlite3_column_int64(s, 3);
                r->gpu_render_ms = (uint64_t)sqlite3_column_int64(s, 4);
                r->cpu_render_ms = (uint64_t)sqlite3_column_int64(s, 5);
            }
        }
        if (rv == RF_OK && rc != SQLITE_DONE) {
            rv = db_fail(st, "analytics");
        }
        sqlite3_finalize(s);
    }
    if (rv != RF_OK) {
        free(rows);
        return rv;
    }
    *out = rows;
    *n = count;
    return RF_OK;
}

rf_err
rf_store_render_history(rf_store *st, const char *resolution, uint64_t *render_ms,
                        uint64_t *media_ms)
{
    sqlite3_stmt *s = NULL;
    rf_err rv = prep(st,
                     "SELECT COALESCE(SUM(render_ms), 0), COALESCE(SUM(media_duration_ms), 0)"
                     " FROM (SELECT u.render_ms, u.media_duration_ms FROM units u"
                     " JOIN jobs j ON j.id = u.job_id WHERE u.state = 'completed'"
                     " AND j.resolution = ?1 AND u.render_ms > 0 AND u.media_duration_ms > 0"
                     " ORDER BY u.updated_at DESC LIMIT 500)",
                     &s);

    *render_ms = 0;
    *media_ms = 0;
    if (rv != RF_OK) {
        return rv;
    }
    bind_text(s, 1, resolution);
    if (sqlite3_step(s) == SQLITE_ROW) {
        *render_ms = (uint64_t)sqlite3_column_int64(s, 0);
        *media_ms = (uint64_t)sqlite3_column_int64(s, 1);
    } else {
        rv = db_fail(st, "render history");
    }
    sqlite3_finalize(s);
    return rv;
}

rf_err
rf_store_agents_slots(rf_store *st, int64_t since_ms, uint64_t *slots)
{
    sqlite3_stmt *s = NULL;
    rf_err rv = prep(st,
                     "SELECT COALESCE(SUM(MAX(COALESCE(json_extract(capabilities_json, '$.slots'),"
                     " 1), 1)), 0) FROM agents WHERE last_seen >= ?1",
                     &s);

    *slots = 0;
    if (rv != RF_OK) {
        return rv;
    }
    sqlite3_bind_int64(s, 1, since_ms);
    if (sqlite3_step(s) == SQLITE_ROW) {
        *slots = (uint64_t)sqlite3_column_int64(s, 0);
    } else {
        rv = db_fail(st, "count agent slots");
    }
    sqlite3_finalize(s);
    return rv;
}

/* ---- agents ---- */

rf_err
rf_store_agent_upsert(rf_store *st, const char *id, const char *hostname, const char *caps_json,
                      int64_t now_ms)
{
    sqlite3_stmt *s = NULL;
    rf_err rv = prep(st,
                     "INSERT INTO agents (id, hostname, capabilities_json, first_seen, last_seen)"
                     " VALUES (?1, ?2, ?3, ?4, ?4) ON CONFLICT(id) DO UPDATE SET"
                     " hostname = excluded.hostname,"
                     " capabilities_json = excluded.capabilities_json,"
                     " last_seen = excluded.last_seen",
                     &s);

    if (rv != RF_OK) {
        return rv;
    }
    bind_text(s, 1, id);
    bind_text(s, 2, hostname);
    bind_text(s, 3, caps_json != NULL ? caps_json : "{}");
    sqlite3_bind_int64(s, 4, now_ms);
    return step_done(st, s, "upsert agent");
}

rf_err
rf_store_agent_touch(rf_store *st, const char *id, int64_t now_ms, bool *known)
{
    sqlite3_stmt *s = NULL;
    rf_err rv = prep(st, "UPDATE agents SET last_seen = ?2 WHERE id = ?1", &s);

    *known = false;
    if (rv != RF_OK) {
        return rv;
    }
    bind_text(s, 1, id);
    sqlite3_bind_int64(s, 2, now_ms);
    rv = step_done(st, s, "touch agent");
    if (rv == RF_OK) {
        *known = sqlite3_changes(st->db) > 0;
    }
    return rv;
}

/* ---- webhooks (live_wiring.c; schema and statements in docs/LIVE.md) ---- */

rf_err
rf_store_webhook_enqueue(rf_store *st, rf_webhook_delivery *d)
{
    sqlite3_stmt *s = NULL;
    rf_err rv =
        prep(st,
             "INSERT INTO webhook_deliveries (msg_id, job_id, tenant, event_type, url, body,"
             " state, next_attempt_at, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6,"
             " CASE WHEN EXISTS (SELECT 1 FROM webhook_disabled_endpoints WHERE url = ?5)"
             " THEN 'abandoned' ELSE 'pending' END, ?7, ?8)",
             &s);

    if (rv != RF_OK) {
        return rv;
    }
    bind_text(s, 1, d->msg_id);
    bind_text(s, 2, d->job_id);
    bind_text(s, 3, d->tenant);
    bind_text(s, 4, d->event_type);
    bind_text(s, 5, d->url);
    bind_text(s, 6, d->body != NULL ? d->body : "{}");
    sqlite3_bind_int64(s, 7, d->next_attempt_ms);
    sqlite3_bind_int64(s, 8, d->created_ms);
    rv = step_done(st, s, "enqueue webhook");
    if (rv == RF_OK) {
        d->id = sqlite3_last_insert_rowid(st->db);
    }
    if (rv == RF_OK && d->event_id > 0) {
        rv = prep(st, "UPDATE webhook_cursor SET event_id = MAX(event_id, ?1) WHERE id = 1", &s);
        if (rv == RF_OK) {
            sqlite3_bind_int64(s, 1, d->event_id);
            rv = step_done(st, s, "move the webhook cursor");
        }
    }
    return rv;
}

rf_err
rf_store_webhook_cursor_to_end(rf_store *st)
{
    sqlite3_stmt *s = NULL;
    rf_err rv =
        prep(st,
             "UPDATE webhook_cursor SET event_id = (SELECT COALESCE(MAX(id), 0) FROM events)"
             " WHERE id = 1",
             &s);

    if (rv != RF_OK) {
        return rv;
    }
    return step_done(st, s, "move the webhook cursor to the end");
}

rf_err
rf_store_webhook_backlog(rf_store *st, int64_t after_id, size_t limit, rf_event_rec **out,
                         size_t *n)
{
    sqlite3_stmt *s = NULL;
    void *recs = NULL;
    rf_err rv;

    *out = NULL;
    *n = 0;
    /* after_id < 0: from the cursor */
    rv = prep(st,
              "SELECT e.id, e.job_id, e.type, e.data_json, e.created_at FROM events e"
              " JOIN jobs j ON j.id = e.job_id"
              " WHERE e.id > CASE WHEN ?1 >= 0 THEN ?1"
              " ELSE (SELECT event_id FROM webhook_cursor WHERE id = 1) END"
              " AND j.callback_url IS NOT NULL"
              " AND e.type IN ('job.state_changed', 'job.completed', 'job.failed')"
              " ORDER BY e.id LIMIT ?2",
              &s);
    if (rv != RF_OK) {
        return rv;
    }
    sqlite3_bind_int64(s, 1, after_id);
    sqlite3_bind_int64(s, 2, (sqlite3_int64)limit);
    rv = collect_rows(st, s, sizeof(rf_event_rec), limit, read_event_row, free_event_rows,
                      "list the webhook backlog", &recs, n);
    *out = recs;
    return rv;
}

rf_err
rf_store_webhook_claim(rf_store *st, int64_t now_ms, int64_t lease_ms, rf_webhook_delivery *out,
                       int64_t *next_due_ms)
{
    sqlite3_stmt *s = NULL;
    rf_err rv;
    int rc;

    memset(out, 0, sizeof(*out));
    if (next_due_ms != NULL) {
        *next_due_ms = -1;
    }
    rv = prep(st,
              "UPDATE webhook_deliveries SET claimed_until = ?1 + ?2"
              " WHERE id = (SELECT d.id FROM webhook_deliveries d"
              "  WHERE d.state = 'pending' AND d.next_attempt_at <= ?1 AND d.claimed_until <= ?1"
              "   AND d.id = (SELECT MIN(e.id) FROM webhook_deliveries e"
              "                WHERE e.job_id = d.job_id AND e.state = 'pending')"
              "  ORDER BY d.next_attempt_at, d.id LIMIT 1)"
              " RETURNING id, msg_id, job_id, tenant, event_type, url, body, attempts, created_at,"
              " next_attempt_at",
              &s);
    if (rv != RF_OK) {
        return rv;
    }
    sqlite3_bind_int64(s, 1, now_ms);
    sqlite3_bind_int64(s, 2, lease_ms);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        const unsigned char *body = sqlite3_column_text(s, 6);
        out->id = sqlite3_column_int64(s, 0);
        col_text(s, 1, out->msg_id, sizeof(out->msg_id));
        col_text(s, 2, out->job_id, sizeof(out->job_id));
        col_text(s, 3, out->tenant, sizeof(out->tenant));
        col_text(s, 4, out->event_type, sizeof(out->event_type));
        col_text(s, 5, out->url, sizeof(out->url));
        out->body = strdup(body != NULL ? (const char *)body : "{}");
        out->attempts = (int)sqlite3_column_int64(s, 7);
        out->created_ms = sqlite3_column_int64(s, 8);
        out->next_attempt_ms = sqlite3_column_int64(s, 9);
        rv = out->body != NULL ? RF_OK : RF_ENOMEM;
        sqlite3_step(s); /* RETURNING: run the statement to its end */
    } else if (rc == SQLITE_DONE) {
        rv = RF_ENOTFOUND;
    } else {
        rv = db_fail(st, "claim webhook");
    }
    sqlite3_finalize(s);
    if (rv != RF_ENOTFOUND || next_due_ms == NULL) {
        return rv;
    }
    if (prep(st, "SELECT MIN(next_attempt_at) FROM webhook_deliveries WHERE state = 'pending'",
             &s) != RF_OK) {
        return RF_ESTORE;
    }
    if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_type(s, 0) != SQLITE_NULL) {
        *next_due_ms = sqlite3_column_int64(s, 0);
    }
    sqlite3_finalize(s);
    return RF_ENOTFOUND;
}

rf_err
rf_store_webhook_record(rf_store *st, const rf_webhook_attempt *a, int64_t now_ms)
{
    sqlite3_stmt *s = NULL;
    bool retry = strcmp(a->outcome, "retry") == 0;
    rf_err rv = prep(
        st, "INSERT OR REPLACE INTO webhook_attempts VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)", &s);

    if (rv != RF_OK) {
        return rv;
    }
    sqlite3_bind_int64(s, 1, a->delivery_id);
    sqlite3_bind_int64(s, 2, a->attempt);
    sqlite3_bind_int64(s, 3, a->started_ms);
    sqlite3_bind_int64(s, 4, a->duration_ms);
    sqlite3_bind_int64(s, 5, a->status_code);
    bind_text(s, 6, a->error);
    bind_text(s, 7, a->outcome);
    bind_int_opt(s, 8, retry ? a->next_attempt_ms : 0);
    rv = step_done(st, s, "record webhook attempt");
    if (rv != RF_OK) {
        return rv;
    }
    rv = prep(st,
              "UPDATE webhook_deliveries SET attempts = ?2, claimed_until = 0,"
              " next_attempt_at = CASE WHEN ?3 THEN ?4 ELSE next_attempt_at END,"
              " state = CASE WHEN ?3 THEN 'pending' WHEN ?5 = 'delivered' THEN 'delivered'"
              "  ELSE 'abandoned' END,"
              " finished_at = CASE WHEN ?3 THEN NULL ELSE ?6 END WHERE id = ?1",
              &s);
    if (rv != RF_OK) {
        return rv;
    }
    sqlite3_bind_int64(s, 1, a->delivery_id);
    sqlite3_bind_int64(s, 2, a->attempt);
    sqlite3_bind_int(s, 3, retry ? 1 : 0);
    sqlite3_bind_int64(s, 4, a->next_attempt_ms);
    bind_text(s, 5, a->outcome);
    sqlite3_bind_int64(s, 6, now_ms);
    return step_done(st, s, "update webhook delivery");
}

rf_err
rf_store_webhook_disable(rf_store *st, const char *url, int64_t now_ms)
{
    sqlite3_stmt *s = NULL;
    rf_err rv = prep(st, "INSERT OR IGNORE INTO webhook_disabled_endpoints VALUES (?1, ?2)", &s);

    if (rv != RF_OK) {
        return rv;
    }
    bind_text(s, 1, url);
    sqlite3_bind_int64(s, 2, now_ms);
    rv = step_done(st, s, "disable webhook endpoint");
    if (rv != RF_OK) {
        return rv;
    }
    rv = prep(st,
              "UPDATE webhook_deliveries SET state = 'abandoned', finished_at = ?2"
              " WHERE url = ?1 AND state = 'pending' AND claimed_until <= ?2",
              &s);
    if (rv != RF_OK) {
        return rv;
    }
    bind_text(s, 1, url);
    sqlite3_bind_int64(s, 2, now_ms);
    return step_done(st, s, "abandon webhooks of a disabled endpoint");
}

void
rf_webhook_rows_free(rf_webhook_row *rows, size_t n)
{
    for (size_t i = 0; rows != NULL && i < n; i++) {
        free(rows[i].attempts);
    }
    free(rows);
}

rf_err
rf_store_webhook_list(rf_store *st, const char *job_id, size_t limit, rf_webhook_row **out,
                      size_t *n)
{
    sqlite3_stmt *s = NULL;
    rf_webhook_row *rows = NULL;
    size_t count = 0;
    rf_err rv;
    int rc;

    *out = NULL;
    *n = 0;
    rows = calloc(limit > 0 ? limit : 1, sizeof(*rows));
    if (rows == NULL) {
        return RF_ENOMEM;
    }
    rv = prep(st,
              "SELECT id, msg_id, event_type, url, state, attempts, created_at, next_attempt_at,"
              " finished_at FROM webhook_deliveries WHERE job_id = ?1 ORDER BY id LIMIT ?2",
              &s);
    if (rv != RF_OK) {
        goto out;
    }
    bind_text(s, 1, job_id);
    sqlite3_bind_int64(s, 2, (int64_t)limit);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW && count < limit) {
        rf_webhook_row *w = &rows[count++];
        w->id = sqlite3_column_int64(s, 0);
        col_text(s, 1, w->msg_id, sizeof(w->msg_id));
        col_text(s, 2, w->event_type, sizeof(w->event_type));
        col_text(s, 3, w->url, sizeof(w->url));
        col_text(s, 4, w->state, sizeof(w->state));
        w->n_attempts = (int)sqlite3_column_int64(s, 5);
        w->created_at = sqlite3_column_int64(s, 6);
        w->next_attempt_at = sqlite3_column_int64(s, 7);
        w->finished_at = sqlite3_column_int64(s, 8);
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        rv = db_fail(st, "list webhooks");
    }
    sqlite3_finalize(s);
    s = NULL;
    for (size_t i = 0; rv == RF_OK && i < count; i++) {
        rf_webhook_row *w = &rows[i];
        size_t k = 0;
        w->attempts = calloc(w->n_attempts > 0 ? (size_t)w->n_attempts : 1, sizeof(*w->attempts));
        if (w->attempts == NULL) {
            rv = RF_ENOMEM;
            break;
        }
        rv = prep(st,
                  "SELECT attempt, started_at, duration_ms, status_code, error, outcome,"
                  " next_attempt_at FROM webhook_attempts WHERE delivery_id = ?1 ORDER BY attempt",
                  &s);
        if (rv != RF_OK) {
            break;
        }
        sqlite3_bind_int64(s, 1, w->id);
        while (sqlite3_step(s) == SQLITE_ROW && k < (size_t)w->n_attempts) {
            rf_webhook_attempt *a = &w->attempts[k++];
            a->delivery_id = w->id;
            a->attempt = (int)sqlite3_column_int64(s, 0);
            a->started_ms = sqlite3_column_int64(s, 1);
            a->duration_ms = sqlite3_column_int64(s, 2);
            a->status_code = (int)sqlite3_column_int64(s, 3);
            col_text(s, 4, a->error, sizeof(a->error));
            col_text(s, 5, a->outcome, sizeof(a->outcome));
            a->next_attempt_ms = sqlite3_column_int64(s, 6);
        }
        w->n_attempts = (int)k;
        sqlite3_finalize(s);
        s = NULL;
    }
out:
    if (rv != RF_OK) {
        rf_webhook_rows_free(rows, count);
        return rv;
    }
    *out = rows;
    *n = count;
    return RF_OK;
}

rf_err
rf_store_webhook_secret_get(rf_store *st, const char *tenant, char *out, size_t len)
{
    sqlite3_stmt *s = NULL;
    rf_err rv = prep(st, "SELECT secret FROM webhook_secrets WHERE tenant = ?1", &s);

    if (rv != RF_OK) {
        return rv;
    }
    bind_text(s, 1, tenant);
    rv = RF_ENOTFOUND;
    if (sqlite3_step(s) == SQLITE_ROW) {
        col_text(s, 0, out, len);
        rv = RF_OK;
    }
    sqlite3_finalize(s);
    return rv;
}

rf_err
rf_store_webhook_secret_put(rf_store *st, const char *tenant, const char *secret, int64_t now_ms)
{
    sqlite3_stmt *s = NULL;
    rf_err rv = prep(st, "INSERT OR IGNORE INTO webhook_secrets VALUES (?1, ?2, ?3)", &s);

    if (rv != RF_OK) {
        return rv;
    }
    bind_text(s, 1, tenant);
    bind_text(s, 2, secret);
    sqlite3_bind_int64(s, 3, now_ms);
    return step_done(st, s, "store webhook secret");
}
