/* sheets_probe: a small driver (not installed) that runs the Sheets modules
 * against a server and prints one JSON object on stdout, for the Python
 * integration tests (tests/integration/test_sheets_*.py).
 *
 *   sheets_probe [options] fetch ID RANGE [GID]
 *   sheets_probe [options] read ID RANGE            (job semantics)
 *   sheets_probe [options] ingest ID RANGE LEVEL    (read + validate, timed)
 *   sheets_probe [options] connect ID RANGE [LEVEL] [write]
 *   sheets_probe [options] repeat N SLEEP_MS ID RANGE
 *   sheets_probe [options] parallel N ID RANGE      (N threads, one client)
 *   sheets_probe [options] writeback ID RANGE COLUMNS_JSON OUTCOMES_JSON
 *
 * Options: --api-base URL, --csv-base URL, --api-key KEY, --credentials
 * FILE, --no-csv, --max-rows N, --max-retries N, --backoff-ms N,
 * --backoff-max-ms N, --read-per-min N, --write-per-min N, --batch-ranges N,
 * --timeout-ms N, --quota-window-ms N, --max-response-bytes N, --stop-after-waits N (the
 * wait hook says stop).
 *
 * Failures print {"ok": false, "error_code", "message", "http_status"} and
 * exit 1; usage errors exit 2. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>

#include "rf_log.h"
#include "rf_util.h"
#include "sheets.h"
#include "sheets_connect.h"
#include "validate.h"
#include "writeback.h"

typedef struct probe {
    json_t *waits;
    long stop_after;
} probe;

static bool
on_wait(void *ctx, const char *reason, int64_t wait_ms, int attempt)
{
    probe *p = ctx;

    json_array_append_new(p->waits, json_pack("{s:s, s:I, s:i}", "reason", reason, "ms",
                                              (json_int_t)wait_ms, "attempt", attempt));
    return p->stop_after <= 0 || (long)json_array_size(p->waits) < p->stop_after;
}

static int
usage(void)
{
    fprintf(stderr, "usage: sheets_probe [options] fetch|read|ingest|connect|repeat|writeback "
                    "...\n");
    return 2;
}

static void
print(json_t *o)
{
    char *s = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
    puts(s != NULL ? s : "{}");
    free(s);
}

static int
fail(const rf_gerror *e, probe *p, rf_sheets_client *c)
{
    json_t *o = json_pack("{s:b, s:s, s:s, s:I, s:s, s:O, s:I}", "ok", 0, "error_code", e->code,
                          "message", e->message, "http_status", (json_int_t)e->http_status,
                          "google_status", e->google_status, "waits", p->waits, "token_requests",
                          (json_int_t)(c != NULL && rf_sheets_client_gauth(c) != NULL
                                           ? rf_gauth_token_requests(rf_sheets_client_gauth(c))
                                           : 0));
    print(o);
    json_decref(o);
    return 1;
}

static json_t *
rows_json(const rf_rows *rows)
{
    json_t *arr = json_array();

    for (size_t i = 0; i < rows->n; i++) {
        json_t *fields = json_object();
        for (int f = 0; f < RF_F_COUNT; f++) {
            if (rows->rows[i].fields[f] != NULL) {
                json_object_set_new(fields, rf_field_name((rf_field)f),
                                    json_string(rows->rows[i].fields[f]));
            }
        }
        json_array_append_new(
            arr, json_pack("{s:i, s:o}", "row", (int)rows->rows[i].row_number, "fields", fields));
    }
    return arr;
}

static json_int_t
token_requests(rf_sheets_client *c)
{
    rf_gauth *g = rf_sheets_client_gauth(c);
    return g != NULL ? (json_int_t)rf_gauth_token_requests(g) : 0;
}

static int
cmd_fetch(rf_sheets_client *c, probe *p, int argc, char **argv)
{
    rf_sheet_values v;
    rf_rows rows;
    rf_gerror e;
    bool header = false;
    json_t *o;

    if (argc < 2) {
        return usage();
    }
    if (rf_sheets_fetch(c, argv[0], argv[1], argc > 2 ? argv[2] : NULL,
                        &(rf_sheets_hooks){.on_wait = on_wait, .ctx = p}, &v, &e) != RF_OK) {
        return fail(&e, p, c);
    }
    if (rf_sheet_values_to_rows(&v, &rows, &header) != RF_OK) {
        rf_sheet_values_clear(&v);
        return 1;
    }
    o = json_pack("{s:b, s:s, s:s, s:i, s:i, s:b, s:b, s:o, s:I, s:O, s:I}", "ok", 1, "access",
                  rf_sheets_access_name(v.access), "range", v.range, "row_start", (int)v.row_start,
                  "col_start", (int)v.col_start, "truncated", v.truncated, "header", header, "rows",
                  rows_json(&rows), "elapsed_ms", (json_int_t)v.elapsed_ms, "waits", p->waits,
                  "token_requests", token_requests(c));
    print(o);
    json_decref(o);
    rf_rows_free(&rows);
    rf_sheet_values_clear(&v);
    return 0;
}

static int
cmd_read(rf_sheets_client *c, probe *p, int argc, char **argv, bool validate, const char *level_s)
{
    rf_rows rows;
    rf_gerror e;
    bool header = false;
    rf_vlevel level = RF_VLEVEL_MODERATE;
    rf_validation val = {0};
    int64_t t0 = rf_mono_ms(), read_ms;
    json_t *o;

    if (argc < 2 || (level_s != NULL && !rf_vlevel_parse(level_s, &level))) {
        return usage();
    }
    if (rf_sheets_read_rows(c, argv[0], argv[1], NULL,
                            &(rf_sheets_hooks){.on_wait = on_wait, .ctx = p}, &rows, &header,
                            &e) != RF_OK) {
        return fail(&e, p, c);
    }
    read_ms = rf_mono_ms() - t0;
    if (validate && rf_validate_rows(&rows, level, 20, &val) != RF_OK) {
        rf_rows_free(&rows);
        return 1;
    }
    o = json_pack("{s:b, s:i, s:b, s:I, s:I, s:O}", "ok", 1, "row_count", (int)rows.n, "header",
                  header, "read_ms", (json_int_t)read_ms, "total_ms",
                  (json_int_t)(rf_mono_ms() - t0), "waits", p->waits);
    if (validate) {
        json_object_set_new(o, "accepted", json_integer((json_int_t)val.accepted));
        json_object_set_new(o, "refused", json_integer((json_int_t)val.refused));
        json_object_set_new(o, "skipped", json_integer((json_int_t)val.skipped));
        json_object_set(o, "errors", val.errors);
    } else {
        json_object_set_new(o, "rows", rows_json(&rows));
    }
    print(o);
    json_decref(o);
    rf_validation_clear(&val);
    rf_rows_free(&rows);
    return 0;
}

static int
cmd_connect(rf_sheets_client *c, probe *p, int argc, char **argv)
{
    rf_sheets_connect_req req;
    json_t *body, *out = NULL;
    rf_verr verr;
    rf_gerror e;

    if (argc < 2) {
        return usage();
    }
    body = json_pack("{s:s, s:s, s:s, s:s}", "sheet_id", argv[0], "range", argv[1],
                     "validation_level", argc > 2 ? argv[2] : "moderate", "share_permissions",
                     argc > 3 ? argv[3] : "read");
    if (rf_sheets_connect_parse(body, &req, &verr) != RF_OK) {
        json_decref(body);
        rf_gerror_set(&e, "validation_error", 400, NULL, "%s: %s", verr.field, verr.message);
        return fail(&e, p, c);
    }
    json_decref(body);
    if (rf_sheets_connect(c, &req, &(rf_sheets_hooks){.on_wait = on_wait, .ctx = p}, &out, &e) !=
        RF_OK) {
        return fail(&e, p, c);
    }
    json_object_set_new(out, "ok", json_true());
    json_object_set(out, "waits", p->waits);
    print(out);
    json_decref(out);
    return 0;
}

static int
cmd_repeat(rf_sheets_client *c, probe *p, int argc, char **argv)
{
    long n, sleep_ms;
    json_t *o;

    if (argc < 4) {
        return usage();
    }
    n = strtol(argv[0], NULL, 10);
    sleep_ms = strtol(argv[1], NULL, 10);
    for (long i = 0; i < n; i++) {
        rf_sheet_values v;
        rf_gerror e;
        if (rf_sheets_fetch(c, argv[2], argv[3], NULL, NULL, &v, &e) != RF_OK) {
            return fail(&e, p, c);
        }
        rf_sheet_values_clear(&v);
        if (sleep_ms > 0 && i + 1 < n) {
            struct timespec ts = {sleep_ms / 1000, (sleep_ms % 1000) * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    o = json_pack("{s:b, s:i, s:I}", "ok", 1, "reads", (int)n, "token_requests", token_requests(c));
    print(o);
    json_decref(o);
    return 0;
}

typedef struct par_arg {
    rf_sheets_client *c;
    const char *id, *range;
    int ok;
} par_arg;

static void *
par_fetch(void *arg)
{
    par_arg *a = arg;
    rf_sheet_values v;
    rf_gerror e;

    a->ok = rf_sheets_fetch(a->c, a->id, a->range, NULL, NULL, &v, &e) == RF_OK;
    rf_sheet_values_clear(&v);
    return NULL;
}

/* N threads read at once through one client: one token serves them all. */
static int
cmd_parallel(rf_sheets_client *c, probe *p, int argc, char **argv)
{
    pthread_t th[32];
    par_arg args[32];
    long n;
    int ok = 0;
    json_t *o;

    if (argc < 3) {
        return usage();
    }
    n = strtol(argv[0], NULL, 10);
    if (n < 1 || n > 32) {
        return usage();
    }
    for (long i = 0; i < n; i++) {
        args[i] = (par_arg){.c = c, .id = argv[1], .range = argv[2]};
        if (pthread_create(&th[i], NULL, par_fetch, &args[i]) != 0) {
            n = i;
            break;
        }
    }
    for (long i = 0; i < n; i++) {
        pthread_join(th[i], NULL);
        ok += args[i].ok;
    }
    o = json_pack("{s:b, s:i, s:i, s:I}", "ok", ok == n, "threads", (int)n, "reads_ok", ok,
                  "token_requests", token_requests(c));
    print(o);
    json_decref(o);
    (void)p;
    return ok == n ? 0 : 1;
}

