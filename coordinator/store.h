/* The SQLite job store: the only module that includes sqlite3.h.
 *
 * Concurrency: one connection per handle (WAL mode, busy_timeout for other
 * processes, foreign keys on) guarded by a mutex. Every record function must
 * be called between rf_store_begin() and rf_store_commit()/rf_store_rollback();
 * begin takes the mutex and opens a BEGIN IMMEDIATE transaction, commit and
 * rollback end it and release the mutex. So a domain operation made of several
 * statements is atomic and serialised with every other one in the process.
 *
 * Schema changes are migrations applied in order by PRAGMA user_version, each
 * in its own transaction, when the store is opened.
 *
 * Records use fixed buffers except the JSON documents, which are heap strings
 * owned by the record (release with the matching *_clear). Optional columns
 * read as "" or 0 when NULL, and "" / 0 are written as NULL.
 *
 * Errors: RF_ESTORE for any SQLite failure (logged once with sqlite3_errmsg),
 * RF_ENOTFOUND when a *_get finds no row, RF_ENOMEM on allocation failure. */
#ifndef RF_STORE_H
#define RF_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rf_err.h"
#include "rf_proto.h"
#include "webhooks.h"

typedef struct rf_store rf_store;

/* A user id (JWT "sub") as stored: at most 127 bytes. */
#define RF_USER_MAX 128

typedef struct rf_job_rec {
    char id[RF_ID_MAX];
    char tenant[RF_NAME_MAX];
    char title[RF_TITLE_MAX + 1];
    int priority; /* 0 low, 1 normal, 2 high */
    char state[RF_NAME_MAX];
    char *request_json;   /* the request as received */
    char *input_json;     /* input_source summary for responses */
    char *overrides_json; /* template overrides object */
    char format[RF_NAME_MAX];
    char video_codec[RF_NAME_MAX];
    char audio_codec[RF_NAME_MAX];
    char resolution[RF_NAME_MAX];
    char output_bucket[RF_NAME_MAX];
    char template_id[RF_NAME_MAX];
    int64_t processing_deadline_ms; /* 0: none */
    char callback_url[RF_PATH_MAX];
    int64_t created_at, updated_at, started_at, finished_at; /* ms; 0: not yet */
    char error_code[RF_NAME_MAX];
    char error_message[RF_ERRMSG_MAX];
    char created_by[RF_USER_MAX]; /* the token's sub; "" for jobs made before auth */
    int64_t deadline_at;          /* ms; 0: no deadline (created_at or retry + deadline) */
    int permille;                 /* percent_complete x 10 (0..1000): the list's sort key */
    char *template_json;          /* resolved custom template ("" for built-ins) */
    char ingest[RF_NAME_MAX];     /* "sheet": rows still to be read in the background; "" */
    bool writeback;               /* results go back into the job's sheet */
    int64_t written_back_at;      /* updated_at when results were last written back; 0 */
} rf_job_rec;

typedef struct rf_item_rec {
    char id[RF_ID_MAX];
    char job_id[RF_ID_MAX];
    uint32_t row_number;
    char state[RF_NAME_MAX]; /* pending, processing, completed, failed, skipped */
    char *data_json;         /* the row's fields as a JSON object */
    char title[RF_TITLE_MAX + 1];
    char error_code[RF_NAME_MAX];
    char error_message[RF_ERRMSG_MAX];
    int priority;
    int64_t created_at, updated_at;
} rf_item_rec;

