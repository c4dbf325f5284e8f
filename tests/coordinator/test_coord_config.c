/* The configuration table: defaults, file, flags, errors. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

static void
test_defaults(void **state)
{
    rf_coord_config c;

    (void)state;
    rf_config_defaults(&c);
    assert_string_equal(c.http_listen, "127.0.0.1:8080");
    assert_string_equal(c.nng_listen, "tcp://127.0.0.1:5555");
    assert_string_equal(c.db_path, "./renderfarm.db");
    assert_string_equal(c.bucket_root, "./buckets");
    assert_int_equal(c.lease_ttl_ms, 30000);
    assert_int_equal(c.reaper_interval_ms, 500);
    assert_int_equal(c.max_attempts, 3);
    assert_int_equal(c.fps, 30);
    assert_string_equal(c.x264_preset, "veryfast");
    assert_int_equal(c.max_rows_per_job, 10000);
    assert_int_equal(c.max_body_bytes, 1048576);
    assert_string_equal(c.log_level, "info");
    assert_true(c.csv_url_allow_file);
}

static void
test_file_then_flags(void **state)
{
    char path[] = "/tmp/rf-coord-cfg-XXXXXX";
    int fd = mkstemp(path);
    FILE *f;
    rf_coord_config c;
    bool help = true;
    char err[256] = "";
    char *argv[] = {"coordinator", "--lease-ttl-ms",       "5000",  "--config", path,
                    "--fps=25",    "--csv_url_allow_file", "false", NULL};

    (void)state;
    assert_true(fd >= 0);
    f = fdopen(fd, "w");
    fprintf(f, "# comment\n\nlease_ttl_ms = 1234  # trailing\nmax_attempts=7\n"
               "http_listen = 127.0.0.1:9999\n");
    fclose(f);
    rf_config_defaults(&c);
    assert_int_equal(rf_config_parse_args(&c, 8, argv, &help, err, sizeof(err)), RF_OK);
    assert_false(help);
    assert_int_equal(c.lease_ttl_ms, 5000); /* the flag beats the file */
    assert_int_equal(c.max_attempts, 7);    /* from the file */
    assert_string_equal(c.http_listen, "127.0.0.1:9999");
    assert_int_equal(c.fps, 25);
    assert_false(c.csv_url_allow_file);
    unlink(path);
}

static void
test_errors(void **state)
{
    rf_coord_config c;
    bool help;
    char err[256] = "";
    char *unknown[] = {"coordinator", "--nope", "1"};
    char *range[] = {"coordinator", "--fps", "500"};
    char *notint[] = {"coordinator", "--max-attempts", "lots"};
    char *missing[] = {"coordinator", "--db-path"};
    char *helpv[] = {"coordinator", "--nope", "--help"};

    (void)state;
    rf_config_defaults(&c);
    assert_int_equal(rf_config_parse_args(&c, 3, unknown, &help, err, sizeof(err)), RF_ENOTFOUND);
    assert_non_null(strstr(err, "--nope"));
    assert_int_equal(rf_config_parse_args(&c, 3, range, &help, err, sizeof(err)), RF_EINVAL);
    assert_non_null(strstr(err, "fps"));
    assert_int_equal(rf_config_parse_args(&c, 3, notint, &help, err, sizeof(err)), RF_EINVAL);
    assert_int_equal(rf_config_parse_args(&c, 2, missing, &help, err, sizeof(err)), RF_EINVAL);
    assert_int_equal(rf_config_set(&c, "bogus_key", "1", err, sizeof(err)), RF_ENOTFOUND);
    assert_int_equal(rf_config_parse_args(&c, 3, helpv, &help, err, sizeof(err)), RF_OK);
    assert_true(help);
}

static void
test_file_error_names_line(void **state)
{
    char path[] = "/tmp/rf-coord-cfg-XXXXXX";
    int fd = mkstemp(path);
    FILE *f;
    rf_coord_config c;
    char err[256] = "";

    (void)state;
    f = fdopen(fd, "w");
    fprintf(f, "fps = 30\nwhat = 1\n");
    fclose(f);
    rf_config_defaults(&c);
    assert_int_equal(rf_config_load_file(&c, path, err, sizeof(err)), RF_ENOTFOUND);
    assert_non_null(strstr(err, ":2:"));
    assert_non_null(strstr(err, "what"));
    unlink(path);
}

static void
test_finalize_makes_bucket_root_absolute(void **state)
{
    rf_coord_config c;
    char err[256], cwd[512], want[1024];

    (void)state;
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    rf_config_defaults(&c);
    assert_int_equal(rf_config_finalize(&c, err, sizeof(err)), RF_OK);
    snprintf(want, sizeof(want), "%s/buckets", cwd);
    assert_string_equal(c.bucket_root, want);
    snprintf(c.bucket_root, sizeof(c.bucket_root), "/srv/out///");
    assert_int_equal(rf_config_finalize(&c, err, sizeof(err)), RF_OK);
    assert_string_equal(c.bucket_root, "/srv/out");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_file_then_flags),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_file_error_names_line),
        cmocka_unit_test(test_finalize_makes_bucket_root_absolute),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
