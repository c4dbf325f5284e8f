/* The job domain: turning a validated request and its rows into a job with
 * items and units, the scheduler (select and assign in one transaction),
 * leases and their reports, the reaper, and the read models the API shows.
 * It never sees HTTP or the wire; every function that depends on the time
 * takes now_ms so that tests control the clock.
 *
 * State machines (text in the store):
 *   job:  pending, running, pausing, paused, completing, completed,
 *         canceling, canceled, failed (rf_job_transition_allowed is the table
 *         of moves, rf_job_action_allowed the user guide's table of actions)
 *   item: pending, processing, completed, failed, skipped (derived from units)
 *   unit: queued, leased, completed, failed, canceled
 * A job leaves pending when its first unit is leased (running), and is
 * completing once no unit is queued and the last ones are in flight (back to
 * running if one of them is requeued). It ends when every item is terminal:
 * completed if an item completed or all items were skipped, failed
 * ("all_items_failed") when every non-skipped item failed.
 * Actions: pause stops new leases (pausing while units are in flight, paused
 * when none are); resume returns to running; cancel cancels queued units and
 * tells in-flight ones to stop (their next heartbeat is refused "canceled"),
 * canceling until none is in flight; retry requeues the failed items of a
 * failed job (attempts reset, errors kept in events) and makes it pending.
 * A job past its processing deadline fails with "deadline_exceeded": queued
 * units are canceled (their items skipped), in-flight units are failed (the
 * agent is told to stop). Every job state change writes a job.state_changed
 * event {job_id, prior_state, new_state, reason}.
 *
 * Errors: RF_ESTORE (database), RF_ENOMEM, RF_ENOTFOUND for unknown ids. An
 * agent report that does not match the current lease is not an error: the
 * outcome says why it was refused and nothing changes. */
#ifndef RF_JOBS_H
#define RF_JOBS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "request.h"
#include "rf_err.h"
#include "rf_proto.h"
#include "rows.h"
#include "store.h"

typedef struct rf_job_view rf_job_view;

/* ---- pure helpers (exposed for tests) ---- */

typedef enum rf_shape {
    RF_SHAPE_LANDSCAPE = 0, /* 16:9 */
    RF_SHAPE_PORTRAIT = 1,  /* 9:16 */
    RF_SHAPE_SQUARE = 2,    /* 1:1 */
} rf_shape;

/* Platform name (lowercase) -> shape; false if unknown. youtube: 16:9;
 * tiktok, shorts, youtube_shorts, reels, instagram_reels: 9:16; instagram 1:1. */
bool rf_platform_shape(const char *platform, rf_shape *shape);

/* Frame size for a resolution class (720p, 1080p, 4k) and shape. */
bool rf_resolution_size(const char *resolution, rf_shape shape, uint32_t *width, uint32_t *height);

/* ASCII lowercase slug of alnum runs joined by '-', at most 40 chars, "video"
 * when nothing is left. out must hold 41 bytes. */
void rf_slugify(const char *title, char *out, size_t len);

/* Job state helpers. */
bool rf_job_state_valid(const char *state);
bool rf_job_state_terminal(const char *state);
bool rf_job_transition_allowed(const char *from, const char *to);

/* The user guide's action table. */
typedef enum rf_job_action {
    RF_ACTION_PAUSE = 0,
    RF_ACTION_RESUME = 1,
    RF_ACTION_CANCEL = 2,
    RF_ACTION_RETRY = 3,
} rf_job_action;

const char *rf_job_action_name(rf_job_action a);
bool rf_job_action_parse(const char *name, rf_job_action *out);
bool rf_job_action_allowed(const char *state, rf_job_action a);
/* The actions of a state as text for messages: "pause, cancel" or "none". */
const char *rf_job_actions_text(const char *state);

/* ---- creation and reads ---- */

/* Who a job belongs to. */
typedef struct rf_job_owner {
    const char *tenant;     /* NULL or "": "default" */
    const char *created_by; /* the user (token sub); may be NULL */
} rf_job_owner;

/* Creates the job, one item per row (validated at the guide's "moderate"
 * level: bad rows become failed items with a message naming the row and the
 * field, empty rows skipped items), and one unit per distinct frame shape of
 * each valid row, in one transaction. A job with nothing to render ends at
 * once. job_id receives the new id. rf_jobs_create is tenant "default". When
 * idem_key is not NULL the tenant's in-flight Idempotency-Key record gets the
 * job id in the same transaction (idempotency.h). */
