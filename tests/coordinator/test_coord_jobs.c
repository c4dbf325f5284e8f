/* The store and the job domain on a real SQLite file: migrations, ingest
 * validation, the scheduler's order, leases, the reaper, job completion. The
 * clock is passed in, so nothing sleeps. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "holdback.h"
#include "jobs.h"
#include "request.h"
#include "rf_util.h"
#include "sources.h"
#include "store.h"
#include "testutil.h"

#define T0 1700000000000LL

static const char *const REQ_3ROWS =
    "{\"title\":\"Three rows\",\"input_source\":{\"type\":\"rows\",\"rows\":["
    "{\"idea_title\":\"First idea\",\"script_content\":\"Say one thing.\",\"duration_seconds\":2},"
    "{\"idea_title\":\"No script here\",\"duration_seconds\":2},"
    "{\"idea_title\":\"Third idea\",\"script_content\":\"Say another.\",\"duration_seconds\":3}"
    "]},\"output\":{\"output_bucket\":\"b1\",\"resolution\":\"720p\"}}";

static const char *const REQ_1ROW =
    "{\"title\":\"One row\",\"priority\":\"%s\",\"input_source\":{\"type\":\"rows\",\"rows\":["
    "{\"idea_title\":\"%s\",\"script_content\":\"Words.\",\"duration_seconds\":1}]},"
    "\"output\":{\"output_bucket\":\"b1\",\"resolution\":\"720p\"}}";

static int
setup(void **state)
{
    tu_env *env;
    rf_hello h;

    if (tu_setup(state) != 0) {
        return -1;
    }
    env = *state;
    memset(&h, 0, sizeof(h));
    snprintf(h.agent_id, sizeof(h.agent_id), "agent-a");
    snprintf(h.hostname, sizeof(h.hostname), "host-a");
    snprintf(h.compositor, sizeof(h.compositor), "cpu");
    h.slots = 1;
    if (rf_jobs_agent_hello(env->st, &h, T0) != RF_OK) {
        return -1;
    }
    snprintf(h.agent_id, sizeof(h.agent_id), "agent-b");
    if (rf_jobs_agent_hello(env->st, &h, T0) != RF_OK) {
        return -1;
    }
    return 0;
}

static void
create_one(tu_env *env, const char *priority, const char *title, int64_t now, char id[RF_ID_MAX])
{
    char req[1024];
    snprintf(req, sizeof(req), REQ_1ROW, priority, title);
    tu_create_job(env, req, now, id);
}

static void
lease_ok(tu_env *env, const char *agent, int64_t now, rf_unit *u)
{
    bool leased = false;
    rf_outcome oc;
    assert_int_equal(rf_jobs_lease(env->st, &env->cfg, agent, now, u, &leased, &oc), RF_OK);
    assert_int_equal(oc.verdict, RF_VERDICT_OK);
    assert_true(leased);
}

static void
free_unit(rf_unit *u)
{
    free(u->title);
    free(u->description);
    free(u->script);
    memset(u, 0, sizeof(*u));
}

static rf_verdict
complete(tu_env *env, const rf_unit *u, const char *agent, const char *lease, int64_t now)
{
    rf_complete c;
    rf_outcome oc;

    memset(&c, 0, sizeof(c));
    snprintf(c.agent_id, sizeof(c.agent_id), "%s", agent);
    snprintf(c.unit_id, sizeof(c.unit_id), "%s", u->unit_id);
    snprintf(c.lease_id, sizeof(c.lease_id), "%s", lease);
    snprintf(c.output_path, sizeof(c.output_path), "%s", u->output_path);
    c.size_bytes = 1234;
    memset(c.sha256, 'a', 64);
    c.duration_ms = u->duration_ms;
    snprintf(c.encoder, sizeof(c.encoder), "libx264");
    c.render_ms = 10;
    assert_int_equal(rf_jobs_complete(env->st, &env->cfg, &c, now, &oc), RF_OK);
    return oc.verdict;
}

static rf_verdict
progress(tu_env *env, const rf_unit *u, const char *agent, const char *lease, uint32_t frames,
         int64_t now, uint64_t *expires)
{
    rf_progress p;
    rf_outcome oc;
    uint64_t e = 0;

    memset(&p, 0, sizeof(p));
    snprintf(p.agent_id, sizeof(p.agent_id), "%s", agent);
    snprintf(p.unit_id, sizeof(p.unit_id), "%s", u->unit_id);
    snprintf(p.lease_id, sizeof(p.lease_id), "%s", lease);
    p.frames_done = frames;
    snprintf(p.stage, sizeof(p.stage), "render");
    assert_int_equal(rf_jobs_progress(env->st, &env->cfg, &p, now, &e, &oc), RF_OK);
    if (expires != NULL) {
        *expires = e;
    }
    return oc.verdict;
}

static void
get_job(tu_env *env, const char *id, int64_t now, rf_job_view *v)
{
    assert_int_equal(rf_jobs_get(env->st, id, now, v), RF_OK);
}

static void
get_unit(tu_env *env, const char *id, rf_unit_rec *u)
{
    assert_int_equal(rf_store_begin(env->st), RF_OK);
    assert_int_equal(rf_store_unit_get(env->st, id, u), RF_OK);
    rf_store_rollback(env->st);
}

static void
test_migrations_fresh_and_reopen(void **state)
{
    tu_env *env = *state;
    rf_store *st = NULL;
    char path[512];
    int v = -1;

    snprintf(path, sizeof(path), "%s/fresh.db", env->dir);
    assert_int_equal(rf_store_open(path, &st), RF_OK);
    assert_int_equal(rf_store_user_version(st, &v), RF_OK);
    assert_int_equal(v, rf_store_schema_version());
    assert_true(v >= 1);
    rf_store_close(&st);
    assert_null(st);
    assert_int_equal(rf_store_open(path, &st), RF_OK);
    v = -1;
    assert_int_equal(rf_store_user_version(st, &v), RF_OK);
    assert_int_equal(v, rf_store_schema_version());
    rf_store_close(&st);
}

static void
test_create_with_invalid_row(void **state)
{
    tu_env *env = *state;
    char id[RF_ID_MAX];
    rf_job_view v;
    rf_video_view *vids = NULL;
    size_t n = 0;
    bool more = true;

    tu_create_job(env, REQ_3ROWS, T0, id);
    assert_memory_equal(id, "job_", 4);
    get_job(env, id, T0, &v);
    assert_string_equal(v.job.state, "pending");
    assert_int_equal(v.items.total, 3);
    assert_int_equal(v.items.pending, 2);
    assert_int_equal(v.items.failed, 1);
    rf_job_view_clear(&v);

    assert_int_equal(rf_jobs_videos(env->st, id, NULL, 0, 50, &vids, &n, &more), RF_OK);
    assert_int_equal(n, 3);
    assert_false(more);
    assert_int_equal(vids[0].item.row_number, 1);
    assert_string_equal(vids[0].item.state, "pending");
    assert_int_equal(vids[0].n_units, 1);
    assert_string_equal(vids[1].item.state, "failed");
    assert_string_equal(vids[1].item.error_code, "validation_error");
    assert_string_equal(vids[1].item.error_message, "row 2: script_content is required");
    assert_int_equal(vids[1].n_units, 0);
    assert_string_equal(vids[2].item.state, "pending");
    assert_int_equal(vids[2].n_units, 1);
    assert_int_equal(vids[2].units[0].frames_total, 90); /* 3 s at 30 fps */
    rf_video_views_free(vids, n);
    assert_int_equal(tu_count_events(env, id, "job.created"), 1);
}

