/* The job domain. All multi-statement operations run in one store
 * transaction; derived state (item state, job completion, counters) is
 * recomputed from the units and items, never kept as counters. */
#include "jobs.h"

#include "holdback.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "custom_templates.h"
#include "idempotency.h"
#include "rf_log.h"
#include "rf_util.h"
#include "templates.h"

#define DEFAULT_DURATION_S 300
#define MAX_DURATION_S 3600
#define REAP_BATCH 256
#define DEADLINE_BATCH 64
#define MAX_TO 8

/* ---- pure helpers ---- */

static const struct {
    const char *name;
    rf_shape shape;
} platforms[] = {
    {"youtube", RF_SHAPE_LANDSCAPE}, {"tiktok", RF_SHAPE_PORTRAIT},
    {"shorts", RF_SHAPE_PORTRAIT},   {"youtube_shorts", RF_SHAPE_PORTRAIT},
    {"reels", RF_SHAPE_PORTRAIT},    {"instagram_reels", RF_SHAPE_PORTRAIT},
    {"instagram", RF_SHAPE_SQUARE},
};

bool
rf_platform_shape(const char *platform, rf_shape *shape)
{
    for (size_t i = 0; i < sizeof(platforms) / sizeof(platforms[0]); i++) {
        if (strcmp(platforms[i].name, platform) == 0) {
            *shape = platforms[i].shape;
            return true;
        }
    }
    return false;
}

bool
rf_resolution_size(const char *resolution, rf_shape shape, uint32_t *width, uint32_t *height)
{
    uint32_t shortside, longside;

    if (strcmp(resolution, "720p") == 0) {
        shortside = 720;
        longside = 1280;
    } else if (strcmp(resolution, "1080p") == 0) {
        shortside = 1080;
        longside = 1920;
    } else if (strcmp(resolution, "4k") == 0) {
        shortside = 2160;
        longside = 3840;
    } else {
        return false;
    }
    switch (shape) {
    case RF_SHAPE_LANDSCAPE:
        *width = longside;
        *height = shortside;
        return true;
    case RF_SHAPE_PORTRAIT:
        *width = shortside;
        *height = longside;
        return true;
    case RF_SHAPE_SQUARE:
        *width = shortside;
        *height = shortside;
        return true;
    }
    return false;
}

void
rf_slugify(const char *title, char *out, size_t len)
{
    size_t n = 0;
    size_t max = len - 1 < 40 ? len - 1 : 40;
    bool dash = false;

    for (const char *p = title; *p != '\0' && n < max; p++) {
        unsigned char c = (unsigned char)*p;
        if (c < 0x80 && isalnum(c)) {
            if (dash && n > 0) {
                out[n++] = '-';
                if (n >= max) {
                    break;
                }
            }
            out[n++] = (char)tolower(c);
            dash = false;
        } else {
            dash = true;
        }
    }
    while (n > 0 && out[n - 1] == '-') {
        n--;
    }
    out[n] = '\0';
    if (n == 0) {
        snprintf(out, len, "video");
    }
}

static const char *const job_states[] = {"pending",   "running",    "pausing",
                                         "paused",    "completing", "completed",
                                         "canceling", "canceled",   "failed"};

/* Every move a job may make, by actions (pause, resume, cancel, retry) and
 * by its units (leased, finished, requeued) or its deadline. pending may end
 * at once when a job has nothing to render; failed -> pending is retry. */
static const struct {
    const char *from;
    const char *to[MAX_TO];
} transitions[] = {
    {"pending", {"running", "canceled", "completed", "failed", NULL}},
    {"running",
     {"pausing", "paused", "completing", "completed", "failed", "canceling", "canceled", NULL}},
    {"pausing", {"paused", "completed", "failed", NULL}},
    {"paused", {"running", "canceled", "failed", NULL}},
    {"completing", {"running", "completed", "failed", NULL}},
    {"canceling", {"canceled", NULL}},
    {"failed", {"pending", "canceled", NULL}},
    {"completed", {NULL}},
    {"canceled", {NULL}},
};

/* The user guide's "Actions Available" column, exactly. */
#define ACT(a) (1u << (a))
static const struct {
    const char *state;
    unsigned actions;
    const char *text;
} action_table[] = {
    {"pending", ACT(RF_ACTION_CANCEL), "cancel"},
    {"running", ACT(RF_ACTION_PAUSE) | ACT(RF_ACTION_CANCEL), "pause, cancel"},
    {"pausing", 0, "none"},
    {"paused", ACT(RF_ACTION_RESUME) | ACT(RF_ACTION_CANCEL), "resume, cancel"},
    {"completing", 0, "none"},
    {"completed", 0, "none (view results)"},
    {"canceling", 0, "none"},
    {"canceled", 0, "none"},
    {"failed", ACT(RF_ACTION_RETRY) | ACT(RF_ACTION_CANCEL), "retry, cancel"},
};

static const char *const action_names[] = {"pause", "resume", "cancel", "retry"};

const char *
rf_job_action_name(rf_job_action a)
{
    return (unsigned)a < 4 ? action_names[a] : "?";
}

bool
rf_job_action_parse(const char *name, rf_job_action *out)
{
    for (unsigned i = 0; i < 4; i++) {
        if (strcmp(action_names[i], name) == 0) {
            *out = (rf_job_action)i;
            return true;
        }
    }
    return false;
}

bool
rf_job_action_allowed(const char *state, rf_job_action a)
{
    for (size_t i = 0; i < sizeof(action_table) / sizeof(action_table[0]); i++) {
        if (strcmp(action_table[i].state, state) == 0) {
            return (unsigned)a < 4 && (action_table[i].actions & ACT(a)) != 0;
        }
    }
    return false;
}

const char *
rf_job_actions_text(const char *state)
{
    for (size_t i = 0; i < sizeof(action_table) / sizeof(action_table[0]); i++) {
        if (strcmp(action_table[i].state, state) == 0) {
            return action_table[i].text;
        }
    }
    return "none";
}

bool
rf_job_state_valid(const char *state)
{
    for (size_t i = 0; i < sizeof(job_states) / sizeof(job_states[0]); i++) {
        if (strcmp(job_states[i], state) == 0) {
            return true;
        }
    }
    return false;
}

bool
rf_job_state_terminal(const char *state)
{
    return strcmp(state, "completed") == 0 || strcmp(state, "canceled") == 0 ||
           strcmp(state, "failed") == 0;
}

bool
rf_job_transition_allowed(const char *from, const char *to)
{
    for (size_t i = 0; i < sizeof(transitions) / sizeof(transitions[0]); i++) {
        if (strcmp(transitions[i].from, from) != 0) {
            continue;
        }
        for (size_t j = 0; j < MAX_TO && transitions[i].to[j] != NULL; j++) {
            if (strcmp(transitions[i].to[j], to) == 0) {
                return true;
            }
        }
        return false;
    }
    return false;
}

static void
copy_str(char *dst, const char *src, size_t len)
{
    rf_err rv = rf_strlcpy(dst, src != NULL ? src : "", len);
    (void)rv; /* callers pass values already checked to fit, or accept truncation */
}

/* ---- events and state changes ---- */

/* Ends the caller's transaction: commits when rv is RF_OK, else rolls back
 * and returns rv. */
static rf_err
end_tx(rf_store *st, rf_err rv)
{
    if (rv != RF_OK) {
        rf_store_rollback(st);
        return rv;
    }
    return rf_store_commit(st);
}

/* Writes an event; steals data. */
static rf_err
emit(rf_store *st, const char *job_id, const char *type, json_t *data, int64_t now_ms)
{
    char *text;
    rf_err rv;

    if (data == NULL) {
        return RF_ENOMEM;
    }
    text = json_dumps(data, JSON_COMPACT);
    json_decref(data);
    if (text == NULL) {
        return RF_ENOMEM;
    }
    rv = rf_store_event_add(st, job_id, type, text, now_ms);
    free(text);
    return rv;
}

static rf_err
job_set_state(rf_store *st, rf_job_rec *job, const char *to, const char *reason,
              const char *error_code, const char *error_message, int64_t now_ms)
{
    char prior[RF_NAME_MAX];
    rf_err rv;

    if (!rf_job_transition_allowed(job->state, to)) {
        rf_warn("job %s: refused transition %s -> %s", job->id, job->state, to);
        return RF_ECONFLICT;
    }
    copy_str(prior, job->state, sizeof(prior));
    copy_str(job->state, to, sizeof(job->state));
    job->updated_at = now_ms;
    if (strcmp(to, "running") == 0 && job->started_at == 0) {
        job->started_at = now_ms;
    }
    if (rf_job_state_terminal(to)) {
        job->finished_at = now_ms;
        job->permille = 1000;
    } else {
        job->finished_at = 0; /* retry leaves failed */
    }
    copy_str(job->error_code, error_code, sizeof(job->error_code));
    copy_str(job->error_message, error_message, sizeof(job->error_message));
    rv = rf_store_job_update_state(st, job);
    if (rv != RF_OK) {
        return rv;
    }
    rf_info("job %s: %s -> %s (%s)", job->id, prior, to, reason);
    rv = emit(st, job->id, "job.state_changed",
              json_pack("{s:s, s:s, s:s, s:s}", "job_id", job->id, "prior_state", prior,
                        "new_state", to, "reason", reason),
              now_ms);
    if (rv == RF_OK && strcmp(to, "completed") == 0) {
        rv = emit(st, job->id, "job.completed", json_pack("{s:s}", "job_id", job->id), now_ms);
    }
    if (rv == RF_OK && strcmp(to, "failed") == 0) {
        rv = emit(st, job->id, "job.failed",
                  json_pack("{s:s, s:s, s:s}", "job_id", job->id, "error_code",
                            error_code != NULL ? error_code : "", "error_message",
                            error_message != NULL ? error_message : ""),
                  now_ms);
    }
    return rv;
}

