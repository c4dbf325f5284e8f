/* validate.c's moderate level against what jobs.c does with the same rows
 * today: the same items accepted, refused and skipped, with the same error
 * messages, priorities, titles and stored row data. This keeps the two in
 * step until jobs.c calls rf_validate_row itself; when it does, this test
 * keeps passing trivially and may go. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "jobs.h"
#include "request.h"
#include "sheets_testrows.h"
#include "testutil.h"
#include "validate.h"

#define T0 1700000000000LL

static const char *const REQ =
    "{\"title\":\"Parity\",\"input_source\":{\"type\":\"rows\",\"rows\":["
    "{\"idea_title\":\"x\",\"script_content\":\"y\"}]},"
    "\"output\":{\"output_bucket\":\"b1\",\"resolution\":\"720p\"}}";

static void
test_moderate_matches_jobs(void **state)
{
    tu_env env;
    rf_job_spec spec;
    rf_verr verr;
    rf_rows rows;
    char job_id[RF_ID_MAX];
    rf_video_view *views = NULL;
    size_t n = 0;
    bool more = false;

    (void)state;
    assert_int_equal(tu_env_open(&env), 0);
    assert_int_equal(rf_job_request_parse(REQ, strlen(REQ), &env.cfg, &spec, &verr), RF_OK);
    assert_int_equal(messy_build(&rows), 0);
    assert_int_equal(rf_jobs_create(env.st, &env.cfg, &spec, &rows, T0, job_id), RF_OK);
    assert_int_equal(rf_jobs_videos(env.st, job_id, NULL, 0, 1000, &views, &n, &more), RF_OK);
    assert_int_equal(n, rows.n);
    for (size_t i = 0; i < n; i++) {
        const rf_item_rec *item = &views[i].item;
        const rf_row *row = NULL;
        rf_row_check c;
        const char *want_state;
        json_t *stored;

        for (size_t r = 0; r < rows.n; r++) {
            if (rows.rows[r].row_number == item->row_number) {
                row = &rows.rows[r];
            }
        }
        assert_non_null(row);
        assert_int_equal(rf_validate_row(row, RF_VLEVEL_MODERATE, &c), RF_OK);
        want_state = c.skipped ? "skipped" : c.error[0] != '\0' ? "failed" : "pending";
        if (strcmp(item->state, want_state) != 0) {
            fail_msg("row %u: jobs.c says %s (%s), validate says %s (%s)", item->row_number,
                     item->state, item->error_message, want_state, c.error);
        }
        if (strcmp(want_state, "failed") == 0) {
            assert_string_equal(item->error_message, c.error);
        }
        if (strcmp(want_state, "pending") == 0) {
            assert_string_equal(item->title, c.title);
            assert_int_equal(item->priority, c.priority);
            /* one unit per distinct frame shape of the validated platforms */
            {
                size_t shapes = 0;
                bool seen[3] = {false, false, false};
                for (size_t p = 0; p < c.n_platforms; p++) {
                    rf_shape s;
                    assert_true(rf_platform_shape(c.platforms[p], &s));
                    if (!seen[s]) {
                        seen[s] = true;
                        shapes++;
                    }
                }
                assert_int_equal(views[i].n_units, shapes);
                assert_int_equal(views[i].units[0].duration_ms, c.duration_s * 1000u);
            }
        }
        stored = json_loads(item->data_json, 0, NULL);
        assert_non_null(stored);
        if (!json_equal(stored, c.data)) {
            char *a = json_dumps(c.data, JSON_SORT_KEYS);
            fail_msg("row %u: stored %s, validate %s", item->row_number, item->data_json, a);
        }
        json_decref(stored);
        rf_row_check_clear(&c);
    }
    rf_video_views_free(views, n);
    rf_rows_free(&rows);
    rf_job_spec_clear(&spec);
    tu_env_close(&env);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_moderate_matches_jobs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