static int
cmd_writeback(rf_sheets_client *c, probe *p, int argc, char **argv)
{
    json_t *cols_j, *outs_j, *item, *o;
    rf_wb_columns cols;
    rf_wb_row *rows;
    rf_wb_stats stats;
    rf_verr verr;
    rf_gerror e;
    size_t i, n;
    int rc = 0;

    if (argc < 4) {
        return usage();
    }
    cols_j = json_loads(argv[2], 0, NULL);
    outs_j = json_loads(argv[3], 0, NULL);
    if (rf_wb_columns_parse(cols_j, "writeback.columns", &cols, &verr) != RF_OK ||
        !json_is_array(outs_j)) {
        fprintf(stderr, "bad columns or outcomes: %s\n", verr.message);
        json_decref(cols_j);
        json_decref(outs_j);
        return 2;
    }
    n = json_array_size(outs_j);
    rows = calloc(n + 1, sizeof(*rows));
    json_array_foreach(outs_j, i, item)
    {
        rows[i].row_number = (uint32_t)json_integer_value(json_object_get(item, "row"));
        rows[i].state = json_string_value(json_object_get(item, "state"));
        rows[i].url = json_string_value(json_object_get(item, "url"));
        rows[i].error = json_string_value(json_object_get(item, "error"));
    }
    if (rf_sheets_writeback(c, argv[0], argv[1], &cols, rows, n,
                            &(rf_sheets_hooks){.on_wait = on_wait, .ctx = p}, &stats,
                            &e) != RF_OK) {
        rc = fail(&e, p, c);
    } else {
        o = json_pack("{s:b, s:I, s:I, s:I, s:O}", "ok", 1, "calls", (json_int_t)stats.calls,
                      "ranges", (json_int_t)stats.ranges, "updated_cells",
                      (json_int_t)stats.updated_cells, "waits", p->waits);
        print(o);
        json_decref(o);
    }
    free(rows);
    json_decref(cols_j);
    json_decref(outs_j);
    return rc;
}

