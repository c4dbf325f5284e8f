/* The delivery store contract, on the in-memory store: head-of-line per
 * job (order), due times, claims, attempt records, disabled endpoints. A
 * SQLite implementation of rf_webhook_store_ops must pass the same story. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "webhooks.h"

static int64_t
add(rf_webhook_memstore *ms, const rf_webhooks_config *cfg, const char *job, const char *url,
    const char *msg_id, int64_t now)
{
    json_t *p =
        rf_webhook_payload(msg_id, "job.state_changed", now, job, "running", 0, 0, 0, 1, NULL);
    rf_webhook_delivery d;
    int64_t id;

    assert_int_equal(
        rf_webhooks_make_delivery(cfg, job, "acme", url, "job.state_changed", p, now, &d), RF_OK);
    json_decref(p);
    assert_int_equal(rf_webhook_memstore_ops.enqueue(ms, &d), RF_OK);
    id = d.id;
    rf_webhook_delivery_clear(&d);
    return id;
}

static void
record(rf_webhook_memstore *ms, int64_t id, int attempt, const char *outcome, int64_t next)
{
    rf_webhook_attempt a;

    memset(&a, 0, sizeof(a));
    a.delivery_id = id;
    a.attempt = attempt;
    a.status_code = strcmp(outcome, "delivered") == 0 ? 200 : 500;
    strcpy(a.outcome, outcome);
    a.next_attempt_ms = next;
    assert_int_equal(rf_webhook_memstore_ops.record(ms, &a), RF_OK);
}

static void
test_order_claims_and_records(void **state)
{
    rf_webhooks_config cfg;
    rf_webhook_memstore *ms = NULL;
    rf_webhook_delivery d;
    int64_t a1, a2, b1, next = 0;
    char st[16];
    int attempts;
    rf_webhook_attempt *log;
    size_t n;

    (void)state;
    rf_webhooks_config_defaults(&cfg);
    assert_int_equal(rf_webhook_memstore_new(&ms), RF_OK);
    /* Nothing pending at all. */
    assert_int_equal(rf_webhook_memstore_ops.claim(ms, 0, 1000, &d, &next), RF_ENOTFOUND);
    assert_int_equal(next, -1);

    a1 = add(ms, &cfg, "job_a", "http://h/a", "msg_a1", 1000);
    a2 = add(ms, &cfg, "job_a", "http://h/a", "msg_a2", 1001);
    b1 = add(ms, &cfg, "job_b", "http://h/b", "msg_b1", 1002);

    /* Two workers: they get the heads of two jobs, never job_a's second. */
    assert_int_equal(rf_webhook_memstore_ops.claim(ms, 2000, 60000, &d, &next), RF_OK);
    assert_int_equal(d.id, a1);
    assert_string_equal(d.msg_id, "msg_a1");
    assert_non_null(strstr(d.body, "\"msg_a1\""));
    rf_webhook_delivery_clear(&d);
    assert_int_equal(rf_webhook_memstore_ops.claim(ms, 2000, 60000, &d, &next), RF_OK);
    assert_int_equal(d.id, b1);
    rf_webhook_delivery_clear(&d);
    assert_int_equal(rf_webhook_memstore_ops.claim(ms, 2000, 60000, &d, &next), RF_ENOTFOUND);

    /* a1 fails: retry at 7000. job_a's a2 still waits behind it. */
    record(ms, a1, 1, "retry", 7000);
    assert_int_equal(rf_webhook_memstore_ops.claim(ms, 3000, 60000, &d, &next), RF_ENOTFOUND);
    assert_int_equal(next, 7000);
    assert_int_equal(rf_webhook_memstore_ops.claim(ms, 7000, 60000, &d, &next), RF_OK);
    assert_int_equal(d.id, a1);
    assert_int_equal(d.attempts, 1);
    rf_webhook_delivery_clear(&d);
    record(ms, a1, 2, "delivered", 0);
    /* Now a2 is the head of job_a. */
    assert_int_equal(rf_webhook_memstore_ops.claim(ms, 7001, 60000, &d, &next), RF_OK);
    assert_int_equal(d.id, a2);
    rf_webhook_delivery_clear(&d);

    /* A claim lapses: b1 was never recorded (worker died), it comes back. */
    assert_int_equal(rf_webhook_memstore_ops.claim(ms, 62001, 60000, &d, &next), RF_OK);
    assert_int_equal(d.id, b1);
    rf_webhook_delivery_clear(&d);

    assert_int_equal(rf_webhook_memstore_state(ms, a1, st, &attempts), RF_OK);
    assert_string_equal(st, "delivered");
    assert_int_equal(attempts, 2);
    assert_int_equal(rf_webhook_memstore_attempts(ms, a1, &log, &n), RF_OK);
    assert_int_equal(n, 2);
    assert_string_equal(log[0].outcome, "retry");
    assert_int_equal(log[0].status_code, 500);
    assert_string_equal(log[1].outcome, "delivered");
    free(log);
    assert_int_equal(rf_webhook_memstore_state(ms, 99, st, &attempts), RF_ENOTFOUND);
    rf_webhook_memstore_free(&ms);
    assert_null(ms);
}

static void
test_disabled_endpoint(void **state)
{
    rf_webhooks_config cfg;
    rf_webhook_memstore *ms = NULL;
    int64_t x1, x2, y1, x3;
    char st[16];
    int attempts;

    (void)state;
    rf_webhooks_config_defaults(&cfg);
    assert_int_equal(rf_webhook_memstore_new(&ms), RF_OK);
    x1 = add(ms, &cfg, "job_x", "http://gone/", "m1", 0);
    x2 = add(ms, &cfg, "job_y", "http://gone/", "m2", 0);
    y1 = add(ms, &cfg, "job_z", "http://fine/", "m3", 0);
    assert_int_equal(rf_webhook_memstore_ops.disable_endpoint(ms, "http://gone/", 10), RF_OK);
    x3 = add(ms, &cfg, "job_w", "http://gone/", "m4", 20);
    assert_int_equal(rf_webhook_memstore_state(ms, x1, st, &attempts), RF_OK);
    assert_string_equal(st, "abandoned");
    assert_int_equal(rf_webhook_memstore_state(ms, x2, st, &attempts), RF_OK);
    assert_string_equal(st, "abandoned");
    assert_int_equal(rf_webhook_memstore_state(ms, x3, st, &attempts), RF_OK);
    assert_string_equal(st, "abandoned");
    assert_int_equal(attempts, 0);
    assert_int_equal(rf_webhook_memstore_state(ms, y1, st, &attempts), RF_OK);
    assert_string_equal(st, "pending");
    rf_webhook_memstore_free(&ms);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_claims_and_records),
        cmocka_unit_test(test_disabled_endpoint),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