/* percent_complete x 10 from frames: 1000 once the job has ended. */
static int
permille_of(const char *state, uint64_t done, uint64_t total)
{
    if (rf_job_state_terminal(state)) {
        return 1000;
    }
    if (total == 0) {
        return 0;
    }
    return (int)llround(1000.0 * (double)(done < total ? done : total) / (double)total);
}

/* Moves a job along after its units or items changed, and keeps its stored
 * progress (permille, updated_at: the list's sort keys) in step:
 *   canceling  -> canceled   when no unit is in flight;
 *   pending, running, pausing, completing -> completed / failed when every
 *              item is terminal;
 *   pausing    -> paused     when no unit is in flight;
 *   running    -> completing when nothing is queued and units are in flight;
 *   completing -> running    when a unit went back to the queue. */
static rf_err
job_refresh(rf_store *st, const char *job_id, int64_t now_ms)
{
    rf_job_rec job;
    rf_item_counts c;
    rf_unit_counts u;
    uint64_t done = 0, total = 0;
    const char *s;
    int permille;
    rf_err rv = rf_store_job_get(st, job_id, &job);

    if (rv != RF_OK) {
        return rv;
    }
    s = job.state;
    if (rf_job_state_terminal(s)) {
        goto out;
    }
    rv = rf_store_job_item_counts(st, job_id, &c);
    if (rv == RF_OK) {
        rv = rf_store_job_unit_counts(st, job_id, &u);
    }
    if (rv == RF_OK) {
        rv = rf_store_job_frames(st, job_id, &done, &total);
    }
    if (rv != RF_OK) {
        goto out;
    }
    permille = permille_of(s, done, total);
    if (strcmp(s, "canceling") == 0) {
        if (u.leased == 0) {
            job.permille = permille;
            rv = job_set_state(st, &job, "canceled", "no unit is in flight any more", NULL, NULL,
                               now_ms);
            goto out;
        }
    } else if (c.pending + c.processing == 0 && strcmp(s, "paused") != 0 && job.ingest[0] == '\0') {
        if (c.completed > 0 || c.skipped == c.total) {
            char reason[128];
            snprintf(reason, sizeof(reason),
                     "all items finished: %u completed, %u failed, %u skipped", c.completed,
                     c.failed, c.skipped);
            rv = job_set_state(st, &job, "completed", reason, NULL, NULL, now_ms);
        } else {
            char msg[128];
            snprintf(msg, sizeof(msg), "all %u items failed", c.failed);
            rv = job_set_state(st, &job, "failed", msg, "all_items_failed", msg, now_ms);
        }
        goto out;
    } else if (strcmp(s, "pausing") == 0 && u.leased == 0) {
        job.permille = permille;
        rv = job_set_state(st, &job, "paused", "every in-flight unit has finished", NULL, NULL,
                           now_ms);
        goto out;
    } else if (strcmp(s, "running") == 0 && u.queued == 0 && u.leased > 0) {
        job.permille = permille;
        rv = job_set_state(st, &job, "completing",
                           "every unit has been dispatched; the last ones are in flight", NULL,
                           NULL, now_ms);
        goto out;
    } else if (strcmp(s, "completing") == 0 && u.queued > 0) {
        job.permille = permille;
        rv =
            job_set_state(st, &job, "running", "a unit went back to the queue", NULL, NULL, now_ms);
        goto out;
    }
    if (permille != job.permille) {
        rv = rf_store_job_set_progress(st, job_id, permille, now_ms);
    }
out:
    rf_job_rec_clear(&job);
    return rv;
}

/* Derives an item's state from its units; emits video.* events when it ends.
 * When an item fails its queued units are canceled (no point rendering the
 * other shapes of a failed row). */
static rf_err
item_refresh(rf_store *st, const char *item_id, int64_t now_ms)
{
    rf_item_rec item;
    rf_unit_rec *units = NULL;
    size_t n = 0;
    const rf_unit_rec *failed = NULL, *canceled = NULL;
    size_t completed = 0, leased = 0, queued = 0;
    const char *state;
    rf_err rv = rf_store_item_get(st, item_id, &item);

    if (rv != RF_OK) {
        return rv;
    }
    if (strcmp(item.state, "pending") != 0 && strcmp(item.state, "processing") != 0) {
        goto out; /* terminal */
    }
    rv = rf_store_units_of_item(st, item_id, &units, &n);
    if (rv != RF_OK) {
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const char *us = units[i].state;
        if (strcmp(us, "failed") == 0 && failed == NULL) {
            failed = &units[i];
        } else if (strcmp(us, "completed") == 0) {
            completed++;
        } else if (strcmp(us, "leased") == 0) {
            leased++;
        } else if (strcmp(us, "queued") == 0) {
            queued++;
        } else if (strcmp(us, "canceled") == 0 && canceled == NULL) {
            canceled = &units[i];
        }
    }
    if (failed != NULL) {
        state = "failed";
    } else if (n > 0 && completed == n) {
        state = "completed";
    } else if (leased > 0 || (queued > 0 && completed > 0)) {
        state = "processing";
    } else if (queued > 0 || n == 0) {
        state = "pending";
    } else {
        /* Nothing left to render: the rest was canceled (job canceled, or
         * its deadline passed before these renditions started). */
        state = "skipped";
    }
    if (strcmp(state, item.state) == 0) {
        goto out;
    }
    copy_str(item.state, state, sizeof(item.state));
    item.updated_at = now_ms;
    if (failed != NULL) {
        copy_str(item.error_code, failed->error_code, sizeof(item.error_code));
        copy_str(item.error_message, failed->error_message, sizeof(item.error_message));
    } else if (strcmp(state, "skipped") == 0 && canceled != NULL) {
        copy_str(item.error_code,
                 canceled->error_code[0] != '\0' ? canceled->error_code : "canceled",
                 sizeof(item.error_code));
        copy_str(item.error_message,
                 canceled->error_message[0] != '\0' ? canceled->error_message
                                                    : "the item was canceled before it rendered",
                 sizeof(item.error_message));
    }
    rv = rf_store_item_update_state(st, &item);
    if (rv != RF_OK) {
        goto out;
    }
    if (failed != NULL) {
        for (size_t i = 0; i < n; i++) {
            if (strcmp(units[i].state, "queued") != 0) {
                continue;
            }
            copy_str(units[i].state, "canceled", sizeof(units[i].state));
            units[i].updated_at = now_ms;
            rv = rf_store_unit_update(st, &units[i]);
            if (rv != RF_OK) {
                goto out;
            }
        }
        rv = emit(st, item.job_id, "video.failed",
                  json_pack("{s:s, s:s, s:i, s:s, s:s}", "job_id", item.job_id, "item_id", item.id,
                            "row_number", (int)item.row_number, "error_code", item.error_code,
                            "error_message", item.error_message),
                  now_ms);
    } else if (strcmp(state, "completed") == 0) {
        json_t *paths = json_array();
        for (size_t i = 0; paths != NULL && i < n; i++) {
            json_array_append_new(paths, json_string(units[i].output_path));
        }
        rv =
            emit(st, item.job_id, "video.completed",
                 json_pack("{s:s, s:s, s:i, s:s, s:o*}", "job_id", item.job_id, "item_id", item.id,
                           "row_number", (int)item.row_number, "title", item.title, "paths", paths),
                 now_ms);
    }
out:
    free(units);
    rf_item_rec_clear(&item);
    return rv;
}

/* ---- creation ---- */

typedef struct row_plan {
    bool skipped;
    char error[RF_ERRMSG_MAX]; /* "" when the row is valid */
    json_t *data;              /* normalised fields */
    const char *title;         /* points into data */
    int priority;
    uint32_t duration_s;
    size_t n_shapes;
    rf_shape shapes[3];
    char renditions[3][RF_NAME_MAX];
} row_plan;

/* Validates one row at a validation level (validate.h) and plans its
 * renditions: one per frame shape of the platforms it names. */
static rf_err
plan_row(const rf_row *row, rf_vlevel level, row_plan *p)
{
    rf_row_check c;
    rf_err rv;

    memset(p, 0, sizeof(*p));
    rv = rf_validate_row(row, level, &c);
    if (rv != RF_OK) {
        return rv;
    }
    /* data moves into the plan; title points into it */
    p->data = c.data;
    c.data = NULL;
    p->skipped = c.skipped;
    copy_str(p->error, c.error, sizeof(p->error));
    p->title = c.title != NULL ? c.title : "";
    p->priority = c.priority;
    p->duration_s = c.duration_s;
    for (size_t i = 0; p->error[0] == '\0' && !p->skipped && i < c.n_platforms; i++) {
        rf_shape shape;
        bool seen = false;

        if (!rf_platform_shape(c.platforms[i], &shape)) {
            continue;
        }
        for (size_t k = 0; k < p->n_shapes; k++) {
            seen = seen || p->shapes[k] == shape;
        }
        if (!seen && p->n_shapes < sizeof(p->shapes) / sizeof(p->shapes[0])) {
            p->shapes[p->n_shapes] = shape;
            copy_str(p->renditions[p->n_shapes], c.platforms[i], RF_NAME_MAX);
            p->n_shapes++;
        }
    }
    if (p->n_shapes == 0 && p->error[0] == '\0' && !p->skipped) {
        p->shapes[0] = RF_SHAPE_LANDSCAPE;
        copy_str(p->renditions[0], "youtube", RF_NAME_MAX);
        p->n_shapes = 1;
    }
    rf_row_check_clear(&c);
    return RF_OK;
}

