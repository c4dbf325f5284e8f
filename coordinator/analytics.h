/* Job analytics and the cost model (docs/API.md "Cost model"), and the dry
 * run's estimate. No HTTP here.
 *
 * Cost of a job = for each rendition that completed:
 *     output minutes x cost_output_min_<resolution>
 *   + agent render minutes x (cost_gpu_min if its encoder was a hardware one
 *                             (nvenc, vaapi, qsv), else cost_cpu_min).
 * Failed, canceled and skipped work costs nothing.
 *
 * Errors: RF_ESTORE, RF_ENOMEM. */
#ifndef RF_ANALYTICS_H
#define RF_ANALYTICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "rf_err.h"
#include "rf_proto.h"
#include "store.h"

typedef struct rf_analytics_group {
    char template_id[RF_NAME_MAX]; /* "" for the totals */
    uint64_t jobs, jobs_finished;
    uint64_t items_total, items_completed, items_failed, items_skipped;
    uint64_t renditions_completed, output_ms;
    double success_rate;     /* completed / (completed + failed); -1 when none finished */
    double avg_processing_s; /* mean finished_at - started_at; -1 when no job finished */
    double cost;
} rf_analytics_group;

typedef struct rf_analytics {
    rf_analytics_group total;
    rf_analytics_group *groups; /* by template_id, ordered by id */
    size_t n_groups;
} rf_analytics;

/* Analytics of tenant's jobs created in [from_ms, to_ms). */
rf_err rf_analytics_run(rf_store *st, const rf_coord_config *cfg, const char *tenant,
                        int64_t from_ms, int64_t to_ms, rf_analytics *out);
void rf_analytics_clear(rf_analytics *a);

/* Cost of output_ms of video at a resolution class, and of render time. */
double rf_cost_output(const rf_coord_config *cfg, const char *resolution, uint64_t output_ms);
double rf_cost_render(const rf_coord_config *cfg, uint64_t gpu_ms, uint64_t cpu_ms);

typedef struct rf_estimate {
    double render_factor;       /* render seconds per output second */
    bool from_history;          /* factor measured on completed units, else configured */
    uint64_t parallel_slots;    /* agent slots heard from recently (at least 1) */
    int64_t processing_time_ms; /* render time / slots */
    double cost;
} rf_estimate;

/* Estimates a job of output_ms at resolution: the render factor measured
 * over recent completed units at that resolution (when they add up to at
 * least 10 s of video) or estimate_render_factor_<resolution>, spread over
 * the slots of agents heard from in the last 3 lease TTLs; cost as above
 * with CPU render minutes. */
rf_err rf_estimate_job(rf_store *st, const rf_coord_config *cfg, const char *resolution,
                       uint64_t output_ms, int64_t now_ms, rf_estimate *out);

#endif