static void
test_dispatch_priority_order(void **state)
{
    tu_env *env = *state;
    char normal[RF_ID_MAX], high[RF_ID_MAX], low[RF_ID_MAX];
    rf_unit u1, u2, u3;

    create_one(env, "normal", "Normal first", T0, normal);
    create_one(env, "low", "Low second", T0 + 10, low);
    create_one(env, "high", "High later", T0 + 1000, high);
    lease_ok(env, "agent-a", T0 + 2000, &u1);
    lease_ok(env, "agent-a", T0 + 2000, &u2);
    lease_ok(env, "agent-a", T0 + 2000, &u3);
    assert_string_equal(u1.job_id, high);
    assert_string_equal(u2.job_id, normal);
    assert_string_equal(u3.job_id, low);
    free_unit(&u1);
    free_unit(&u2);
    free_unit(&u3);
}

static void
test_row_order_within_job(void **state)
{
    tu_env *env = *state;
    char id[RF_ID_MAX];
    rf_unit u1, u2;
    bool leased = true;
    rf_outcome oc;
    rf_unit none;

    tu_create_job(env, REQ_3ROWS, T0, id);
    lease_ok(env, "agent-a", T0 + 1, &u1);
    lease_ok(env, "agent-b", T0 + 1, &u2);
    assert_int_equal(u1.row_number, 1);
    assert_int_equal(u2.row_number, 3);
    assert_string_not_equal(u1.lease_id, u2.lease_id);
    /* nothing left: a normal empty result */
    assert_int_equal(rf_jobs_lease(env->st, &env->cfg, "agent-a", T0 + 2, &none, &leased, &oc),
                     RF_OK);
    assert_int_equal(oc.verdict, RF_VERDICT_OK);
    assert_false(leased);
    free_unit(&u1);
    free_unit(&u2);
}

static void
test_unknown_agent_refused(void **state)
{
    tu_env *env = *state;
    char id[RF_ID_MAX];
    rf_unit u;
    bool leased = true;
    rf_outcome oc;

    tu_create_job(env, REQ_3ROWS, T0, id);
    assert_int_equal(rf_jobs_lease(env->st, &env->cfg, "stranger", T0, &u, &leased, &oc), RF_OK);
    assert_int_equal(oc.verdict, RF_VERDICT_UNKNOWN_AGENT);
    assert_false(leased);
}

static void
test_unit_fields_and_overrides(void **state)
{
    tu_env *env = *state;
    char id[RF_ID_MAX], path[RF_PATH_MAX * 2];
    rf_unit u;
    const char *req =
        "{\"title\":\"Fields\",\"input_source\":{\"type\":\"rows\",\"rows\":["
        "{\"idea_title\":\"Café owners’ guide — 3 tips\",\"description\":\"Small shop\","
        "\"target_audience\":\"owners\",\"tone\":\"upbeat\",\"script_content\":\"Hi.\","
        "\"voice_preference\":\"Male\",\"duration_seconds\":\"4\"}]},"
        "\"output\":{\"format\":\"mov\",\"video_codec\":\"H.265\",\"output_bucket\":\"bk\"},"
        "\"template\":{\"template_id\":\"tpl_testimonial\",\"overrides\":{\"style\":\"minimal\","
        "\"voice\":\"female\",\"colors\":[\"#2C2C2C\",\"#F5F0E6\"]}}}";

    tu_create_job(env, req, T0, id);
    lease_ok(env, "agent-a", T0 + 5, &u);
    assert_string_equal(u.title, "Café owners’ guide — 3 tips");
    assert_string_equal(u.description, "Small shop");
    assert_string_equal(u.script, "Hi.");
    assert_string_equal(u.audience, "owners");
    assert_string_equal(u.tone, "upbeat");
    assert_string_equal(u.voice, "male");    /* the row beats the job override */
    assert_string_equal(u.style, "minimal"); /* the job override beats the template */
    assert_string_equal(u.font_family, "");  /* built-ins leave the font to the style */
    assert_string_equal(u.template_id, "tpl_testimonial");
    assert_int_equal(u.n_colors, 2); /* the job's brand colours */
    assert_string_equal(u.colors[0], "#2C2C2C");
    assert_string_equal(u.colors[1], "#F5F0E6");
    assert_string_equal(u.container, "mov");
    assert_string_equal(u.video_codec, "h265");
    assert_string_equal(u.audio_codec, "aac");
    assert_string_equal(u.preset, "veryfast");
    assert_int_equal(u.fps, 30);
    assert_int_equal(u.duration_ms, 4000);
    assert_int_equal(u.width, 1920);
    assert_int_equal(u.height, 1080);
    assert_int_equal(u.lease_expires_ms, (uint64_t)(T0 + 5 + env->cfg.lease_ttl_ms));
    snprintf(path, sizeof(path), "%s/bk/%s/0001-caf-owners-guide-3-tips-youtube.mov",
             env->cfg.bucket_root, id);
    assert_string_equal(u.output_path, path);
    free_unit(&u);
}