static rf_err
insert_row(rf_store *st, const rf_coord_config *cfg, const rf_job_rec *job, const rf_row *row,
           rf_vlevel level, int64_t now_ms)
{
    row_plan plan;
    rf_item_rec item;
    char *data_text = NULL;
    rf_err rv;

    memset(&item, 0, sizeof(item));
    rv = plan_row(row, level, &plan);
    if (rv != RF_OK) {
        goto out;
    }
    data_text = json_dumps(plan.data, JSON_COMPACT);
    if (data_text == NULL) {
        rv = RF_ENOMEM;
        goto out;
    }
    rf_new_id("itm_", item.id, sizeof(item.id));
    copy_str(item.job_id, job->id, sizeof(item.job_id));
    item.row_number = row->row_number;
    item.data_json = data_text;
    copy_str(item.title, plan.skipped ? "" : plan.title, sizeof(item.title));
    item.priority = plan.priority;
    item.created_at = now_ms;
    item.updated_at = now_ms;
    if (plan.skipped) {
        copy_str(item.state, "skipped", sizeof(item.state));
    } else if (plan.error[0] != '\0') {
        copy_str(item.state, "failed", sizeof(item.state));
        copy_str(item.error_code, "validation_error", sizeof(item.error_code));
        copy_str(item.error_message, plan.error, sizeof(item.error_message));
    } else {
        copy_str(item.state, "pending", sizeof(item.state));
    }
    rv = rf_store_item_insert(st, &item);
    if (rv != RF_OK || strcmp(item.state, "pending") != 0) {
        goto out;
    }
    for (size_t i = 0; i < plan.n_shapes; i++) {
        rf_unit_rec u;
        char slug[41];

        memset(&u, 0, sizeof(u));
        rf_new_id("unt_", u.id, sizeof(u.id));
        copy_str(u.item_id, item.id, sizeof(u.item_id));
        copy_str(u.job_id, job->id, sizeof(u.job_id));
        copy_str(u.rendition, plan.renditions[i], sizeof(u.rendition));
        if (!rf_resolution_size(job->resolution, plan.shapes[i], &u.width, &u.height)) {
            rv = RF_EINVAL;
            goto out;
        }
        u.fps = (uint32_t)cfg->fps;
        u.duration_ms = plan.duration_s * 1000u;
        u.frames_total = (uint32_t)(((uint64_t)u.duration_ms * u.fps + 500) / 1000);
        copy_str(u.state, "queued", sizeof(u.state));
        rf_slugify(plan.title, slug, sizeof(slug));
        if (rf_fmt(u.output_path, sizeof(u.output_path), "%s/%s/%s/%04u-%s-%s.%s", cfg->bucket_root,
                   job->output_bucket, job->id, row->row_number, slug, u.rendition,
                   job->format) != RF_OK) {
            rf_error("job %s: output path under %s is too long", job->id, cfg->bucket_root);
            rv = RF_ETOOBIG;
            goto out;
        }
        u.created_at = now_ms;
        u.updated_at = now_ms;
        rv = rf_store_unit_insert(st, &u);
        if (rv != RF_OK) {
            goto out;
        }
    }
out:
    json_decref(plan.data);
    free(data_text);
    return rv;
}

rf_err
rf_jobs_create(rf_store *st, const rf_coord_config *cfg, const rf_job_spec *spec,
               const rf_rows *rows, int64_t now_ms, char job_id[RF_ID_MAX])
{
    rf_job_owner owner = {"default", NULL};

    return rf_jobs_create_as(st, cfg, &owner, spec, rows, NULL, now_ms, job_id);
}

rf_err
rf_jobs_create_as(rf_store *st, const rf_coord_config *cfg, const rf_job_owner *owner,
                  const rf_job_spec *spec, const rf_rows *rows, const char *idem_key,
                  int64_t now_ms, char job_id[RF_ID_MAX])
{
    rf_job_rec job;
    rf_err rv;

    memset(&job, 0, sizeof(job));
    rf_new_id("job_", job.id, sizeof(job.id));
    copy_str(job.tenant,
             owner != NULL && owner->tenant != NULL && owner->tenant[0] != '\0' ? owner->tenant
                                                                                : "default",
             sizeof(job.tenant));
    copy_str(job.created_by, owner != NULL ? owner->created_by : NULL, sizeof(job.created_by));
    job.template_json = spec->template_json;
    copy_str(job.title, spec->title, sizeof(job.title));
    job.priority = spec->priority;
    copy_str(job.state, "pending", sizeof(job.state));
    /* The record borrows the spec's strings; nothing here is freed. */
    job.request_json = spec->request_json;
    job.input_json = spec->input_json;
    job.overrides_json = spec->overrides_json;
    copy_str(job.format, spec->format, sizeof(job.format));
    copy_str(job.video_codec, spec->video_codec, sizeof(job.video_codec));
    copy_str(job.audio_codec, spec->audio_codec, sizeof(job.audio_codec));
    copy_str(job.resolution, spec->resolution, sizeof(job.resolution));
    copy_str(job.output_bucket, spec->output_bucket, sizeof(job.output_bucket));
    copy_str(job.template_id, spec->template_id, sizeof(job.template_id));
    job.processing_deadline_ms = spec->processing_deadline_ms;
    job.deadline_at = spec->processing_deadline_ms > 0 ? now_ms + spec->processing_deadline_ms : 0;
    copy_str(job.callback_url, spec->callback_url, sizeof(job.callback_url));
    copy_str(job.ingest, spec->source.deferred ? "sheet" : "", sizeof(job.ingest));
    job.writeback = spec->writeback;
    job.created_at = now_ms;
    job.updated_at = now_ms;

    rv = rf_store_begin(st);
    if (rv != RF_OK) {
        return rv;
    }
    rv = rf_store_job_insert(st, &job);
    for (size_t i = 0; rv == RF_OK && i < rows->n; i++) {
        rv = insert_row(st, cfg, &job, &rows->rows[i], spec->validation_level, now_ms);
    }
    if (rv == RF_OK) {
        rv = emit(st, job.id, "job.created",
                  json_pack("{s:s, s:s, s:I, s:b}", "job_id", job.id, "title", job.title, "rows",
                            (json_int_t)rows->n, "rows_pending", job.ingest[0] != '\0'),
                  now_ms);
    }
    if (rv == RF_OK) {
        rv = job_refresh(st, job.id, now_ms); /* nothing to render: ends now */
    }
    if (rv == RF_OK && idem_key != NULL) {
        rv = rf_idem_attach_job(st, job.tenant, idem_key, job.id, now_ms);
    }
    rv = end_tx(st, rv);
    if (rv == RF_OK) {
        copy_str(job_id, job.id, RF_ID_MAX);
        rf_info("job %s created for tenant %s by %s: '%s', %zu rows%s", job.id, job.tenant,
                job.created_by[0] != '\0' ? job.created_by : "-", job.title, rows->n,
                job.ingest[0] != '\0' ? " (its sheet is read in the background)" : "");
    }
    return rv;
}

/* ---- rows read in the background ---- */

/* Loads a job that still waits for its rows (in the caller's transaction);
 * RF_ECONFLICT when it ended meanwhile (canceled, past its deadline) or
 * does not wait. */
static rf_err
get_waiting_job(rf_store *st, const char *job_id, rf_job_rec *job)
{
    rf_err rv = rf_store_job_get(st, job_id, job);

    if (rv == RF_OK && (job->ingest[0] == '\0' || rf_job_state_terminal(job->state))) {
        rv = RF_ECONFLICT;
    }
    return rv;
}

rf_err
rf_jobs_ingest(rf_store *st, const rf_coord_config *cfg, const char *job_id, rf_vlevel level,
               const rf_rows *rows, int64_t read_ms, int64_t now_ms)
{
    rf_job_rec job;
    rf_err rv = rf_store_begin(st);

    if (rv != RF_OK) {
        return rv;
    }
    rv = get_waiting_job(st, job_id, &job);

    for (size_t i = 0; rv == RF_OK && i < rows->n; i++) {
        rv = insert_row(st, cfg, &job, &rows->rows[i], level, now_ms);
    }
    if (rv == RF_OK) {
        rv = rf_store_job_set_ingest(st, job_id, NULL);
    }
    if (rv == RF_OK) {
        rv = emit(st, job_id, "job.rows_read",
                  json_pack("{s:s, s:I, s:I}", "job_id", job_id, "rows", (json_int_t)rows->n,
                            "read_ms", (json_int_t)read_ms),
                  now_ms);
    }
    if (rv == RF_OK) {
        rv = job_refresh(st, job_id, now_ms);
    }
    rf_job_rec_clear(&job);
    rv = end_tx(st, rv);
    if (rv == RF_OK) {
        rf_info("job %s: %zu rows read from its sheet in %lld ms", job_id, rows->n,
                (long long)read_ms);
    }
    return rv;
}

rf_err
rf_jobs_ingest_failed(rf_store *st, const char *job_id, const char *code, const char *message,
                      int64_t now_ms)
{
    rf_job_rec job;
    rf_err rv = rf_store_begin(st);

    if (rv != RF_OK) {
        return rv;
    }
    rv = get_waiting_job(st, job_id, &job);

    /* ingest stays set: a retry reads the sheet again. */
    if (rv == RF_OK) {
        rv = job_set_state(st, &job, "failed", message, code, message, now_ms);
    }
    rf_job_rec_clear(&job);
    return end_tx(st, rv);
}

rf_err
rf_jobs_tenant(rf_store *st, const char *job_id, char tenant[RF_NAME_MAX])
{
    rf_job_rec job;
    rf_err rv = rf_store_begin(st);

    tenant[0] = '\0';
    if (rv != RF_OK) {
        return rv;
    }
    rv = rf_store_job_get(st, job_id, &job);
    rf_store_rollback(st); /* read only */
    if (rv == RF_OK) {
        copy_str(tenant, job.tenant, RF_NAME_MAX);
    }
    rf_job_rec_clear(&job);
    return rv;
}

static bool
tenant_quota_holds(rf_store *st, const rf_coord_config *cfg, const rf_job_rec *job)
{
    rf_unit_counts u;
    bool at_cap = false;

    if (cfg->tenant_max_units_in_flight <= 0 ||
        (strcmp(job->state, "pending") != 0 && strcmp(job->state, "running") != 0)) {
        return false;
    }
    if (rf_store_begin(st) != RF_OK) {
        return false;
    }
    if (rf_store_job_unit_counts(st, job->id, &u) == RF_OK && u.queued > 0) {
        if (rf_store_tenant_at_cap(st, job->tenant, cfg->tenant_max_units_in_flight, &at_cap) !=
            RF_OK) {
            at_cap = false;
        }
    }
    rf_store_rollback(st); /* read only */
    return at_cap;
}