typedef struct rf_unit_rec {
    char id[RF_ID_MAX];
    char item_id[RF_ID_MAX];
    char job_id[RF_ID_MAX];
    char rendition[RF_NAME_MAX];
    uint32_t width, height, fps;
    uint32_t duration_ms;
    uint32_t frames_total, frames_done;
    char state[RF_NAME_MAX]; /* queued, leased, completed, failed, canceled */
    char lease_id[RF_ID_MAX];
    char agent_id[RF_ID_MAX];
    int64_t lease_expires_at;
    uint32_t attempts;
    char output_path[RF_PATH_MAX];
    uint64_t size_bytes;
    char sha256[65];
    uint32_t media_duration_ms;
    char encoder[RF_NAME_MAX];
    uint32_t render_ms;
    char error_code[RF_NAME_MAX];
    char error_message[RF_ERRMSG_MAX];
    int64_t created_at, updated_at;
    char poster_path[RF_PATH_MAX];   /* JPEG poster beside the video, "" if none */
    char captions_path[RF_PATH_MAX]; /* WebVTT captions beside the video, "" if none */
} rf_unit_rec;

typedef struct rf_event_rec {
    int64_t id;
    char job_id[RF_ID_MAX];
    char type[RF_NAME_MAX];
    char *data_json;
    int64_t created_at;
} rf_event_rec;

typedef struct rf_unit_counts {
    uint32_t total, queued, leased, completed, failed, canceled;
} rf_unit_counts;

typedef struct rf_item_counts {
    uint32_t total, pending, processing, completed, failed, skipped;
} rf_item_counts;

/* Opens (creating if needed) the database at path and applies pending
 * migrations. *out is owned by the caller (rf_store_close). */
rf_err rf_store_open(const char *path, rf_store **out);

/* Closes and frees; NULL-safe, sets *st = NULL. No transaction may be open. */
void rf_store_close(rf_store **st);

/* The schema version the code migrates to, and the file's current one. */
int rf_store_schema_version(void);
rf_err rf_store_user_version(rf_store *st, int *out);

/* Transactions (see above). commit releases the mutex even when it fails
 * (the transaction is then rolled back). rollback is NULL-safe. */
rf_err rf_store_begin(rf_store *st);

/* Post-commit event hook (live_wiring.c): every event added with
 * rf_store_event_add and every rf_store_notify of a transaction is handed to
 * fn, in order, once that transaction has committed; nothing of a rolled-back
 * transaction is. fn runs under the store mutex (so events of concurrent
 * transactions arrive in commit order): it must only queue the event, never
 * block or call into the store. data_json is borrowed. event_id is the
 * stored event's id (0 for rf_store_notify's). */
typedef void (*rf_store_event_fn)(void *ctx, int64_t event_id, const char *job_id, const char *type,
                                  const char *data_json, int64_t at_ms);
void rf_store_set_event_hook(rf_store *st, rf_store_event_fn fn, void *ctx);
/* Queues a notification for the hook without storing it (e.g. "job.progress"
 * on each agent report). Inside a transaction. RF_ENOMEM. */
rf_err rf_store_notify(rf_store *st, const char *job_id, const char *type, const char *data_json,
                       int64_t now_ms);
rf_err rf_store_commit(rf_store *st);
void rf_store_rollback(rf_store *st);

/* Jobs. update_state writes state, updated_at, started_at, finished_at,
 * error_code, error_message, deadline_at and permille of the record's id;
 * set_progress only permille and updated_at. */
rf_err rf_store_job_insert(rf_store *st, const rf_job_rec *job);
rf_err rf_store_job_get(rf_store *st, const char *id, rf_job_rec *out);
rf_err rf_store_job_update_state(rf_store *st, const rf_job_rec *job);
rf_err rf_store_job_set_progress(rf_store *st, const char *id, int permille, int64_t updated_at);
void rf_job_rec_clear(rf_job_rec *job);
void rf_job_recs_free(rf_job_rec *jobs, size_t n);

/* Keyset listing of one tenant's jobs (state optional), ordered by (sort key,
 * id) ascending or descending, strictly after (before, when descending) the
 * cursor (after_key, after_id) when has_after. At most limit records, as a
 * malloc'd array freed with rf_job_recs_free. count gives how many jobs match
 * tenant and state (no cursor). */
typedef enum rf_job_sort {
    RF_JOB_SORT_CREATED_AT = 0,
    RF_JOB_SORT_UPDATED_AT = 1,
    RF_JOB_SORT_PERCENT = 2, /* the stored permille */
} rf_job_sort;

