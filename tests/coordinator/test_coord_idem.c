/* Idempotency records on a real SQLite file: fingerprints, first use,
 * replay, mismatch, in-flight, abandoned and expired keys, abort, the job id
 * attached in the creating transaction, purge. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "idempotency.h"
#include "jobs.h"
#include "request.h"
#include "sources.h"
#include "testutil.h"

#define T0 1700000000000LL
#define TTL (24LL * 3600 * 1000)
#define INFLIGHT 120000LL

static rf_idem_verdict
begin(tu_env *env, const char *tenant, const char *key, const char *hash, int64_t now,
      rf_idem_hit *hit)
{
    rf_idem_verdict v = RF_IDEM_PROCEED;
    assert_int_equal(rf_idem_begin(env->st, tenant, key, hash, now, TTL, INFLIGHT, &v, hit), RF_OK);
    return v;
}

static rf_err
hash_of(const char *method, const char *path, const char *body, char out[65])
{
    return rf_idem_request_hash(method, path, body, strlen(body), out);
}

static void
test_hash_is_canonical(void **state)
{
    char a[65], b[65], c[65], d[65];

    (void)state;
    assert_int_equal(hash_of("POST", "/api/v1/bulk-jobs", "{\"a\":1,\"b\":[1,2]}", a), RF_OK);
    /* the same document, other key order and spacing */
    assert_int_equal(hash_of("POST", "/api/v1/bulk-jobs", " { \"b\" : [1, 2],\n \"a\": 1 } ", b),
                     RF_OK);
    assert_string_equal(a, b);
    assert_int_equal(strlen(a), 64);
    /* another value, another path */
    assert_int_equal(hash_of("POST", "/api/v1/bulk-jobs", "{\"a\":2,\"b\":[1,2]}", c), RF_OK);
    assert_string_not_equal(a, c);
    assert_int_equal(hash_of("POST", "/api/bulk-jobs", "{\"a\":1,\"b\":[1,2]}", d), RF_OK);
    assert_string_not_equal(a, d);
    assert_int_equal(hash_of("POST", "/x", "{nope", d), RF_EINVAL);
}

static void
test_key_syntax(void **state)
{
    char long_key[300];

    (void)state;
    assert_true(rf_idem_key_valid("job_1700000000_ab12cd34"));
    assert_true(rf_idem_key_valid("with space and ~!@#"));
    assert_false(rf_idem_key_valid(""));
    assert_false(rf_idem_key_valid("tab\there"));
    assert_false(rf_idem_key_valid("caf\xc3\xa9"));
    memset(long_key, 'k', 255);
    long_key[255] = '\0';
    assert_true(rf_idem_key_valid(long_key));
    long_key[255] = 'k';
    long_key[256] = '\0';
    assert_false(rf_idem_key_valid(long_key));
}

static void
test_first_use_replay_and_mismatch(void **state)
{
    tu_env *env = *state;
    rf_idem_hit hit;

    assert_int_equal(begin(env, "acme", "k1", "h1", T0, &hit), RF_IDEM_PROCEED);
    /* while the first request runs */
    assert_int_equal(begin(env, "acme", "k1", "h1", T0 + 5, &hit), RF_IDEM_IN_FLIGHT);
    assert_int_equal(begin(env, "acme", "k1", "h2", T0 + 5, &hit), RF_IDEM_MISMATCH);
    assert_int_equal(rf_idem_complete(env->st, "acme", "k1", 201, "{\"id\":\"job_x\"}", T0 + 10),
                     RF_OK);
    assert_int_equal(begin(env, "acme", "k1", "h1", T0 + 20, &hit), RF_IDEM_REPLAY);
    assert_int_equal(hit.status, 201);
    assert_string_equal(hit.body, "{\"id\":\"job_x\"}");
    rf_idem_hit_clear(&hit);
    assert_null(hit.body);
    assert_int_equal(begin(env, "acme", "k1", "h2", T0 + 20, &hit), RF_IDEM_MISMATCH);
    /* keys are per tenant */
    assert_int_equal(begin(env, "other", "k1", "h2", T0 + 20, &hit), RF_IDEM_PROCEED);
}