unsigned
rf_jobs_held_back(rf_store *st, const rf_coord_config *cfg, const rf_job_rec *job)
{
    bool ended = rf_job_state_terminal(job->state);
    unsigned reasons = rf_holdback_get(cfg->holdback, job->id, ended);

    if (!ended && tenant_quota_holds(st, cfg, job)) {
        reasons |= RF_HOLD_TENANT_QUOTA;
    }
    return reasons;
}

/* ---- dry run ---- */

void
rf_dry_run_clear(rf_dry_run *d)
{
    if (d == NULL) {
        return;
    }
    free(d->rows);
    memset(d, 0, sizeof(*d));
}

rf_err
rf_jobs_dry_run(const rf_coord_config *cfg, const rf_job_spec *spec, const rf_rows *rows,
                rf_dry_run *out)
{
    rf_err rv = RF_OK;

    memset(out, 0, sizeof(*out));
    out->rows = calloc(rows->n > 0 ? rows->n : 1, sizeof(*out->rows));
    if (out->rows == NULL) {
        return RF_ENOMEM;
    }
    for (size_t i = 0; i < rows->n; i++) {
        rf_row_report *r = &out->rows[i];
        const rf_row *row = &rows->rows[i];
        row_plan plan;

        rv = plan_row(row, spec->validation_level, &plan);
        if (rv != RF_OK) {
            json_decref(plan.data);
            break;
        }
        r->row_number = row->row_number;
        out->n_rows++;
        if (plan.skipped) {
            r->status = "skipped";
            out->skipped_rows++;
        } else if (plan.error[0] != '\0') {
            r->status = "invalid";
            copy_str(r->error, plan.error, sizeof(r->error));
            out->invalid_rows++;
        } else {
            uint32_t frames =
                (uint32_t)(((uint64_t)plan.duration_s * 1000u * (uint64_t)cfg->fps + 500) / 1000);
            r->status = "valid";
            r->renditions = (uint32_t)plan.n_shapes;
            r->duration_s = plan.duration_s;
            out->valid_rows++;
            out->renditions += plan.n_shapes;
            out->output_ms += (uint64_t)plan.n_shapes * plan.duration_s * 1000u;
            out->frames += (uint64_t)plan.n_shapes * frames;
            /* Advice that does not make the row fail. */
            if (json_object_get(plan.data, "duration_seconds") == NULL) {
                snprintf(r->warning, sizeof(r->warning),
                         "duration_seconds is missing: the default of %d s applies",
                         DEFAULT_DURATION_S);
            } else if (json_object_get(plan.data, "description") == NULL) {
                snprintf(r->warning, sizeof(r->warning),
                         "description is empty (recommended for the title card)");
            }
        }
        json_decref(plan.data);
    }
    if (rv != RF_OK) {
        rf_dry_run_clear(out);
    }
    return rv;
}

/* ---- reads ---- */

void
rf_job_view_clear(rf_job_view *v)
{
    if (v == NULL) {
        return;
    }
    rf_job_rec_clear(&v->job);
    memset(v, 0, sizeof(*v));
}

void
rf_job_views_free(rf_job_view *v, size_t n)
{
    if (v == NULL) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        rf_job_view_clear(&v[i]);
    }
    free(v);
}

/* Fills the derived part of a view whose job record is loaded. Inside a
 * transaction. */
static rf_err
fill_view(rf_store *st, int64_t now_ms, rf_job_view *out)
{
    rf_err rv = rf_store_job_item_counts(st, out->job.id, &out->items);
    double pct;

    if (rv == RF_OK) {
        rv = rf_store_job_frames(st, out->job.id, &out->frames_done, &out->frames_total);
    }
    if (rv != RF_OK) {
        return rv;
    }
    /* The same rounding as the stored sort key, so lists and reads agree. */
    pct = permille_of(out->job.state, out->frames_done, out->frames_total) / 10.0;
    out->percent_complete = pct;
    if (out->job.started_at > 0) {
        int64_t end = out->job.finished_at > 0 ? out->job.finished_at : now_ms;
        out->processing_time_ms = end > out->job.started_at ? end - out->job.started_at : 0;
    }
    /* ETA from the measured throughput: frames done (completed and in-flight
     * units) per millisecond since the job started, applied to the frames
     * that remain. Unknown before the first frame and while paused. */
    out->eta_ms = -1;
    if (rf_job_state_terminal(out->job.state)) {
        out->eta_ms = 0;
    } else if (strcmp(out->job.state, "paused") != 0 && strcmp(out->job.state, "pausing") != 0 &&
               out->job.started_at > 0 && out->frames_done > 0 &&
               out->frames_done < out->frames_total && out->processing_time_ms > 0) {
        double rate = (double)out->frames_done / (double)out->processing_time_ms;
        out->eta_ms = (int64_t)((double)(out->frames_total - out->frames_done) / rate);
    }
    return RF_OK;
}

rf_err
rf_jobs_get(rf_store *st, const char *job_id, int64_t now_ms, rf_job_view *out)
{
    rf_err rv;

    memset(out, 0, sizeof(*out));
    rv = rf_store_begin(st);
    if (rv != RF_OK) {
        return rv;
    }
    rv = rf_store_job_get(st, job_id, &out->job);
    if (rv == RF_OK) {
        rv = fill_view(st, now_ms, out);
    }
    rf_store_rollback(st); /* read only */
    if (rv != RF_OK) {
        rf_job_view_clear(out);
        return rv;
    }
    return RF_OK;
}

int64_t
rf_job_sort_key(const rf_job_rec *job, rf_job_sort sort)
{
    switch (sort) {
    case RF_JOB_SORT_UPDATED_AT:
        return job->updated_at;
    case RF_JOB_SORT_PERCENT:
        return job->permille;
    case RF_JOB_SORT_CREATED_AT:
        break;
    }
    return job->created_at;
}

rf_err
rf_jobs_list(rf_store *st, const rf_job_query *q, int64_t now_ms, rf_job_view **out, size_t *n,
             bool *more, uint64_t *total)
{
    rf_job_query q1 = *q;
    rf_job_rec *recs = NULL;
    size_t n_recs = 0, done = 0;
    rf_job_view *views = NULL;
    rf_err rv;

    *out = NULL;
    *n = 0;
    *more = false;
    *total = 0;
    q1.limit = q->limit + 1;
    rv = rf_store_begin(st);
    if (rv != RF_OK) {
        return rv;
    }
    rv = rf_store_jobs_list(st, &q1, &recs, &n_recs);
    if (rv == RF_OK) {
        rv = rf_store_jobs_count(st, q->tenant, q->state, total);
    }
    if (rv != RF_OK) {
        goto out;
    }
    if (n_recs > q->limit) {
        *more = true;
    }
    views = calloc(n_recs > 0 ? n_recs : 1, sizeof(*views));
    if (views == NULL) {
        rv = RF_ENOMEM;
        goto out;
    }
    for (; done < n_recs && done < q->limit; done++) {
        views[done].job = recs[done];
        memset(&recs[done], 0, sizeof(recs[done])); /* moved */
        rv = fill_view(st, now_ms, &views[done]);
        if (rv != RF_OK) {
            done++;
            goto out;
        }
    }
out:
    rf_store_rollback(st); /* read only */
    rf_job_recs_free(recs, n_recs);
    if (rv != RF_OK) {
        rf_job_views_free(views, done);
        *more = false;
        *total = 0;
        return rv;
    }
    *out = views;
    *n = done;
    return RF_OK;
}

void
rf_video_views_free(rf_video_view *v, size_t n)
{
    if (v == NULL) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        rf_item_rec_clear(&v[i].item);
        free(v[i].units);
    }
    free(v);
}

rf_err
rf_jobs_videos(rf_store *st, const char *job_id, const char *state, uint32_t after_row,
               size_t limit, rf_video_view **out, size_t *n, bool *more)
{
    rf_job_rec job;
    rf_item_rec *items = NULL;
    size_t n_items = 0;
    rf_video_view *views = NULL;
    size_t done = 0;
    rf_err rv;

    *out = NULL;
    *n = 0;
    *more = false;
    rv = rf_store_begin(st);
    if (rv != RF_OK) {
        return rv;
    }
    rv = rf_store_job_get(st, job_id, &job);
    rf_job_rec_clear(&job);
    if (rv != RF_OK) {
        goto out;
    }
    rv = rf_store_items_list(st, job_id, state, after_row, limit + 1, &items, &n_items);
    if (rv != RF_OK) {
        goto out;
    }
    if (n_items > limit) {
        *more = true;
        n_items = limit;
    }
    views = calloc(n_items > 0 ? n_items : 1, sizeof(*views));
    if (views == NULL) {
        rv = RF_ENOMEM;
        goto out;
    }
    for (; done < n_items; done++) {
        views[done].item = items[done];
        memset(&items[done], 0, sizeof(items[done])); /* moved */
        rv = rf_store_units_of_item(st, views[done].item.id, &views[done].units,
                                    &views[done].n_units);
        if (rv != RF_OK) {
            done++;
            goto out;
        }
    }
out:
    rf_store_rollback(st);
    rf_item_recs_free(items, n_items + (*more ? 1 : 0));
    if (rv != RF_OK) {
        rf_video_views_free(views, done);
        *more = false;
        return rv;
    }
    *out = views;
    *n = n_items;
    return RF_OK;
}

/* ---- agents and leases ---- */