typedef struct rf_job_query {
    const char *tenant;
    const char *state; /* NULL: any */
    rf_job_sort sort;
    bool desc;
    bool has_after;
    int64_t after_key;
    char after_id[RF_ID_MAX];
    size_t limit;
} rf_job_query;

rf_err rf_store_jobs_list(rf_store *st, const rf_job_query *q, rf_job_rec **out, size_t *n);
rf_err rf_store_jobs_count(rf_store *st, const char *tenant, const char *state, uint64_t *out);

/* Jobs, not ended, whose rows are still to be read (oldest first). */
rf_err rf_store_jobs_ingest_due(rf_store *st, size_t max, char (*ids)[RF_ID_MAX], size_t *n);
/* Jobs with write-back that ended since their results were last written. */
rf_err rf_store_jobs_writeback_due(rf_store *st, size_t max, char (*ids)[RF_ID_MAX], size_t *n);
/* ingest NULL or "" clears it. */
rf_err rf_store_job_set_ingest(rf_store *st, const char *id, const char *ingest);
rf_err rf_store_job_set_written_back(rf_store *st, const char *id, int64_t updated_at);
/* Ids of unfinished jobs (pending, running, pausing, paused, completing)
 * whose deadline_at is at or before now_ms, at most max. */
rf_err rf_store_jobs_past_deadline(rf_store *st, int64_t now_ms, size_t max, char (*ids)[RF_ID_MAX],
                                   size_t *n);

/* Items. update_state writes state, error_code, error_message, updated_at.
 * list returns items of a job with row_number > after_row (and state ==
 * state unless NULL) ordered by row_number, at most limit, as a malloc'd array
 * freed with rf_item_recs_free. */
rf_err rf_store_item_insert(rf_store *st, const rf_item_rec *item);
rf_err rf_store_item_get(rf_store *st, const char *id, rf_item_rec *out);
rf_err rf_store_item_update_state(rf_store *st, const rf_item_rec *item);
rf_err rf_store_items_list(rf_store *st, const char *job_id, const char *state, uint32_t after_row,
                           size_t limit, rf_item_rec **out, size_t *n);
void rf_item_rec_clear(rf_item_rec *item);
void rf_item_recs_free(rf_item_rec *items, size_t n);

/* Units. update writes every mutable column (frames, state, lease, attempts,
 * results, errors, updated_at) of the record's id. */
rf_err rf_store_unit_insert(rf_store *st, const rf_unit_rec *unit);
rf_err rf_store_unit_get(rf_store *st, const char *id, rf_unit_rec *out);
rf_err rf_store_unit_update(rf_store *st, const rf_unit_rec *unit);

/* The scheduler's choice: the next queued unit whose job is pending or
 * running and whose codecs agent_id has an encoder for (its HELLO's list;
 * NULL: any agent), by job priority DESC, job created_at, job id, item
 * priority DESC, item row_number, unit rendition; tenant_max_leased > 0
 * passes over the jobs of tenants with that many units leased already.
 * *found = false when there is none. */
rf_err rf_store_unit_next_queued(rf_store *st, const char *agent_id, int64_t tenant_max_leased,
                                 char id[RF_ID_MAX], bool *found);
/* Whether tenant has at least cap units leased (false when cap <= 0). */
rf_err rf_store_tenant_at_cap(rf_store *st, const char *tenant, int64_t cap, bool *at_cap);

/* Ids of leased units whose lease_expires_at < now_ms, at most max. */
rf_err rf_store_units_expired(rf_store *st, int64_t now_ms, size_t max, char (*ids)[RF_ID_MAX],
                              size_t *n);

/* Units of an item ordered by rendition, malloc'd array (free()). */
rf_err rf_store_units_of_item(rf_store *st, const char *item_id, rf_unit_rec **out, size_t *n);

