/* Idempotency-Key handling for POST /bulk-jobs (Stripe's and the IETF
 * draft's model, with the status codes):
 *
 *   - A key is 1..255 printable ASCII characters, scoped to the tenant.
 *   - The request's fingerprint is SHA-256 of method, path and the body's
 *     canonical JSON (keys sorted, compact), so formatting does not matter.
 *   - First use: a record is made "in_flight" and the request runs. When the
 *     job is created the record gets the job id in the same transaction
 *     ("created"); the response is then stored ("done"). A failed request
 *     (validation, errors) removes the record, so the key can be used again.
 *   - Same key and fingerprint within the TTL: the stored status and body
 *     are replayed (or, after a crash between creating the job and storing
 *     the answer, the job is shown again with 201).
 *   - Same key, other fingerprint: mismatch (409 idempotency_conflict; the
 *     IETF draft says 422, the issue says 409).
 *   - Same key while the first request runs: in flight (409). A record left
 *     in flight longer than inflight_ms (the coordinator died) is taken over.
 *   - Records older than the TTL are purged by the reaper and never replayed.
 *
 * Errors: RF_ESTORE, RF_ENOMEM; RF_EINVAL from rf_idem_request_hash when the
 * body is not JSON. */
#ifndef RF_IDEMPOTENCY_H
#define RF_IDEMPOTENCY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rf_err.h"
#include "rf_proto.h"
#include "store.h"

#define RF_IDEM_KEY_MAX 255

typedef enum rf_idem_verdict {
    RF_IDEM_PROCEED = 0, /* a new in-flight record: run, then complete or abort */
    RF_IDEM_REPLAY,      /* answer from the hit */
    RF_IDEM_MISMATCH,    /* the key was used for another request */
    RF_IDEM_IN_FLIGHT,   /* the first request with the key is still running */
} rf_idem_verdict;

typedef struct rf_idem_hit {
    int status;
    char *body;             /* heap; NULL when only job_id is known */
    char job_id[RF_ID_MAX]; /* "" when none */
} rf_idem_hit;

/* 1..255 characters 0x20..0x7e. */
bool rf_idem_key_valid(const char *key);

/* hex (65 bytes) = SHA-256 of "method\npath\n" + canonical JSON of body. */
rf_err rf_idem_request_hash(const char *method, const char *path, const char *body, size_t len,
                            char hex[65]);

/* Looks the key up and decides (see above), inserting the in-flight record
 * when the verdict is PROCEED. Runs its own transaction. */
rf_err rf_idem_begin(rf_store *st, const char *tenant, const char *key, const char *hash,
                     int64_t now_ms, int64_t ttl_ms, int64_t inflight_ms, rf_idem_verdict *v,
                     rf_idem_hit *hit);

/* Inside the caller's transaction: marks the record "created" with job_id. */
rf_err rf_idem_attach_job(rf_store *st, const char *tenant, const char *key, const char *job_id,
                          int64_t now_ms);

/* Stores the response to replay (own transaction). */
rf_err rf_idem_complete(rf_store *st, const char *tenant, const char *key, int status,
                        const char *body, int64_t now_ms);

/* Forgets the key after a request that must not be replayed (own
 * transaction). */
rf_err rf_idem_abort(rf_store *st, const char *tenant, const char *key);

/* Deletes records older than ttl_ms (own transaction). */
rf_err rf_idem_purge(rf_store *st, int64_t now_ms, int64_t ttl_ms, size_t *n);

void rf_idem_hit_clear(rf_idem_hit *hit);

#endif
