/* The WebSocket feed's hub without civetweb: coalescing, heartbeats, order,
 * tenants, snapshots and the slow-client policy, driven by a fake clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "ws.h"

typedef struct fake {
    int64_t now;
    int kills;
} fake;

static int64_t
fake_clock(void *ctx)
{
    return ((fake *)ctx)->now;
}

static void
fake_kill(void *arg)
{
    ((fake *)arg)->kills++;
}

static rf_ws *
hub(fake *f, size_t max_msgs, size_t max_clients)
{
    rf_ws_config cfg;
    rf_ws *ws = NULL;

    rf_ws_config_defaults(&cfg);
    cfg.clock = fake_clock;
    cfg.clock_ctx = f;
    cfg.queue_max_msgs = max_msgs;
    cfg.max_clients = max_clients;
    assert_int_equal(rf_ws_new(&cfg, &ws), RF_OK);
    return ws;
}

static void
publish_progress(rf_ws *ws, const char *job, const char *tenant, int pct)
{
    rf_ws_progress p = {
        .percent_complete = pct, .items_total = 100, .items_completed = pct, .eta_ms = -1};
    json_t *m = rf_ws_msg_progress(job, &p);
    assert_int_equal(rf_ws_publish(ws, job, tenant, m), RF_OK);
    json_decref(m);
}

static void
publish(rf_ws *ws, const char *job, const char *tenant, json_t *m)
{
    assert_non_null(m);
    assert_int_equal(rf_ws_publish(ws, job, tenant, m), RF_OK);
    json_decref(m);
}

/* Pops everything queued now into msgs (decoded); returns the count. */
static size_t
drain(rf_ws *ws, rf_ws_sub *s, json_t **msgs, size_t cap)
{
    size_t n = 0;
    rf_ws_frame *f;

    while (rf_ws_sub_pop(ws, s, 0, &f) == RF_OK) {
        size_t len;
        const char *t = rf_ws_frame_text(f, &len);
        assert_true(n < cap);
        msgs[n] = json_loadb(t, len, 0, NULL);
        assert_non_null(msgs[n]);
        n++;
        rf_ws_frame_release(f);
    }
    return n;
}

static void
free_msgs(json_t **msgs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        json_decref(msgs[i]);
    }
}

static const char *
type_of(json_t *m)
{
    return json_string_value(json_object_get(m, "type"));
}

static double
pct_of(json_t *m)
{
    return json_number_value(json_object_get(json_object_get(m, "data"), "percent_complete"));
}

/* 100 progress reports per second become one per 250 ms, newest wins. */
static void
test_progress_coalesced(void **state)
{
    fake f = {0};
    rf_ws *ws = hub(&f, 256, 8);
    rf_ws_sub *s = NULL;
    json_t *msgs[64];
    size_t total = 0, n;
    double last_pct = -1;

    (void)state;
    assert_int_equal(rf_ws_sub_open(ws, "job_1", "acme", NULL, NULL, &s), RF_OK);
    for (int i = 0; i < 100; i++) {
        f.now = i * 10;
        publish_progress(ws, "job_1", "acme", i);
        rf_ws_tick(ws);
        n = drain(ws, s, msgs, 64);
        for (size_t k = 0; k < n; k++) {
            assert_string_equal(type_of(msgs[k]), "job.progress");
            assert_true(pct_of(msgs[k]) > last_pct); /* never older than what was sent */
            last_pct = pct_of(msgs[k]);
        }
        total += n;
        free_msgs(msgs, n);
    }
    f.now = 1000;
    rf_ws_tick(ws);
    n = drain(ws, s, msgs, 64);
    total += n;
    assert_int_equal(n, 1);
    assert_true(pct_of(msgs[0]) == 99.0); /* the newest is never lost */
    free_msgs(msgs, n);
    /* t = 0, 250, 500, 750 and the final flush at 1000. */
    assert_int_equal(total, 5);
    rf_ws_stats st;
    rf_ws_get_stats(ws, &st);
    assert_int_equal(st.progress_merged, 95);
    rf_ws_sub_close(ws, &s);
    rf_ws_free(&ws);
}

/* A held-back progress goes out before the state change that follows it,
 * and state / video messages are never merged. */