int
main(int argc, char **argv)
{
    rf_sheets_config cfg;
    rf_sheets_client *c = NULL;
    probe p = {.waits = json_array(), .stop_after = 0};
    char err[512] = "";
    int i = 1, rc;

    rf_log_init("sheets_probe", RF_LOG_WARN);
    rf_sheets_config_defaults(&cfg);
    cfg.backoff_initial_ms = 50;
    cfg.backoff_max_ms = 400;
    cfg.timeout_ms = 5000;
    for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
        const char *k = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(k, "--no-csv") == 0) {
            cfg.csv_export = false;
            continue;
        }
        if (v == NULL) {
            return usage();
        }
        i++;
        if (strcmp(k, "--api-base") == 0) {
            snprintf(cfg.api_base, sizeof(cfg.api_base), "%s", v);
        } else if (strcmp(k, "--csv-base") == 0) {
            snprintf(cfg.csv_export_base, sizeof(cfg.csv_export_base), "%s", v);
        } else if (strcmp(k, "--api-key") == 0) {
            snprintf(cfg.api_key, sizeof(cfg.api_key), "%s", v);
        } else if (strcmp(k, "--credentials") == 0) {
            snprintf(cfg.credentials_file, sizeof(cfg.credentials_file), "%s", v);
        } else if (strcmp(k, "--max-rows") == 0) {
            cfg.max_rows = strtoll(v, NULL, 10);
        } else if (strcmp(k, "--max-retries") == 0) {
            cfg.max_retries = strtoll(v, NULL, 10);
        } else if (strcmp(k, "--backoff-ms") == 0) {
            cfg.backoff_initial_ms = strtoll(v, NULL, 10);
        } else if (strcmp(k, "--backoff-max-ms") == 0) {
            cfg.backoff_max_ms = strtoll(v, NULL, 10);
        } else if (strcmp(k, "--read-per-min") == 0) {
            cfg.read_calls_per_min = strtoll(v, NULL, 10);
        } else if (strcmp(k, "--write-per-min") == 0) {
            cfg.write_calls_per_min = strtoll(v, NULL, 10);
        } else if (strcmp(k, "--batch-ranges") == 0) {
            cfg.write_batch_ranges = strtoll(v, NULL, 10);
        } else if (strcmp(k, "--quota-window-ms") == 0) {
            cfg.quota_window_ms = strtoll(v, NULL, 10);
        } else if (strcmp(k, "--timeout-ms") == 0) {
            cfg.timeout_ms = strtoll(v, NULL, 10);
        } else if (strcmp(k, "--max-response-bytes") == 0) {
            cfg.max_response_bytes = strtoll(v, NULL, 10);
        } else if (strcmp(k, "--stop-after-waits") == 0) {
            p.stop_after = strtol(v, NULL, 10);
        } else {
            return usage();
        }
    }
    if (i >= argc) {
        return usage();
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (rf_sheets_client_new(&cfg, &c, err, sizeof(err)) != RF_OK) {
        rf_gerror e;
        rf_gerror_set(&e, "client_config", 0, NULL, "%s", err);
        rc = fail(&e, &p, NULL);
        goto out;
    }
    if (strcmp(argv[i], "fetch") == 0) {
        rc = cmd_fetch(c, &p, argc - i - 1, argv + i + 1);
    } else if (strcmp(argv[i], "read") == 0) {
        rc = cmd_read(c, &p, argc - i - 1, argv + i + 1, false, NULL);
    } else if (strcmp(argv[i], "ingest") == 0) {
        rc = cmd_read(c, &p, argc - i - 1, argv + i + 1, true,
                      argc - i - 1 > 2 ? argv[i + 3] : "moderate");
    } else if (strcmp(argv[i], "connect") == 0) {
        rc = cmd_connect(c, &p, argc - i - 1, argv + i + 1);
    } else if (strcmp(argv[i], "repeat") == 0) {
        rc = cmd_repeat(c, &p, argc - i - 1, argv + i + 1);
    } else if (strcmp(argv[i], "parallel") == 0) {
        rc = cmd_parallel(c, &p, argc - i - 1, argv + i + 1);
    } else if (strcmp(argv[i], "writeback") == 0) {
        rc = cmd_writeback(c, &p, argc - i - 1, argv + i + 1);
    } else {
        rc = usage();
    }
out:
    rf_sheets_client_free(&c);
    json_decref(p.waits);
    curl_global_cleanup();
    return rc;
}
