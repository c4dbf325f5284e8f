/* libFuzzer target for the untrusted text the API reads: the bulk-job
 * request decoder with its validation, the inline-rows reader, job creation
 * from those rows (row validation, units, paths) in an in-memory store, and
 * the CSV reader with its header mapping. Every input is tried as both JSON
 * and CSV. Invariants are checked with abort(). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "csv.h"
#include "jobs.h"
#include "request.h"
#include "rf_log.h"
#include "sources.h"
#include "store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static rf_store *store;
static unsigned uses;

static void
check(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "invariant failed: %s\n", what);
        abort();
    }
}

static void
fuzz_request(const char *text, size_t size, const rf_coord_config *cfg)
{
    rf_job_spec spec;
    rf_verr e;
    rf_rows rows;
    rf_err rv;

    memset(&e, 0, sizeof(e));
    rv = rf_job_request_parse(text, size, cfg, &spec, &e);
    if (rv != RF_OK) {
        check(rv == RF_EINVAL || rv == RF_ETOOBIG, "request error code");
        check(e.field[0] != '\0' && e.message[0] != '\0' && e.reason[0] != '\0',
              "validation error names a field");
        check(spec.request_json == NULL && spec.source.reader == NULL, "spec left empty");
        return;
    }
    check(spec.title[0] != '\0', "title present");
    check(strlen(spec.output_bucket) >= 1 && strstr(spec.output_bucket, "..") == NULL,
          "bucket name");
    check(strchr(spec.output_bucket, '/') == NULL, "bucket has no slash");
    check(spec.priority >= 0 && spec.priority <= 2, "priority");
    check(spec.overrides_json != NULL && spec.input_json != NULL, "json copies");
    /* Only inline rows are read: paths and URLs would touch files and the
     * network (local files are off in this configuration). */
    if (spec.source.reader != NULL && strcmp(spec.source.reader->type, "rows") == 0) {
        rv = rf_source_read(&spec.source, cfg, &rows, &e);
        if (rv == RF_OK) {
            char id[RF_ID_MAX];
            rf_job_view v;
            check(rows.n >= 1 && rows.n <= (size_t)cfg->max_rows_per_job, "row count");
            rv = rf_jobs_create(store, cfg, &spec, &rows, 1700000000000LL, id);
            check(rv == RF_OK, "job creation");
            rv = rf_jobs_get(store, id, 1700000000000LL, &v);
            check(rv == RF_OK, "job readable");
            check(v.items.total == rows.n, "one item per row");
            check(v.items.pending + v.items.failed + v.items.skipped == rows.n,
                  "items start pending, failed or skipped");
            check(v.percent_complete >= 0.0 && v.percent_complete <= 100.0, "percent range");
            rf_job_view_clear(&v);
            rf_rows_free(&rows);
        } else {
            check(rv == RF_EINVAL || rv == RF_ETOOBIG, "rows error code");
        }
    }
    rf_job_spec_clear(&spec);
}

static void
fuzz_csv(const char *text, size_t size)
{
    rf_csv_limits lim = {.max_field_bytes = 512, .max_records = 64, .max_cols = 32};
    rf_csv_table t;
    rf_rows rows;
    char err[256];
    bool header = false;
    rf_err rv;

    rv = rf_csv_parse(text, size, &lim, &t, err, sizeof(err));
    if (rv != RF_OK) {
        check(rv == RF_EINVAL || rv == RF_ETOOBIG, "csv error code");
        check(err[0] != '\0', "csv error has a reason");
        check(t.n == 0 && t.recs == NULL, "csv table left empty");
        return;
    }
    check(t.n <= lim.max_records, "record limit");
    for (size_t i = 0; i < t.n; i++) {
        check(t.recs[i].n >= 1 && t.recs[i].n <= lim.max_cols, "cells per record");
        for (size_t c = 0; c < t.recs[i].n; c++) {
            check(t.recs[i].cells[c] != NULL, "cell present");
            check(strlen(t.recs[i].cells[c]) <= lim.max_field_bytes, "field limit");
        }
    }
    rv = rf_csv_to_rows(&t, &rows, &header);
    check(rv == RF_OK, "row mapping");
    check(rows.n == t.n - (header ? 1 : 0), "rows after the header");
    for (size_t i = 0; i < rows.n; i++) {
        check(rows.rows[i].row_number == i + 1 + (header ? 1 : 0), "sheet row numbers");
    }
    rf_rows_free(&rows);
    rf_csv_table_free(&t);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rf_coord_config cfg;

    if (store == NULL || uses >= 500) {
        rf_log_init("fuzz", RF_LOG_ERROR);
        rf_store_close(&store);
        if (rf_store_open(":memory:", &store) != RF_OK) {
            abort();
        }
        uses = 0;
    }
    uses++;
    rf_config_defaults(&cfg);
    snprintf(cfg.bucket_root, sizeof(cfg.bucket_root), "/nonexistent/buckets");
    cfg.csv_url_allow_file = false;
    cfg.max_rows_per_job = 50;
    fuzz_request((const char *)data, size, &cfg);
    fuzz_csv((const char *)data, size);
    return 0;
}
