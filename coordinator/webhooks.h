/* Job webhooks: signed POSTs of job events to the job's callback_url.
 *
 * Signing is Standard Webhooks: headers
 *   webhook-id:        the delivery's message id ("msg_" + ULID), the same
 *                      on every attempt (receivers use it to deduplicate)
 *   webhook-timestamp: Unix seconds of the attempt
 *   webhook-signature: "v1," + base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}"))
 * with key = base64-decoded part of the tenant's secret "whsec_<base64>".
 *
 * Delivery is at least once and in order per job: a worker claims only the
 * oldest pending delivery of a job, so a later event of that job waits for
 * the earlier one to be delivered or abandoned. Failures (connection error,
 * timeout, any status outside 2xx, 3xx included) are retried on a schedule
 * (Standard Webhooks' 0, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h,
 * 24 h by default) with +-jitter; 429 and 503 honour Retry-After (capped);
 * 410 Gone disables the endpoint. Every attempt is recorded through the
 * store (attempt number, start, duration, status or error, outcome).
 * Targets pass the SSRF guard (ssrf.h) before every attempt.
 *
 * Persistence is the caller's: rf_webhook_store_ops. An in-memory store is
 * provided for tests; docs/LIVE.md has the SQLite schema and statements that
 * implement the ops over the coordinator's database. */
#ifndef RF_WEBHOOKS_H
#define RF_WEBHOOKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "rf_err.h"
#include "ssrf.h"

/* ---- signing ---- */

#define RF_WEBHOOK_SECRET_MAX 128 /* buffer size for a "whsec_..." secret */
#define RF_WEBHOOK_SIG_MAX 64     /* buffer size for one "v1,<base64>" */

/* HMAC-SHA256 of data under key. */
void rf_hmac_sha256(const void *key, size_t key_len, const void *data, size_t len,
                    unsigned char mac[32]);

/* The same as 64 lowercase hex chars + NUL (GitHub's X-Hub-Signature-256). */
void rf_hmac_sha256_hex(const void *key, size_t key_len, const void *data, size_t len,
                        char hex[65]);

/* A new random secret: "whsec_" + base64 of 32 random bytes (getrandom).
 * out must hold RF_WEBHOOK_SECRET_MAX bytes. The coordinator stores it per
 * tenant and shows it to the tenant once. */
rf_err rf_webhook_secret_new(char *out, size_t len);

/* A deterministic per-tenant secret derived from an operator master key:
 * "whsec_" + base64(HMAC-SHA256(master, "rf-webhook-secret:" + tenant)). Lets
 * a coordinator without a secrets table still sign with a distinct secret
 * per tenant; rotating the master key rotates them all. */
rf_err rf_webhook_secret_derive(const void *master, size_t master_len, const char *tenant,
                                char *out, size_t len);

/* Decodes a secret ("whsec_" prefix optional) into its key bytes; the key
 * must be 24 to 64 bytes (RF_EINVAL otherwise). */
rf_err rf_webhook_secret_key(const char *secret, unsigned char key[64], size_t *key_len);

/* out = "v1,<base64 HMAC>" over "{msg_id}.{timestamp_s}.{body}".
 * RF_EINVAL for a bad secret, RF_ETOOBIG if out is too small. */
rf_err rf_webhook_sign(const char *secret, const char *msg_id, int64_t timestamp_s,
                       const char *body, size_t body_len, char *out, size_t out_len);

/* Receiver side (tests, and the docs' example): checks that some "v1,"
 * entry of the space-separated signature_header matches, in constant time,
 * and that the timestamp is within tolerance_s of now_s. RF_OK when valid,
 * RF_ETIMEDOUT for a stale or future timestamp, RF_EINVAL otherwise. */
rf_err rf_webhook_verify(const char *secret, const char *msg_id, const char *timestamp,
                         const char *body, size_t body_len, const char *signature_header,
                         int64_t now_s, int64_t tolerance_s);

/* ---- deliveries and their store ---- */

typedef struct rf_webhook_delivery {
    int64_t id;      /* store id, set by enqueue */
    char msg_id[64]; /* webhook-id, same on every attempt */
    char job_id[64];
    char tenant[128];
    char event_type[64];
    char url[2048];
    char *body;              /* JSON text, malloc'd, owned by the struct */
    int attempts;            /* attempts made so far */
    int64_t created_ms;      /* wall clock */
    int64_t next_attempt_ms; /* wall clock */
    int64_t event_id;        /* the stored event it reports, 0 if none (store cursor) */
} rf_webhook_delivery;

