/* The user guide's job state table, cell by cell: every (state, action)
 * pair on a real job in that state, allowed ones moving the job as the table
 * says and refused ones changing nothing; then the transitional states
 * finishing (pausing -> paused, canceling -> canceled, completing), retry of
 * failed items only, and processing deadlines. Fake agents call the domain
 * directly, with the clock passed in. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobs.h"
#include "rf_util.h"
#include "store.h"
#include "testutil.h"

#define T0 1700000000000LL

static const char *const STATES[] = {"pending",   "running",   "pausing",  "paused", "completing",
                                     "completed", "canceling", "canceled", "failed"};
#define N_STATES (sizeof(STATES) / sizeof(STATES[0]))

/* The table of the user guide ("Actions Available"). */
static const struct {
    const char *state;
    bool pause, resume, cancel, retry;
} TABLE[] = {
    {"pending", false, false, true, false},     {"running", true, false, true, false},
    {"pausing", false, false, false, false},    {"paused", false, true, true, false},
    {"completing", false, false, false, false}, {"completed", false, false, false, false},
    {"canceling", false, false, false, false},  {"canceled", false, false, false, false},
    {"failed", false, false, true, true},
};

/* Where an allowed action takes a job made by make_job(). */
static const char *
expected_after(const char *state, rf_job_action a)
{
    switch (a) {
    case RF_ACTION_PAUSE:
        return "pausing"; /* running with a unit in flight */
    case RF_ACTION_RESUME:
        return "running";
    case RF_ACTION_CANCEL:
        return strcmp(state, "running") == 0 ? "canceling" : "canceled";
    case RF_ACTION_RETRY:
        return "pending";
    }
    return "?";
}

static bool
table_allows(const char *state, rf_job_action a)
{
    for (size_t i = 0; i < sizeof(TABLE) / sizeof(TABLE[0]); i++) {
        if (strcmp(TABLE[i].state, state) == 0) {
            switch (a) {
            case RF_ACTION_PAUSE:
                return TABLE[i].pause;
            case RF_ACTION_RESUME:
                return TABLE[i].resume;
            case RF_ACTION_CANCEL:
                return TABLE[i].cancel;
            case RF_ACTION_RETRY:
                return TABLE[i].retry;
            }
        }
    }
    fail_msg("state %s is not in the table", state);
    return false;
}

static const char *const REQ_ROWS =
    "{\"title\":\"States\",\"input_source\":{\"type\":\"rows\",\"rows\":[%s]},"
    "\"output\":{\"output_bucket\":\"st\",\"resolution\":\"720p\"}%s}";
static const char *const ROW =
    "{\"idea_title\":\"Row %d\",\"script_content\":\"Words.\",\"duration_seconds\":2}";

static void
create(tu_env *env, int rows, const char *extra, int64_t now, char id[RF_ID_MAX])
{
    char list[1024] = "", req[2048];

    for (int i = 0; i < rows; i++) {
        size_t used = strlen(list);
        snprintf(list + used, sizeof(list) - used, "%s", i > 0 ? "," : "");
        used = strlen(list);
        snprintf(list + used, sizeof(list) - used, ROW, i + 1);
    }
    snprintf(req, sizeof(req), REQ_ROWS, list, extra != NULL ? extra : "");
    tu_create_job(env, req, now, id);
}

static void
hello(tu_env *env, const char *agent)
{
    rf_hello h;

    memset(&h, 0, sizeof(h));
    snprintf(h.agent_id, sizeof(h.agent_id), "%s", agent);
    snprintf(h.hostname, sizeof(h.hostname), "host");
    snprintf(h.compositor, sizeof(h.compositor), "cpu");
    h.slots = 1;
    assert_int_equal(rf_jobs_agent_hello(env->st, &h, T0), RF_OK);
}

