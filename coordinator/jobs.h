/* The job domain: turning a validated request and its rows into a job with
 * items and units, the scheduler (select and assign in one transaction),
 * leases and their reports, the reaper, and the read models the API shows.
 * It never sees HTTP or the wire; every function that depends on the time
 * takes now_ms so that tests control the clock.
 *
 * State machines (text in the store):
 *   job:  pending, running, pausing, paused, completing, completed,
 *         canceling, canceled, failed (rf_job_transition_allowed is the table)
 *   item: pending, processing, completed, failed, skipped (derived from units)
 *   unit: queued, leased, completed, failed, canceled
 * A job leaves pending when its first unit is leased; it ends when every item
 * is terminal: completed if an item completed or all items were skipped,
 * failed ("all_items_failed") when every non-skipped item failed. Every job
 * state change writes a job.state_changed event.
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

/* ---- creation and reads ---- */

/* Creates the job, one item per row (validated at the guide's "moderate"
 * level: bad rows become failed items with a message naming the row and the
 * field, empty rows skipped items), and one unit per distinct frame shape of
 * each valid row, in one transaction. A job with nothing to render ends at
 * once. job_id receives the new id. */
rf_err rf_jobs_create(rf_store *st, const rf_coord_config *cfg, const rf_job_spec *spec,
                      const rf_rows *rows, int64_t now_ms, char job_id[RF_ID_MAX]);

typedef struct rf_job_view {
    rf_job_rec job;
    rf_item_counts items;
    uint64_t frames_done, frames_total;
    double percent_complete;    /* 0..100, one decimal; 100 when terminal */
    int64_t processing_time_ms; /* since started_at (to finished_at if ended) */
    int64_t eta_ms;             /* -1 when unknown */
} rf_job_view;

/* Loads a job with its derived counters. RF_ENOTFOUND for an unknown id. */
rf_err rf_jobs_get(rf_store *st, const char *job_id, int64_t now_ms, rf_job_view *out);
void rf_job_view_clear(rf_job_view *v);

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