/* Frees body and zeroes the struct. NULL-safe. */
void rf_webhook_delivery_clear(rf_webhook_delivery *d);

typedef struct rf_webhook_attempt {
    int64_t delivery_id;
    int attempt;        /* 1-based */
    int64_t started_ms; /* wall clock */
    int64_t duration_ms;
    int status_code;         /* HTTP status, 0 when there was no response */
    char error[256];         /* why it failed; "" when delivered */
    char outcome[16];        /* "delivered", "retry", "abandoned" or "disabled" */
    int64_t next_attempt_ms; /* wall clock of the next attempt when "retry", else 0 */
} rf_webhook_attempt;

/* Persistence. Every op returns RF_OK or an error (logged, then retried
 * later by the worker); all are called from worker threads, concurrently. */
typedef struct rf_webhook_store_ops {
    /* Stores d as pending (state "pending", claimed_until 0) and sets d->id.
     * A delivery to a disabled endpoint is stored as abandoned instead. */
    rf_err (*enqueue)(void *ctx, rf_webhook_delivery *d);
    /* Claims one due delivery: the oldest pending delivery of its job, with
     * next_attempt_ms <= now_ms, not claimed by anyone (claimed_until <=
     * now_ms); marks it claimed until now_ms + lease_ms and copies it into
     * *out (body malloc'd, the caller clears it). RF_ENOTFOUND when none is
     * due; then *next_due_ms (if not NULL) is the earliest next_attempt_ms
     * of any pending delivery, or -1 when nothing is pending. */
    rf_err (*claim)(void *ctx, int64_t now_ms, int64_t lease_ms, rf_webhook_delivery *out,
                    int64_t *next_due_ms);
    /* Appends the attempt and applies its outcome to the delivery:
     * "retry": attempts = a->attempt, next_attempt_ms = a->next_attempt_ms,
     * claim released; "delivered" / "abandoned" / "disabled": final. */
    rf_err (*record)(void *ctx, const rf_webhook_attempt *a);
    /* 410 Gone: abandons every pending delivery to url and makes enqueue
     * abandon later ones. */
    rf_err (*disable_endpoint)(void *ctx, const char *url, int64_t now_ms);
} rf_webhook_store_ops;

/* ---- the in-memory store (tests; a coordinator without persistence) ---- */

typedef struct rf_webhook_memstore rf_webhook_memstore;
extern const rf_webhook_store_ops rf_webhook_memstore_ops;

rf_err rf_webhook_memstore_new(rf_webhook_memstore **out);
/* NULL-safe; sets *ms = NULL. Stop the workers using it first. */
void rf_webhook_memstore_free(rf_webhook_memstore **ms);

/* State of delivery id: "pending", "delivered" or "abandoned", and its
 * attempts so far. RF_ENOTFOUND for an unknown id. state holds 16 bytes. */
rf_err rf_webhook_memstore_state(rf_webhook_memstore *ms, int64_t id, char *state, int *attempts);

/* Copies the attempts of delivery id (oldest first) into a malloc'd array
 * (*out, free with free()); *n may be 0. */
rf_err rf_webhook_memstore_attempts(rf_webhook_memstore *ms, int64_t id, rf_webhook_attempt **out,
                                    size_t *n);

/* ---- the delivery workers ---- */

#define RF_WEBHOOK_SCHEDULE_MAX 16

typedef struct rf_webhooks_config {
    /* schedule_ms[i] is the delay before attempt i + 1 (schedule_ms[0] before
     * the first attempt, normally 0); n_schedule attempts at most. */
    int64_t schedule_ms[RF_WEBHOOK_SCHEDULE_MAX];
    size_t n_schedule;
    double jitter;              /* each delay is scaled by 1 +- jitter; default 0.2 */
    int64_t max_age_ms;         /* give up on older deliveries; 0 = the schedule decides */
    int64_t timeout_ms;         /* whole attempt; default 15000 */
    int64_t connect_timeout_ms; /* default 5000 */
    int64_t retry_after_max_ms; /* cap on an honoured Retry-After; default 86400000 */
    int64_t claim_lease_ms;     /* > timeout_ms; default 60000 */
    int workers;                /* parallel deliveries (different jobs); default 2 */
    bool follow_redirects;      /* follow 307/308 (re-vetted) up to 3 hops; default false */
    char user_agent[64];        /* default "renderfarm-webhooks/1" */
} rf_webhooks_config;