static void
test_lease_expiry_requeue_and_fencing(void **state)
{
    tu_env *env = *state;
    char id[RF_ID_MAX], old_lease[RF_ID_MAX];
    rf_unit u, again;
    rf_unit_rec rec;
    rf_job_view v;
    uint64_t exp = 0;
    size_t requeued = 0, failed = 0;
    int64_t ttl = env->cfg.lease_ttl_ms;

    create_one(env, "normal", "Expiring", T0, id);
    lease_ok(env, "agent-a", T0, &u);
    snprintf(old_lease, sizeof(old_lease), "%s", u.lease_id);
    get_job(env, id, T0, &v);
    /* its only unit is in flight: nothing is left to start */
    assert_string_equal(v.job.state, "completing");
    rf_job_view_clear(&v);

    /* a heartbeat extends the lease */
    assert_int_equal(progress(env, &u, "agent-a", old_lease, 10, T0 + 1000, &exp), RF_VERDICT_OK);
    assert_int_equal(exp, (uint64_t)(T0 + 1000 + ttl));
    /* not expired yet just before the new expiry */
    assert_int_equal(rf_jobs_reap(env->st, &env->cfg, T0 + 1000 + ttl - 1, &requeued, &failed),
                     RF_OK);
    assert_int_equal(requeued, 0);
    /* expired after it */
    assert_int_equal(rf_jobs_reap(env->st, &env->cfg, T0 + 1000 + ttl + 1, &requeued, &failed),
                     RF_OK);
    assert_int_equal(requeued, 1);
    assert_int_equal(failed, 0);
    get_unit(env, u.unit_id, &rec);
    assert_string_equal(rec.state, "queued");
    assert_string_equal(rec.lease_id, "");
    assert_string_equal(rec.agent_id, "");
    assert_int_equal(tu_count_events(env, id, "unit.lease_expired"), 1);
    get_job(env, id, T0 + 1000 + ttl + 1, &v);
    assert_string_equal(v.job.state, "running"); /* back from completing: a unit is queued */
    rf_job_view_clear(&v);

    /* the old holder is fenced off */
    int64_t later = T0 + 2000 + ttl;
    assert_int_equal(progress(env, &u, "agent-a", old_lease, 20, later, NULL), RF_VERDICT_STALE);
    assert_int_equal(complete(env, &u, "agent-a", old_lease, later), RF_VERDICT_STALE);
    get_unit(env, u.unit_id, &rec);
    assert_string_equal(rec.state, "queued"); /* refusals change nothing */

    /* a new lease completes it */
    lease_ok(env, "agent-b", later, &again);
    assert_string_equal(again.unit_id, u.unit_id);
    assert_string_not_equal(again.lease_id, old_lease);
    assert_int_equal(complete(env, &again, "agent-a", again.lease_id, later + 1),
                     RF_VERDICT_STALE); /* right lease, wrong agent */
    tu_write_file(again.output_path, 1234);
    assert_int_equal(complete(env, &again, "agent-b", again.lease_id, later + 2), RF_VERDICT_OK);
    get_unit(env, u.unit_id, &rec);
    assert_string_equal(rec.state, "completed");
    assert_int_equal(rec.attempts, 2);
    assert_string_equal(rec.agent_id, "agent-b");
    assert_int_equal(rec.size_bytes, 1234);
    /* a second COMPLETE for a finished unit is stale */
    assert_int_equal(complete(env, &again, "agent-b", again.lease_id, later + 3), RF_VERDICT_STALE);

    get_job(env, id, later + 3, &v);
    assert_string_equal(v.job.state, "completed");
    assert_int_equal(v.items.completed, 1);
    assert_true(v.percent_complete == 100.0);
    assert_int_equal(v.job.started_at, T0);
    assert_int_equal(v.job.finished_at, later + 2);
    rf_job_view_clear(&v);
    /* pending -> running -> completing -> running (lapse) -> completing -> completed */
    assert_int_equal(tu_count_events(env, id, "job.state_changed"), 5);
    assert_int_equal(tu_count_events(env, id, "job.completed"), 1);
    assert_int_equal(tu_count_events(env, id, "video.completed"), 1);
    free_unit(&u);
    free_unit(&again);
}

