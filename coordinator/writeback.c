/* Write-back: outcomes -> ranges -> batchUpdate bodies -> calls. */
#include "writeback.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "rf_log.h"
#include "rf_util.h"
#include "validate.h"

typedef enum wb_what { WB_STATE = 0, WB_URL, WB_ERROR, WB_COUNT } wb_what;

static const char *const what_names[WB_COUNT] = {"state", "url", "error"};

rf_err
rf_wb_columns_parse(const json_t *obj, const char *field_prefix, rf_wb_columns *out, rf_verr *err)
{
    uint32_t cols[WB_COUNT] = {0};
    const char *key;
    json_t *v;
    char field[128];

    memset(out, 0, sizeof(*out));
    if (!json_is_object(obj) || json_object_size(obj) == 0) {
        rf_verr_set(err, field_prefix, "invalid_value",
                    "%s must name the columns to write, e.g. {\"state\": \"K\", \"url\": \"L\", "
                    "\"error\": \"M\"}",
                    field_prefix);
        return RF_EINVAL;
    }
    json_object_foreach((json_t *)obj, key, v)
    {
        int w = -1;
        for (int i = 0; i < WB_COUNT; i++) {
            if (strcmp(key, what_names[i]) == 0) {
                w = i;
            }
        }
        snprintf(field, sizeof(field), "%s.%s", field_prefix, key);
        if (w < 0) {
            rf_verr_set(err, field, "unknown_field", "%s: only state, url and error can be written",
                        field);
            return RF_EINVAL;
        }
        cols[w] = rf_a1_col_parse(json_string_value(v));
        if (!json_is_string(v) || cols[w] == 0) {
            rf_verr_set(err, field, "invalid_value", "%s must be a column letter such as \"K\"",
                        field);
            return RF_EINVAL;
        }
        for (int i = 0; i < WB_COUNT; i++) {
            if (i != w && cols[i] == cols[w]) {
                rf_verr_set(err, field, "invalid_value", "%s: column %s is used twice", field,
                            json_string_value(v));
                return RF_EINVAL;
            }
        }
    }
    out->state = cols[WB_STATE];
    out->url = cols[WB_URL];
    out->error = cols[WB_ERROR];
    return RF_OK;
}

/* ---- planning ---- */

/* A block of adjacent target columns. */
typedef struct segment {
    uint32_t first;
    size_t n;
    wb_what what[WB_COUNT];
} segment;

typedef struct target {
    uint32_t col;
    wb_what what;
} target;

