/* Live job feed over WebSocket (civetweb).
 *
 * Paths: /api/v1/ws/bulk-jobs, /api/ws/bulk-jobs and /ws/bulk-jobs, each
 * with ?job_id=<id>. Messages are JSON text frames {"type": ..., "data":
 * ...} of the seeds' types (job.state_changed, job.progress,
 * video.completed, video.failed, job.completed, job.failed); the rf_ws_msg_*
 * builders below make them.
 *
 * Authentication: "Authorization: Bearer <token>", or the token in
 * Sec-WebSocket-Protocol, either as the seeds' clients send it (the single
 * value "Bearer <token>") or browser-style as the two protocols "bearer,
 * <token>". The handshake answers Sec-WebSocket-Protocol: bearer only in the
 * second case: the seeds' `ws` client fails a handshake that names a
 * protocol it did not request. Refusals happen before the upgrade, as JSON
 * HTTP errors: 400 (no/bad job_id), 401 (no or bad token), 403 (token lacks
 * the required scope), 404 (no such job for this tenant: another tenant's
 * job is indistinguishable from a missing one), 503 (client limit).
 *
 * Delivery: a client that connects gets the job's current state first (the
 * snapshot callback), then every event published after it subscribed.
 * job.progress is coalesced per job: at most one per
 * progress_min_interval_ms (the newest wins), and the latest one is repeated
 * every heartbeat_ms while the job is not terminal, so clients never sit in
 * silence. Other messages are never coalesced or dropped, and a held-back
 * progress message is flushed before them so order is kept. Each client has
 * a bounded queue (queue_max_msgs / queue_max_bytes); a client that falls
 * behind it is disconnected (close code 1008 "client too slow" when the
 * socket still takes it, then the TCP connection is shut down after
 * close_grace_ms at the latest) while the others go on. rf_ws_publish never
 * blocks on the network: it serialises once and appends to the queues of
 * that job's clients under a short lock; each connection has its own sender
 * thread doing the blocking civetweb writes.
 *
 * Threads and civetweb: every open WebSocket holds one civetweb worker
 * thread for its lifetime (plus our sender thread), so num_threads must
 * exceed max_clients plus what the REST API needs. Start civetweb with
 * "enable_websocket_ping_pong" = "yes" and "websocket_timeout_ms" (e.g.
 * "20000"): without ping-pong civetweb closes connections whose client
 * sends nothing for websocket_timeout_ms (the seeds' clients never send).
 *
 * Lifetime: rf_ws_attach after mg_start; mg_stop(ctx) closes every
 * connection (their close handlers run), then rf_ws_free. */
#ifndef RF_WS_H
#define RF_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "rf_err.h"

struct mg_context;

/* Who a token belongs to. */
typedef struct rf_ws_principal {
    char tenant[128];
    char scopes[512]; /* space-separated, e.g. "jobs:read jobs:write" */
    bool all_tenants; /* operator token: may follow any tenant's jobs */
} rf_ws_principal;

/* Validates token (never NULL, never empty). RF_OK fills *out; any other
 * code refuses the connection with 401. Called on civetweb worker threads,
 * concurrently. */
typedef rf_err (*rf_ws_auth_fn)(void *auth_ctx, const char *token, rf_ws_principal *out);

/* The current state of job_id as seen by tenant (NULL for an all-tenants
 * principal): a JSON array of messages {"type","data"} sent first, in order,
 * to a client that just connected, normally a job.state_changed with the
 * current state (prior_state = new_state when the previous one is not known,
 * reason "snapshot"), a job.progress, and job.completed / job.failed when
 * the job already ended. RF_ENOTFOUND when the job does not exist or
 * belongs to another tenant (the client gets 404); other errors give 500.
 * *msgs is owned by the caller (ws) on RF_OK. Called on civetweb worker
 * threads, concurrently, with no ws lock held. */
typedef rf_err (*rf_ws_snapshot_fn)(void *ctx, const char *job_id, const char *tenant,
                                    json_t **msgs);

typedef struct rf_ws_config {
    int64_t progress_min_interval_ms; /* default 250 */
    int64_t heartbeat_ms;             /* repeat the last progress; default 5000 */
    size_t queue_max_msgs;            /* per client; default 256 */
    size_t queue_max_bytes;           /* per client; default 1 MiB */
    int64_t close_grace_ms;           /* overflow -> forced shutdown; default 2000 */
    size_t max_clients;               /* all jobs together; default 64 */
    int sndbuf_bytes;                 /* SO_SNDBUF of WS sockets; 0 = kernel default */
    char required_scope[64];          /* "" = any authenticated token */
    rf_ws_snapshot_fn snapshot;       /* may be NULL: no snapshot, no 404 check */
    void *snapshot_ctx;
    /* Monotonic clock in ms for coalescing and heartbeats; NULL = rf_mono_ms.
     * Tests pass a fake one and call rf_ws_tick themselves. */
    int64_t (*clock)(void *clock_ctx);
    void *clock_ctx;
} rf_ws_config;

typedef struct rf_ws_stats {
    size_t clients;           /* subscribed now */
    size_t jobs;              /* jobs with at least one client */
    uint64_t frames_sent;     /* frames handed to senders */
    uint64_t progress_merged; /* progress messages replaced by a newer one */
    uint64_t heartbeats;      /* progress repeats */
    uint64_t slow_disconnects;
    uint64_t refused; /* upgrades refused (any reason) */
} rf_ws_stats;