rf_err
rf_jobs_agent_hello(rf_store *st, const rf_hello *h, int64_t now_ms)
{
    json_t *caps =
        json_pack("{s:s, s:s, s:i, s:i, s:i, s:s, s:[]}", "hostname", h->hostname, "version",
                  h->version, "cpu_cores", (int)h->cpu_cores, "slots", (int)h->slots, "gpus",
                  (int)h->gpus, "compositor", h->compositor, "encoders");
    char *text = NULL;
    rf_err rv;

    if (caps == NULL) {
        return RF_ENOMEM;
    }
    for (uint32_t i = 0; i < h->n_encoders && i < RF_MAX_ENCODERS; i++) {
        json_array_append_new(json_object_get(caps, "encoders"), json_string(h->encoders[i]));
    }
    text = json_dumps(caps, JSON_COMPACT);
    json_decref(caps);
    if (text == NULL) {
        return RF_ENOMEM;
    }
    rv = rf_store_begin(st);
    if (rv == RF_OK) {
        rv = rf_store_agent_upsert(st, h->agent_id, h->hostname, text, now_ms);
        if (rv == RF_OK) {
            rv = rf_store_commit(st);
        } else {
            rf_store_rollback(st);
        }
    }
    free(text);
    if (rv == RF_OK) {
        rf_info("agent %s hello: host %s, %u slots, %s compositor, %u encoders", h->agent_id,
                h->hostname, h->slots, h->compositor, h->n_encoders);
    }
    return rv;
}

