/* Webhook signing (Standard Webhooks), secrets, schedule and Retry-After
 * parsing. Expected values were computed with openssl, never with our own
 * code (commands in the comments). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "webhooks.h"

/* GitHub's documented vector, checks the HMAC helper itself:
 *   printf '%s' 'Hello, World!' | openssl dgst -sha256 -hmac "It's a Secret to Everybody"
 *   -> 757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17 */
static void
test_hmac_github_vector(void **state)
{
    const char *key = "It's a Secret to Everybody";
    char hex[65];

    (void)state;
    rf_hmac_sha256_hex(key, strlen(key), "Hello, World!", 13, hex);
    assert_string_equal(hex, "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17");
}

/* Our own vector:
 *   printf '%s' 'renderfarm-test-key-0123456789ab' | base64
 *   -> cmVuZGVyZmFybS10ZXN0LWtleS0wMTIzNDU2Nzg5YWI=
 *   printf '%s' 'msg_01JTEST.1700000000.{"type":"job.completed","job_id":"job_1"}' \
 *     | openssl dgst -sha256 -hmac 'renderfarm-test-key-0123456789ab' -binary | base64
 *   -> kUIOi66KPfRYBKvWcheHToIiu4d7u0+e2VzwJ9ZfJC4= */
static void
test_sign_fixed_vector(void **state)
{
    const char *secret = "whsec_cmVuZGVyZmFybS10ZXN0LWtleS0wMTIzNDU2Nzg5YWI=";
    const char *body = "{\"type\":\"job.completed\",\"job_id\":\"job_1\"}";
    char sig[RF_WEBHOOK_SIG_MAX];

    (void)state;
    assert_int_equal(
        rf_webhook_sign(secret, "msg_01JTEST", 1700000000, body, strlen(body), sig, sizeof(sig)),
        RF_OK);
    assert_string_equal(sig, "v1,kUIOi66KPfRYBKvWcheHToIiu4d7u0+e2VzwJ9ZfJC4=");
}

/* The Standard Webhooks specification's example, recomputed:
 *   echo -n MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw | base64 -d | xxd -p -c 256
 *   printf '%s' 'msg_p5jXN8AQM9LWM0D4loKWxJek.1614265330.{"test": 2432232314}' \
 *     | openssl dgst -sha256 -mac HMAC -macopt hexkey:<that> -binary | base64
 *   -> g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE= */