static void
test_max_attempts_agent_lost(void **state)
{
    tu_env *env = *state;
    char id[RF_ID_MAX];
    rf_unit u;
    rf_unit_rec rec;
    rf_job_view v;
    size_t requeued = 0, failed = 0;
    int64_t now = T0;

    env->cfg.max_attempts = 2;
    create_one(env, "normal", "Doomed", T0, id);
    for (int i = 0; i < 2; i++) {
        lease_ok(env, "agent-a", now, &u);
        assert_int_equal(u.lease_expires_ms, (uint64_t)(now + env->cfg.lease_ttl_ms));
        now += env->cfg.lease_ttl_ms + 1;
        assert_int_equal(rf_jobs_reap(env->st, &env->cfg, now, &requeued, &failed), RF_OK);
        assert_int_equal(requeued, i == 0 ? 1 : 0);
        assert_int_equal(failed, i == 0 ? 0 : 1);
        free_unit(&u);
    }
    get_job(env, id, now, &v);
    assert_string_equal(v.job.state, "failed");
    assert_string_equal(v.job.error_code, "all_items_failed");
    assert_int_equal(v.items.failed, 1);
    rf_job_view_clear(&v);
    assert_int_equal(rf_store_begin(env->st), RF_OK);
    {
        rf_item_rec *items = NULL;
        size_t n = 0;
        assert_int_equal(rf_store_items_list(env->st, id, NULL, 0, 10, &items, &n), RF_OK);
        assert_int_equal(n, 1);
        assert_string_equal(items[0].error_code, "agent_lost");
        rf_unit_rec *units = NULL;
        size_t nu = 0;
        assert_int_equal(rf_store_units_of_item(env->st, items[0].id, &units, &nu), RF_OK);
        assert_int_equal(nu, 1);
        rec = units[0];
        free(units);
        rf_item_recs_free(items, n);
    }
    rf_store_rollback(env->st);
    assert_string_equal(rec.state, "failed");
    assert_string_equal(rec.error_code, "agent_lost");
    assert_int_equal(rec.attempts, 2);
    assert_int_equal(tu_count_events(env, id, "job.failed"), 1);
}

static void
test_fail_retryable_then_final(void **state)
{
    tu_env *env = *state;
    char id[RF_ID_MAX];
    rf_unit u;
    rf_fail f;
    rf_outcome oc;
    rf_unit_rec rec;
    rf_job_view v;

    env->cfg.max_attempts = 2;
    create_one(env, "normal", "Flaky", T0, id);
    lease_ok(env, "agent-a", T0, &u);
    memset(&f, 0, sizeof(f));
    snprintf(f.agent_id, sizeof(f.agent_id), "agent-a");
    snprintf(f.unit_id, sizeof(f.unit_id), "%s", u.unit_id);
    snprintf(f.lease_id, sizeof(f.lease_id), "%s", u.lease_id);
    snprintf(f.error_code, sizeof(f.error_code), "video_encoding_error");
    snprintf(f.error_message, sizeof(f.error_message), "encoder went away");
    f.retryable = true;
    assert_int_equal(rf_jobs_fail(env->st, &env->cfg, &f, T0 + 1, &oc), RF_OK);
    assert_int_equal(oc.verdict, RF_VERDICT_OK);
    get_unit(env, u.unit_id, &rec);
    assert_string_equal(rec.state, "queued");
    /* the same report again is stale */
    assert_int_equal(rf_jobs_fail(env->st, &env->cfg, &f, T0 + 2, &oc), RF_OK);
    assert_int_equal(oc.verdict, RF_VERDICT_STALE);
    free_unit(&u);

    lease_ok(env, "agent-a", T0 + 3, &u);
    snprintf(f.lease_id, sizeof(f.lease_id), "%s", u.lease_id);
    assert_int_equal(rf_jobs_fail(env->st, &env->cfg, &f, T0 + 4, &oc), RF_OK);
    assert_int_equal(oc.verdict, RF_VERDICT_OK);
    get_unit(env, u.unit_id, &rec);
    assert_string_equal(rec.state, "failed"); /* attempts exhausted */
    assert_string_equal(rec.error_code, "video_encoding_error");
    get_job(env, id, T0 + 4, &v);
    assert_string_equal(v.job.state, "failed");
    rf_job_view_clear(&v);
    free_unit(&u);
}

static void
test_complete_missing_file_fails_unit(void **state)
{
    tu_env *env = *state;
    char id[RF_ID_MAX];
    rf_unit u;
    rf_unit_rec rec;

    create_one(env, "normal", "No file", T0, id);
    lease_ok(env, "agent-a", T0, &u);
    assert_int_equal(complete(env, &u, "agent-a", u.lease_id, T0 + 1), RF_VERDICT_OK);
    get_unit(env, u.unit_id, &rec);
    assert_string_equal(rec.state, "failed");
    assert_string_equal(rec.error_code, "storage_upload_failed");
    free_unit(&u);
}

static void
test_complete_wrong_size_fails_unit(void **state)
{
    tu_env *env = *state;
    char id[RF_ID_MAX];
    rf_unit u;
    rf_unit_rec rec;

    create_one(env, "normal", "Short file", T0, id);
    lease_ok(env, "agent-a", T0, &u);
    tu_write_file(u.output_path, 100); /* the report says 1234 */
    assert_int_equal(complete(env, &u, "agent-a", u.lease_id, T0 + 1), RF_VERDICT_OK);
    get_unit(env, u.unit_id, &rec);
    assert_string_equal(rec.state, "failed");
    assert_string_equal(rec.error_code, "storage_upload_failed");
    free_unit(&u);
}