static size_t
segments_of(const rf_wb_columns *cols, segment segs[WB_COUNT])
{
    target t[WB_COUNT];
    size_t n = 0, n_segs = 0;
    const uint32_t c[WB_COUNT] = {cols->state, cols->url, cols->error};

    for (int i = 0; i < WB_COUNT; i++) {
        if (c[i] != 0) {
            t[n].col = c[i];
            t[n].what = (wb_what)i;
            n++;
        }
    }
    for (size_t i = 1; i < n; i++) { /* insertion sort of at most 3 */
        for (size_t j = i; j > 0 && t[j - 1].col > t[j].col; j--) {
            target tmp = t[j];
            t[j] = t[j - 1];
            t[j - 1] = tmp;
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (n_segs == 0 || t[i].col != segs[n_segs - 1].first + segs[n_segs - 1].n) {
            segs[n_segs].first = t[i].col;
            segs[n_segs].n = 0;
            n_segs++;
        }
        segs[n_segs - 1].what[segs[n_segs - 1].n++] = t[i].what;
    }
    return n_segs;
}

static const char *
value_of(const rf_wb_row *r, wb_what w)
{
    const char *s = w == WB_STATE ? r->state : w == WB_URL ? r->url : r->error;
    return s != NULL ? s : "";
}

static int
cmp_row(const void *a, const void *b)
{
    const rf_wb_row *x = *(const rf_wb_row *const *)a;
    const rf_wb_row *y = *(const rf_wb_row *const *)b;

    if (x->row_number != y->row_number) {
        return x->row_number < y->row_number ? -1 : 1;
    }
    return x < y ? -1 : x > y; /* input order: the later entry sorts last */
}

typedef struct planner {
    json_t **bodies;
    size_t n, cap;
    size_t in_body, body_bytes, max_ranges;
    size_t ranges;
} planner;

static rf_err
planner_add(planner *p, json_t *range_obj, size_t bytes)
{
    json_t *data;

    if (p->n == 0 || p->in_body >= p->max_ranges || p->body_bytes + bytes > RF_WB_MAX_CALL_BYTES) {
        json_t *body;
        if (p->n == p->cap) {
            size_t cap = p->cap == 0 ? 4 : p->cap * 2;
            json_t **grown = realloc(p->bodies, cap * sizeof(*grown));
            if (grown == NULL) {
                json_decref(range_obj);
                return RF_ENOMEM;
            }
            p->bodies = grown;
            p->cap = cap;
        }
        body = json_pack("{s:s, s:[]}", "valueInputOption", "RAW", "data");
        if (body == NULL) {
            json_decref(range_obj);
            return RF_ENOMEM;
        }
        p->bodies[p->n++] = body;
        p->in_body = 0;
        p->body_bytes = 0;
    }
    data = json_object_get(p->bodies[p->n - 1], "data");
    if (json_array_append_new(data, range_obj) != 0) {
        return RF_ENOMEM;
    }
    p->in_body++;
    p->body_bytes += bytes;
    p->ranges++;
    return RF_OK;
}

void
rf_wb_bodies_free(json_t **bodies, size_t n)
{
    for (size_t i = 0; bodies != NULL && i < n; i++) {
        json_decref(bodies[i]);
    }
    free(bodies);
}

rf_err
rf_wb_plan(const char *sheet, const rf_wb_columns *cols, const rf_wb_row *rows, size_t n,
           size_t max_ranges_per_call, json_t ***bodies, size_t *n_bodies, size_t *n_ranges)
{
    segment segs[WB_COUNT];
    size_t n_segs = segments_of(cols, segs);
    const rf_wb_row **sorted = NULL;
    size_t m = 0;
    planner p = {.max_ranges = max_ranges_per_call > 0 ? max_ranges_per_call : 100};
    char prefix[RF_A1_TEXT_MAX] = "";
    rf_err rv = RF_OK;

    *bodies = NULL;
    *n_bodies = 0;
    *n_ranges = 0;
    if (n_segs == 0 || n == 0) {
        return RF_OK;
    }
    if (sheet != NULL && sheet[0] != '\0') {
        rv = rf_a1_format_sheet(sheet, prefix, sizeof(prefix) - 1);
        if (rv != RF_OK) {
            return rv;
        }
        strcat(prefix, "!");
    }
    sorted = malloc(n * sizeof(*sorted));
    if (sorted == NULL) {
        return RF_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        if (rows[i].row_number >= 1 && rows[i].row_number <= RF_A1_MAX_ROW) {
            sorted[m++] = &rows[i];
        }
    }
    qsort(sorted, m, sizeof(*sorted), cmp_row);
    /* Keep the last entry of each row number. */
    {
        size_t k = 0;
        for (size_t i = 0; i < m; i++) {
            if (k > 0 && sorted[k - 1]->row_number == sorted[i]->row_number) {
                sorted[k - 1] = sorted[i];
            } else {
                sorted[k++] = sorted[i];
            }
        }
        m = k;
    }
    for (size_t s = 0; s < n_segs; s++) {
        size_t i = 0;
        while (i < m) {
            /* A run of consecutive row numbers, at most RF_WB_MAX_ROWS_PER_RANGE. */
            size_t j = i + 1, bytes = 64;
            char a[4], b[4], range[RF_A1_TEXT_MAX + 32];
            json_t *values, *obj;

            while (j < m && j - i < RF_WB_MAX_ROWS_PER_RANGE &&
                   sorted[j]->row_number == sorted[j - 1]->row_number + 1) {
                j++;
            }
            values = json_array();
            for (size_t r = i; values != NULL && r < j; r++) {
                json_t *cells = json_array();
                for (size_t k = 0; cells != NULL && k < segs[s].n; k++) {
                    const char *text = value_of(sorted[r], segs[s].what[k]);
                    bytes += strlen(text) + 4;
                    if (json_array_append_new(cells, rf_json_string_lossy(text)) != 0) {
                        json_decref(cells);
                        cells = NULL;
                    }
                }
                if (json_array_append_new(values, cells) != 0) {
                    json_decref(values);
                    values = NULL;
                }
            }
            rf_a1_col_name(segs[s].first, a);
            rf_a1_col_name(segs[s].first + (uint32_t)segs[s].n - 1, b);
            snprintf(range, sizeof(range), "%s%s%u:%s%u", prefix, a, sorted[i]->row_number, b,
                     sorted[j - 1]->row_number);
            obj = json_pack("{s:s, s:s, s:o}", "range", range, "majorDimension", "ROWS", "values",
                            values);
            if (obj == NULL) {
                rv = RF_ENOMEM;
                goto out;
            }
            rv = planner_add(&p, obj, bytes);
            if (rv != RF_OK) {
                goto out;
            }
            i = j;
        }
    }
out:
    free(sorted);
    if (rv != RF_OK) {
        rf_wb_bodies_free(p.bodies, p.n);
        return rv;
    }
    *bodies = p.bodies;
    *n_bodies = p.n;
    *n_ranges = p.ranges;
    return RF_OK;
}

/* ---- calls ---- */

rf_err
rf_sheets_writeback(rf_sheets_client *c, const char *sheet_id, const char *range,
                    const rf_wb_columns *cols, const rf_wb_row *rows, size_t n,
                    const rf_sheets_hooks *hooks, rf_wb_stats *stats, rf_gerror *e)
{
    char id[RF_SHEETS_ID_MAX];
    rf_a1_range r;
    json_t **bodies = NULL;
    size_t n_bodies = 0, n_ranges = 0;
    char *url = NULL;
    const rf_sheets_config *cfg = rf_sheets_client_config(c);
    rf_sheets_errctx ctx;
    rf_err rv;

    memset(stats, 0, sizeof(*stats));
    memset(&r, 0, sizeof(r));
    if (rf_sheets_client_access(c) != RF_SHEETS_ACCESS_SERVICE_ACCOUNT) {
        rf_gerror_set(e, "writeback_not_allowed", 0, NULL,
                      "writing results back needs a service account (API keys and public links "
                      "can only read): configure sheets_credentials_file and share the sheet "
                      "with the service account as Editor");
        return RF_EINVAL;
    }
    rv = rf_sheets_parse_id(sheet_id, id, NULL, e);
    if (rv != RF_OK) {
        return rv;
    }
    if (range != NULL && range[0] != '\0' && rf_a1_parse(range, &r, NULL, 0) != RF_OK) {
        rf_gerror_set(e, "invalid_range", 0, NULL, "range '%.200s' is not A1 notation", range);
        return RF_EINVAL;
    }
    rv = rf_wb_plan(r.sheet, cols, rows, n, (size_t)cfg->write_batch_ranges, &bodies, &n_bodies,
                    &n_ranges);
    if (rv != RF_OK) {
        rf_gerror_set(e, "internal_error", 0, NULL, "could not plan the write-back (%s)",
                      rf_strerror(rv));
        return rv;
    }
    if (asprintf(&url, "%s/v4/spreadsheets/%s/values:batchUpdate", cfg->api_base, id) < 0) {
        url = NULL;
        rv = RF_ENOMEM;
        goto out;
    }
    ctx = (rf_sheets_errctx){.sheet_id = id,
                             .range = range != NULL ? range : "",
                             .access = RF_SHEETS_ACCESS_SERVICE_ACCOUNT,
                             .client_email = rf_sheets_client_email(c),
                             .write = true};
    for (size_t i = 0; i < n_bodies; i++) {
        rf_sheets_response resp;
        char *text = json_dumps(bodies[i], JSON_COMPACT);
        json_t *answer;

        if (text == NULL) {
            rv = RF_ENOMEM;
            goto out;
        }
        rv = rf_sheets_request(c, RF_SHEETS_ACCESS_SERVICE_ACCOUNT, RF_GAUTH_SCOPE_WRITE,
                               RF_SHEETS_QUOTA_WRITE, url, text, false, hooks, &ctx, &resp, e);
        free(text);
        if (rv != RF_OK) {
            rf_warn("sheets: write-back to %s stopped after %zu of %zu calls: %s", id, i, n_bodies,
                    e->code);
            goto out;
        }
        answer = json_loadb(resp.body != NULL ? resp.body : "", resp.len, 0, NULL);
        stats->calls++;
        stats->ranges += json_array_size(json_object_get(bodies[i], "data"));
        stats->updated_cells +=
            (size_t)json_integer_value(json_object_get(answer, "totalUpdatedCells"));
        json_decref(answer);
        rf_sheets_response_clear(&resp);
    }
    rf_info("sheets: wrote %zu rows back to %s in %zu calls (%zu cells)", n, id, stats->calls,
            stats->updated_cells);
out:
    free(url);
    rf_wb_bodies_free(bodies, n_bodies);
    return rv;
}
