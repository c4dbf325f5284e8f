/* Request rate limits: token buckets per user and per tenant ("project"),
 * each holding up to its per-minute quota and refilled continuously at
 * quota / 60 s. A request takes one token from both buckets, or from neither
 * when either is empty (so a refused request costs nothing).
 *
 * Thread-safe (one mutex). The clock is the caller's now_ms, so tests drive
 * it. Memory is bounded: buckets that have been full for a whole window are
 * forgotten when the table grows past RF_RATELIMIT_MAX_KEYS. */
#ifndef RF_RATELIMIT_H
#define RF_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rf_err.h"

#define RF_RATELIMIT_MAX_KEYS 65536

typedef struct rf_ratelimit rf_ratelimit;

/* The state of one bucket after a decision. */
typedef struct rf_rl_bucket {
    int64_t limit;     /* quota per window */
    int64_t remaining; /* whole tokens left */
    int64_t reset_s;   /* seconds until the bucket is full again (rounded up) */
} rf_rl_bucket;

typedef struct rf_rl_result {
    bool allowed;
    int64_t retry_after_s; /* when refused: seconds until a token is back in every bucket */
    bool user_exhausted, project_exhausted;
    rf_rl_bucket user, project;
} rf_rl_result;

/* Creates a limiter with these per-window quotas (>= 1) and window (ms, >= 1). */
rf_err rf_ratelimit_new(int64_t user_limit, int64_t project_limit, int64_t window_ms,
                        rf_ratelimit **out);

/* Frees; NULL-safe, sets *rl = NULL. */
void rf_ratelimit_free(rf_ratelimit **rl);

/* Decides one request by user of tenant at now_ms. RF_ENOMEM when a new
 * bucket cannot be allocated (the caller may let the request through). */
rf_err rf_ratelimit_take(rf_ratelimit *rl, const char *tenant, const char *user, int64_t now_ms,
                         rf_rl_result *out);

/* Number of buckets held (tests). */
size_t rf_ratelimit_size(rf_ratelimit *rl);

#endif
