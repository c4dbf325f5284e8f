/* Keyset pagination of job lists: opaque tokens, ties broken by id, pages
 * that neither repeat nor skip jobs while new jobs are being created, sort by
 * stored progress, state filters, and tenants that never see each other. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cursor.h"
#include "jobs.h"
#include "request.h"
#include "sources.h"
#include "testutil.h"

#define T0 1700000000000LL

static void
create_as(tu_env *env, const char *tenant, int64_t now, char id[RF_ID_MAX])
{
    const char *req = "{\"title\":\"Listed\",\"input_source\":{\"type\":\"rows\",\"rows\":["
                      "{\"idea_title\":\"a\",\"script_content\":\"b\",\"duration_seconds\":1}]},"
                      "\"output\":{\"output_bucket\":\"b\"}}";
    rf_job_owner owner = {tenant, "user"};
    rf_job_spec spec;
    rf_rows rows;
    rf_verr verr;

    assert_int_equal(rf_job_request_parse(req, strlen(req), &env->cfg, &spec, &verr), RF_OK);
    assert_int_equal(rf_source_read(&spec.source, &env->cfg, &rows, &verr), RF_OK);
    assert_int_equal(rf_jobs_create_as(env->st, &env->cfg, &owner, &spec, &rows, NULL, now, id),
                     RF_OK);
    rf_rows_free(&rows);
    rf_job_spec_clear(&spec);
}

/* One page through the public path: query built from a token string. */
static size_t
page(tu_env *env, const char *tenant, rf_job_sort sort, bool desc, const char *state,
     const char *token, size_t limit, char (*ids)[RF_ID_MAX], char next[RF_CURSOR_MAX])
{
    rf_job_query q;
    rf_job_view *v = NULL;
    size_t n = 0;
    bool more = false;
    uint64_t total = 0;

    memset(&q, 0, sizeof(q));
    q.tenant = tenant;
    q.state = state;
    q.sort = sort;
    q.desc = desc;
    q.limit = limit;
    if (token != NULL && token[0] != '\0') {
        assert_int_equal(rf_cursor_job_decode(token, sort, desc, state, &q.after_key, q.after_id),
                         RF_OK);
        q.has_after = true;
    }
    assert_int_equal(rf_jobs_list(env->st, &q, T0, &v, &n, &more, &total), RF_OK);
    for (size_t i = 0; i < n; i++) {
        memcpy(ids[i], v[i].job.id, RF_ID_MAX);
        assert_string_equal(v[i].job.tenant, tenant);
    }
    next[0] = '\0';
    if (more) {
        assert_int_equal(rf_cursor_job_encode(sort, desc, state,
                                              rf_job_sort_key(&v[n - 1].job, sort), v[n - 1].job.id,
                                              next, RF_CURSOR_MAX),
                         RF_OK);
    }
    rf_job_views_free(v, n);
    return n;
}

static void
test_tokens(void **state)
{
    char tok[RF_CURSOR_MAX], id[RF_ID_MAX];
    int64_t key = 0;
    uint32_t row = 0;

    (void)state;
    assert_int_equal(rf_cursor_job_encode(RF_JOB_SORT_UPDATED_AT, true, "running", -5, "job_ABC",
                                          tok, sizeof(tok)),
                     RF_OK);
    assert_null(strchr(tok, '|')); /* opaque */
    assert_int_equal(rf_cursor_job_decode(tok, RF_JOB_SORT_UPDATED_AT, true, "running", &key, id),
                     RF_OK);
    assert_int_equal(key, -5);
    assert_string_equal(id, "job_ABC");
    /* another sort, order or filter: refused */
    assert_int_equal(rf_cursor_job_decode(tok, RF_JOB_SORT_CREATED_AT, true, "running", &key, id),
                     RF_EINVAL);
    assert_int_equal(rf_cursor_job_decode(tok, RF_JOB_SORT_UPDATED_AT, false, "running", &key, id),
                     RF_EINVAL);
    assert_int_equal(rf_cursor_job_decode(tok, RF_JOB_SORT_UPDATED_AT, true, NULL, &key, id),
                     RF_EINVAL);
    assert_int_equal(rf_cursor_job_decode("garbage!", RF_JOB_SORT_CREATED_AT, true, NULL, &key, id),
                     RF_EINVAL);
    /* hand-made tokens with injection attempts */
    assert_int_equal(rf_cursor_job_decode("ajF8Y3xkfC18MXxqb2InOy0t", RF_JOB_SORT_CREATED_AT, true,
                                          NULL, &key, id),
                     RF_EINVAL); /* j1|c|d|-|1|job';-- */
    assert_int_equal(rf_cursor_row_encode(42, tok, sizeof(tok)), RF_OK);
    assert_int_equal(rf_cursor_row_decode(tok, &row), RF_OK);
    assert_int_equal(row, 42);
    assert_int_equal(rf_cursor_row_decode("eDo0Mg", &row), RF_EINVAL); /* x:42 */
}

