/* Helpers shared by the coordinator tests: a temporary directory holding a
 * real SQLite file and bucket root, and job creation from a JSON request. */
#ifndef RF_COORD_TESTUTIL_H
#define RF_COORD_TESTUTIL_H

#include <stdint.h>

#include "config.h"
#include "rf_proto.h"
#include "store.h"

typedef struct tu_env {
    char dir[256];
    rf_coord_config cfg;
    rf_store *st;
} tu_env;

/* Makes a fresh temp dir, config pointing into it, and opens the store.
 * Returns 0 on success (cmocka setup convention). */
int tu_env_open(tu_env *env);

/* Closes the store and removes the temp dir. */
void tu_env_close(tu_env *env);

/* cmocka fixtures: *state becomes a heap tu_env opened with tu_env_open
 * (setup returns -1 when that fails), closed and freed by tu_teardown. */
int tu_setup(void **state);
int tu_teardown(void **state);

/* Parses request_json, reads its source and creates the job at now_ms;
 * fails the test on any error. */
void tu_create_job(tu_env *env, const char *request_json, int64_t now_ms, char job_id[RF_ID_MAX]);

/* Writes size bytes to path, creating parent directories. */
void tu_write_file(const char *path, size_t size);

/* Counts events of a type for a job. */
size_t tu_count_events(tu_env *env, const char *job_id, const char *type);

#endif