/* Units of a job in one state (NULL: any), ordered by id, malloc'd (free()). */
rf_err rf_store_units_of_job(rf_store *st, const char *job_id, const char *state, rf_unit_rec **out,
                             size_t *n);

/* Units of a job counted by state. */
rf_err rf_store_job_unit_counts(rf_store *st, const char *job_id, rf_unit_counts *out);

/* Derived counters (never stored). job_frames counts a completed or failed
 * unit as all of its frames done. */
rf_err rf_store_item_unit_counts(rf_store *st, const char *item_id, rf_unit_counts *out);
rf_err rf_store_job_item_counts(rf_store *st, const char *job_id, rf_item_counts *out);
rf_err rf_store_job_frames(rf_store *st, const char *job_id, uint64_t *done, uint64_t *total);

/* Events: appended, listed by job with id > after_id in id order (malloc'd
 * array freed with rf_event_recs_free). job_id may be NULL or "" for events
 * not about a job. */
rf_err rf_store_event_add(rf_store *st, const char *job_id, const char *type, const char *data_json,
                          int64_t now_ms);
rf_err rf_store_events_list(rf_store *st, const char *job_id, int64_t after_id, size_t limit,
                            rf_event_rec **out, size_t *n);
void rf_event_recs_free(rf_event_rec *events, size_t n);

/* Idempotency records, keyed by (tenant, key). state is "in_flight" (the
 * first request is being processed), "created" (its job exists: job_id set,
 * no response stored yet) or "done" (status and response_body stored). */
typedef struct rf_idem_rec {
    char tenant[RF_NAME_MAX];
    char key[256];
    char request_hash[65];
    char state[16];
    int status;
    char *response_body; /* heap, may be NULL */
    char job_id[RF_ID_MAX];
    int64_t created_at, updated_at;
} rf_idem_rec;

/* get: RF_ENOTFOUND when absent. insert fails (RF_ECONFLICT) when the key
 * exists. update writes hash, state, status, body, job_id, created_at and
 * updated_at. purge deletes records created before before_ms. */
rf_err rf_store_idem_get(rf_store *st, const char *tenant, const char *key, rf_idem_rec *out);
rf_err rf_store_idem_insert(rf_store *st, const rf_idem_rec *rec);
rf_err rf_store_idem_update(rf_store *st, const rf_idem_rec *rec);
rf_err rf_store_idem_delete(rf_store *st, const char *tenant, const char *key);
rf_err rf_store_idem_purge(rf_store *st, int64_t before_ms, size_t *n);
void rf_idem_rec_clear(rf_idem_rec *rec);

/* Custom templates, keyed by (tenant, id). settings_json is the validated
 * settings object (heap). insert: RF_ECONFLICT when the id exists. list: at
 * most limit, ordered by id, malloc'd, freed with rf_tpl_recs_free. */
typedef struct rf_tpl_rec {
    char tenant[RF_NAME_MAX];
    char id[RF_NAME_MAX];
    char name[RF_TITLE_MAX + 1];
    char description[1024]; /* at most 1000 bytes */
    char *settings_json;
    char created_by[RF_USER_MAX];
    int64_t created_at, updated_at;
} rf_tpl_rec;

rf_err rf_store_tpl_insert(rf_store *st, const rf_tpl_rec *rec);
rf_err rf_store_tpl_get(rf_store *st, const char *tenant, const char *id, rf_tpl_rec *out);
rf_err rf_store_tpl_list(rf_store *st, const char *tenant, size_t limit, rf_tpl_rec **out,
                         size_t *n);
void rf_tpl_rec_clear(rf_tpl_rec *rec);
void rf_tpl_recs_free(rf_tpl_rec *recs, size_t n);

/* Analytics: per (template_id, resolution) of one tenant's jobs created in
 * [from_ms, to_ms): job, item and completed-unit sums. A unit whose encoder
 * is a hardware one (nvenc, vaapi, qsv) counts as GPU render time. */