static void
test_order_kept(void **state)
{
    fake f = {0};
    rf_ws *ws = hub(&f, 256, 8);
    rf_ws_sub *s = NULL;
    json_t *msgs[16];
    size_t n;

    (void)state;
    assert_int_equal(rf_ws_sub_open(ws, "job_1", "acme", NULL, NULL, &s), RF_OK);
    publish_progress(ws, "job_1", "acme", 10); /* sent at once */
    f.now = 50;
    publish_progress(ws, "job_1", "acme", 90); /* held */
    publish(ws, "job_1", "acme",
            rf_ws_msg_video_completed("job_1", "item_1", 2,
                                      json_pack("[{s:s,s:s}]", "type", "video", "url", "u1")));
    publish(ws, "job_1", "acme",
            rf_ws_msg_video_failed("job_1", "item_2", 3, "template_render_error", "bad"));
    publish(ws, "job_1", "acme",
            rf_ws_msg_state_changed("job_1", "running", "completed", "all items finished"));
    publish(ws, "job_1", "acme", rf_ws_msg_job_completed("job_1", NULL, NULL));
    n = drain(ws, s, msgs, 16);
    assert_int_equal(n, 6);
    assert_true(pct_of(msgs[0]) == 10.0);
    assert_true(pct_of(msgs[1]) == 90.0);
    assert_string_equal(type_of(msgs[2]), "video.completed");
    assert_string_equal(type_of(msgs[3]), "video.failed");
    assert_string_equal(
        json_string_value(json_object_get(
            json_array_get(json_object_get(json_object_get(msgs[3], "data"), "errors"), 0),
            "error_code")),
        "template_render_error");
    assert_string_equal(type_of(msgs[4]), "job.state_changed");
    assert_string_equal(type_of(msgs[5]), "job.completed");
    free_msgs(msgs, n);
    rf_ws_sub_close(ws, &s);
    rf_ws_free(&ws);
}

/* Silence is filled with the last progress every heartbeat, until the job
 * ends. */
static void
test_heartbeat(void **state)
{
    fake f = {0};
    rf_ws *ws = hub(&f, 256, 8);
    rf_ws_sub *s = NULL;
    json_t *msgs[16];
    size_t n;

    (void)state;
    assert_int_equal(rf_ws_sub_open(ws, "job_1", "acme", NULL, NULL, &s), RF_OK);
    publish_progress(ws, "job_1", "acme", 40);
    n = drain(ws, s, msgs, 16);
    assert_int_equal(n, 1);
    free_msgs(msgs, n);
    f.now = 4999;
    rf_ws_tick(ws);
    assert_int_equal(drain(ws, s, msgs, 16), 0);
    f.now = 5000;
    rf_ws_tick(ws);
    n = drain(ws, s, msgs, 16);
    assert_int_equal(n, 1);
    assert_true(pct_of(msgs[0]) == 40.0);
    free_msgs(msgs, n);
    f.now = 10000;
    rf_ws_tick(ws);
    n = drain(ws, s, msgs, 16);
    assert_int_equal(n, 1);
    free_msgs(msgs, n);

    publish(ws, "job_1", "acme", rf_ws_msg_state_changed("job_1", "running", "failed", "x"));
    n = drain(ws, s, msgs, 16);
    free_msgs(msgs, n);
    f.now = 60000;
    rf_ws_tick(ws);
    assert_int_equal(drain(ws, s, msgs, 16), 0); /* ended: no more heartbeats */
    rf_ws_sub_close(ws, &s);
    rf_ws_free(&ws);
}

/* A client that stops reading is cut off at its limit; the others get
 * everything; the transport's kill runs once, after the grace period. */