rf_err rf_jobs_create(rf_store *st, const rf_coord_config *cfg, const rf_job_spec *spec,
                      const rf_rows *rows, int64_t now_ms, char job_id[RF_ID_MAX]);
rf_err rf_jobs_create_as(rf_store *st, const rf_coord_config *cfg, const rf_job_owner *owner,
                         const rf_job_spec *spec, const rf_rows *rows, const char *idem_key,
                         int64_t now_ms, char job_id[RF_ID_MAX]);

/* The tenant a job belongs to (for access checks). RF_ENOTFOUND. */
/* Rows read after the job was created (its sheet answered 429 then, and the
 * job waits in pending with ingest "sheet"): inserts them as rf_jobs_create
 * would, clears ingest, writes event job.rows_read {rows, read_ms} and lets
 * the job move on, all in one transaction. RF_ECONFLICT when the job ended
 * meanwhile or was not waiting for rows (nothing changes). */
rf_err rf_jobs_ingest(rf_store *st, const rf_coord_config *cfg, const char *job_id, rf_vlevel level,
                      const rf_rows *rows, int64_t read_ms, int64_t now_ms);

/* Fails such a job with the reason its rows could not be read. ingest stays
 * set, so that a retry reads the sheet again. RF_ECONFLICT as above. */
rf_err rf_jobs_ingest_failed(rf_store *st, const char *job_id, const char *code,
                             const char *message, int64_t now_ms);

rf_err rf_jobs_tenant(rf_store *st, const char *job_id, char tenant[RF_NAME_MAX]);

/* Why a rate limit holds the job back now (rf_hold_reason bits, 0: none):
 * the waits registered in cfg->holdback (holdback.h), and
 * RF_HOLD_TENANT_QUOTA while it is pending or running with units queued and
 * its tenant has tenant_max_units_in_flight units leased. An ended job is
 * held back only by a write-back. */
unsigned rf_jobs_held_back(rf_store *st, const rf_coord_config *cfg, const rf_job_rec *job);

/* ---- dry run ---- */

typedef struct rf_row_report {
    uint32_t row_number;
    const char *status;        /* "valid", "invalid", "skipped" */
    char error[RF_ERRMSG_MAX]; /* "" unless invalid */
    char warning[256];         /* "" or advice (defaults applied, ...) */
    uint32_t renditions;
    uint32_t duration_s;
} rf_row_report;

typedef struct rf_dry_run {
    rf_row_report *rows; /* one per input row, in order */
    size_t n_rows;
    uint32_t valid_rows, invalid_rows, skipped_rows;
    uint64_t renditions; /* units a real job would have */
    uint64_t output_ms;  /* their summed duration */
    uint64_t frames;     /* their summed frames */
} rf_dry_run;

/* Validates rows exactly as rf_jobs_create would, creating nothing. */
rf_err rf_jobs_dry_run(const rf_coord_config *cfg, const rf_job_spec *spec, const rf_rows *rows,
                       rf_dry_run *out);
void rf_dry_run_clear(rf_dry_run *d);

/* ---- listing ---- */

/* One page of a tenant's jobs (q as rf_store_jobs_list, q->limit + 1 rows are
 * read to learn whether more follow) with their counters, in one read
 * transaction. *total counts the jobs matching tenant and state. Free with
 * rf_job_views_free. */
rf_err rf_jobs_list(rf_store *st, const rf_job_query *q, int64_t now_ms, rf_job_view **out,
                    size_t *n, bool *more, uint64_t *total);

/* The sort key of a job record under sort (for cursors). */
int64_t rf_job_sort_key(const rf_job_rec *job, rf_job_sort sort);

struct rf_job_view {
    rf_job_rec job;
    rf_item_counts items;
    uint64_t frames_done, frames_total;
    double percent_complete;    /* 0..100, one decimal; 100 when terminal */
    int64_t processing_time_ms; /* since started_at (to finished_at if ended) */
    int64_t eta_ms;             /* -1 when unknown (not started, paused) */
};

/* Loads a job with its derived counters. RF_ENOTFOUND for an unknown id. */
rf_err rf_jobs_get(rf_store *st, const char *job_id, int64_t now_ms, rf_job_view *out);
void rf_job_view_clear(rf_job_view *v);
void rf_job_views_free(rf_job_view *v, size_t n);

