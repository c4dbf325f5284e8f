/* Analytics aggregation and the cost model. */
#include "analytics.h"

#include <stdlib.h>
#include <string.h>

double
rf_cost_output(const rf_coord_config *cfg, const char *resolution, uint64_t output_ms)
{
    double rate = cfg->cost_output_min_1080p;

    if (strcmp(resolution, "720p") == 0) {
        rate = cfg->cost_output_min_720p;
    } else if (strcmp(resolution, "4k") == 0) {
        rate = cfg->cost_output_min_4k;
    }
    return rate * (double)output_ms / 60000.0;
}

double
rf_cost_render(const rf_coord_config *cfg, uint64_t gpu_ms, uint64_t cpu_ms)
{
    return cfg->cost_gpu_min * (double)gpu_ms / 60000.0 +
           cfg->cost_cpu_min * (double)cpu_ms / 60000.0;
}

void
rf_analytics_clear(rf_analytics *a)
{
    if (a == NULL) {
        return;
    }
    free(a->groups);
    memset(a, 0, sizeof(*a));
}

/* Adds one (template, resolution) row into a group; processing time is
 * summed in *proc_ms for the mean. */
static void
add_row(const rf_coord_config *cfg, rf_analytics_group *g, const rf_analytics_row *r,
        int64_t *proc_ms)
{
    g->jobs += r->jobs;
    g->jobs_finished += r->jobs_finished;
    g->items_total += r->items_total;
    g->items_completed += r->items_completed;
    g->items_failed += r->items_failed;
    g->items_skipped += r->items_skipped;
    g->renditions_completed += r->units_completed;
    g->output_ms += r->output_ms;
    g->cost += rf_cost_output(cfg, r->resolution, r->output_ms) +
               rf_cost_render(cfg, r->gpu_render_ms, r->cpu_render_ms);
    *proc_ms += r->processing_ms;
}

static void
finish(rf_analytics_group *g, int64_t proc_ms)
{
    uint64_t ended = g->items_completed + g->items_failed;

    g->success_rate = ended > 0 ? (double)g->items_completed / (double)ended : -1.0;
    g->avg_processing_s =
        g->jobs_finished > 0 ? (double)proc_ms / 1000.0 / (double)g->jobs_finished : -1.0;
}

static int
by_template(const void *a, const void *b)
{
    return strcmp(((const rf_analytics_group *)a)->template_id,
                  ((const rf_analytics_group *)b)->template_id);
}

rf_err
rf_analytics_run(rf_store *st, const rf_coord_config *cfg, const char *tenant, int64_t from_ms,
                 int64_t to_ms, rf_analytics *out)
{
    rf_analytics_row *rows = NULL;
    int64_t *proc = NULL;
    int64_t total_proc = 0;
    size_t n = 0;
    rf_err rv;

    memset(out, 0, sizeof(*out));
    rv = rf_store_begin(st);
    if (rv != RF_OK) {
        return rv;
    }
    rv = rf_store_analytics(st, tenant, from_ms, to_ms, &rows, &n);
    rf_store_rollback(st); /* read only */
    if (rv != RF_OK) {
        return rv;
    }
    out->groups = calloc(n > 0 ? n : 1, sizeof(*out->groups));
    proc = calloc(n > 0 ? n : 1, sizeof(*proc));
    if (out->groups == NULL || proc == NULL) {
        rv = RF_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        size_t g = 0;
        while (g < out->n_groups && strcmp(out->groups[g].template_id, rows[i].template_id) != 0) {
            g++;
        }
        if (g == out->n_groups) {
            memcpy(out->groups[g].template_id, rows[i].template_id, RF_NAME_MAX);
            out->n_groups++;
        }
        add_row(cfg, &out->groups[g], &rows[i], &proc[g]);
        add_row(cfg, &out->total, &rows[i], &total_proc);
    }
    for (size_t g = 0; g < out->n_groups; g++) {
        finish(&out->groups[g], proc[g]);
    }
    finish(&out->total, total_proc);
    /* proc is per group index: sort only after it is used. */
    qsort(out->groups, out->n_groups, sizeof(*out->groups), by_template);
out:
    free(rows);
    free(proc);
    if (rv != RF_OK) {
        rf_analytics_clear(out);
    }
    return rv;
}

rf_err
rf_estimate_job(rf_store *st, const rf_coord_config *cfg, const char *resolution,
                uint64_t output_ms, int64_t now_ms, rf_estimate *out)
{
    uint64_t render_ms = 0, media_ms = 0, slots = 0;
    double render_total_ms;
    rf_err rv;

    memset(out, 0, sizeof(*out));
    rv = rf_store_begin(st);
    if (rv != RF_OK) {
        return rv;
    }
    rv = rf_store_render_history(st, resolution, &render_ms, &media_ms);
    if (rv == RF_OK) {
        rv = rf_store_agents_slots(st, now_ms - 3 * cfg->lease_ttl_ms, &slots);
    }
    rf_store_rollback(st); /* read only */
    if (rv != RF_OK) {
        return rv;
    }
    if (media_ms >= 10000) {
        out->render_factor = (double)render_ms / (double)media_ms;
        out->from_history = true;
    } else if (strcmp(resolution, "720p") == 0) {
        out->render_factor = cfg->estimate_render_factor_720p;
    } else if (strcmp(resolution, "4k") == 0) {
        out->render_factor = cfg->estimate_render_factor_4k;
    } else {
        out->render_factor = cfg->estimate_render_factor_1080p;
    }
    out->parallel_slots = slots > 0 ? slots : 1;
    render_total_ms = out->render_factor * (double)output_ms;
    out->processing_time_ms = (int64_t)(render_total_ms / (double)out->parallel_slots);
    out->cost = rf_cost_output(cfg, resolution, output_ms) +
                rf_cost_render(cfg, 0, (uint64_t)render_total_ms);
    return RF_OK;
}