static void
test_canceled_job_refuses_progress(void **state)
{
    tu_env *env = *state;
    char id[RF_ID_MAX];
    rf_unit u;
    rf_job_rec job;

    create_one(env, "normal", "Canceled", T0, id);
    lease_ok(env, "agent-a", T0, &u);
    assert_int_equal(rf_store_begin(env->st), RF_OK);
    assert_int_equal(rf_store_job_get(env->st, id, &job), RF_OK);
    snprintf(job.state, sizeof(job.state), "canceled");
    assert_int_equal(rf_store_job_update_state(env->st, &job), RF_OK);
    assert_int_equal(rf_store_commit(env->st), RF_OK);
    rf_job_rec_clear(&job);
    assert_int_equal(progress(env, &u, "agent-a", u.lease_id, 5, T0 + 1, NULL),
                     RF_VERDICT_CANCELED);
    free_unit(&u);
}

static void
test_all_rows_invalid_job_fails_at_once(void **state)
{
    tu_env *env = *state;
    char id[RF_ID_MAX];
    rf_job_view v;
    const char *req = "{\"title\":\"Bad\",\"input_source\":{\"type\":\"rows\",\"rows\":["
                      "{\"idea_title\":\"x\"},{\"script_content\":\"y\"}]},"
                      "\"output\":{\"output_bucket\":\"b\"}}";

    tu_create_job(env, req, T0, id);
    get_job(env, id, T0, &v);
    assert_string_equal(v.job.state, "failed");
    assert_string_equal(v.job.error_code, "all_items_failed");
    assert_int_equal(v.items.failed, 2);
    assert_true(v.percent_complete == 100.0);
    rf_job_view_clear(&v);
}

/* A job created before its rows could be read (its sheet answered 429):
 * REQ_3ROWS's rows arrive later through rf_jobs_ingest. */
static void
create_deferred(tu_env *env, int64_t now, char id[RF_ID_MAX], rf_rows *rows)
{
    rf_job_spec spec;
    rf_rows none = {0};
    rf_verr verr;

    memset(&verr, 0, sizeof(verr));
    assert_int_equal(rf_job_request_parse(REQ_3ROWS, strlen(REQ_3ROWS), &env->cfg, &spec, &verr),
                     RF_OK);
    assert_int_equal(rf_source_read(&spec.source, &env->cfg, rows, &verr), RF_OK);
    spec.source.deferred = true;
    assert_int_equal(rf_jobs_create(env->st, &env->cfg, &spec, &none, now, id), RF_OK);
    rf_job_spec_clear(&spec);
}

static void
test_rows_read_later(void **state)
{
    tu_env *env = *state;
    char id[RF_ID_MAX], id2[RF_ID_MAX], id3[RF_ID_MAX];
    rf_action_result res;
    rf_rows rows = {0}, rows2 = {0}, rows3 = {0};
    rf_job_view v;

    /* No rows yet: the job waits in pending instead of ending empty. */
    create_deferred(env, T0, id, &rows);
    get_job(env, id, T0, &v);
    assert_string_equal(v.job.state, "pending");
    assert_string_equal(v.job.ingest, "sheet");
    assert_int_equal(v.items.total, 0);
    rf_job_view_clear(&v);
    assert_int_equal(rf_jobs_ingest(env->st, &env->cfg, id, RF_VLEVEL_MODERATE, &rows, 12, T0 + 5),
                     RF_OK);
    get_job(env, id, T0 + 5, &v);
    assert_string_equal(v.job.state, "pending");
    assert_string_equal(v.job.ingest, "");
    assert_int_equal(v.items.total, 3);
    assert_int_equal(v.items.failed, 1); /* no script: validated as at creation */
    rf_job_view_clear(&v);
    assert_int_equal(tu_count_events(env, id, "job.rows_read"), 1);
    /* read twice: the second is refused and changes nothing */
    assert_int_equal(rf_jobs_ingest(env->st, &env->cfg, id, RF_VLEVEL_MODERATE, &rows, 12, T0 + 6),
                     RF_ECONFLICT);
    get_job(env, id, T0 + 6, &v);
    assert_int_equal(v.items.total, 3);
    rf_job_view_clear(&v);

    /* The sheet cannot be read: the job fails with the reason, and a retry
     * reads it again. */
    create_deferred(env, T0 + 10, id2, &rows2);
    assert_int_equal(rf_jobs_ingest_failed(env->st, id2, "sheet_not_found",
                                           "Google Sheets has no spreadsheet 'x'", T0 + 11),
                     RF_OK);
    get_job(env, id2, T0 + 11, &v);
    assert_string_equal(v.job.state, "failed");
    assert_string_equal(v.job.error_code, "sheet_not_found");
    assert_string_equal(v.job.ingest, "sheet");
    rf_job_view_clear(&v);
    memset(&res, 0, sizeof(res));
    assert_int_equal(
        rf_jobs_action(env->st, &env->cfg, NULL, id2, RF_ACTION_RETRY, "tester", T0 + 12, &res),
        RF_OK);
    assert_string_equal(res.state, "pending");
    assert_int_equal(
        rf_jobs_ingest(env->st, &env->cfg, id2, RF_VLEVEL_MODERATE, &rows2, 3, T0 + 13), RF_OK);
    get_job(env, id2, T0 + 13, &v);
    assert_int_equal(v.items.total, 3);
    rf_job_view_clear(&v);

    /* Canceled while waiting: rows that arrive afterwards are dropped. */
    create_deferred(env, T0 + 20, id3, &rows3);
    memset(&res, 0, sizeof(res));
    assert_int_equal(
        rf_jobs_action(env->st, &env->cfg, NULL, id3, RF_ACTION_CANCEL, "tester", T0 + 21, &res),
        RF_OK);
    assert_string_equal(res.state, "canceled");
    assert_int_equal(
        rf_jobs_ingest(env->st, &env->cfg, id3, RF_VLEVEL_MODERATE, &rows3, 3, T0 + 22),
        RF_ECONFLICT);
    assert_int_equal(rf_jobs_ingest_failed(env->st, id3, "sheet_not_found", "gone", T0 + 22),
                     RF_ECONFLICT);
    get_job(env, id3, T0 + 22, &v);
    assert_string_equal(v.job.state, "canceled");
    assert_int_equal(v.items.total, 0);
    rf_job_view_clear(&v);
    rf_rows_free(&rows);
    rf_rows_free(&rows2);
    rf_rows_free(&rows3);
}