static void
test_slow_client(void **state)
{
    fake f = {0}, kf = {0};
    rf_ws *ws = hub(&f, 4, 8);
    rf_ws_sub *slow = NULL, *fast = NULL;
    rf_ws_frame *fr;
    json_t *msgs[16];
    size_t got = 0, n;
    rf_ws_stats st;

    (void)state;
    assert_int_equal(rf_ws_sub_open(ws, "job_1", "acme", fake_kill, &kf, &slow), RF_OK);
    assert_int_equal(rf_ws_sub_open(ws, "job_1", "acme", NULL, NULL, &fast), RF_OK);
    for (int i = 0; i < 10; i++) {
        char id[16];
        snprintf(id, sizeof(id), "item_%d", i);
        publish(ws, "job_1", "acme", rf_ws_msg_video_completed("job_1", id, i, NULL));
        n = drain(ws, fast, msgs, 16);
        got += n;
        free_msgs(msgs, n);
    }
    assert_int_equal(got, 10);
    assert_true(rf_ws_sub_overflowed(ws, slow));
    assert_int_equal(rf_ws_sub_pop(ws, slow, 0, &fr), RF_ECANCELED);
    assert_false(rf_ws_sub_overflowed(ws, fast));
    f.now = 1999;
    rf_ws_tick(ws);
    assert_int_equal(kf.kills, 0);
    f.now = 2000;
    rf_ws_tick(ws);
    rf_ws_tick(ws);
    assert_int_equal(kf.kills, 1);
    rf_ws_get_stats(ws, &st);
    assert_int_equal(st.slow_disconnects, 1);
    assert_int_equal(st.clients, 2);
    rf_ws_sub_close(ws, &slow);
    rf_ws_get_stats(ws, &st);
    assert_int_equal(st.clients, 1);
    rf_ws_sub_close(ws, &fast);
    rf_ws_get_stats(ws, &st);
    assert_int_equal(st.clients, 0);
    assert_int_equal(st.jobs, 0);
    rf_ws_free(&ws);
}

/* Byte limit as well as message count. */
static void
test_byte_limit(void **state)
{
    fake f = {0};
    rf_ws_config cfg;
    rf_ws *ws = NULL;
    rf_ws_sub *s = NULL;
    char big[3000];

    (void)state;
    rf_ws_config_defaults(&cfg);
    cfg.clock = fake_clock;
    cfg.clock_ctx = &f;
    cfg.queue_max_bytes = 8000;
    assert_int_equal(rf_ws_new(&cfg, &ws), RF_OK);
    assert_int_equal(rf_ws_sub_open(ws, "job_1", "acme", NULL, NULL, &s), RF_OK);
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    publish(ws, "job_1", "acme", rf_ws_msg_job_failed("job_1", "internal_error", big));
    publish(ws, "job_1", "acme", rf_ws_msg_job_failed("job_1", "internal_error", big));
    assert_false(rf_ws_sub_overflowed(ws, s));
    publish(ws, "job_1", "acme", rf_ws_msg_job_failed("job_1", "internal_error", big));
    assert_true(rf_ws_sub_overflowed(ws, s));
    rf_ws_sub_close(ws, &s);
    rf_ws_free(&ws);
}

static void
test_tenants_and_jobs(void **state)
{
    fake f = {0};
    rf_ws *ws = hub(&f, 256, 8);
    rf_ws_sub *a = NULL, *op = NULL, *other = NULL;
    json_t *msgs[16];
    size_t n;

    (void)state;
    assert_int_equal(rf_ws_sub_open(ws, "job_1", "acme", NULL, NULL, &a), RF_OK);
    assert_int_equal(rf_ws_sub_open(ws, "job_1", NULL, NULL, NULL, &op), RF_OK);
    assert_int_equal(rf_ws_sub_open(ws, "job_2", "acme", NULL, NULL, &other), RF_OK);
    /* Same job id, other tenant: only the operator sees it. */
    publish(ws, "job_1", "globex", rf_ws_msg_job_failed("job_1", "x", "y"));
    assert_int_equal(drain(ws, a, msgs, 16), 0);
    n = drain(ws, op, msgs, 16);
    assert_int_equal(n, 1);
    free_msgs(msgs, n);
    publish(ws, "job_1", "acme", rf_ws_msg_job_failed("job_1", "x", "y"));
    n = drain(ws, a, msgs, 16);
    assert_int_equal(n, 1);
    free_msgs(msgs, n);
    assert_int_equal(drain(ws, other, msgs, 16), 0);
    /* Nobody watches job_3: fine, nothing happens. */
    publish(ws, "job_3", "acme", rf_ws_msg_job_failed("job_3", "x", "y"));
    /* A message without a type is refused. */
    json_t *bad = json_pack("{s:{}}", "data");
    assert_int_equal(rf_ws_publish(ws, "job_1", "acme", bad), RF_EINVAL);
    json_decref(bad);
    rf_ws_sub_close(ws, &a);
    rf_ws_sub_close(ws, &op);
    rf_ws_sub_close(ws, &other);
    rf_ws_free(&ws);
}