static void
lease(tu_env *env, int64_t now, rf_unit *u)
{
    bool leased = false;
    rf_outcome oc;

    assert_int_equal(rf_jobs_lease(env->st, &env->cfg, "agent-a", now, u, &leased, &oc), RF_OK);
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
complete(tu_env *env, const rf_unit *u, int64_t now)
{
    rf_complete c;
    rf_outcome oc;

    memset(&c, 0, sizeof(c));
    snprintf(c.agent_id, sizeof(c.agent_id), "agent-a");
    snprintf(c.unit_id, sizeof(c.unit_id), "%s", u->unit_id);
    snprintf(c.lease_id, sizeof(c.lease_id), "%s", u->lease_id);
    snprintf(c.output_path, sizeof(c.output_path), "%s", u->output_path);
    tu_write_file(u->output_path, 100);
    c.size_bytes = 100;
    memset(c.sha256, 'b', 64);
    c.duration_ms = u->duration_ms;
    snprintf(c.encoder, sizeof(c.encoder), "libx264");
    c.render_ms = 500;
    assert_int_equal(rf_jobs_complete(env->st, &env->cfg, &c, now, &oc), RF_OK);
    return oc.verdict;
}

static rf_verdict
fail_unit(tu_env *env, const rf_unit *u, bool retryable, int64_t now)
{
    rf_fail f;
    rf_outcome oc;

    memset(&f, 0, sizeof(f));
    snprintf(f.agent_id, sizeof(f.agent_id), "agent-a");
    snprintf(f.unit_id, sizeof(f.unit_id), "%s", u->unit_id);
    snprintf(f.lease_id, sizeof(f.lease_id), "%s", u->lease_id);
    snprintf(f.error_code, sizeof(f.error_code), "video_encoding_error");
    snprintf(f.error_message, sizeof(f.error_message), "the encoder gave up");
    f.retryable = retryable;
    assert_int_equal(rf_jobs_fail(env->st, &env->cfg, &f, now, &oc), RF_OK);
    return oc.verdict;
}

static rf_verdict
heartbeat(tu_env *env, const rf_unit *u, uint32_t frames, int64_t now)
{
    rf_progress p;
    rf_outcome oc;
    uint64_t e = 0;

    memset(&p, 0, sizeof(p));
    snprintf(p.agent_id, sizeof(p.agent_id), "agent-a");
    snprintf(p.unit_id, sizeof(p.unit_id), "%s", u->unit_id);
    snprintf(p.lease_id, sizeof(p.lease_id), "%s", u->lease_id);
    p.frames_done = frames;
    assert_int_equal(rf_jobs_progress(env->st, &env->cfg, &p, now, &e, &oc), RF_OK);
    return oc.verdict;
}

static void
job_state(tu_env *env, const char *id, char out[RF_NAME_MAX])
{
    rf_job_view v;

    assert_int_equal(rf_jobs_get(env->st, id, T0 + 100000, &v), RF_OK);
    snprintf(out, RF_NAME_MAX, "%s", v.job.state);
    rf_job_view_clear(&v);
}

static void
expect_state(tu_env *env, const char *id, const char *want)
{
    char got[RF_NAME_MAX];

    job_state(env, id, got);
    if (strcmp(got, want) != 0) {
        fail_msg("job %s is %s, expected %s", id, got, want);
    }
}

static rf_err
act(tu_env *env, const char *id, rf_job_action a, int64_t now, rf_action_result *res)
{
    return rf_jobs_action(env->st, &env->cfg, "default", id, a, "tester", now, res);
}

/* Makes a job in state (see the table above for how). */
static void
make_job(tu_env *env, const char *state, char id[RF_ID_MAX])
{
    rf_action_result res;
    rf_unit u;

    if (strcmp(state, "pending") == 0) {
        create(env, 2, NULL, T0, id);
    } else if (strcmp(state, "running") == 0 || strcmp(state, "pausing") == 0 ||
               strcmp(state, "paused") == 0 || strcmp(state, "canceling") == 0) {
        create(env, 2, NULL, T0, id);
        lease(env, T0 + 1, &u);
        if (strcmp(state, "pausing") == 0 || strcmp(state, "paused") == 0) {
            assert_int_equal(act(env, id, RF_ACTION_PAUSE, T0 + 2, &res), RF_OK);
        }
        if (strcmp(state, "paused") == 0) {
            assert_int_equal(complete(env, &u, T0 + 3), RF_VERDICT_OK);
        }
        if (strcmp(state, "canceling") == 0) {
            assert_int_equal(act(env, id, RF_ACTION_CANCEL, T0 + 2, &res), RF_OK);
        }
        free_unit(&u);
    } else if (strcmp(state, "completing") == 0 || strcmp(state, "completed") == 0 ||
               strcmp(state, "failed") == 0) {
        create(env, 1, NULL, T0, id);
        lease(env, T0 + 1, &u);
        if (strcmp(state, "completed") == 0) {
            assert_int_equal(complete(env, &u, T0 + 2), RF_VERDICT_OK);
        } else if (strcmp(state, "failed") == 0) {
            assert_int_equal(fail_unit(env, &u, false, T0 + 2), RF_VERDICT_OK);
        }
        free_unit(&u);
    } else if (strcmp(state, "canceled") == 0) {
        create(env, 1, NULL, T0, id);
        assert_int_equal(act(env, id, RF_ACTION_CANCEL, T0 + 1, &res), RF_OK);
    } else {
        fail_msg("no recipe for %s", state);
    }
    expect_state(env, id, state);
}

static void
test_table_function(void **state)
{
    (void)state;
    for (size_t s = 0; s < N_STATES; s++) {
        for (int a = 0; a < 4; a++) {
            assert_int_equal(rf_job_action_allowed(STATES[s], (rf_job_action)a),
                             table_allows(STATES[s], (rf_job_action)a));
        }
    }
    assert_false(rf_job_action_allowed("bogus", RF_ACTION_CANCEL));
    assert_string_equal(rf_job_actions_text("running"), "pause, cancel");
    assert_string_equal(rf_job_actions_text("completing"), "none");
}

/* Every cell on a real job: 9 states x 4 actions. */
static void
test_every_cell(void **state)
{
    (void)state;
    for (size_t s = 0; s < N_STATES; s++) {
        for (int a = 0; a < 4; a++) {
            tu_env env;
            char id[RF_ID_MAX];
            rf_action_result res;
            rf_err rv;

            assert_int_equal(tu_env_open(&env), 0);
            hello(&env, "agent-a");
            make_job(&env, STATES[s], id);
            rv = act(&env, id, (rf_job_action)a, T0 + 50, &res);
            if (table_allows(STATES[s], (rf_job_action)a)) {
                if (rv != RF_OK) {
                    fail_msg("%s in %s refused: %s", rf_job_action_name((rf_job_action)a),
                             STATES[s], res.message);
                }
                assert_string_equal(res.prior_state, STATES[s]);
                assert_string_equal(res.state, expected_after(STATES[s], (rf_job_action)a));
                expect_state(&env, id, res.state);
                assert_true(tu_count_events(&env, id, "job.state_changed") >= 1);
            } else {
                if (rv != RF_ECONFLICT) {
                    fail_msg("%s in %s was not refused (rv %d)",
                             rf_job_action_name((rf_job_action)a), STATES[s], rv);
                }
                assert_string_equal(res.code, "invalid_state");
                assert_non_null(strstr(res.message, STATES[s]));
                expect_state(&env, id, STATES[s]); /* refusals change nothing */
            }
            tu_env_close(&env);
        }
    }
}

static void
test_unknown_and_foreign_jobs(void **state)
{
    tu_env env;
    char id[RF_ID_MAX];
    rf_action_result res;

    (void)state;
    assert_int_equal(tu_env_open(&env), 0);
    create(&env, 1, NULL, T0, id);
    assert_int_equal(
        rf_jobs_action(env.st, &env.cfg, "default", "job_nope", RF_ACTION_CANCEL, "t", T0, &res),
        RF_ENOTFOUND);
    /* another tenant's job does not exist for this one */
    assert_int_equal(
        rf_jobs_action(env.st, &env.cfg, "intruder", id, RF_ACTION_CANCEL, "t", T0, &res),
        RF_ENOTFOUND);
    expect_state(&env, id, "pending");
    tu_env_close(&env);
}

static int
setup(void **state)
{
    tu_env *env;

    if (tu_setup(state) != 0) {
        return -1;
    }
    env = *state;
    hello(env, "agent-a");
    return 0;
}

static void
test_pause_lets_in_flight_finish(void **state)
{
    tu_env *env = *state;
    char id[RF_ID_MAX];
    rf_action_result res;
    rf_unit u, none;
    bool leased = true;
    rf_outcome oc;

    create(env, 2, NULL, T0, id);
    lease(env, T0 + 1, &u);
    assert_int_equal(act(env, id, RF_ACTION_PAUSE, T0 + 2, &res), RF_OK);
    assert_string_equal(res.state, "pausing");
    /* no new lease while pausing; the unit in flight keeps its lease */
    assert_int_equal(rf_jobs_lease(env->st, &env->cfg, "agent-a", T0 + 3, &none, &leased, &oc),
                     RF_OK);
    assert_false(leased);
    assert_int_equal(heartbeat(env, &u, 10, T0 + 4), RF_VERDICT_OK);
    assert_int_equal(complete(env, &u, T0 + 5), RF_VERDICT_OK);
    expect_state(env, id, "paused");
    assert_int_equal(rf_jobs_lease(env->st, &env->cfg, "agent-a", T0 + 6, &none, &leased, &oc),
                     RF_OK);
    assert_false(leased);
    assert_int_equal(act(env, id, RF_ACTION_RESUME, T0 + 7, &res), RF_OK);
    /* resumed: its last unit goes out and it is completing */
    lease(env, T0 + 8, &none);
    expect_state(env, id, "completing");
    assert_int_equal(complete(env, &none, T0 + 9), RF_VERDICT_OK);
    expect_state(env, id, "completed");
    free_unit(&u);
    free_unit(&none);
}

static void
test_pausing_unit_lapse_gives_paused(void **state)
{
    tu_env *env = *state;
    char id[RF_ID_MAX];
    rf_action_result res;
    rf_unit u;
    rf_job_view v;
    size_t requeued = 0;

    create(env, 2, NULL, T0, id);
    lease(env, T0 + 1, &u);
    assert_int_equal(act(env, id, RF_ACTION_PAUSE, T0 + 2, &res), RF_OK);
    assert_int_equal(
        rf_jobs_reap(env->st, &env->cfg, T0 + 1 + env->cfg.lease_ttl_ms + 1, &requeued, NULL),
        RF_OK);
    assert_int_equal(requeued, 1);
    expect_state(env, id, "paused");
    assert_int_equal(rf_jobs_get(env->st, id, T0 + 100, &v), RF_OK);
    assert_int_equal(v.eta_ms, -1); /* no ETA while paused */
    rf_job_view_clear(&v);
    free_unit(&u);
}

static void
test_cancel_tells_agent_to_stop(void **state)
{
    tu_env *env = *state;
    char id[RF_ID_MAX];
    rf_action_result res;
    rf_unit u;
    rf_unit_rec rec;
    rf_job_view v;

    create(env, 3, NULL, T0, id);
    lease(env, T0 + 1, &u);
    assert_int_equal(act(env, id, RF_ACTION_CANCEL, T0 + 2, &res), RF_OK);
    assert_string_equal(res.state, "canceling");
    /* queued units were canceled at once, their items skipped */
    assert_int_equal(rf_jobs_get(env->st, id, T0 + 3, &v), RF_OK);
    assert_int_equal(v.items.skipped, 2);
    assert_int_equal(v.items.processing, 1);
    rf_job_view_clear(&v);
    /* the agent's next heartbeat is refused "canceled"; the unit is revoked */
    assert_int_equal(heartbeat(env, &u, 5, T0 + 4), RF_VERDICT_CANCELED);
    assert_int_equal(rf_store_begin(env->st), RF_OK);
    assert_int_equal(rf_store_unit_get(env->st, u.unit_id, &rec), RF_OK);
    rf_store_rollback(env->st);
    assert_string_equal(rec.state, "canceled");
    expect_state(env, id, "canceled");
    assert_int_equal(rf_jobs_get(env->st, id, T0 + 5, &v), RF_OK);
    assert_int_equal(v.items.skipped, 3);
    assert_int_equal(v.items.pending + v.items.processing, 0);
    rf_job_view_clear(&v);
    /* its later reports are refused too */
    assert_int_equal(heartbeat(env, &u, 6, T0 + 6), RF_VERDICT_CANCELED);
    assert_int_equal(tu_count_events(env, id, "job.state_changed"), 3);
    free_unit(&u);
}

static void
test_canceling_keeps_finished_work(void **state)
{
    tu_env *env = *state;
    char id[RF_ID_MAX];
    rf_action_result res;
    rf_unit u;
    rf_job_view v;

    create(env, 2, NULL, T0, id);
    lease(env, T0 + 1, &u);
    assert_int_equal(act(env, id, RF_ACTION_CANCEL, T0 + 2, &res), RF_OK);
    /* the unit finished before its next heartbeat: kept */
    assert_int_equal(complete(env, &u, T0 + 3), RF_VERDICT_OK);
    expect_state(env, id, "canceled");
    assert_int_equal(rf_jobs_get(env->st, id, T0 + 4, &v), RF_OK);
    assert_int_equal(v.items.completed, 1);
    assert_int_equal(v.items.skipped, 1);
    rf_job_view_clear(&v);
    free_unit(&u);
}

static void
test_canceling_retryable_failure_not_requeued(void **state)
{
    tu_env *env = *state;
    char id[RF_ID_MAX];
    rf_action_result res;
    rf_unit u;

    create(env, 2, NULL, T0, id);
    lease(env, T0 + 1, &u);
    assert_int_equal(act(env, id, RF_ACTION_CANCEL, T0 + 2, &res), RF_OK);
    assert_int_equal(fail_unit(env, &u, true, T0 + 3), RF_VERDICT_OK);
    expect_state(env, id, "canceled");
    free_unit(&u);
}

static void
test_canceling_lapse_gives_canceled(void **state)
{
    tu_env *env = *state;
    char id[RF_ID_MAX];
    rf_action_result res;
    rf_unit u;
    size_t requeued = 9;

    create(env, 2, NULL, T0, id);
    lease(env, T0 + 1, &u);
    assert_int_equal(act(env, id, RF_ACTION_CANCEL, T0 + 2, &res), RF_OK);
    /* the agent died: its lease lapses and the job moves on */
    assert_int_equal(
        rf_jobs_reap(env->st, &env->cfg, T0 + 1 + env->cfg.lease_ttl_ms + 1, &requeued, NULL),
        RF_OK);
    assert_int_equal(requeued, 0);
    expect_state(env, id, "canceled");
    free_unit(&u);
}

static void
test_retry_requeues_failed_items_only(void **state)
{
    tu_env *env = *state;
    const char *req =
        "{\"title\":\"Retry\",\"input_source\":{\"type\":\"rows\",\"rows\":["
        "{\"idea_title\":\"Renders\",\"script_content\":\"x\",\"duration_seconds\":2},"
        "{\"idea_title\":\"No script\"}]},"
        "\"output\":{\"output_bucket\":\"st\",\"resolution\":\"720p\"}}";
    char id[RF_ID_MAX];
    rf_action_result res;
    rf_unit u, again;
    rf_unit_rec rec;
    rf_job_view v;

    tu_create_job(env, req, T0, id);
    lease(env, T0 + 1, &u);
    assert_int_equal(fail_unit(env, &u, false, T0 + 2), RF_VERDICT_OK);
    expect_state(env, id, "failed");
    assert_int_equal(act(env, id, RF_ACTION_RETRY, T0 + 3, &res), RF_OK);
    assert_string_equal(res.state, "pending");
    assert_int_equal(rf_jobs_get(env->st, id, T0 + 4, &v), RF_OK);
    assert_int_equal(v.items.pending, 1);
    assert_int_equal(v.items.failed, 1); /* the validation failure stays */
    assert_int_equal(v.job.finished_at, 0);
    assert_string_equal(v.job.error_code, "");
    assert_true(v.percent_complete < 100.0);
    rf_job_view_clear(&v);
    assert_int_equal(rf_store_begin(env->st), RF_OK);
    assert_int_equal(rf_store_unit_get(env->st, u.unit_id, &rec), RF_OK);
    rf_store_rollback(env->st);
    assert_string_equal(rec.state, "queued");
    assert_int_equal(rec.attempts, 0);
    assert_int_equal(tu_count_events(env, id, "item.retried"), 1); /* the error is kept there */
    /* the old lease is dead; a new one renders it */
    assert_int_equal(heartbeat(env, &u, 1, T0 + 5), RF_VERDICT_STALE);
    lease(env, T0 + 6, &again);
    assert_string_equal(again.unit_id, u.unit_id);
    assert_int_equal(complete(env, &again, T0 + 7), RF_VERDICT_OK);
    expect_state(env, id, "completed");
    free_unit(&u);
    free_unit(&again);
}

static void
test_retry_with_nothing_to_retry(void **state)
{
    tu_env *env = *state;
    const char *req = "{\"title\":\"Bad\",\"input_source\":{\"type\":\"rows\",\"rows\":["
                      "{\"idea_title\":\"x\"}]},\"output\":{\"output_bucket\":\"b\"}}";
    char id[RF_ID_MAX];
    rf_action_result res;

    tu_create_job(env, req, T0, id);
    expect_state(env, id, "failed");
    assert_int_equal(act(env, id, RF_ACTION_RETRY, T0 + 1, &res), RF_ECONFLICT);
    assert_string_equal(res.code, "nothing_to_retry");
    expect_state(env, id, "failed");
}

static void
test_deadline(void **state)
{
    tu_env *env = *state;
    char id[RF_ID_MAX], other[RF_ID_MAX];
    rf_action_result res;
    rf_unit u, again;
    rf_job_view v;
    rf_video_view *vids = NULL;
    size_t n = 0, failed = 9;
    bool more = false;

    create(env, 2, ",\"processing_deadline_ms\":60000", T0, id);
    create(env, 1, NULL, T0 + 1, other); /* no deadline; dispatched after id */
    lease(env, T0 + 1, &u);
    assert_int_equal(rf_jobs_enforce_deadlines(env->st, &env->cfg, T0 + 59999, &failed), RF_OK);
    assert_int_equal(failed, 0);
    assert_int_equal(rf_jobs_enforce_deadlines(env->st, &env->cfg, T0 + 60000, &failed), RF_OK);
    assert_int_equal(failed, 1);
    assert_int_equal(rf_jobs_get(env->st, id, T0 + 60001, &v), RF_OK);
    assert_string_equal(v.job.state, "failed");
    assert_string_equal(v.job.error_code, "deadline_exceeded");
    assert_int_equal(v.items.failed, 1);  /* the one in flight */
    assert_int_equal(v.items.skipped, 1); /* the one never started */
    rf_job_view_clear(&v);
    assert_int_equal(rf_jobs_videos(env->st, id, "skipped", 0, 10, &vids, &n, &more), RF_OK);
    assert_int_equal(n, 1);
    assert_string_equal(vids[0].item.error_code, "deadline_exceeded");
    rf_video_views_free(vids, n);
    /* the agent is told to stop */
    assert_int_equal(heartbeat(env, &u, 3, T0 + 60002), RF_VERDICT_CANCELED);
    expect_state(env, other, "pending");
    /* a retry starts a new deadline window */
    assert_int_equal(act(env, id, RF_ACTION_RETRY, T0 + 70000, &res), RF_OK);
    assert_string_equal(res.state, "pending");
    assert_int_equal(rf_jobs_get(env->st, id, T0 + 70001, &v), RF_OK);
    assert_int_equal(v.items.pending, 2);
    assert_int_equal(v.job.deadline_at, T0 + 70000 + 60000);
    rf_job_view_clear(&v);
    assert_int_equal(rf_jobs_enforce_deadlines(env->st, &env->cfg, T0 + 129999, &failed), RF_OK);
    assert_int_equal(failed, 0);
    lease(env, T0 + 80000, &again);
    free_unit(&again);
    assert_int_equal(rf_jobs_enforce_deadlines(env->st, &env->cfg, T0 + 130000, &failed), RF_OK);
    assert_int_equal(failed, 1);
    expect_state(env, id, "failed");
    free_unit(&u);
}

static void
test_stored_progress_follows_heartbeats(void **state)
{
    tu_env *env = *state;
    char id[RF_ID_MAX];
    rf_unit u;
    rf_job_rec job;
    rf_job_view v;

    create(env, 2, NULL, T0, id); /* 2 units of 60 frames */
    lease(env, T0 + 1, &u);
    assert_int_equal(heartbeat(env, &u, 30, T0 + 1000), RF_VERDICT_OK);
    assert_int_equal(rf_store_begin(env->st), RF_OK);
    assert_int_equal(rf_store_job_get(env->st, id, &job), RF_OK);
    rf_store_rollback(env->st);
    assert_int_equal(job.permille, 250);
    assert_int_equal(job.updated_at, T0 + 1000);
    rf_job_rec_clear(&job);
    assert_int_equal(rf_jobs_get(env->st, id, T0 + 2000, &v), RF_OK);
    assert_true(v.percent_complete == 25.0);
    /* 30 frames in 1999 ms; 90 to go */
    assert_true(v.eta_ms >= 5990 && v.eta_ms <= 6000);
    rf_job_view_clear(&v);
    free_unit(&u);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_function),
        cmocka_unit_test(test_every_cell),
        cmocka_unit_test(test_unknown_and_foreign_jobs),
        cmocka_unit_test_setup_teardown(test_pause_lets_in_flight_finish, setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_pausing_unit_lapse_gives_paused, setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_cancel_tells_agent_to_stop, setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_canceling_keeps_finished_work, setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_canceling_retryable_failure_not_requeued, setup,
                                        tu_teardown),
        cmocka_unit_test_setup_teardown(test_canceling_lapse_gives_canceled, setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_retry_requeues_failed_items_only, setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_retry_with_nothing_to_retry, setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_deadline, setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_stored_progress_follows_heartbeats, setup,
                                        tu_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