static bool
try_lease(tu_env *env, const char *agent, int64_t now, rf_unit *u)
{
    bool leased = false;
    rf_outcome oc;

    assert_int_equal(rf_jobs_lease(env->st, &env->cfg, agent, now, u, &leased, &oc), RF_OK);
    return leased;
}

static unsigned
held_back(tu_env *env, const char *job_id)
{
    rf_job_view v;
    unsigned reasons;

    get_job(env, job_id, T0, &v);
    reasons = rf_jobs_held_back(env->st, &env->cfg, &v.job);
    rf_job_view_clear(&v);
    return reasons;
}

static void
test_tenant_quota(void **state)
{
    tu_env *env = *state;
    char mine[RF_ID_MAX], theirs[RF_ID_MAX];
    rf_job_owner other = {"other-tenant", "someone"};
    rf_job_spec spec;
    rf_rows rows = {0};
    rf_verr verr;
    rf_unit u1, u2, u3, u4;

    env->cfg.tenant_max_units_in_flight = 1;
    tu_create_job(env, REQ_3ROWS, T0, mine); /* two valid rows: two units */
    assert_int_equal(held_back(env, mine), 0);
    assert_true(try_lease(env, "agent-a", T0 + 1, &u1));
    assert_string_equal(u1.job_id, mine);
    /* the tenant runs all it may: its next unit waits, and says why */
    assert_false(try_lease(env, "agent-b", T0 + 2, &u2));
    assert_int_equal(held_back(env, mine), RF_HOLD_TENANT_QUOTA);

    /* another tenant is not held back by this one's quota */
    memset(&verr, 0, sizeof(verr));
    assert_int_equal(rf_job_request_parse(REQ_3ROWS, strlen(REQ_3ROWS), &env->cfg, &spec, &verr),
                     RF_OK);
    assert_int_equal(rf_source_read(&spec.source, &env->cfg, &rows, &verr), RF_OK);
    assert_int_equal(
        rf_jobs_create_as(env->st, &env->cfg, &other, &spec, &rows, NULL, T0 + 3, theirs), RF_OK);
    rf_rows_free(&rows);
    rf_job_spec_clear(&spec);
    assert_true(try_lease(env, "agent-b", T0 + 4, &u2));
    assert_string_equal(u2.job_id, theirs);

    /* a unit that ends frees the tenant's place */
    assert_int_equal(complete(env, &u1, "agent-a", u1.lease_id, T0 + 5), RF_VERDICT_OK);
    assert_true(try_lease(env, "agent-a", T0 + 6, &u3));
    assert_string_equal(u3.job_id, mine);
    assert_int_equal(held_back(env, mine), 0); /* nothing of it is queued any more */

    /* no limit: the other tenant's second unit goes at once */
    env->cfg.tenant_max_units_in_flight = 0;
    assert_true(try_lease(env, "agent-b", T0 + 7, &u4));
    assert_string_equal(u4.job_id, theirs);
    free_unit(&u1);
    free_unit(&u2);
    free_unit(&u3);
    free_unit(&u4);
}

static void
test_empty_rows_skipped(void **state)
{
    tu_env *env = *state;
    char id[RF_ID_MAX], id2[RF_ID_MAX];
    rf_job_view v;
    const char *req = "{\"title\":\"Gaps\",\"input_source\":{\"type\":\"rows\",\"rows\":["
                      "{\"idea_title\":\"ok\",\"script_content\":\"y\"},{},"
                      "{\"idea_title\":\"  \",\"tone\":\"\"}]},"
                      "\"output\":{\"output_bucket\":\"b\"}}";
    const char *all_empty = "{\"title\":\"Nothing\",\"input_source\":{\"type\":\"rows\","
                            "\"rows\":[{},{}]},\"output\":{\"output_bucket\":\"b\"}}";

    tu_create_job(env, req, T0, id);
    get_job(env, id, T0, &v);
    assert_string_equal(v.job.state, "pending");
    assert_int_equal(v.items.total, 3);
    assert_int_equal(v.items.skipped, 2);
    assert_int_equal(v.items.pending, 1);
    rf_job_view_clear(&v);

    tu_create_job(env, all_empty, T0, id2);
    get_job(env, id2, T0, &v);
    assert_string_equal(v.job.state, "completed"); /* all skipped */
    assert_int_equal(v.items.skipped, 2);
    rf_job_view_clear(&v);
}

