/* ETA estimator: time-weighted EWMA of measured frames per second. */
#include "eta.h"

#include <math.h>
#include <string.h>

void
rf_eta_params_defaults(rf_eta_params *p)
{
    p->tau_ms = 30000;
    p->min_interval_ms = 1000;
    p->min_samples = 3;
    p->min_span_ms = 5000;
    p->min_rate_fps = 0.01;
}

void
rf_eta_init(rf_eta *e, const rf_eta_params *p)
{
    memset(e, 0, sizeof(*e));
    if (p != NULL) {
        e->p = *p;
    } else {
        rf_eta_params_defaults(&e->p);
    }
    if (e->p.tau_ms <= 0) {
        e->p.tau_ms = 1;
    }
    if (e->p.min_samples < 1) {
        e->p.min_samples = 1;
    }
}

void
rf_eta_reset(rf_eta *e)
{
    rf_eta_params p = e->p;
    rf_eta_init(e, &p);
}

void
rf_eta_sample(rf_eta *e, int64_t now_ms, uint64_t frames_done)
{
    int64_t dt;
    double r, alpha;

    if (!e->have_base) {
        e->have_base = true;
        e->base_ms = now_ms;
        e->base_frames = frames_done;
        e->first_ms = now_ms;
        return;
    }
    if (frames_done < e->base_frames) {
        /* Progress was lost (unit requeued): measure from here on, keep the
         * rate learnt so far. */
        e->base_frames = frames_done;
        e->base_ms = now_ms;
        return;
    }
    dt = now_ms - e->base_ms;
    if (dt <= 0 || dt < e->p.min_interval_ms) {
        return; /* too close to the base: merged into the next sample */
    }
    r = (double)(frames_done - e->base_frames) * 1000.0 / (double)dt;
    if (e->n_rates == 0) {
        e->rate_fps = r;
    } else {
        alpha = 1.0 - exp(-(double)dt / (double)e->p.tau_ms);
        e->rate_fps += alpha * (r - e->rate_fps);
    }
    e->n_rates++;
    e->base_ms = now_ms;
    e->base_frames = frames_done;
}

static bool
known(const rf_eta *e)
{
    return e->have_base && e->n_rates >= e->p.min_samples &&
           e->base_ms - e->first_ms >= e->p.min_span_ms && e->rate_fps >= e->p.min_rate_fps;
}

double
rf_eta_rate(const rf_eta *e)
{
    return known(e) ? e->rate_fps : -1.0;
}

rf_err
rf_eta_estimate(const rf_eta *e, uint64_t frames_remaining, int64_t *eta_ms)
{
    double ms;

    *eta_ms = -1;
    if (frames_remaining == 0) {
        *eta_ms = 0;
        return RF_OK;
    }
    if (!known(e)) {
        return RF_ENOTFOUND;
    }
    ms = (double)frames_remaining * 1000.0 / e->rate_fps;
    if (!(ms < 9.0e15)) {
        return RF_ENOTFOUND; /* beyond any useful horizon */
    }
    *eta_ms = (int64_t)llround(ms);
    return RF_OK;
}

double
rf_eta_percent(uint64_t frames_done, uint64_t frames_total, uint64_t items_done,
               uint64_t items_total)
{
    double pct;

    if (frames_total > 0) {
        pct = 100.0 * (double)frames_done / (double)frames_total;
    } else if (items_total > 0) {
        pct = 100.0 * (double)items_done / (double)items_total;
    } else {
        return 0.0;
    }
    if (pct < 0.0) {
        return 0.0;
    }
    return pct > 100.0 ? 100.0 : pct;
}