static void
test_sign_spec_vector_and_verify(void **state)
{
    const char *secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const char *body = "{\"test\": 2432232314}";
    const char *id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    char sig[RF_WEBHOOK_SIG_MAX];
    char both[200];

    (void)state;
    assert_int_equal(rf_webhook_sign(secret, id, 1614265330, body, strlen(body), sig, sizeof(sig)),
                     RF_OK);
    assert_string_equal(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    assert_int_equal(
        rf_webhook_verify(secret, id, "1614265330", body, strlen(body), sig, 1614265330 + 10, 300),
        RF_OK);
    /* Rotation: several signatures, the valid one anywhere in the list. */
    snprintf(both, sizeof(both), "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= %s", sig);
    assert_int_equal(
        rf_webhook_verify(secret, id, "1614265330", body, strlen(body), both, 1614265330, 300),
        RF_OK);
    /* Tampered body, wrong id, stale timestamp. */
    assert_int_equal(rf_webhook_verify(secret, id, "1614265330", "{\"test\": 2432232315}",
                                       strlen(body), sig, 1614265330, 300),
                     RF_EINVAL);
    assert_int_equal(rf_webhook_verify(secret, "msg_other", "1614265330", body, strlen(body), sig,
                                       1614265330, 300),
                     RF_EINVAL);
    assert_int_equal(
        rf_webhook_verify(secret, id, "1614265330", body, strlen(body), sig, 1614265330 + 301, 300),
        RF_ETIMEDOUT);
}

static void
test_secrets(void **state)
{
    char a[RF_WEBHOOK_SECRET_MAX], b[RF_WEBHOOK_SECRET_MAX], c[RF_WEBHOOK_SECRET_MAX];
    unsigned char key[64];
    size_t kl;
    const char master[] = "operator-master-key-0123456789";

    (void)state;
    assert_int_equal(rf_webhook_secret_new(a, sizeof(a)), RF_OK);
    assert_int_equal(rf_webhook_secret_new(b, sizeof(b)), RF_OK);
    assert_memory_equal(a, "whsec_", 6);
    assert_string_not_equal(a, b);
    assert_int_equal(rf_webhook_secret_key(a, key, &kl), RF_OK);
    assert_int_equal(kl, 32);

    assert_int_equal(rf_webhook_secret_derive(master, strlen(master), "acme", a, sizeof(a)), RF_OK);
    assert_int_equal(rf_webhook_secret_derive(master, strlen(master), "acme", b, sizeof(b)), RF_OK);
    assert_int_equal(rf_webhook_secret_derive(master, strlen(master), "globex", c, sizeof(c)),
                     RF_OK);
    assert_string_equal(a, b);
    assert_string_not_equal(a, c);

    /* Keys shorter than 24 bytes and non-base64 are refused. */
    assert_int_equal(rf_webhook_secret_key("whsec_c2hvcnQ=", key, &kl), RF_EINVAL);
    assert_int_equal(rf_webhook_secret_key("whsec_not base64!!", key, &kl), RF_EINVAL);
    assert_int_equal(rf_webhook_sign("whsec_c2hvcnQ=", "m", 1, "x", 1, a, sizeof(a)), RF_EINVAL);
}

static void
test_schedule(void **state)
{
    rf_webhooks_config cfg;
    char err[128];

    (void)state;
    rf_webhooks_config_defaults(&cfg);
    assert_int_equal(cfg.n_schedule, 10);
    assert_int_equal(cfg.schedule_ms[1], 5000);
    assert_int_equal(cfg.schedule_ms[9], 86400000);
    assert_int_equal(rf_webhooks_parse_schedule(&cfg, "0, 250ms,1.5s,2m,1h", err, sizeof(err)),
                     RF_OK);
    assert_int_equal(cfg.n_schedule, 5);
    assert_int_equal(cfg.schedule_ms[1], 250);
    assert_int_equal(cfg.schedule_ms[2], 1500);
    assert_int_equal(cfg.schedule_ms[3], 120000);
    assert_int_equal(cfg.schedule_ms[4], 3600000);
    assert_int_equal(rf_webhooks_parse_schedule(&cfg, "1,2x", err, sizeof(err)), RF_EINVAL);
    assert_int_equal(rf_webhooks_parse_schedule(&cfg, "", err, sizeof(err)), RF_EINVAL);

    /* Jitter: u = 0 / 0.5 / ~1 give -20%, nominal, +20%; past the end -1. */
    rf_webhooks_parse_schedule(&cfg, "0,1000,10000", err, sizeof(err));
    cfg.jitter = 0.2;
    assert_int_equal(rf_webhooks_delay_ms(&cfg, 1, 0.0), 800);
    assert_int_equal(rf_webhooks_delay_ms(&cfg, 1, 0.5), 1000);
    assert_in_range(rf_webhooks_delay_ms(&cfg, 2, 0.999999), 11999, 12000);
    assert_int_equal(rf_webhooks_delay_ms(&cfg, 3, 0.5), -1);
}

static void
test_retry_after(void **state)
{
    int64_t now = 1700000000000LL;

    (void)state;
    assert_int_equal(rf_webhooks_retry_after_ms("120", now), 120000);
    assert_int_equal(rf_webhooks_retry_after_ms(" 3", now), 3000);
    assert_int_equal(rf_webhooks_retry_after_ms(NULL, now), -1);
    assert_int_equal(rf_webhooks_retry_after_ms("soon", now), -1);
    /* 1700000060 = Tue, 14 Nov 2023 22:14:20 GMT (date -u -d @1700000060) */
    assert_int_equal(rf_webhooks_retry_after_ms("Tue, 14 Nov 2023 22:14:20 GMT", now), 60000);
    /* A date in the past means "now". */
    assert_int_equal(rf_webhooks_retry_after_ms("Tue, 14 Nov 2023 22:00:00 GMT", now), 0);
}

static void
test_payload(void **state)
{
    json_t *data = json_pack("{s:s}", "new_state", "completed");
    json_t *p = rf_webhook_payload("msg_1", "job.state_changed", 1700000000000LL, "job_9",
                                   "completed", 100.0, 9, 1, 10, data);

    (void)state;
    assert_non_null(p);
    assert_string_equal(json_string_value(json_object_get(p, "id")), "msg_1");
    assert_string_equal(json_string_value(json_object_get(p, "timestamp")), "2023-11-14T22:13:20Z");
    assert_string_equal(json_string_value(json_object_get(p, "state")), "completed");
    assert_int_equal(json_integer_value(json_object_get(p, "items_completed")), 9);
    assert_true(json_real_value(json_object_get(p, "percent_complete")) == 100.0);
    assert_string_equal(json_string_value(json_object_get(json_object_get(p, "data"), "new_state")),
                        "completed");
    json_decref(p);
    json_decref(data);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hmac_github_vector),
        cmocka_unit_test(test_sign_fixed_vector),
        cmocka_unit_test(test_sign_spec_vector_and_verify),
        cmocka_unit_test(test_secrets),
        cmocka_unit_test(test_schedule),
        cmocka_unit_test(test_retry_after),
        cmocka_unit_test(test_payload),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