static void
test_platform_mapping(void **state)
{
    tu_env *env = *state;
    char id[RF_ID_MAX];
    rf_video_view *vids = NULL;
    size_t n = 0;
    bool more;
    const char *req =
        "{\"title\":\"Platforms\",\"input_source\":{\"type\":\"rows\",\"rows\":["
        "{\"idea_title\":\"a\",\"script_content\":\"s\","
        "\"platform_preferences\":\"YouTube, tiktok;reels instagram\"},"
        "{\"idea_title\":\"b\",\"script_content\":\"s\",\"platform_preferences\":\"myspace\"},"
        "{\"idea_title\":\"c\",\"script_content\":\"s\"}]},"
        "\"output\":{\"output_bucket\":\"b\",\"resolution\":\"1080p\"}}";

    tu_create_job(env, req, T0, id);
    assert_int_equal(rf_jobs_videos(env->st, id, NULL, 0, 10, &vids, &n, &more), RF_OK);
    assert_int_equal(n, 3);
    /* units are listed by rendition name */
    assert_int_equal(vids[0].n_units, 3);
    assert_string_equal(vids[0].units[0].rendition, "instagram");
    assert_int_equal(vids[0].units[0].width, 1080);
    assert_int_equal(vids[0].units[0].height, 1080);
    assert_string_equal(vids[0].units[1].rendition, "tiktok");
    assert_int_equal(vids[0].units[1].width, 1080);
    assert_int_equal(vids[0].units[1].height, 1920);
    assert_string_equal(vids[0].units[2].rendition, "youtube");
    assert_int_equal(vids[0].units[2].width, 1920);
    assert_int_equal(vids[0].units[2].height, 1080);
    assert_int_equal(vids[0].units[2].frames_total, 300 * 30); /* default 300 s */
    assert_string_equal(vids[1].item.state, "failed");
    assert_non_null(strstr(vids[1].item.error_message, "row 2: "));
    assert_non_null(strstr(vids[1].item.error_message, "myspace"));
    assert_int_equal(vids[2].n_units, 1);
    assert_string_equal(vids[2].units[0].rendition, "youtube");
    rf_video_views_free(vids, n);
}

static void
test_row_validation_messages(void **state)
{
    tu_env *env = *state;
    char id[RF_ID_MAX];
    rf_video_view *vids = NULL;
    size_t n = 0;
    bool more;
    const char *req =
        "{\"title\":\"Checks\",\"input_source\":{\"type\":\"rows\",\"rows\":["
        "{\"idea_title\":\"a\",\"script_content\":\"s\",\"duration_seconds\":\"abc\"},"
        "{\"idea_title\":\"b\",\"script_content\":\"s\",\"duration_seconds\":3601},"
        "{\"idea_title\":\"c\",\"script_content\":\"s\",\"duration_seconds\":2.5},"
        "{\"idea_title\":\"d\",\"script_content\":\"s\",\"voice_preference\":\"robot\"},"
        "{\"idea_title\":\"e\",\"script_content\":\"s\",\"style_override\":\"grunge\"},"
        "{\"description\":\"only a description\"},"
        "{\"idea_title\":\"g\",\"script_content\":\"s\",\"duration_seconds\":\"3600\","
        "\"priority\":\"HIGH\"}]},"
        "\"output\":{\"output_bucket\":\"b\"}}";

    tu_create_job(env, req, T0, id);
    assert_int_equal(rf_jobs_videos(env->st, id, NULL, 0, 10, &vids, &n, &more), RF_OK);
    assert_int_equal(n, 7);
    assert_non_null(strstr(vids[0].item.error_message, "row 1: duration_seconds"));
    assert_non_null(strstr(vids[1].item.error_message, "row 2: duration_seconds"));
    assert_non_null(strstr(vids[2].item.error_message, "row 3: duration_seconds"));
    assert_non_null(strstr(vids[3].item.error_message, "row 4: voice_preference"));
    assert_non_null(strstr(vids[4].item.error_message, "row 5: style_override"));
    assert_string_equal(vids[5].item.error_message,
                        "row 6: idea_title is required; script_content is required");
    assert_string_equal(vids[6].item.state, "pending");
    assert_int_equal(vids[6].item.priority, 2);
    assert_int_equal(vids[6].units[0].duration_ms, 3600000);
    rf_video_views_free(vids, n);
}

static void
test_resolution_mapping(void **state)
{
    static const struct {
        const char *res;
        rf_shape shape;
        uint32_t w, h;
    } cases[] = {
        {"720p", RF_SHAPE_LANDSCAPE, 1280, 720},  {"720p", RF_SHAPE_PORTRAIT, 720, 1280},
        {"720p", RF_SHAPE_SQUARE, 720, 720},      {"1080p", RF_SHAPE_LANDSCAPE, 1920, 1080},
        {"1080p", RF_SHAPE_PORTRAIT, 1080, 1920}, {"1080p", RF_SHAPE_SQUARE, 1080, 1080},
        {"4k", RF_SHAPE_LANDSCAPE, 3840, 2160},   {"4k", RF_SHAPE_PORTRAIT, 2160, 3840},
        {"4k", RF_SHAPE_SQUARE, 2160, 2160},
    };
    rf_shape s;
    uint32_t w, h;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_true(rf_resolution_size(cases[i].res, cases[i].shape, &w, &h));
        assert_int_equal(w, cases[i].w);
        assert_int_equal(h, cases[i].h);
    }
    assert_false(rf_resolution_size("8k", RF_SHAPE_SQUARE, &w, &h));
    assert_true(rf_platform_shape("youtube_shorts", &s));
    assert_int_equal(s, RF_SHAPE_PORTRAIT);
    assert_true(rf_platform_shape("instagram_reels", &s));
    assert_int_equal(s, RF_SHAPE_PORTRAIT);
    assert_true(rf_platform_shape("instagram", &s));
    assert_int_equal(s, RF_SHAPE_SQUARE);
    assert_false(rf_platform_shape("vine", &s));
}

