/* Progress that means something: percent complete weighted by frames and an
 * ETA from measured throughput.
 *
 * Method (docs/LIVE.md states it for users): the coordinator feeds one
 * sample per progress report of the job's cumulative frames done (summed
 * over all of its units) with the time it was observed. Consecutive samples
 * at least min_interval_ms apart give a throughput r = frames / seconds of
 * the agents currently working on the job. The estimate is an exponentially
 * weighted moving average of r whose weight depends on the time a sample
 * covers, alpha = 1 - exp(-dt / tau_ms), so irregular report intervals count
 * by duration, not by number. The ETA is frames_remaining / rate. It is
 * unknown (JSON null) until min_samples rates have been measured over at
 * least min_span_ms, and whenever the smoothed rate is below min_rate_fps
 * (stalled, paused or starved jobs have no honest ETA). Frames going
 * backwards (a unit requeued after its lease lapsed) re-base the samples
 * without producing a negative rate.
 *
 * Pure functions over a small caller-owned struct; not thread-safe (one
 * struct per job, guarded by the caller). */
#ifndef RF_ETA_H
#define RF_ETA_H

#include <stdbool.h>
#include <stdint.h>

#include "rf_err.h"

typedef struct rf_eta_params {
    int64_t tau_ms;          /* EWMA time constant; default 30000 */
    int64_t min_interval_ms; /* samples closer than this are merged; default 1000 */
    int min_samples;         /* rate measurements before an ETA; default 3 */
    int64_t min_span_ms;     /* time those measurements must cover; default 5000 */
    double min_rate_fps;     /* below this the ETA is unknown; default 0.01 */
} rf_eta_params;

typedef struct rf_eta {
    rf_eta_params p;
    bool have_base;
    int64_t base_ms;      /* time of the last accepted sample */
    uint64_t base_frames; /* frames done at base_ms */
    int64_t first_ms;     /* time of the first sample after the last reset */
    int n_rates;          /* rate measurements folded into rate_fps */
    double rate_fps;      /* smoothed frames per second */
} rf_eta;

/* Fills p with the defaults above. */
void rf_eta_params_defaults(rf_eta_params *p);

/* Starts an empty estimator; p NULL means the defaults. */
void rf_eta_init(rf_eta *e, const rf_eta_params *p);

/* Forgets every sample (job paused/resumed, agents changed a lot). */
void rf_eta_reset(rf_eta *e);

/* Adds an observation: frames_done is the job's cumulative count at
 * now_ms (any monotonic or wall clock, used consistently). Samples with a
 * time not after the base are ignored. */
void rf_eta_sample(rf_eta *e, int64_t now_ms, uint64_t frames_done);

/* The ETA in ms for frames_remaining more frames. RF_ENOTFOUND while
 * unknown (see the method above); 0 when nothing remains. */
rf_err rf_eta_estimate(const rf_eta *e, uint64_t frames_remaining, int64_t *eta_ms);

/* The smoothed rate in frames/s, or a negative number while unknown. */
double rf_eta_rate(const rf_eta *e);

/* Percent complete weighted by frames, 0..100. When frames_total is 0
 * (frame counts not known yet) falls back to items: items_done/items_total.
 * Returns 0 when both totals are 0. */
double rf_eta_percent(uint64_t frames_done, uint64_t frames_total, uint64_t items_done,
                      uint64_t items_total);

#endif