static void
test_max_clients(void **state)
{
    fake f = {0};
    rf_ws *ws = hub(&f, 256, 2);
    rf_ws_sub *s1 = NULL, *s2 = NULL, *s3 = NULL;

    (void)state;
    assert_int_equal(rf_ws_sub_open(ws, "job_1", "acme", NULL, NULL, &s1), RF_OK);
    assert_int_equal(rf_ws_sub_open(ws, "job_2", "acme", NULL, NULL, &s2), RF_OK);
    assert_int_equal(rf_ws_sub_open(ws, "job_3", "acme", NULL, NULL, &s3), RF_ECONFLICT);
    assert_null(s3);
    rf_ws_sub_close(ws, &s1);
    assert_int_equal(rf_ws_sub_open(ws, "job_3", "acme", NULL, NULL, &s3), RF_OK);
    rf_ws_sub_close(ws, &s2);
    rf_ws_sub_close(ws, &s3);
    rf_ws_free(&ws);
}

/* The snapshot goes in front of events published while it was read, and
 * seeds the heartbeat. */
static void
test_snapshot_first(void **state)
{
    fake f = {0};
    rf_ws *ws = hub(&f, 256, 8);
    rf_ws_sub *s = NULL;
    json_t *msgs[16], *snap;
    rf_ws_progress p = {
        .percent_complete = 30, .items_total = 10, .items_completed = 3, .eta_ms = 60000};
    size_t n;

    (void)state;
    assert_int_equal(rf_ws_sub_open(ws, "job_1", "acme", NULL, NULL, &s), RF_OK);
    publish(ws, "job_1", "acme", rf_ws_msg_video_completed("job_1", "item_4", 5, NULL));
    snap = json_array();
    json_array_append_new(snap, rf_ws_msg_state_changed("job_1", "running", "running", "snapshot"));
    json_array_append_new(snap, rf_ws_msg_progress("job_1", &p));
    assert_int_equal(rf_ws_sub_prepend(ws, s, snap), RF_OK);
    json_decref(snap);
    n = drain(ws, s, msgs, 16);
    assert_int_equal(n, 3);
    assert_string_equal(type_of(msgs[0]), "job.state_changed");
    assert_string_equal(type_of(msgs[1]), "job.progress");
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(msgs[1], "data"), "eta_ms")), 60000);
    assert_string_equal(type_of(msgs[2]), "video.completed");
    free_msgs(msgs, n);
    f.now = 5000;
    rf_ws_tick(ws);
    n = drain(ws, s, msgs, 16);
    assert_int_equal(n, 1);
    assert_true(pct_of(msgs[0]) == 30.0);
    free_msgs(msgs, n);
    rf_ws_sub_close(ws, &s);
    rf_ws_free(&ws);
}

static void
test_builders(void **state)
{
    rf_ws_progress p = {.percent_complete = 12.5,
                        .items_completed = 1,
                        .items_failed = 1,
                        .items_total = 8,
                        .frames_done = 100,
                        .frames_total = 800,
                        .eta_ms = -1,
                        .rate_limited = true};
    json_t *m = rf_ws_msg_progress("job_1", &p), *d;

    (void)state;
    d = json_object_get(m, "data");
    assert_true(json_is_null(json_object_get(d, "eta_ms")));
    assert_true(json_is_true(json_object_get(d, "rate_limited")));
    assert_true(json_real_value(json_object_get(d, "percent_complete")) == 12.5);
    assert_int_equal(json_integer_value(json_object_get(d, "items_total")), 8);
    json_decref(m);
    m = rf_ws_msg_job_completed(
        "job_1", json_pack("{s:i,s:i}", "items_completed", 7, "items_total", 8), NULL);
    d = json_object_get(m, "data");
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(d, "summary"), "items_total")), 8);
    assert_true(json_is_array(json_object_get(d, "artifacts")));
    json_decref(m);
    m = rf_ws_msg_state_changed("job_1", NULL, "pending", NULL);
    d = json_object_get(m, "data");
    assert_string_equal(json_string_value(json_object_get(d, "new_state")), "pending");
    assert_true(json_is_null(json_object_get(d, "reason")));
    assert_true(json_is_null(json_object_get(d, "prior_state")));
    json_decref(m);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_progress_coalesced), cmocka_unit_test(test_order_kept),
        cmocka_unit_test(test_heartbeat),          cmocka_unit_test(test_slow_client),
        cmocka_unit_test(test_byte_limit),         cmocka_unit_test(test_tenants_and_jobs),
        cmocka_unit_test(test_max_clients),        cmocka_unit_test(test_snapshot_first),
        cmocka_unit_test(test_builders),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