typedef struct rf_ws rf_ws;

void rf_ws_config_defaults(rf_ws_config *cfg);

/* A feed without civetweb and without threads (tests, other transports):
 * subscribe with rf_ws_sub_open and drive time with rf_ws_tick. cfg is
 * copied. */
rf_err rf_ws_new(const rf_ws_config *cfg, rf_ws **out);

/* rf_ws_new + the three WebSocket paths on ctx + a ticker thread calling
 * rf_ws_tick every 50 ms. auth is required. RF_EUNSUPPORTED when this
 * civetweb was built without WebSocket support. */
rf_err rf_ws_attach(struct mg_context *ctx, const rf_ws_config *cfg, rf_ws_auth_fn auth,
                    void *auth_ctx, rf_ws **out);

/* Sends msg ({"type": ..., "data": ...}, borrowed) to the clients of job_id
 * whose tenant is tenant (and all-tenants clients). Cheap when nobody
 * watches the job. RF_EINVAL when msg has no string "type"; RF_ENOMEM. */
rf_err rf_ws_publish(rf_ws *ws, const char *job_id, const char *tenant, json_t *msg);

/* Flushes held-back progress whose interval has passed, sends heartbeats,
 * and shuts down slow clients whose grace period ended. */
void rf_ws_tick(rf_ws *ws);

void rf_ws_get_stats(rf_ws *ws, rf_ws_stats *out);

/* Stops the ticker and frees the feed. Call after mg_stop() of the context
 * it was attached to. NULL-safe; sets *ws = NULL. */
void rf_ws_free(rf_ws **ws);

/* ---- subscribers: what a connection uses (public for tests) ---- */

typedef struct rf_ws_sub rf_ws_sub;
typedef struct rf_ws_frame rf_ws_frame;

/* Called (under the feed's lock: must not block or call back into ws) when
 * a slow subscriber's grace period ends; the transport cuts the connection. */
typedef void (*rf_ws_kill_fn)(void *kill_arg);

/* Subscribes to job_id as tenant (NULL = all tenants). Messages published
 * from now on are queued. RF_ECONFLICT when max_clients are subscribed. */
rf_err rf_ws_sub_open(rf_ws *ws, const char *job_id, const char *tenant, rf_ws_kill_fn kill,
                      void *kill_arg, rf_ws_sub **out);

/* Puts msgs (a JSON array of messages, borrowed) before everything queued:
 * the snapshot goes first even if events were published while it was read. */
rf_err rf_ws_sub_prepend(rf_ws *ws, rf_ws_sub *sub, json_t *msgs);

/* Takes the next frame, waiting up to wait_ms (0 = do not wait).
 * RF_ETIMEDOUT when none came, RF_ECANCELED when the subscriber was
 * canceled or overflowed (see rf_ws_sub_overflowed). The frame is released
 * with rf_ws_frame_release. */
rf_err rf_ws_sub_pop(rf_ws *ws, rf_ws_sub *sub, int64_t wait_ms, rf_ws_frame **out);

/* True once the subscriber fell behind its queue limits. */
bool rf_ws_sub_overflowed(rf_ws *ws, rf_ws_sub *sub);

/* Makes pending and later rf_ws_sub_pop calls return RF_ECANCELED. */
void rf_ws_sub_cancel(rf_ws *ws, rf_ws_sub *sub);

/* Unsubscribes and frees. No rf_ws_sub_pop may be running on it.
 * NULL-safe; sets *sub = NULL. */
void rf_ws_sub_close(rf_ws *ws, rf_ws_sub **sub);

const char *rf_ws_frame_text(const rf_ws_frame *f, size_t *len);
void rf_ws_frame_release(rf_ws_frame *f);

/* ---- message builders ({"type", "data"}; NULL on ENOMEM) ---- */

/* Steals data. */
json_t *rf_ws_msg(const char *type, json_t *data);

json_t *rf_ws_msg_state_changed(const char *job_id, const char *prior_state, const char *new_state,
                                const char *reason);

typedef struct rf_ws_progress {
    double percent_complete; /* weighted by frames (rf_eta_percent) */
    int64_t items_completed;
    int64_t items_failed;
    int64_t items_total;
    int64_t frames_done;
    int64_t frames_total;
    int64_t eta_ms; /* < 0: unknown, sent as null */
    bool rate_limited;
} rf_ws_progress;

json_t *rf_ws_msg_progress(const char *job_id, const rf_ws_progress *p);

/* artifacts: array of {"type": "video", "url": ...}; stolen (NULL = []). */
json_t *rf_ws_msg_video_completed(const char *job_id, const char *video_id, int64_t row_number,
                                  json_t *artifacts);

json_t *rf_ws_msg_video_failed(const char *job_id, const char *video_id, int64_t row_number,
                               const char *error_code, const char *error_message);

/* summary (e.g. {"items_total","items_completed","items_failed"}) and
 * artifacts are stolen; NULL gives {} and []. */
json_t *rf_ws_msg_job_completed(const char *job_id, json_t *summary, json_t *artifacts);

json_t *rf_ws_msg_job_failed(const char *job_id, const char *error_code, const char *error_message);

#endif
