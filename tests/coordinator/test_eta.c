/* ETA estimator with synthetic progress samples and a fake clock. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "eta.h"

static rf_eta_params
params(void)
{
    rf_eta_params p;
    rf_eta_params_defaults(&p);
    p.tau_ms = 10000;
    p.min_interval_ms = 1000;
    p.min_samples = 3;
    p.min_span_ms = 3000;
    return p;
}

/* Unknown until three rates over 3 s were measured. */
static void
test_unknown_until_enough_samples(void **state)
{
    rf_eta_params p = params();
    rf_eta e;
    int64_t eta;

    (void)state;
    rf_eta_init(&e, &p);
    assert_int_equal(rf_eta_estimate(&e, 100, &eta), RF_ENOTFOUND);
    assert_int_equal(eta, -1);
    rf_eta_sample(&e, 0, 0);
    rf_eta_sample(&e, 1000, 50);
    rf_eta_sample(&e, 2000, 100);
    assert_int_equal(rf_eta_estimate(&e, 100, &eta), RF_ENOTFOUND);
    assert_true(rf_eta_rate(&e) < 0);
    rf_eta_sample(&e, 3000, 150);
    assert_int_equal(rf_eta_estimate(&e, 100, &eta), RF_OK);
    /* Constant 50 frames/s: 100 frames take 2 s. */
    assert_int_equal(eta, 2000);
    assert_int_equal(rf_eta_estimate(&e, 0, &eta), RF_OK);
    assert_int_equal(eta, 0);
}

/* Samples closer than min_interval are merged, not turned into noisy rates. */
static void
test_close_samples_merged(void **state)
{
    rf_eta_params p = params();
    rf_eta e;
    int64_t eta;

    (void)state;
    rf_eta_init(&e, &p);
    rf_eta_sample(&e, 0, 0);
    for (int64_t t = 100; t <= 4000; t += 100) {
        /* 30 frames/s, reported every 100 ms */
        rf_eta_sample(&e, t, (uint64_t)(t * 30 / 1000));
    }
    assert_int_equal(e.n_rates, 4); /* one per second */
    assert_int_equal(rf_eta_estimate(&e, 300, &eta), RF_OK);
    assert_int_equal(eta, 10000);
}

/* A throughput change moves the estimate towards the new rate with the
 * time constant: after one tau about 63% of the way. */
static void
test_rate_change_smoothed(void **state)
{
    rf_eta_params p = params();
    rf_eta e;
    uint64_t frames = 0;
    int64_t t = 0;
    double r;

    (void)state;
    rf_eta_init(&e, &p);
    rf_eta_sample(&e, t, frames);
    for (int i = 0; i < 20; i++) { /* 20 s at 100 fps */
        t += 1000;
        frames += 100;
        rf_eta_sample(&e, t, frames);
    }
    assert_true(fabs(rf_eta_rate(&e) - 100.0) < 1e-9);
    for (int i = 0; i < 10; i++) { /* an agent left: 10 s (= tau) at 50 fps */
        t += 1000;
        frames += 50;
        rf_eta_sample(&e, t, frames);
    }
    r = rf_eta_rate(&e);
    /* 100 - 50 * (1 - e^-1) = 68.4; per-second steps give the same. */
    assert_true(r > 66.0 && r < 71.0);
    /* Irregular intervals weigh by time: one 10 s sample equals ten 1 s. */
    {
        rf_eta e2;
        rf_eta_init(&e2, &p);
        rf_eta_sample(&e2, 0, 0);
        for (int i = 1; i <= 20; i++) {
            rf_eta_sample(&e2, i * 1000, (uint64_t)i * 100);
        }
        rf_eta_sample(&e2, 30000, 2000 + 500);
        assert_true(fabs(rf_eta_rate(&e2) - r) < 0.5);
    }
}

/* Frames going backwards (requeued unit) re-base; a stall makes the ETA
 * unknown instead of a made-up number. */
static void
test_backwards_and_stall(void **state)
{
    rf_eta_params p = params();
    rf_eta e;
    int64_t eta;

    (void)state;
    rf_eta_init(&e, &p);
    rf_eta_sample(&e, 0, 0);
    rf_eta_sample(&e, 1000, 40);
    rf_eta_sample(&e, 2000, 80);
    rf_eta_sample(&e, 3000, 120);
    rf_eta_sample(&e, 3500, 20); /* lost 100 frames */
    assert_true(fabs(rf_eta_rate(&e) - 40.0) < 1e-9);
    rf_eta_sample(&e, 4500, 60);
    assert_true(fabs(rf_eta_rate(&e) - 40.0) < 1e-9);
    assert_int_equal(rf_eta_estimate(&e, 400, &eta), RF_OK);
    assert_int_equal(eta, 10000);

    for (int64_t t = 5500; t < 5500 + 120000; t += 1000) {
        rf_eta_sample(&e, t, 60); /* nothing moves for two minutes */
    }
    assert_int_equal(rf_eta_estimate(&e, 400, &eta), RF_ENOTFOUND);

    rf_eta_reset(&e);
    assert_int_equal(e.n_rates, 0);
    assert_int_equal(e.p.tau_ms, 10000); /* parameters survive a reset */
}

static void
test_percent(void **state)
{
    (void)state;
    /* Frames weigh, not items: 1 of 2 items done but it was the short one. */
    assert_true(fabs(rf_eta_percent(300, 1200, 1, 2) - 25.0) < 1e-9);
    assert_true(fabs(rf_eta_percent(0, 0, 3, 4) - 75.0) < 1e-9);
    assert_true(rf_eta_percent(0, 0, 0, 0) == 0.0);
    assert_true(rf_eta_percent(1300, 1200, 0, 0) == 100.0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unknown_until_enough_samples),
        cmocka_unit_test(test_close_samples_merged),
        cmocka_unit_test(test_rate_change_smoothed),
        cmocka_unit_test(test_backwards_and_stall),
        cmocka_unit_test(test_percent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
