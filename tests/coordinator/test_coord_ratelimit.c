/* Token buckets with the clock passed in: per-user and per-tenant quotas,
 * refill over the window, Retry-After, refusals that cost nothing, and
 * isolation between users and tenants. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "ratelimit.h"

#define T0 1000000LL

static void
take(rf_ratelimit *rl, const char *tenant, const char *user, int64_t now, bool allowed,
     rf_rl_result *out)
{
    rf_rl_result r;

    assert_int_equal(rf_ratelimit_take(rl, tenant, user, now, &r), RF_OK);
    if (r.allowed != allowed) {
        fail_msg("%s/%s at %lld: allowed=%d, expected %d", tenant, user, (long long)now, r.allowed,
                 allowed);
    }
    if (out != NULL) {
        *out = r;
    }
}

static void
test_user_quota_and_refill(void **state)
{
    rf_ratelimit *rl = NULL;
    rf_rl_result r;

    (void)state;
    assert_int_equal(rf_ratelimit_new(3, 100, 60000, &rl), RF_OK);
    take(rl, "acme", "alice", T0, true, &r);
    assert_int_equal(r.user.limit, 3);
    assert_int_equal(r.user.remaining, 2);
    assert_int_equal(r.user.reset_s, 20); /* one token back every 20 s */
    assert_int_equal(r.project.remaining, 99);
    take(rl, "acme", "alice", T0, true, NULL);
    take(rl, "acme", "alice", T0, true, &r);
    assert_int_equal(r.user.remaining, 0);
    assert_int_equal(r.user.reset_s, 60);
    take(rl, "acme", "alice", T0 + 1000, false, &r);
    assert_true(r.user_exhausted);
    assert_false(r.project_exhausted);
    assert_int_equal(r.retry_after_s, 19); /* 20 s per token, 1 s gone */
    /* refusals cost nothing: the token is back exactly 20 s after T0 */
    take(rl, "acme", "alice", T0 + 19999, false, NULL);
    take(rl, "acme", "alice", T0 + 20000, true, &r);
    assert_int_equal(r.user.remaining, 0);
    take(rl, "acme", "alice", T0 + 20001, false, NULL);
    /* a full window later the bucket is full again, not over-full */
    take(rl, "acme", "alice", T0 + 20000 + 600000, true, &r);
    assert_int_equal(r.user.remaining, 2);
    rf_ratelimit_free(&rl);
    assert_null(rl);
}

static void
test_users_are_independent(void **state)
{
    rf_ratelimit *rl = NULL;

    (void)state;
    assert_int_equal(rf_ratelimit_new(1, 100, 60000, &rl), RF_OK);
    take(rl, "acme", "alice", T0, true, NULL);
    take(rl, "acme", "alice", T0, false, NULL);
    take(rl, "acme", "bob", T0, true, NULL);
    take(rl, "other", "alice", T0, true, NULL); /* same sub, other tenant */
    rf_ratelimit_free(&rl);
}

static void
test_project_quota_shared_by_users(void **state)
{
    rf_ratelimit *rl = NULL;
    rf_rl_result r;
    char user[16];

    (void)state;
    assert_int_equal(rf_ratelimit_new(10, 4, 60000, &rl), RF_OK);
    for (int i = 0; i < 4; i++) {
        snprintf(user, sizeof(user), "u%d", i);
        take(rl, "acme", user, T0, true, NULL);
    }
    take(rl, "acme", "u9", T0, false, &r);
    assert_true(r.project_exhausted);
    assert_false(r.user_exhausted);
    assert_int_equal(r.retry_after_s, 15); /* 4 per minute */
    /* the refused user's own bucket was not charged */
    assert_int_equal(r.user.remaining, 10);
    take(rl, "other", "u9", T0, true, NULL);
    rf_ratelimit_free(&rl);
}

static void
test_clock_going_back(void **state)
{
    rf_ratelimit *rl = NULL;

    (void)state;
    assert_int_equal(rf_ratelimit_new(1, 10, 60000, &rl), RF_OK);
    take(rl, "t", "u", T0, true, NULL);
    take(rl, "t", "u", T0 - 50000, false, NULL); /* no refill from a clock jump back */
    take(rl, "t", "u", T0 + 60000, true, NULL);
    rf_ratelimit_free(&rl);
}

static void
test_idle_buckets_are_forgotten(void **state)
{
    rf_ratelimit *rl = NULL;
    char user[32];

    (void)state;
    assert_int_equal(rf_ratelimit_new(5, 1000000, 60000, &rl), RF_OK);
    for (int i = 0; i < RF_RATELIMIT_MAX_KEYS - 1; i++) {
        snprintf(user, sizeof(user), "user-%d", i);
        take(rl, "t", user, T0, true, NULL);
    }
    assert_int_equal(rf_ratelimit_size(rl), RF_RATELIMIT_MAX_KEYS);
    /* a window later every bucket is full: a new key prunes them */
    take(rl, "t", "newcomer", T0 + 60000, true, NULL);
    assert_true(rf_ratelimit_size(rl) <= 3);
    rf_ratelimit_free(&rl);
}

static void
test_bad_arguments(void **state)
{
    rf_ratelimit *rl = NULL;

    (void)state;
    assert_int_equal(rf_ratelimit_new(0, 1, 1, &rl), RF_EINVAL);
    assert_int_equal(rf_ratelimit_new(1, 1, 0, &rl), RF_EINVAL);
    assert_null(rl);
    rf_ratelimit_free(&rl); /* NULL-safe */
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_user_quota_and_refill),
        cmocka_unit_test(test_users_are_independent),
        cmocka_unit_test(test_project_quota_shared_by_users),
        cmocka_unit_test(test_clock_going_back),
        cmocka_unit_test(test_idle_buckets_are_forgotten),
        cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