static bool
seen(char (*ids)[RF_ID_MAX], size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(ids[i], id) == 0) {
            return true;
        }
    }
    return false;
}

static void
test_pages_stable_while_creating(void **state)
{
    tu_env *env = *state;
    char created[30][RF_ID_MAX], got[64][RF_ID_MAX], extra[RF_ID_MAX], foreign[RF_ID_MAX];
    char token[RF_CURSOR_MAX] = "", next[RF_CURSOR_MAX];
    size_t total = 0;
    int64_t now = T0;

    /* 23 jobs, several sharing a created_at (ties broken by id) */
    for (int i = 0; i < 23; i++) {
        create_as(env, "acme", T0 + (i / 3) * 10, created[i]);
    }
    create_as(env, "other", T0 + 5, foreign);
    now = T0 + 1000;
    for (int p = 0; p < 10; p++) {
        size_t n =
            page(env, "acme", RF_JOB_SORT_CREATED_AT, true, NULL, token, 5, got + total, next);
        total += n;
        /* new jobs arrive between pages: they are newer than the cursor */
        create_as(env, "acme", now + p, extra);
        if (next[0] == '\0') {
            break;
        }
        snprintf(token, sizeof(token), "%s", next);
    }
    assert_int_equal(total, 23);
    for (int i = 0; i < 23; i++) {
        assert_true(seen(got, total, created[i]));
    }
    for (size_t i = 0; i < total; i++) {
        for (size_t j = i + 1; j < total; j++) {
            assert_string_not_equal(got[i], got[j]);
        }
    }
    assert_false(seen(got, total, foreign));
}

static void
test_ascending_and_percent_sort(void **state)
{
    tu_env *env = *state;
    char a[RF_ID_MAX], b[RF_ID_MAX], c[RF_ID_MAX], got[8][RF_ID_MAX], next[RF_CURSOR_MAX];
    const char *bad = "{\"title\":\"Bad\",\"input_source\":{\"type\":\"rows\",\"rows\":["
                      "{\"idea_title\":\"x\"}]},\"output\":{\"output_bucket\":\"b\"}}";
    size_t n;

    create_as(env, "default", T0, a);
    create_as(env, "default", T0 + 1, b);
    tu_create_job(env, bad, T0 + 2, c); /* fails at once: 100 % */
    n = page(env, "default", RF_JOB_SORT_CREATED_AT, false, NULL, NULL, 2, got, next);
    assert_int_equal(n, 2);
    assert_string_equal(got[0], a);
    assert_string_equal(got[1], b);
    n = page(env, "default", RF_JOB_SORT_CREATED_AT, false, NULL, next, 2, got, next);
    assert_int_equal(n, 1);
    assert_string_equal(got[0], c);
    assert_string_equal(next, "");
    n = page(env, "default", RF_JOB_SORT_PERCENT, true, NULL, NULL, 8, got, next);
    assert_int_equal(n, 3);
    assert_string_equal(got[0], c);
    /* state filter */
    n = page(env, "default", RF_JOB_SORT_CREATED_AT, true, "failed", NULL, 8, got, next);
    assert_int_equal(n, 1);
    assert_string_equal(got[0], c);
    n = page(env, "default", RF_JOB_SORT_CREATED_AT, true, "pending", NULL, 8, got, next);
    assert_int_equal(n, 2);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tokens),
        cmocka_unit_test_setup_teardown(test_pages_stable_while_creating, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_ascending_and_percent_sort, tu_setup, tu_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