typedef struct rf_analytics_row {
    char template_id[RF_NAME_MAX];
    char resolution[RF_NAME_MAX];
    uint64_t jobs, jobs_finished;
    int64_t processing_ms; /* sum of finished_at - started_at over finished jobs */
    uint64_t items_total, items_completed, items_failed, items_skipped;
    uint64_t units_completed, output_ms, gpu_render_ms, cpu_render_ms;
} rf_analytics_row;

rf_err rf_store_analytics(rf_store *st, const char *tenant, int64_t from_ms, int64_t to_ms,
                          rf_analytics_row **out, size_t *n);

/* Render speed history: sums of render_ms and media_duration_ms over the
 * most recent (at most 500) completed units of jobs at this resolution. */
rf_err rf_store_render_history(rf_store *st, const char *resolution, uint64_t *render_ms,
                               uint64_t *media_ms);

/* Total slots of agents heard from at or after since_ms. */
rf_err rf_store_agents_slots(rf_store *st, int64_t since_ms, uint64_t *slots);

/* Agents: upsert on HELLO (first_seen kept), touch on every later message
 * (*known = false when the agent was never seen). */
rf_err rf_store_agent_upsert(rf_store *st, const char *id, const char *hostname,
                             const char *caps_json, int64_t now_ms);
rf_err rf_store_agent_touch(rf_store *st, const char *id, int64_t now_ms, bool *known);

/* Webhooks (live_wiring.c implements rf_webhook_store_ops with these; the
 * schema is in docs/LIVE.md). Each inside a transaction. enqueue sets d->id;
 * claim returns RF_ENOTFOUND (with *next_due_ms, -1 when nothing is pending)
 * when no delivery is due; record applies an attempt's outcome; disable
 * abandons every pending delivery to url and later ones. */
/* Inserts the delivery; when d->event_id > 0 the outbox cursor moves to it
 * in the same transaction. */
rf_err rf_store_webhook_enqueue(rf_store *st, rf_webhook_delivery *d);
/* Events that may have committed without their webhook being queued: those
 * after the outbox cursor (after_id < 0) or after after_id, of the types
 * that make webhooks, of jobs with a callback_url; oldest first. */
rf_err rf_store_webhook_backlog(rf_store *st, int64_t after_id, size_t limit, rf_event_rec **out,
                                size_t *n);
/* Moves the outbox cursor to the last event: for a start-up that found no
 * backlog, so that the next one scans only what comes after. */
rf_err rf_store_webhook_cursor_to_end(rf_store *st);
rf_err rf_store_webhook_claim(rf_store *st, int64_t now_ms, int64_t lease_ms,
                              rf_webhook_delivery *out, int64_t *next_due_ms);
rf_err rf_store_webhook_record(rf_store *st, const rf_webhook_attempt *a, int64_t now_ms);
rf_err rf_store_webhook_disable(rf_store *st, const char *url, int64_t now_ms);

/* One delivery of a job with its attempts (oldest first, malloc'd). */
typedef struct rf_webhook_row {
    int64_t id;
    char msg_id[64];
    char event_type[64];
    char url[2048];
    char state[16]; /* pending, delivered, abandoned */
    int64_t created_at, next_attempt_at, finished_at;
    rf_webhook_attempt *attempts;
    int n_attempts;
} rf_webhook_row;
/* A job's deliveries in order, at most limit; free with rf_webhook_rows_free. */
rf_err rf_store_webhook_list(rf_store *st, const char *job_id, size_t limit, rf_webhook_row **out,
                             size_t *n);
void rf_webhook_rows_free(rf_webhook_row *rows, size_t n);
/* Per-tenant webhook secrets ("whsec_..."): get gives RF_ENOTFOUND when the
 * tenant has none; put keeps an existing one (first writer wins). */
rf_err rf_store_webhook_secret_get(rf_store *st, const char *tenant, char *out, size_t len);
rf_err rf_store_webhook_secret_put(rf_store *st, const char *tenant, const char *secret,
                                   int64_t now_ms);

#endif
