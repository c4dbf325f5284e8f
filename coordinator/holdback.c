#include "holdback.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "rf_proto.h"
#include "rf_util.h"

typedef struct hold {
    char job_id[RF_ID_MAX];
    unsigned reasons;
} hold;

/* Few jobs wait at once: a flat array, entries removed when their last bit
 * clears. */
struct rf_holdback {
    pthread_mutex_t mu;
    hold *h;
    size_t n, cap;
    rf_holdback_fn on_change;
    void *ctx;
};

rf_err
rf_holdback_new(rf_holdback_fn on_change, void *ctx, rf_holdback **out)
{
    rf_holdback *hb = calloc(1, sizeof(*hb));

    *out = NULL;
    if (hb == NULL) {
        return RF_ENOMEM;
    }
    pthread_mutex_init(&hb->mu, NULL);
    hb->on_change = on_change;
    hb->ctx = ctx;
    *out = hb;
    return RF_OK;
}

void
rf_holdback_free(rf_holdback **h)
{
    if (h == NULL || *h == NULL) {
        return;
    }
    pthread_mutex_destroy(&(*h)->mu);
    free((*h)->h);
    free(*h);
    *h = NULL;
}

static size_t
find(const rf_holdback *hb, const char *job_id)
{
    for (size_t i = 0; i < hb->n; i++) {
        if (strcmp(hb->h[i].job_id, job_id) == 0) {
            return i;
        }
    }
    return hb->n;
}

rf_err
rf_holdback_set(rf_holdback *hb, const char *job_id, rf_hold_reason reason, bool on)
{
    unsigned before = 0, after;
    size_t i;

    if (hb == NULL || job_id == NULL || job_id[0] == '\0') {
        return RF_OK;
    }
    pthread_mutex_lock(&hb->mu);
    i = find(hb, job_id);
    if (i < hb->n) {
        before = hb->h[i].reasons;
    } else if (on) {
        if (hb->n == hb->cap) {
            size_t cap = hb->cap > 0 ? hb->cap * 2 : 8;
            hold *grown = realloc(hb->h, cap * sizeof(*grown));
            if (grown == NULL) {
                pthread_mutex_unlock(&hb->mu);
                return RF_ENOMEM;
            }
            hb->h = grown;
            hb->cap = cap;
        }
        memset(&hb->h[i], 0, sizeof(hb->h[i]));
        rf_strlcpy(hb->h[i].job_id, job_id, sizeof(hb->h[i].job_id));
        hb->n++;
    }
    after = on ? before | (unsigned)reason : before & ~(unsigned)reason;
    if (i < hb->n) {
        hb->h[i].reasons = after;
        if (after == 0) {
            hb->h[i] = hb->h[hb->n - 1];
            hb->n--;
        }
    }
    pthread_mutex_unlock(&hb->mu);
    if ((before != 0) != (after != 0) && hb->on_change != NULL) {
        hb->on_change(hb->ctx, job_id, after != 0);
    }
    return RF_OK;
}

unsigned
rf_holdback_get(rf_holdback *hb, const char *job_id, bool ended)
{
    unsigned reasons = 0;
    size_t i;

    if (hb == NULL || job_id == NULL) {
        return 0;
    }
    pthread_mutex_lock(&hb->mu);
    i = find(hb, job_id);
    if (i < hb->n) {
        reasons = hb->h[i].reasons;
    }
    pthread_mutex_unlock(&hb->mu);
    return ended ? reasons & RF_HOLD_SHEETS_WRITE : reasons;
}

const char *
rf_hold_reason_name(unsigned bit)
{
    switch (bit) {
    case RF_HOLD_SHEETS_READ:
        return "sheets_read";
    case RF_HOLD_SHEETS_WRITE:
        return "sheets_write";
    case RF_HOLD_TENANT_QUOTA:
        return "tenant_quota";
    default:
        return NULL;
    }
}
