/* Token buckets in a chained hash table keyed by "u<US>tenant<US>user" and
 * "p<US>tenant" (US = 0x1f, which neither a tenant nor a user id contains). */
#include "ratelimit.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_SLOTS 4096

typedef struct bucket {
    struct bucket *next;
    double tokens;
    int64_t last_ms;
    char key[];
} bucket;

struct rf_ratelimit {
    pthread_mutex_t mu;
    int64_t user_limit, project_limit, window_ms;
    size_t count;
    bucket *slots[N_SLOTS];
};

rf_err
rf_ratelimit_new(int64_t user_limit, int64_t project_limit, int64_t window_ms, rf_ratelimit **out)
{
    rf_ratelimit *rl;

    *out = NULL;
    if (user_limit < 1 || project_limit < 1 || window_ms < 1) {
        return RF_EINVAL;
    }
    rl = calloc(1, sizeof(*rl));
    if (rl == NULL) {
        return RF_ENOMEM;
    }
    pthread_mutex_init(&rl->mu, NULL);
    rl->user_limit = user_limit;
    rl->project_limit = project_limit;
    rl->window_ms = window_ms;
    *out = rl;
    return RF_OK;
}

void
rf_ratelimit_free(rf_ratelimit **rlp)
{
    rf_ratelimit *rl;

    if (rlp == NULL || *rlp == NULL) {
        return;
    }
    rl = *rlp;
    for (size_t i = 0; i < N_SLOTS; i++) {
        bucket *b = rl->slots[i];
        while (b != NULL) {
            bucket *next = b->next;
            free(b);
            b = next;
        }
    }
    pthread_mutex_destroy(&rl->mu);
    free(rl);
    *rlp = NULL;
}

static size_t
hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */

    for (; *s != '\0'; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return (size_t)(h % N_SLOTS);
}

static void
refill(bucket *b, int64_t limit, int64_t window_ms, int64_t now_ms)
{
    if (now_ms > b->last_ms) {
        b->tokens += (double)(now_ms - b->last_ms) * (double)limit / (double)window_ms;
        if (b->tokens > (double)limit) {
            b->tokens = (double)limit;
        }
        b->last_ms = now_ms;
    }
}

/* Forgets buckets that have refilled completely: they behave exactly like
 * new ones. keep (in use by the caller) survives. */
static void
prune(rf_ratelimit *rl, int64_t now_ms, const bucket *keep)
{
    for (size_t i = 0; i < N_SLOTS; i++) {
        bucket **pp = &rl->slots[i];
        while (*pp != NULL) {
            bucket *b = *pp;
            int64_t limit = b->key[0] == 'u' ? rl->user_limit : rl->project_limit;
            refill(b, limit, rl->window_ms, now_ms);
            if (b != keep && b->tokens >= (double)limit) {
                *pp = b->next;
                free(b);
                rl->count--;
            } else {
                pp = &b->next;
            }
        }
    }
}

static bucket *
find(rf_ratelimit *rl, const char *key, int64_t limit, int64_t now_ms, const bucket *keep)
{
    size_t h = hash(key);
    bucket *b;
    size_t n;

    for (b = rl->slots[h]; b != NULL; b = b->next) {
        if (strcmp(b->key, key) == 0) {
            refill(b, limit, rl->window_ms, now_ms);
            return b;
        }
    }
    if (rl->count >= RF_RATELIMIT_MAX_KEYS) {
        prune(rl, now_ms, keep);
        if (rl->count >= RF_RATELIMIT_MAX_KEYS) {
            return NULL;
        }
    }
    n = strlen(key);
    b = malloc(sizeof(*b) + n + 1);
    if (b == NULL) {
        return NULL;
    }
    memcpy(b->key, key, n + 1);
    b->tokens = (double)limit;
    b->last_ms = now_ms;
    b->next = rl->slots[h];
    rl->slots[h] = b;
    rl->count++;
    return b;
}

static int64_t
ceil_s(double ms)
{
    double s = ceil(ms / 1000.0 - 1e-9);
    return s < 0 ? 0 : (int64_t)s;
}

static void
describe(const bucket *b, int64_t limit, int64_t window_ms, rf_rl_bucket *out)
{
    out->limit = limit;
    out->remaining = b->tokens < 0 ? 0 : (int64_t)floor(b->tokens + 1e-9);
    out->reset_s = ceil_s(((double)limit - b->tokens) * (double)window_ms / (double)limit);
}

/* Milliseconds until the bucket holds one whole token. */
static double
wait_ms(const bucket *b, int64_t limit, int64_t window_ms)
{
    return b->tokens >= 1.0 ? 0.0 : (1.0 - b->tokens) * (double)window_ms / (double)limit;
}

rf_err
rf_ratelimit_take(rf_ratelimit *rl, const char *tenant, const char *user, int64_t now_ms,
                  rf_rl_result *out)
{
    char ukey[512], pkey[256];
    bucket *u, *p;
    rf_err rv = RF_OK;

    memset(out, 0, sizeof(*out));
    snprintf(ukey, sizeof(ukey), "u\x1f%s\x1f%s", tenant, user);
    snprintf(pkey, sizeof(pkey), "p\x1f%s", tenant);
    pthread_mutex_lock(&rl->mu);
    u = find(rl, ukey, rl->user_limit, now_ms, NULL);
    p = u != NULL ? find(rl, pkey, rl->project_limit, now_ms, u) : NULL;
    if (u == NULL || p == NULL) {
        out->allowed = true; /* fail open: limits protect, they must not break service */
        rv = RF_ENOMEM;
        goto out;
    }
    out->user_exhausted = u->tokens < 1.0;
    out->project_exhausted = p->tokens < 1.0;
    out->allowed = !out->user_exhausted && !out->project_exhausted;
    if (out->allowed) {
        u->tokens -= 1.0;
        p->tokens -= 1.0;
    } else {
        double wu = wait_ms(u, rl->user_limit, rl->window_ms);
        double wp = wait_ms(p, rl->project_limit, rl->window_ms);
        out->retry_after_s = ceil_s(wu > wp ? wu : wp);
        if (out->retry_after_s < 1) {
            out->retry_after_s = 1;
        }
    }
    describe(u, rl->user_limit, rl->window_ms, &out->user);
    describe(p, rl->project_limit, rl->window_ms, &out->project);
out:
    pthread_mutex_unlock(&rl->mu);
    return rv;
}

size_t
rf_ratelimit_size(rf_ratelimit *rl)
{
    size_t n;

    pthread_mutex_lock(&rl->mu);
    n = rl->count;
    pthread_mutex_unlock(&rl->mu);
    return n;
}