static void
test_slugify(void **state)
{
    char out[41];

    (void)state;
    rf_slugify("How to Improve Productivity!", out, sizeof(out));
    assert_string_equal(out, "how-to-improve-productivity");
    rf_slugify("Café owners’ guide — 3 tips", out, sizeof(out));
    assert_string_equal(out, "caf-owners-guide-3-tips");
    rf_slugify("東京 🎉", out, sizeof(out));
    assert_string_equal(out, "video");
    rf_slugify("", out, sizeof(out));
    assert_string_equal(out, "video");
    rf_slugify("a very long title that goes on and on well past forty characters", out,
               sizeof(out));
    assert_true(strlen(out) <= 40);
    assert_string_equal(out, "a-very-long-title-that-goes-on-and-on-we");
    rf_slugify("ends with separator at forty chars exactly-- more", out, sizeof(out));
    assert_true(out[strlen(out) - 1] != '-');
}

static void
test_percent_weighted_by_frames(void **state)
{
    tu_env *env = *state;
    char id[RF_ID_MAX];
    rf_unit u1, u2;
    rf_job_view v;

    tu_create_job(env, REQ_3ROWS, T0, id); /* units of 60 and 90 frames */
    lease_ok(env, "agent-a", T0, &u1);
    lease_ok(env, "agent-a", T0, &u2);
    assert_int_equal(progress(env, &u1, "agent-a", u1.lease_id, 30, T0 + 10, NULL), RF_VERDICT_OK);
    assert_int_equal(progress(env, &u2, "agent-a", u2.lease_id, 15, T0 + 10, NULL), RF_VERDICT_OK);
    get_job(env, id, T0 + 1000, &v);
    /* (30 + 15) / (60 + 90) = 30 % */
    assert_true(v.percent_complete > 29.95 && v.percent_complete < 30.05);
    assert_int_equal(v.processing_time_ms, 1000);
    assert_true(v.eta_ms > 2000 && v.eta_ms < 2500); /* 1000 * 70 / 30 */
    rf_job_view_clear(&v);
    free_unit(&u1);
    free_unit(&u2);
}

static void
test_transition_table(void **state)
{
    (void)state;
    assert_true(rf_job_transition_allowed("pending", "running"));
    assert_true(rf_job_transition_allowed("running", "completed"));
    assert_true(rf_job_transition_allowed("running", "pausing"));
    assert_true(rf_job_transition_allowed("paused", "running"));
    assert_true(rf_job_transition_allowed("failed", "pending"));
    assert_false(rf_job_transition_allowed("completed", "running"));
    assert_false(rf_job_transition_allowed("canceled", "pending"));
    assert_false(rf_job_transition_allowed("pending", "paused"));
    assert_false(rf_job_transition_allowed("bogus", "running"));
    assert_true(rf_job_state_terminal("canceled"));
    assert_false(rf_job_state_terminal("pausing"));
    assert_true(rf_job_state_valid("completing"));
    assert_false(rf_job_state_valid("done"));
}

/* A unit goes only to an agent that announced an encoder for its codecs; an
 * agent that announced none of a kind is not restricted for that kind. */
static void
test_dispatch_matches_encoders(void **state)
{
    tu_env *env = *state;
    char id[RF_ID_MAX];
    rf_hello h;
    rf_unit u;
    rf_outcome oc;
    bool leased = true;
    const char *req =
        "{\"title\":\"HEVC\",\"input_source\":{\"type\":\"rows\",\"rows\":["
        "{\"idea_title\":\"One\",\"script_content\":\"Hi.\",\"duration_seconds\":\"4\"}]},"
        "\"output\":{\"video_codec\":\"h265\",\"output_bucket\":\"bk\"}}";

    memset(&h, 0, sizeof(h));
    snprintf(h.hostname, sizeof(h.hostname), "host");
    snprintf(h.compositor, sizeof(h.compositor), "cpu");
    h.slots = 1;
    h.n_encoders = 2;
    snprintf(h.agent_id, sizeof(h.agent_id), "only-264");
    snprintf(h.encoders[0], sizeof(h.encoders[0]), "libx264");
    snprintf(h.encoders[1], sizeof(h.encoders[1]), "aac");
    assert_int_equal(rf_jobs_agent_hello(env->st, &h, T0), RF_OK);
    snprintf(h.agent_id, sizeof(h.agent_id), "has-265");
    snprintf(h.encoders[0], sizeof(h.encoders[0]), "libx265");
    assert_int_equal(rf_jobs_agent_hello(env->st, &h, T0), RF_OK);

    tu_create_job(env, req, T0, id);
    assert_int_equal(rf_jobs_lease(env->st, &env->cfg, "only-264", T0 + 1, &u, &leased, &oc),
                     RF_OK);
    assert_int_equal(oc.verdict, RF_VERDICT_OK);
    assert_false(leased); /* nothing this agent can encode: no work */
    lease_ok(env, "has-265", T0 + 2, &u);
    assert_string_equal(u.video_codec, "h265");
    free_unit(&u);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_migrations_fresh_and_reopen, setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_create_with_invalid_row, setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_rows_read_later, setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_tenant_quota, setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_dispatch_priority_order, setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_dispatch_matches_encoders, setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_row_order_within_job, setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_unknown_agent_refused, setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_unit_fields_and_overrides, setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_lease_expiry_requeue_and_fencing, setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_max_attempts_agent_lost, setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_fail_retryable_then_final, setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_complete_missing_file_fails_unit, setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_complete_wrong_size_fails_unit, setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_canceled_job_refuses_progress, setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_all_rows_invalid_job_fails_at_once, setup,
                                        tu_teardown),
        cmocka_unit_test_setup_teardown(test_empty_rows_skipped, setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_platform_mapping, setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_row_validation_messages, setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_percent_weighted_by_frames, setup, tu_teardown),
        cmocka_unit_test(test_resolution_mapping),
        cmocka_unit_test(test_slugify),
        cmocka_unit_test(test_transition_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