/* Fills cfg with the defaults above and the Standard Webhooks schedule. */
void rf_webhooks_config_defaults(rf_webhooks_config *cfg);

/* Parses a schedule "0,5s,5m,30m,2h,5h,10h,14h,20h,24h" (units ms, s, m,
 * h; a bare number is ms) into cfg. RF_EINVAL with err for a bad entry,
 * RF_ETOOBIG for more than RF_WEBHOOK_SCHEDULE_MAX entries. */
rf_err rf_webhooks_parse_schedule(rf_webhooks_config *cfg, const char *text, char *err,
                                  size_t err_len);

/* Delay before attempt `attempt + 1` after `attempt` attempts were made
 * (attempt 0 = the first delivery), jittered with u in [0, 1) (pass a
 * random number; 0.5 gives the nominal delay). -1 when the schedule is
 * exhausted. */
int64_t rf_webhooks_delay_ms(const rf_webhooks_config *cfg, int attempt, double u);

/* Parses a Retry-After value (delta seconds or an HTTP date) into ms from
 * now_ms; -1 when absent or unparsable. */
int64_t rf_webhooks_retry_after_ms(const char *value, int64_t now_ms);

/* Returns the secret of tenant into out (size len), or an error: the
 * attempt is then recorded as failed and retried. */
typedef rf_err (*rf_webhook_secret_fn)(void *ctx, const char *tenant, char *out, size_t len);

typedef struct rf_webhooks rf_webhooks;

/* Starts cfg->workers threads delivering from the store. cfg, policy (may
 * be NULL: no allow list), ops and the contexts must outlive the workers.
 * RF_ENOMEM when a thread cannot start. */
rf_err rf_webhooks_start(const rf_webhooks_config *cfg, const rf_ssrf_policy *policy,
                         const rf_webhook_store_ops *ops, void *store_ctx,
                         rf_webhook_secret_fn secret, void *secret_ctx, rf_webhooks **out);

/* Builds the documented payload (docs/LIVE.md):
 *   {"id", "type", "timestamp", "job_id", "state", "percent_complete",
 *    "items_completed", "items_failed", "items_total", "data"}
 * msg_id and event_ms fill "id" and "timestamp"; data (borrowed, may be
 * NULL) is the WebSocket message data of the same event. NULL on ENOMEM. */
json_t *rf_webhook_payload(const char *msg_id, const char *type, int64_t event_ms,
                           const char *job_id, const char *state, double percent_complete,
                           int64_t items_completed, int64_t items_failed, int64_t items_total,
                           json_t *data);

/* Fills *d for a new delivery of payload (borrowed; its "id" must be the
 * msg_id the caller made with rf_new_id("msg_", ...), see
 * rf_webhook_payload) at now_ms, first attempt due after schedule_ms[0]. */
rf_err rf_webhooks_make_delivery(const rf_webhooks_config *cfg, const char *job_id,
                                 const char *tenant, const char *url, const char *event_type,
                                 json_t *payload, int64_t now_ms, rf_webhook_delivery *d);

/* Convenience: makes a msg id, the payload and the delivery, stores it with
 * ops->enqueue and wakes a worker. event_id is the stored event reported (0:
 * none), see rf_webhook_delivery. *id_out (may be NULL) gets the store id. */
rf_err rf_webhooks_enqueue(rf_webhooks *w, const char *job_id, const char *tenant, const char *url,
                           const char *event_type, const char *state, double percent_complete,
                           int64_t items_completed, int64_t items_failed, int64_t items_total,
                           json_t *data, int64_t event_id, int64_t *id_out);

/* Wakes the workers (after the caller enqueued through its own store). */
void rf_webhooks_kick(rf_webhooks *w);

/* Stops the workers: an attempt in flight is aborted and not recorded, so
 * its claim lapses and it is retried after a restart. NULL-safe; sets *w =
 * NULL. */
void rf_webhooks_stop(rf_webhooks **w);

#endif