static void
test_abort_frees_the_key(void **state)
{
    tu_env *env = *state;
    rf_idem_hit hit;

    assert_int_equal(begin(env, "acme", "k2", "h1", T0, &hit), RF_IDEM_PROCEED);
    assert_int_equal(rf_idem_abort(env->st, "acme", "k2"), RF_OK);
    /* a failed first request leaves nothing: another body may use the key */
    assert_int_equal(begin(env, "acme", "k2", "h9", T0 + 1, &hit), RF_IDEM_PROCEED);
}

static void
test_abandoned_and_expired(void **state)
{
    tu_env *env = *state;
    rf_idem_hit hit;

    assert_int_equal(begin(env, "acme", "k3", "h1", T0, &hit), RF_IDEM_PROCEED);
    /* the first request never finished (the coordinator died) */
    assert_int_equal(begin(env, "acme", "k3", "h1", T0 + INFLIGHT - 1, &hit), RF_IDEM_IN_FLIGHT);
    assert_int_equal(begin(env, "acme", "k3", "h2", T0 + INFLIGHT + 1, &hit), RF_IDEM_PROCEED);
    assert_int_equal(rf_idem_complete(env->st, "acme", "k3", 201, "{}", T0 + INFLIGHT + 2), RF_OK);
    /* after the TTL the key is new again, whatever the body */
    assert_int_equal(begin(env, "acme", "k3", "h7", T0 + INFLIGHT + 1 + TTL + 1, &hit),
                     RF_IDEM_PROCEED);
}

static void
test_job_attached_in_create(void **state)
{
    tu_env *env = *state;
    const char *req = "{\"title\":\"Idem\",\"input_source\":{\"type\":\"rows\",\"rows\":["
                      "{\"idea_title\":\"a\",\"script_content\":\"b\",\"duration_seconds\":1}]},"
                      "\"output\":{\"output_bucket\":\"b\"}}";
    rf_job_owner owner = {"acme", "alice"};
    rf_job_spec spec;
    rf_rows rows;
    rf_verr verr;
    rf_idem_hit hit;
    char id[RF_ID_MAX];

    assert_int_equal(begin(env, "acme", "k4", "h1", T0, &hit), RF_IDEM_PROCEED);
    assert_int_equal(rf_job_request_parse(req, strlen(req), &env->cfg, &spec, &verr), RF_OK);
    assert_int_equal(rf_source_read(&spec.source, &env->cfg, &rows, &verr), RF_OK);
    assert_int_equal(rf_jobs_create_as(env->st, &env->cfg, &owner, &spec, &rows, "k4", T0 + 1, id),
                     RF_OK);
    /* no answer stored yet (as after a crash): the replay names the job */
    assert_int_equal(begin(env, "acme", "k4", "h1", T0 + 2, &hit), RF_IDEM_REPLAY);
    assert_null(hit.body);
    assert_string_equal(hit.job_id, id);
    rf_idem_hit_clear(&hit);
    /* and the record is no longer "in flight" even after the timeout */
    assert_int_equal(begin(env, "acme", "k4", "h1", T0 + INFLIGHT + 10, &hit), RF_IDEM_REPLAY);
    rf_idem_hit_clear(&hit);
    rf_rows_free(&rows);
    rf_job_spec_clear(&spec);
}

static void
test_purge(void **state)
{
    tu_env *env = *state;
    rf_idem_hit hit;
    size_t n = 0;

    assert_int_equal(begin(env, "acme", "old", "h", T0, &hit), RF_IDEM_PROCEED);
    assert_int_equal(begin(env, "acme", "new", "h", T0 + TTL, &hit), RF_IDEM_PROCEED);
    assert_int_equal(rf_idem_purge(env->st, T0 + TTL + 1, TTL, &n), RF_OK);
    assert_int_equal(n, 1);
    assert_int_equal(begin(env, "acme", "new", "h", T0 + TTL + 2, &hit), RF_IDEM_IN_FLIGHT);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hash_is_canonical),
        cmocka_unit_test(test_key_syntax),
        cmocka_unit_test_setup_teardown(test_first_use_replay_and_mismatch, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_abort_frees_the_key, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_abandoned_and_expired, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_job_attached_in_create, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_purge, tu_setup, tu_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
