/* Reaper thread: a timed wait on a condition variable, so that stop does not
 * wait for a whole interval. */
#include "reaper.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include "idempotency.h"
#include "jobs.h"
#include "rf_log.h"
#include "rf_util.h"

struct rf_reaper {
    rf_store *st;
    const rf_coord_config *cfg;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
    int64_t next_purge_ms; /* monotonic */
};

#define PURGE_INTERVAL_MS 60000

static void *
reaper_main(void *arg)
{
    rf_reaper *r = arg;

    pthread_mutex_lock(&r->mu);
    while (!r->stop) {
        struct timespec deadline;
        size_t requeued = 0, failed = 0;
        rf_err rv;

        size_t expired = 0;

        pthread_mutex_unlock(&r->mu);
        rv = rf_jobs_reap(r->st, r->cfg, rf_now_ms(), &requeued, &failed);
        if (rv != RF_OK) {
            rf_error("reaper: pass failed: %s", rf_strerror(rv));
        } else if (requeued + failed > 0) {
            rf_info("reaper: %zu units requeued, %zu failed after lapsed leases", requeued, failed);
        }
        rv = rf_jobs_enforce_deadlines(r->st, r->cfg, rf_now_ms(), &expired);
        if (rv != RF_OK) {
            rf_error("reaper: deadline pass failed: %s", rf_strerror(rv));
        } else if (expired > 0) {
            rf_info("reaper: %zu jobs failed past their processing deadline", expired);
        }
        if (rf_mono_ms() >= r->next_purge_ms) {
            size_t purged = 0;
            r->next_purge_ms = rf_mono_ms() + PURGE_INTERVAL_MS;
            rv = rf_idem_purge(r->st, rf_now_ms(), r->cfg->idempotency_ttl_s * 1000, &purged);
            if (rv != RF_OK) {
                rf_error("reaper: idempotency purge failed: %s", rf_strerror(rv));
            } else if (purged > 0) {
                rf_info("reaper: %zu expired idempotency records purged", purged);
            }
        }
        pthread_mutex_lock(&r->mu);
        clock_gettime(CLOCK_MONOTONIC, &deadline);
        deadline.tv_sec += r->cfg->reaper_interval_ms / 1000;
        deadline.tv_nsec += (r->cfg->reaper_interval_ms % 1000) * 1000000L;
        if (deadline.tv_nsec >= 1000000000L) {
            deadline.tv_sec++;
            deadline.tv_nsec -= 1000000000L;
        }
        while (!r->stop) {
            int rc = pthread_cond_timedwait(&r->cv, &r->mu, &deadline);
            if (rc == ETIMEDOUT) {
                break;
            }
        }
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

rf_err
rf_reaper_start(rf_store *st, const rf_coord_config *cfg, rf_reaper **out)
{
    rf_reaper *r = calloc(1, sizeof(*r));
    pthread_condattr_t attr;

    *out = NULL;
    if (r == NULL) {
        return RF_ENOMEM;
    }
    r->st = st;
    r->cfg = cfg;
    pthread_mutex_init(&r->mu, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&r->cv, &attr);
    pthread_condattr_destroy(&attr);
    if (pthread_create(&r->thread, NULL, reaper_main, r) != 0) {
        rf_error("reaper: cannot start its thread");
        pthread_cond_destroy(&r->cv);
        pthread_mutex_destroy(&r->mu);
        free(r);
        return RF_ENOMEM;
    }
    *out = r;
    return RF_OK;
}

void
rf_reaper_stop(rf_reaper **rp)
{
    rf_reaper *r;

    if (rp == NULL || *rp == NULL) {
        return;
    }
    r = *rp;
    pthread_mutex_lock(&r->mu);
    r->stop = true;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
    pthread_join(r->thread, NULL);
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
    free(r);
    *rp = NULL;
}