/* ---- actions ---- */

typedef struct rf_action_result {
    char code[RF_NAME_MAX];      /* on refusal: "invalid_state" or "nothing_to_retry" */
    char message[RF_ERRMSG_MAX]; /* on refusal: why, naming the current state */
    char prior_state[RF_NAME_MAX];
    char state[RF_NAME_MAX]; /* after the action (or the current one when refused) */
} rf_action_result;

/* Applies an action by actor (a user id, for the event's reason) to a job of
 * tenant (NULL: any tenant). RF_ENOTFOUND for an unknown job or another
 * tenant's; RF_ECONFLICT when the table refuses it (res says why). */
rf_err rf_jobs_action(rf_store *st, const rf_coord_config *cfg, const char *tenant,
                      const char *job_id, rf_job_action action, const char *actor, int64_t now_ms,
                      rf_action_result *res);

/* Fails every unfinished job whose deadline_at has passed (see above).
 * *failed (optional) counts them. */
rf_err rf_jobs_enforce_deadlines(rf_store *st, const rf_coord_config *cfg, int64_t now_ms,
                                 size_t *failed);

typedef struct rf_video_view {
    rf_item_rec item;
    rf_unit_rec *units; /* ordered by rendition */
    size_t n_units;
} rf_video_view;

/* One page of a job's items with their units, row_number > after_row, state
 * filter optional. *more says whether items follow. RF_ENOTFOUND for an
 * unknown job. Free with rf_video_views_free. */
rf_err rf_jobs_videos(rf_store *st, const char *job_id, const char *state, uint32_t after_row,
                      size_t limit, rf_video_view **out, size_t *n, bool *more);
void rf_video_views_free(rf_video_view *v, size_t n);

/* ---- agents, leases, reports ---- */

typedef enum rf_verdict {
    RF_VERDICT_OK = 0,
    RF_VERDICT_STALE,         /* REFUSED "stale_lease" */
    RF_VERDICT_CANCELED,      /* REFUSED "canceled" */
    RF_VERDICT_UNKNOWN_AGENT, /* REFUSED "unknown_agent" */
} rf_verdict;

typedef struct rf_outcome {
    rf_verdict verdict;
    char reason[RF_ERRMSG_MAX];
} rf_outcome;

/* Records an agent (HELLO): its hostname and capabilities as JSON. */
rf_err rf_jobs_agent_hello(rf_store *st, const rf_hello *hello, int64_t now_ms);

/* The scheduler: leases the next unit to agent_id. *leased = false with
 * verdict OK is "nothing to dispatch". On success *unit is filled (heap
 * strings owned by the caller: free with rf_msg_clear on the containing
 * message, or free title/description/script). */
rf_err rf_jobs_lease(rf_store *st, const rf_coord_config *cfg, const char *agent_id, int64_t now_ms,
                     rf_unit *unit, bool *leased, rf_outcome *oc);

/* PROGRESS: updates frames and extends the lease; *expires_ms gets the new
 * expiry. */
rf_err rf_jobs_progress(rf_store *st, const rf_coord_config *cfg, const rf_progress *p,
                        int64_t now_ms, uint64_t *expires_ms, rf_outcome *oc);

/* COMPLETE: records the artifact. A local output path must lie under
 * bucket_root and exist with the reported size, else the unit fails with
 * "storage_upload_failed" (the report is still accepted). */
rf_err rf_jobs_complete(rf_store *st, const rf_coord_config *cfg, const rf_complete *c,
                        int64_t now_ms, rf_outcome *oc);

/* FAIL: a retryable failure requeues while attempts < max_attempts; otherwise
 * the unit fails with the agent's error. */
rf_err rf_jobs_fail(rf_store *st, const rf_coord_config *cfg, const rf_fail *f, int64_t now_ms,
                    rf_outcome *oc);

/* The reaper: requeues leased units whose lease lapsed before now_ms (event
 * unit.lease_expired); a unit that lapsed max_attempts times fails with
 * "agent_lost". Counts are optional (NULL). */
rf_err rf_jobs_reap(rf_store *st, const rf_coord_config *cfg, int64_t now_ms, size_t *requeued,
                    size_t *failed);

#endif