static void refuse(rf_outcome *oc, rf_verdict v, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
refuse(rf_outcome *oc, rf_verdict v, const char *fmt, ...)
{
    va_list ap;

    oc->verdict = v;
    va_start(ap, fmt);
    vsnprintf(oc->reason, sizeof(oc->reason), fmt, ap);
    va_end(ap);
}

static void
unit_clear_strings(rf_unit *u)
{
    free(u->title);
    free(u->description);
    free(u->script);
    u->title = NULL;
    u->description = NULL;
    u->script = NULL;
}

static const char *
json_str(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

/* The template a job renders with: its custom snapshot, or the built-in
 * (tpl_standard when the id is unknown). */
static rf_err
resolve_template(const rf_job_rec *job, rf_resolved_template *out)
{
    const rf_template *b;

    if (job->template_json != NULL && job->template_json[0] != '\0') {
        return rf_ctpl_load_resolved(job->template_json, out);
    }
    b = rf_template_find(job->template_id);
    if (b == NULL) {
        b = rf_template_find("tpl_standard");
    }
    memset(out, 0, sizeof(*out));
    copy_str(out->style, b->style, sizeof(out->style));
    copy_str(out->voice, b->voice, sizeof(out->voice));
    copy_str(out->font_family, b->font_family, sizeof(out->font_family));
    copy_str(out->logo_position, b->logo_position, sizeof(out->logo_position));
    copy_str(out->background_music, b->background_music, sizeof(out->background_music));
    for (size_t i = 0; i < 3 && b->colors[i] != NULL; i++) {
        copy_str(out->colors[out->n_colors++], b->colors[i], 8);
    }
    out->voice_speed = b->voice_speed;
    out->voice_pitch = b->voice_pitch;
    return RF_OK;
}

/* Fills the wire unit from the job, item, unit and template: row values
 * override the job's overrides, which override the template. RF_EINVAL when
 * stored data does not fit the wire limits (it was validated at ingest, so
 * this means the database was edited). */
static rf_err
build_unit(const rf_coord_config *cfg, const rf_job_rec *job, const rf_item_rec *item,
           const rf_unit_rec *u, rf_unit *out)
{
    json_t *data = NULL, *ov = NULL;
    rf_resolved_template tpl;
    const json_t *colors;
    const char *s;
    rf_err rv = RF_OK;

    memset(out, 0, sizeof(*out));
    rv = resolve_template(job, &tpl);
    if (rv != RF_OK) {
        goto out;
    }
    data = json_loads(item->data_json, 0, NULL);
    ov = json_loads(job->overrides_json, 0, NULL);
    if (!json_is_object(data) || !json_is_object(ov)) {
        rv = RF_EINVAL;
        goto out;
    }
    copy_str(out->unit_id, u->id, sizeof(out->unit_id));
    copy_str(out->lease_id, u->lease_id, sizeof(out->lease_id));
    copy_str(out->job_id, job->id, sizeof(out->job_id));
    copy_str(out->item_id, item->id, sizeof(out->item_id));
    out->row_number = item->row_number;
    out->lease_expires_ms = (uint64_t)u->lease_expires_at;
    copy_str(out->rendition, u->rendition, sizeof(out->rendition));
    out->width = u->width;
    out->height = u->height;
    out->fps = u->fps;
    out->duration_ms = u->duration_ms;
    copy_str(out->container, job->format, sizeof(out->container));
    copy_str(out->video_codec, job->video_codec, sizeof(out->video_codec));
    copy_str(out->audio_codec, job->audio_codec, sizeof(out->audio_codec));
    copy_str(out->preset, cfg->x264_preset, sizeof(out->preset));
    if (rf_strlcpy(out->output_path, u->output_path, sizeof(out->output_path)) != RF_OK) {
        rv = RF_EINVAL;
        goto out;
    }
    s = json_str(data, "idea_title");
    out->title = strdup(s != NULL ? s : item->title);
    s = json_str(data, "description");
    out->description = strdup(s != NULL ? s : "");
    s = json_str(data, "script_content");
    out->script = s != NULL ? strdup(s) : NULL;
    if (out->title == NULL || out->description == NULL || out->script == NULL) {
        rv = s == NULL ? RF_EINVAL : RF_ENOMEM;
        goto out;
    }
    if (rf_strlcpy(out->audience,
                   json_str(data, "target_audience") != NULL ? json_str(data, "target_audience")
                                                             : "",
                   sizeof(out->audience)) != RF_OK ||
        rf_strlcpy(out->tone, json_str(data, "tone") != NULL ? json_str(data, "tone") : "",
                   sizeof(out->tone)) != RF_OK) {
        rv = RF_EINVAL;
        goto out;
    }
    copy_str(out->template_id, job->template_id, sizeof(out->template_id));
    s = json_str(data, "style_override");
    if (s == NULL) {
        s = json_str(ov, "style");
    }
    copy_str(out->style, s != NULL ? s : tpl.style, sizeof(out->style));
    s = json_str(data, "voice_preference");
    if (s == NULL) {
        s = json_str(ov, "voice");
    }
    copy_str(out->voice, s != NULL ? s : tpl.voice, sizeof(out->voice));
    s = json_str(ov, "font_family");
    copy_str(out->font_family, s != NULL ? s : tpl.font_family, sizeof(out->font_family));
    s = json_str(ov, "logo_position");
    copy_str(out->logo_position, s != NULL ? s : tpl.logo_position, sizeof(out->logo_position));
    colors = json_object_get(ov, "colors");
    if (json_is_array(colors) && json_array_size(colors) > 0) {
        for (size_t i = 0; i < json_array_size(colors) && i < RF_MAX_COLORS; i++) {
            copy_str(out->colors[i], json_string_value(json_array_get(colors, i)), 8);
            out->n_colors++;
        }
    } else {
        for (size_t i = 0; i < tpl.n_colors && i < RF_MAX_COLORS; i++) {
            copy_str(out->colors[i], tpl.colors[i], 8);
            out->n_colors++;
        }
    }
    out->voice_speed = tpl.voice_speed;
    out->voice_pitch = tpl.voice_pitch;
    if (json_is_number(json_object_get(ov, "voice_speed"))) {
        double v = json_number_value(json_object_get(ov, "voice_speed"));
        out->voice_speed = v >= 0.5 && v <= 2.0 ? v : out->voice_speed;
    }
    if (json_is_number(json_object_get(ov, "voice_pitch"))) {
        double v = json_number_value(json_object_get(ov, "voice_pitch"));
        out->voice_pitch = v >= -12.0 && v <= 12.0 ? v : out->voice_pitch;
    }
out:
    json_decref(data);
    json_decref(ov);
    if (rv != RF_OK) {
        unit_clear_strings(out);
    }
    return rv;
}

/* Ends a unit with an error and lets its item and job follow. */
static rf_err
unit_fail(rf_store *st, rf_unit_rec *u, const char *code, const char *msg, int64_t now_ms)
{
    rf_err rv;

    copy_str(u->state, "failed", sizeof(u->state));
    copy_str(u->error_code, code, sizeof(u->error_code));
    copy_str(u->error_message, msg, sizeof(u->error_message));
    u->lease_expires_at = 0;
    u->updated_at = now_ms;
    rv = rf_store_unit_update(st, u);
    if (rv == RF_OK) {
        rv = item_refresh(st, u->item_id, now_ms);
    }
    if (rv == RF_OK) {
        rv = job_refresh(st, u->job_id, now_ms);
    }
    rf_info("unit %s (job %s) failed: %s: %s", u->id, u->job_id, code, msg);
    return rv;
}

/* Puts a unit back in the queue. */
static rf_err
unit_requeue(rf_store *st, rf_unit_rec *u, int64_t now_ms)
{
    rf_err rv;

    copy_str(u->state, "queued", sizeof(u->state));
    u->lease_id[0] = '\0';
    u->agent_id[0] = '\0';
    u->lease_expires_at = 0;
    u->frames_done = 0;
    u->updated_at = now_ms;
    rv = rf_store_unit_update(st, u);
    if (rv == RF_OK) {
        rv = item_refresh(st, u->item_id, now_ms);
    }
    if (rv == RF_OK) {
        rv = job_refresh(st, u->job_id, now_ms);
    }
    return rv;
}

/* Cancels a queued or leased unit (a leased one keeps its lease id, so that
 * the agent's next report is answered "canceled"). Item and job follow
 * unless refresh is false (the caller refreshes once for many units). */
static rf_err
unit_cancel(rf_store *st, rf_unit_rec *u, const char *code, const char *msg, bool refresh,
            int64_t now_ms)
{
    rf_err rv;

    copy_str(u->state, "canceled", sizeof(u->state));
    copy_str(u->error_code, code, sizeof(u->error_code));
    copy_str(u->error_message, msg, sizeof(u->error_message));
    u->lease_expires_at = 0;
    u->updated_at = now_ms;
    rv = rf_store_unit_update(st, u);
    if (rv == RF_OK && refresh) {
        rv = item_refresh(st, u->item_id, now_ms);
    }
    if (rv == RF_OK && refresh) {
        rv = job_refresh(st, u->job_id, now_ms);
    }
    return rv;
}

rf_err
rf_jobs_lease(rf_store *st, const rf_coord_config *cfg, const char *agent_id, int64_t now_ms,
              rf_unit *unit, bool *leased, rf_outcome *oc)
{
    bool known = false;
    rf_err rv;

    memset(oc, 0, sizeof(*oc));
    memset(unit, 0, sizeof(*unit));
    *leased = false;
    rv = rf_store_begin(st);
    if (rv != RF_OK) {
        return rv;
    }
    rv = rf_store_agent_touch(st, agent_id, now_ms, &known);
    if (rv != RF_OK) {
        goto out;
    }
    if (!known) {
        refuse(oc, RF_VERDICT_UNKNOWN_AGENT, "agent %s has not said hello", agent_id);
        goto out;
    }
    /* A unit whose stored data cannot be sent is failed and the next one is
     * tried, so that one bad row never blocks the queue. Bounded. */
    for (int tries = 0; tries < 16 && !*leased; tries++) {
        char id[RF_ID_MAX];
        bool found = false;
        rf_unit_rec u;
        rf_item_rec item;
        rf_job_rec job;

        rv = rf_store_unit_next_queued(st, agent_id, cfg->tenant_max_units_in_flight, id, &found);
        if (rv != RF_OK || !found) {
            goto out;
        }
        memset(&item, 0, sizeof(item));
        memset(&job, 0, sizeof(job));
        rv = rf_store_unit_get(st, id, &u);
        if (rv == RF_OK) {
            rv = rf_store_item_get(st, u.item_id, &item);
        }
        if (rv == RF_OK) {
            rv = rf_store_job_get(st, u.job_id, &job);
        }
        if (rv == RF_OK) {
            copy_str(u.state, "leased", sizeof(u.state));
            rf_new_id("lse_", u.lease_id, sizeof(u.lease_id));
            copy_str(u.agent_id, agent_id, sizeof(u.agent_id));
            u.lease_expires_at = now_ms + cfg->lease_ttl_ms;
            u.attempts++;
            u.updated_at = now_ms;
            rv = build_unit(cfg, &job, &item, &u, unit);
            if (rv == RF_EINVAL) {
                rv =
                    unit_fail(st, &u, "validation_error", "stored row data cannot be sent", now_ms);
            } else if (rv == RF_OK) {
                rv = rf_store_unit_update(st, &u);
                if (rv == RF_OK) {
                    rv = item_refresh(st, u.item_id, now_ms);
                }
                if (rv == RF_OK && strcmp(job.state, "pending") == 0) {
                    rv =
                        job_set_state(st, &job, "running", "first unit leased", NULL, NULL, now_ms);
                }
                if (rv == RF_OK) {
                    rv = job_refresh(st, u.job_id, now_ms); /* running -> completing? */
                }
                *leased = rv == RF_OK;
                if (*leased) {
                    rf_info("lease %s: unit %s (job %s row %u %s %ux%u, attempt %u) -> agent %s, "
                            "expires in %lld ms",
                            u.lease_id, u.id, u.job_id, item.row_number, u.rendition, u.width,
                            u.height, u.attempts, agent_id, (long long)cfg->lease_ttl_ms);
                }
            }
        }
        rf_item_rec_clear(&item);
        rf_job_rec_clear(&job);
        if (rv != RF_OK) {
            goto out;
        }
    }
out:
    if (rv != RF_OK) {
        rf_store_rollback(st);
        unit_clear_strings(unit);
        *leased = false;
        return rv;
    }
    rv = rf_store_commit(st);
    if (rv != RF_OK) {
        unit_clear_strings(unit);
        *leased = false;
    }
    return rv;
}

/* Loads the unit of a report and checks the report's lease against it.
 * Inside a transaction. oc->verdict != OK means refuse; *revoke then says
 * that the unit is still leased to this agent and must be canceled now (its
 * job was canceled or ended: the agent is being told to stop). A heartbeat
 * of a canceling job is refused so that the agent stops; its COMPLETE or
 * FAIL is accepted (work that finished is kept). job_state gets the job's
 * state. */
static rf_err
check_lease(rf_store *st, const char *unit_id, const char *lease_id, const char *agent_id,
            bool heartbeat, rf_unit_rec *u, char job_state[RF_NAME_MAX], rf_outcome *oc,
            bool *revoke)
{
    rf_job_rec job;
    bool mine;
    rf_err rv;

    memset(oc, 0, sizeof(*oc));
    *revoke = false;
    job_state[0] = '\0';
    rv = rf_store_unit_get(st, unit_id, u);
    if (rv == RF_ENOTFOUND) {
        refuse(oc, RF_VERDICT_STALE, "unknown unit %s", unit_id);
        return RF_OK;
    }
    if (rv != RF_OK) {
        return rv;
    }
    rv = rf_store_job_get(st, u->job_id, &job);
    if (rv != RF_OK) {
        return rv;
    }
    copy_str(job_state, job.state, RF_NAME_MAX);
    mine = strcmp(u->lease_id, lease_id) == 0 &&
           (agent_id[0] == '\0' || strcmp(u->agent_id, agent_id) == 0);
    if (mine &&
        (strcmp(u->state, "canceled") == 0 ||
         (strcmp(u->state, "failed") == 0 && strcmp(u->error_code, "deadline_exceeded") == 0))) {
        refuse(oc, RF_VERDICT_CANCELED, "unit %s was stopped: %s", u->id,
               u->error_message[0] != '\0' ? u->error_message : "job canceled");
    } else if (strcmp(u->state, "leased") != 0) {
        refuse(oc, RF_VERDICT_STALE, "unit %s is %s; lease %s is no longer valid", u->id, u->state,
               lease_id);
    } else if (strcmp(u->lease_id, lease_id) != 0) {
        refuse(oc, RF_VERDICT_STALE, "lease %s is not the current lease of unit %s", lease_id,
               u->id);
    } else if (agent_id[0] != '\0' && strcmp(u->agent_id, agent_id) != 0) {
        refuse(oc, RF_VERDICT_STALE, "unit %s is leased to another agent", u->id);
    } else if (rf_job_state_terminal(job.state) ||
               (heartbeat && strcmp(job.state, "canceling") == 0)) {
        refuse(oc, RF_VERDICT_CANCELED, "job %s was %s", job.id,
               strcmp(job.state, "canceling") == 0 ? "canceled" : job.state);
        *revoke = true;
    }
    rf_job_rec_clear(&job);
    return RF_OK;
}

static void
log_refusal(const char *what, const char *agent_id, const char *unit_id, const rf_outcome *oc)
{
    rf_info("refused %s from agent %s for unit %s: %s", what, agent_id, unit_id, oc->reason);
}

/* Opens the transaction a lease-fenced report (progress, complete, fail)
 * runs in: records that the agent was heard from and checks the lease. On
 * an error or a refusal *proceed is false and the transaction is over
 * (rolled back, or committed when the refusal revoked the unit); otherwise
 * the caller goes on inside it with the unit in *u and its job's state. */
static rf_err
begin_fenced(rf_store *st, const char *what, const char *agent_id, const char *unit_id,
             const char *lease_id, int64_t now_ms, rf_unit_rec *u, char job_state[RF_NAME_MAX],
             rf_outcome *oc, bool *proceed)
{
    bool known = false, revoke = false;
    rf_err rv;

    *proceed = false;
    rv = rf_store_begin(st);
    if (rv != RF_OK) {
        return rv;
    }
    rv = rf_store_agent_touch(st, agent_id, now_ms, &known);
    if (rv == RF_OK) {
        rv = check_lease(st, unit_id, lease_id, agent_id, strcmp(what, "progress") == 0, u,
                         job_state, oc, &revoke);
    }
    if (rv == RF_OK && revoke) {
        rv = unit_cancel(st, u, "canceled", "the job was canceled while this unit rendered", true,
                         now_ms);
        if (rv == RF_OK) {
            log_refusal(what, agent_id, unit_id, oc);
            rf_info("unit %s (job %s) revoked: agent %s was told to stop", u->id, u->job_id,
                    agent_id);
            return rf_store_commit(st);
        }
    }
    if (rv != RF_OK || oc->verdict != RF_VERDICT_OK) {
        rf_store_rollback(st);
        if (rv == RF_OK) {
            log_refusal(what, agent_id, unit_id, oc);
        }
        return rv;
    }
    *proceed = true;
    return RF_OK;
}

rf_err
rf_jobs_progress(rf_store *st, const rf_coord_config *cfg, const rf_progress *p, int64_t now_ms,
                 uint64_t *expires_ms, rf_outcome *oc)
{
    rf_unit_rec u;
    char job_state[RF_NAME_MAX];
    bool proceed = false;
    rf_err rv;

    *expires_ms = 0;
    rv = begin_fenced(st, "progress", p->agent_id, p->unit_id, p->lease_id, now_ms, &u, job_state,
                      oc, &proceed);
    if (!proceed) {
        return rv;
    }
    if (p->frames_total > 0) {
        u.frames_total = p->frames_total;
    }
    u.frames_done = p->frames_done < u.frames_total ? p->frames_done : u.frames_total;
    u.lease_expires_at = now_ms + cfg->lease_ttl_ms;
    u.updated_at = now_ms;
    rv = rf_store_unit_update(st, &u);
    if (rv == RF_OK) {
        rv = job_refresh(st, u.job_id, now_ms); /* the stored progress */
    }
    if (rv == RF_OK) {
        rv = rf_store_notify(st, u.job_id, "job.progress", NULL, now_ms); /* live feed, ETA */
    }
    rv = end_tx(st, rv);
    if (rv == RF_OK) {
        *expires_ms = (uint64_t)u.lease_expires_at;
        rf_debug("progress unit %s: %u/%u frames (%s)", u.id, u.frames_done, u.frames_total,
                 p->stage);
    }
    return rv;
}

/* Is path (absolute, no "..") inside root? */
static bool
path_under(const char *path, const char *root)
{
    size_t n = strlen(root);

    if (strncmp(path, root, n) != 0 || (path[n] != '/' && !(n == 1 && root[0] == '/'))) {
        return false;
    }
    return strstr(path, "/../") == NULL && strstr(path, "/./") == NULL;
}

rf_err
rf_jobs_complete(rf_store *st, const rf_coord_config *cfg, const rf_complete *c, int64_t now_ms,
                 rf_outcome *oc)
{
    rf_unit_rec u;
    char job_state[RF_NAME_MAX];
    bool proceed = false;
    const char *path;
    char problem[RF_ERRMSG_MAX] = "";
    rf_err rv;

    rv = begin_fenced(st, "complete", c->agent_id, c->unit_id, c->lease_id, now_ms, &u, job_state,
                      oc, &proceed);
    if (!proceed) {
        return rv;
    }
    path = c->output_path[0] != '\0' ? c->output_path : u.output_path;
    if (strstr(path, "://") == NULL) {
        struct stat sb;
        if (path[0] != '/' || !path_under(path, cfg->bucket_root)) {
            snprintf(problem, sizeof(problem), "output %.400s is not under the bucket root %.400s",
                     path, cfg->bucket_root);
        } else if (stat(path, &sb) != 0) {
            snprintf(problem, sizeof(problem), "output %.400s is missing: %s", path,
                     strerror(errno));
        } else if (!S_ISREG(sb.st_mode) || (uint64_t)sb.st_size != c->size_bytes) {
            snprintf(problem, sizeof(problem),
                     "output %.400s has %lld bytes, the agent reported %llu", path,
                     (long long)sb.st_size, (unsigned long long)c->size_bytes);
        }
    }
    copy_str(u.output_path, path, sizeof(u.output_path));
    u.size_bytes = c->size_bytes;
    copy_str(u.sha256, c->sha256, sizeof(u.sha256));
    u.media_duration_ms = c->duration_ms;
    copy_str(u.encoder, c->encoder, sizeof(u.encoder));
    u.render_ms = c->render_ms;
    /* Poster and captions beside the video (listed as artifacts): kept only
     * when they are URIs or files under the bucket root, like the video. */
    u.poster_path[0] = u.captions_path[0] = '\0';
    if (strstr(c->poster_path, "://") != NULL || path_under(c->poster_path, cfg->bucket_root)) {
        copy_str(u.poster_path, c->poster_path, sizeof(u.poster_path));
    }
    if (strstr(c->captions_path, "://") != NULL || path_under(c->captions_path, cfg->bucket_root)) {
        copy_str(u.captions_path, c->captions_path, sizeof(u.captions_path));
    }
    if (problem[0] != '\0') {
        rv = unit_fail(st, &u, "storage_upload_failed", problem, now_ms);
    } else {
        copy_str(u.state, "completed", sizeof(u.state));
        u.frames_done = u.frames_total;
        u.lease_expires_at = 0;
        u.error_code[0] = '\0';
        u.error_message[0] = '\0';
        u.updated_at = now_ms;
        rv = rf_store_unit_update(st, &u);
        if (rv == RF_OK) {
            rv = item_refresh(st, u.item_id, now_ms);
        }
        if (rv == RF_OK) {
            rv = job_refresh(st, u.job_id, now_ms);
        }
        rf_info("unit %s (job %s %s) completed by agent %s: %s, %llu bytes, %s, %u ms", u.id,
                u.job_id, u.rendition, c->agent_id, u.output_path, (unsigned long long)u.size_bytes,
                u.encoder, u.render_ms);
    }
    return end_tx(st, rv);
}

rf_err
rf_jobs_fail(rf_store *st, const rf_coord_config *cfg, const rf_fail *f, int64_t now_ms,
             rf_outcome *oc)
{
    rf_unit_rec u;
    char job_state[RF_NAME_MAX];
    bool proceed = false;
    rf_err rv;

    rv = begin_fenced(st, "fail", f->agent_id, f->unit_id, f->lease_id, now_ms, &u, job_state, oc,
                      &proceed);
    if (!proceed) {
        return rv;
    }
    if (strcmp(job_state, "canceling") == 0) {
        /* Nobody wants it any more: no retry. */
        rv = unit_cancel(st, &u, "canceled", "the job was canceled while this unit rendered", true,
                         now_ms);
    } else if (f->retryable && u.attempts < (uint32_t)cfg->max_attempts) {
        /* keep the last error for the videos listing while it waits */
        copy_str(u.error_code, f->error_code, sizeof(u.error_code));
        copy_str(u.error_message, f->error_message, sizeof(u.error_message));
        rv = emit(st, u.job_id, "unit.retry",
                  json_pack("{s:s, s:s, s:s, s:i, s:s}", "job_id", u.job_id, "unit_id", u.id,
                            "agent_id", f->agent_id, "attempts", (int)u.attempts, "error_code",
                            f->error_code),
                  now_ms);
        if (rv == RF_OK) {
            rv = unit_requeue(st, &u, now_ms);
        }
        rf_info("unit %s (job %s) failed on agent %s, retrying (attempt %u of %lld): %s: %s", u.id,
                u.job_id, f->agent_id, u.attempts, (long long)cfg->max_attempts, f->error_code,
                f->error_message);
    } else {
        rv = unit_fail(st, &u, f->error_code[0] != '\0' ? f->error_code : "internal_error",
                       f->error_message[0] != '\0' ? f->error_message : "the agent gave no reason",
                       now_ms);
    }
    return end_tx(st, rv);
}

rf_err
rf_jobs_reap(rf_store *st, const rf_coord_config *cfg, int64_t now_ms, size_t *requeued,
             size_t *failed)
{
    char(*ids)[RF_ID_MAX] = NULL;
    size_t n = 0, nreq = 0, nfail = 0;
    rf_err rv;

    ids = calloc(REAP_BATCH, sizeof(*ids));
    if (ids == NULL) {
        return RF_ENOMEM;
    }
    rv = rf_store_begin(st);
    if (rv != RF_OK) {
        goto done;
    }
    rv = rf_store_units_expired(st, now_ms, REAP_BATCH, ids, &n);
    for (size_t i = 0; rv == RF_OK && i < n; i++) {
        rf_unit_rec u;
        rf_job_rec job;
        char msg[RF_ERRMSG_MAX];

        rv = rf_store_unit_get(st, ids[i], &u);
        if (rv != RF_OK) {
            break;
        }
        rv = emit(st, u.job_id, "unit.lease_expired",
                  json_pack("{s:s, s:s, s:s, s:s, s:i}", "job_id", u.job_id, "unit_id", u.id,
                            "lease_id", u.lease_id, "agent_id", u.agent_id, "attempts",
                            (int)u.attempts),
                  now_ms);
        if (rv != RF_OK) {
            break;
        }
        rf_info("lease %s of unit %s (agent %s) expired %lld ms ago, attempt %u of %lld",
                u.lease_id, u.id, u.agent_id, (long long)(now_ms - u.lease_expires_at), u.attempts,
                (long long)cfg->max_attempts);
        rv = rf_store_job_get(st, u.job_id, &job);
        if (rv != RF_OK) {
            break;
        }
        if (strcmp(job.state, "canceling") == 0 || rf_job_state_terminal(job.state)) {
            /* Its job no longer wants it: a lapse ends it. */
            rv = unit_cancel(st, &u, "canceled", "the job was canceled while this unit rendered",
                             true, now_ms);
        } else if (u.attempts >= (uint32_t)cfg->max_attempts) {
            snprintf(msg, sizeof(msg), "the lease lapsed %u times; last agent %s", u.attempts,
                     u.agent_id);
            rv = unit_fail(st, &u, "agent_lost", msg, now_ms);
            nfail++;
        } else {
            rv = unit_requeue(st, &u, now_ms);
            nreq++;
        }
        rf_job_rec_clear(&job);
    }
    if (rv != RF_OK) {
        rf_store_rollback(st);
        goto done;
    }
    rv = rf_store_commit(st);
done:
    free(ids);
    if (requeued != NULL) {
        *requeued = rv == RF_OK ? nreq : 0;
    }
    if (failed != NULL) {
        *failed = rv == RF_OK ? nfail : 0;
    }
    return rv;
}

/* ---- actions ---- */

/* Cancels every queued unit of a job, and revokes its leased ones too when
 * revoke_leased; items follow. *leased_left counts leased units kept. */
static rf_err
cancel_units(rf_store *st, const char *job_id, const char *code, const char *msg,
             bool revoke_leased, int64_t now_ms, size_t *leased_left)
{
    rf_unit_rec *units = NULL;
    size_t n = 0;
    rf_err rv = rf_store_units_of_job(st, job_id, NULL, &units, &n);

    *leased_left = 0;
    for (size_t i = 0; rv == RF_OK && i < n; i++) {
        bool leased = strcmp(units[i].state, "leased") == 0;
        if (strcmp(units[i].state, "queued") == 0 || (leased && revoke_leased)) {
            rv = unit_cancel(st, &units[i], code, msg, false, now_ms);
            if (rv == RF_OK) {
                rv = item_refresh(st, units[i].item_id, now_ms);
            }
        } else if (leased) {
            (*leased_left)++;
        }
    }
    free(units);
    return rv;
}

/* Requeues the retryable items of a failed job: items that failed while
 * rendering (they have units) and items skipped because the deadline
 * passed. Validation failures stay failed: retrying cannot change the row. */
static rf_err
requeue_failed_items(rf_store *st, const rf_coord_config *cfg, const char *job_id, int64_t now_ms,
                     size_t *count)
{
    static const char *const states[] = {"failed", "skipped"};
    rf_err rv = RF_OK;

    *count = 0;
    for (int k = 0; k < 2 && rv == RF_OK; k++) {
        rf_item_rec *items = NULL;
        size_t n = 0;

        rv = rf_store_items_list(st, job_id, states[k], 0, (size_t)cfg->max_rows_per_job + 1,
                                 &items, &n);
        for (size_t i = 0; rv == RF_OK && i < n; i++) {
            rf_item_rec *it = &items[i];
            rf_unit_rec *units = NULL;
            size_t nu = 0, requeued = 0;

            if (k == 1 && strcmp(it->error_code, "deadline_exceeded") != 0) {
                continue; /* an empty row, or skipped by a cancel */
            }
            rv = rf_store_units_of_item(st, it->id, &units, &nu);
            for (size_t j = 0; rv == RF_OK && j < nu; j++) {
                rf_unit_rec *u = &units[j];
                if (strcmp(u->state, "failed") != 0 && strcmp(u->state, "canceled") != 0) {
                    continue;
                }
                copy_str(u->state, "queued", sizeof(u->state));
                u->lease_id[0] = '\0';
                u->agent_id[0] = '\0';
                u->lease_expires_at = 0;
                u->frames_done = 0;
                u->attempts = 0;
                u->error_code[0] = '\0';
                u->error_message[0] = '\0';
                u->updated_at = now_ms;
                rv = rf_store_unit_update(st, u);
                requeued++;
            }
            free(units);
            if (rv != RF_OK || requeued == 0) {
                continue;
            }
            /* The error stays in the event history. */
            rv = emit(st, job_id, "item.retried",
                      json_pack("{s:s, s:s, s:i, s:s, s:s, s:s}", "job_id", job_id, "item_id",
                                it->id, "row_number", (int)it->row_number, "prior_state", it->state,
                                "prior_error_code", it->error_code, "prior_error_message",
                                it->error_message),
                      now_ms);
            if (rv == RF_OK) {
                copy_str(it->state, "pending", sizeof(it->state));
                it->error_code[0] = '\0';
                it->error_message[0] = '\0';
                it->updated_at = now_ms;
                rv = rf_store_item_update_state(st, it);
            }
            if (rv == RF_OK) {
                rv = item_refresh(st, it->id, now_ms);
            }
            (*count)++;
        }
        rf_item_recs_free(items, n);
    }
    return rv;
}

rf_err
rf_jobs_action(rf_store *st, const rf_coord_config *cfg, const char *tenant, const char *job_id,
               rf_job_action action, const char *actor, int64_t now_ms, rf_action_result *res)
{
    rf_job_rec job;
    rf_unit_counts uc;
    char reason[256];
    size_t n = 0;
    rf_err rv;

    memset(res, 0, sizeof(*res));
    rv = rf_store_begin(st);
    if (rv != RF_OK) {
        return rv;
    }
    rv = rf_store_job_get(st, job_id, &job);
    if (rv == RF_OK && tenant != NULL && strcmp(job.tenant, tenant) != 0) {
        rv = RF_ENOTFOUND; /* another tenant's job does not exist for this one */
    }
    if (rv != RF_OK) {
        goto out;
    }
    copy_str(res->prior_state, job.state, sizeof(res->prior_state));
    copy_str(res->state, job.state, sizeof(res->state));
    if (!rf_job_action_allowed(job.state, action)) {
        copy_str(res->code, "invalid_state", sizeof(res->code));
        snprintf(res->message, sizeof(res->message),
                 "cannot %s job %s: it is %s (actions allowed when %s: %s)",
                 rf_job_action_name(action), job.id, job.state, job.state,
                 rf_job_actions_text(job.state));
        rv = RF_ECONFLICT;
        goto out;
    }
    snprintf(reason, sizeof(reason), "%s requested by %s", rf_job_action_name(action),
             actor != NULL && actor[0] != '\0' ? actor : "a user");
    switch (action) {
    case RF_ACTION_PAUSE:
        rv = rf_store_job_unit_counts(st, job.id, &uc);
        if (rv == RF_OK) {
            /* In-flight units finish; the scheduler leases nothing more. */
            rv = job_set_state(st, &job, uc.leased > 0 ? "pausing" : "paused", reason, NULL, NULL,
                               now_ms);
        }
        break;
    case RF_ACTION_RESUME:
        rv = job_set_state(st, &job, "running", reason, NULL, NULL, now_ms);
        if (rv == RF_OK) {
            rv = job_refresh(st, job.id, now_ms);
        }
        break;
    case RF_ACTION_CANCEL:
        rv = rf_store_job_unit_counts(st, job.id, &uc);
        if (rv != RF_OK) {
            break;
        }
        if (strcmp(job.state, "running") == 0 && uc.leased > 0) {
            /* In-flight units are told to stop at their next heartbeat. */
            rv = job_set_state(st, &job, "canceling", reason, NULL, NULL, now_ms);
            if (rv == RF_OK) {
                rv =
                    cancel_units(st, job.id, "canceled", "the job was canceled", false, now_ms, &n);
            }
        } else {
            rv = job_set_state(st, &job, "canceled", reason, NULL, NULL, now_ms);
            if (rv == RF_OK) {
                rv = cancel_units(st, job.id, "canceled", "the job was canceled", true, now_ms, &n);
            }
        }
        break;
    case RF_ACTION_RETRY:
        rv = requeue_failed_items(st, cfg, job.id, now_ms, &n);
        if (rv == RF_OK && n == 0 && job.ingest[0] == '\0') {
            copy_str(res->code, "nothing_to_retry", sizeof(res->code));
            snprintf(res->message, sizeof(res->message),
                     "job %s has no item that a retry can change (rows that failed validation "
                     "must be fixed in the sheet and submitted again)",
                     job.id);
            rv = RF_ECONFLICT;
            break;
        }
        if (rv == RF_OK) {
            char why[300];
            if (job.ingest[0] != '\0') {
                snprintf(why, sizeof(why), "%s: the sheet is read again", reason);
            } else {
                snprintf(why, sizeof(why), "%s: %zu failed items requeued", reason, n);
            }
            /* A new deadline window starts with the retry. */
            job.deadline_at =
                job.processing_deadline_ms > 0 ? now_ms + job.processing_deadline_ms : 0;
            rv = job_set_state(st, &job, "pending", why, NULL, NULL, now_ms);
        }
        if (rv == RF_OK) {
            rv = job_refresh(st, job.id, now_ms);
        }
        break;
    }
    if (rv == RF_OK) {
        rf_job_rec after;
        rv = rf_store_job_get(st, job.id, &after);
        if (rv == RF_OK) {
            copy_str(res->state, after.state, sizeof(res->state));
        }
        rf_job_rec_clear(&after);
    }
out:
    rf_job_rec_clear(&job);
    rv = end_tx(st, rv);
    if (rv == RF_OK) {
        rf_info("job %s: %s by %s: %s -> %s", job_id, rf_job_action_name(action),
                actor != NULL ? actor : "-", res->prior_state, res->state);
    }
    return rv;
}

/* ---- deadlines ---- */

static rf_err
expire_job(rf_store *st, const char *job_id, int64_t now_ms)
{
    rf_job_rec job;
    rf_unit_rec *units = NULL;
    size_t n = 0;
    char msg[RF_ERRMSG_MAX];
    rf_err rv = rf_store_job_get(st, job_id, &job);

    if (rv != RF_OK) {
        return rv;
    }
    snprintf(msg, sizeof(msg), "the job did not finish within its processing deadline of %lld ms",
             (long long)job.processing_deadline_ms);
    rv = rf_store_units_of_job(st, job_id, NULL, &units, &n);
    for (size_t i = 0; rv == RF_OK && i < n; i++) {
        rf_unit_rec *u = &units[i];
        if (strcmp(u->state, "queued") == 0) {
            /* Never started: its item ends skipped. */
            rv = unit_cancel(st, u, "deadline_exceeded", msg, false, now_ms);
        } else if (strcmp(u->state, "leased") == 0) {
            /* In flight: failed; the lease id stays so that the agent's next
             * report is answered "canceled" and it stops. */
            copy_str(u->state, "failed", sizeof(u->state));
            copy_str(u->error_code, "deadline_exceeded", sizeof(u->error_code));
            copy_str(u->error_message, msg, sizeof(u->error_message));
            u->lease_expires_at = 0;
            u->updated_at = now_ms;
            rv = rf_store_unit_update(st, u);
        } else {
            continue;
        }
        if (rv == RF_OK) {
            rv = item_refresh(st, u->item_id, now_ms);
        }
    }
    free(units);
    if (rv == RF_OK) {
        rv = job_set_state(st, &job, "failed", "processing deadline passed", "deadline_exceeded",
                           msg, now_ms);
    }
    rf_job_rec_clear(&job);
    return rv;
}

rf_err
rf_jobs_enforce_deadlines(rf_store *st, const rf_coord_config *cfg, int64_t now_ms, size_t *failed)
{
    char(*ids)[RF_ID_MAX] = NULL;
    size_t n = 0;
    rf_err rv;

    (void)cfg;
    if (failed != NULL) {
        *failed = 0;
    }
    ids = calloc(DEADLINE_BATCH, sizeof(*ids));
    if (ids == NULL) {
        return RF_ENOMEM;
    }
    rv = rf_store_begin(st);
    if (rv != RF_OK) {
        goto done;
    }
    rv = rf_store_jobs_past_deadline(st, now_ms, DEADLINE_BATCH, ids, &n);
    for (size_t i = 0; rv == RF_OK && i < n; i++) {
        rv = expire_job(st, ids[i], now_ms);
    }
    if (rv != RF_OK) {
        rf_store_rollback(st);
        goto done;
    }
    rv = rf_store_commit(st);
    if (rv == RF_OK && failed != NULL) {
        *failed = n;
    }
done:
    free(ids);
    return rv;
}
