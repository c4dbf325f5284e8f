/* Coordinator test helpers. */
#include "testutil.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ftw.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jobs.h"
#include "request.h"
#include "rf_util.h"
#include "sources.h"

int
tu_env_open(tu_env *env)
{
    char err[256];

    memset(env, 0, sizeof(*env));
    snprintf(env->dir, sizeof(env->dir), "/tmp/rf-coord-test-XXXXXX");
    if (mkdtemp(env->dir) == NULL) {
        return -1;
    }
    rf_config_defaults(&env->cfg);
    snprintf(env->cfg.db_path, sizeof(env->cfg.db_path), "%s/rf.db", env->dir);
    snprintf(env->cfg.bucket_root, sizeof(env->cfg.bucket_root), "%s/buckets", env->dir);
    if (rf_config_finalize(&env->cfg, err, sizeof(err)) != RF_OK) {
        return -1;
    }
    if (rf_mkdirs(env->cfg.bucket_root) != RF_OK) {
        return -1;
    }
    return rf_store_open(env->cfg.db_path, &env->st) == RF_OK ? 0 : -1;
}

static int
rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void
tu_env_close(tu_env *env)
{
    rf_store_close(&env->st);
    if (env->dir[0] != '\0') {
        nftw(env->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    }
}

void
tu_create_job(tu_env *env, const char *request_json, int64_t now_ms, char job_id[RF_ID_MAX])
{
    rf_job_spec spec;
    rf_rows rows;
    rf_verr verr;
    rf_err rv;

    memset(&verr, 0, sizeof(verr));
    rv = rf_job_request_parse(request_json, strlen(request_json), &env->cfg, &spec, &verr);
    if (rv != RF_OK) {
        fail_msg("request refused: %s (%s)", verr.message, verr.field);
    }
    rv = rf_source_read(&spec.source, &env->cfg, &rows, &verr);
    if (rv != RF_OK) {
        fail_msg("source refused: %s", verr.message);
    }
    rv = rf_jobs_create(env->st, &env->cfg, &spec, &rows, now_ms, job_id);
    assert_int_equal(rv, RF_OK);
    rf_rows_free(&rows);
    rf_job_spec_clear(&spec);
}

void
tu_write_file(const char *path, size_t size)
{
    char dir[RF_PATH_MAX];
    FILE *f;

    snprintf(dir, sizeof(dir), "%s", path);
    assert_int_equal(rf_mkdirs(dirname(dir)), RF_OK);
    f = fopen(path, "wb");
    assert_non_null(f);
    for (size_t i = 0; i < size; i++) {
        fputc((int)(i & 0xff), f);
    }
    fclose(f);
}

size_t
tu_count_events(tu_env *env, const char *job_id, const char *type)
{
    rf_event_rec *evs = NULL;
    size_t n = 0, count = 0;

    assert_int_equal(rf_store_begin(env->st), RF_OK);
    assert_int_equal(rf_store_events_list(env->st, job_id, 0, 10000, &evs, &n), RF_OK);
    rf_store_rollback(env->st);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(evs[i].type, type) == 0) {
            count++;
        }
    }
    rf_event_recs_free(evs, n);
    return count;
}

int
tu_setup(void **state)
{
    tu_env *env = calloc(1, sizeof(*env));

    if (env == NULL || tu_env_open(env) != 0) {
        free(env);
        return -1;
    }
    *state = env;
    return 0;
}

int
tu_teardown(void **state)
{
    tu_env *env = *state;

    tu_env_close(env);
    free(env);
    return 0;
}
