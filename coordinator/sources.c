/* Source readers: CSV (file or URL) and inline rows. */
#include "sources.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <curl/curl.h>

#include "csv.h"
#include "rf_log.h"
#include "rf_util.h"

static rf_err csv_parse(const json_t *obj, const rf_coord_config *cfg, rf_source *src,
                        rf_verr *err);
static rf_err csv_read(rf_source *src, const rf_coord_config *cfg, rf_rows *out, rf_verr *err);
static rf_err rows_parse(const json_t *obj, const rf_coord_config *cfg, rf_source *src,
                         rf_verr *err);
static rf_err rows_read(rf_source *src, const rf_coord_config *cfg, rf_rows *out, rf_verr *err);
static rf_err sheet_parse(const json_t *obj, const rf_coord_config *cfg, rf_source *src,
                          rf_verr *err);
static rf_err sheet_read(rf_source *src, const rf_coord_config *cfg, rf_rows *out, rf_verr *err);

static const rf_source_reader readers[] = {
    {"csv", csv_parse, csv_read},
    {"rows", rows_parse, rows_read},
    {"sheet", sheet_parse, sheet_read},
};

rf_err
rf_source_parse(const json_t *obj, const rf_coord_config *cfg, rf_source *out, rf_verr *err)
{
    const json_t *type;
    const char *t;

    memset(out, 0, sizeof(*out));
    if (obj == NULL) {
        rf_verr_set(err, "input_source", "required", "input_source is required");
        return RF_EINVAL;
    }
    if (!json_is_object(obj)) {
        rf_verr_set(err, "input_source", "invalid_type", "input_source must be an object");
        return RF_EINVAL;
    }
    type = json_object_get(obj, "type");
    if (type == NULL) {
        rf_verr_set(err, "input_source.type", "required", "input_source.type is required");
        return RF_EINVAL;
    }
    if (!json_is_string(type)) {
        rf_verr_set(err, "input_source.type", "invalid_type", "input_source.type must be a string");
        return RF_EINVAL;
    }
    t = json_string_value(type);
    for (size_t i = 0; i < sizeof(readers) / sizeof(readers[0]); i++) {
        if (strcmp(readers[i].type, t) == 0) {
            rf_err rv = readers[i].parse(obj, cfg, out, err);
            if (rv != RF_OK) {
                rf_source_clear(out);
                return rv;
            }
            out->reader = &readers[i];
            return RF_OK;
        }
    }
    rf_verr_set(err, "input_source.type", "invalid_value",
                "input_source.type must be one of csv, rows, sheet");
    return RF_EINVAL;
}

static rf_err
check_count(const rf_rows *rows, const rf_coord_config *cfg, const char *field, rf_verr *err)
{
    if (rows->n == 0) {
        rf_verr_set(err, field, "empty", "%s has no data rows", field);
        return RF_EINVAL;
    }
    if (rows->n > (size_t)cfg->max_rows_per_job) {
        rf_verr_set(err, field, "too_large", "%s has %zu data rows, more than the limit of %lld",
                    field, rows->n, (long long)cfg->max_rows_per_job);
        return RF_ETOOBIG;
    }
    return RF_OK;
}

rf_err
rf_source_read(rf_source *src, const rf_coord_config *cfg, rf_rows *out, rf_verr *err)
{
    memset(out, 0, sizeof(*out));
    if (src->reader == NULL || src->reader->read == NULL) {
        rf_verr_set(err, "input_source.type", "unsupported", "input_source cannot be read");
        return RF_EINVAL;
    }
    return src->reader->read(src, cfg, out, err);
}

json_t *
rf_source_summary(const rf_source *src)
{
    const char *type = src->reader != NULL ? src->reader->type : "unknown";

    if (src->sheet_id[0] != '\0') {
        json_t *o =
            json_pack("{s:s, s:s, s:s}", "type", type, "sheet_id", src->sheet_id, "range",
                      src->sheet_range[0] != '\0' ? src->sheet_range : RF_SHEETS_DEFAULT_RANGE);
        if (o != NULL && src->sheet_gid[0] != '\0') {
            json_object_set_new(o, "gid", json_string(src->sheet_gid));
        }
        return o;
    }
    if (src->path[0] != '\0') {
        return json_pack("{s:s, s:s}", "type", type, "path", src->path);
    }
    if (src->url[0] != '\0') {
        return json_pack("{s:s, s:s}", "type", type, "url", src->url);
    }
    return json_pack("{s:s, s:I}", "type", type, "row_count", (json_int_t)src->row_count);
}

void
rf_source_clear(rf_source *src)
{
    if (src == NULL) {
        return;
    }
    rf_rows_free(&src->rows);
    memset(src, 0, sizeof(*src));
}

/* ---- sheet ---- */

/* Checks the id, range and tab without any request: a mistake there is the
 * request's, answered at once. */
static rf_err
sheet_parse(const json_t *obj, const rf_coord_config *cfg, rf_source *src, rf_verr *err)
{
    const json_t *id = json_object_get(obj, "sheet_id");
    const json_t *range = json_object_get(obj, "range");
    const json_t *gid = json_object_get(obj, "gid");
    char gid_in_url[RF_SHEETS_GID_MAX] = "";
    char a1_err[160] = "";
    rf_a1_range parsed;
    rf_gerror ge;

    (void)cfg;
    if (id == NULL) {
        rf_verr_set(err, "input_source.sheet_id", "required", "input_source.sheet_id is required");
        return RF_EINVAL;
    }
    if (!json_is_string(id)) {
        rf_verr_set(err, "input_source.sheet_id", "invalid_type",
                    "input_source.sheet_id must be a string");
        return RF_EINVAL;
    }
    memset(&ge, 0, sizeof(ge));
    if (rf_sheets_parse_id(json_string_value(id), src->sheet_id, gid_in_url, &ge) != RF_OK) {
        rf_verr_set(err, "input_source.sheet_id", "invalid_value", "input_source.sheet_id: %s",
                    ge.message);
        return RF_EINVAL;
    }
    if (range != NULL && !json_is_null(range)) {
        if (!json_is_string(range)) {
            rf_verr_set(err, "input_source.range", "invalid_type",
                        "input_source.range must be a string in A1 notation");
            return RF_EINVAL;
        }
        if (rf_a1_parse(json_string_value(range), &parsed, a1_err, sizeof(a1_err)) != RF_OK ||
            rf_strlcpy(src->sheet_range, json_string_value(range), sizeof(src->sheet_range)) !=
                RF_OK) {
            rf_verr_set(err, "input_source.range", "invalid_value",
                        "input_source.range '%.64s' is not A1 notation (e.g. A1:J100, A2:J, "
                        "'Sheet 1'!A:J): %s",
                        json_string_value(range), a1_err);
            return RF_EINVAL;
        }
    }
    if (gid != NULL && !json_is_null(gid)) {
        const char *g = json_string_value(gid);
        char num[32];
        if (json_is_integer(gid) && json_integer_value(gid) >= 0) {
            snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(gid));
            g = num;
        }
        if (g == NULL || g[0] == '\0' || strspn(g, "0123456789") != strlen(g) ||
            rf_strlcpy(src->sheet_gid, g, sizeof(src->sheet_gid)) != RF_OK) {
            rf_verr_set(err, "input_source.gid", "invalid_value",
                        "input_source.gid must be a tab id (digits, as in #gid=0 of the URL)");
            return RF_EINVAL;
        }
    } else {
        memcpy(src->sheet_gid, gid_in_url, sizeof(src->sheet_gid));
    }
    return RF_OK;
}

static bool
sheet_on_wait(void *ctx, const char *reason, int64_t wait_ms, int attempt)
{
    rf_source *src = ctx;

    /* The job does not exist yet while its rows are read. A wait for quota
     * is better spent with the job created and showing rate_limited than
     * with the create request hanging (docs/SHEETS.md). */
    if (src->may_defer && (strcmp(reason, "rate_limited") == 0 ||
                           (strcmp(reason, "quota") == 0 && wait_ms > RF_SOURCE_DEFER_WAIT_MS))) {
        rf_info("sheets: reading %s must wait %lld ms (%s): the rows are read in the background",
                src->sheet_id, (long long)wait_ms, reason);
        src->deferred = true;
        return false;
    }
    rf_info("sheets: reading %s waits %lld ms (%s, retry %d)", src->sheet_id, (long long)wait_ms,
            reason, attempt);
    return true;
}

static rf_err
sheet_read(rf_source *src, const rf_coord_config *cfg, rf_rows *out, rf_verr *err)
{
    rf_sheets_hooks hooks = {sheet_on_wait, NULL, src};
    int64_t t0 = rf_now_ms();
    rf_err rv;

    memset(&src->sheet_err, 0, sizeof(src->sheet_err));
    src->deferred = false;
    if (cfg->sheets == NULL) {
        rf_gerror_set(&src->sheet_err, "sheets_unavailable", 0, "",
                      "this coordinator has no Google Sheets client configured");
        rf_verr_set(err, "input_source", "sheets_unavailable", "%s", src->sheet_err.message);
        return RF_EINVAL;
    }
    rv = rf_sheets_read_rows(cfg->sheets, src->sheet_id,
                             src->sheet_range[0] != '\0' ? src->sheet_range : NULL,
                             src->sheet_gid[0] != '\0' ? src->sheet_gid : NULL,
                             src->hooks != NULL ? src->hooks : &hooks, out, NULL, &src->sheet_err);
    src->sheet_read_ms = rf_now_ms() - t0;
    if (rv == RF_ENOMEM) {
        return rv;
    }
    if (src->deferred) {
        rf_rows_free(out);
        memset(&src->sheet_err, 0, sizeof(src->sheet_err));
        return RF_OK;
    }
    if (rv != RF_OK) {
        rf_rows_free(out);
        rf_verr_set(err, "input_source", src->sheet_err.code, "%s", src->sheet_err.message);
        return rv == RF_ETOOBIG ? RF_ETOOBIG : RF_EINVAL;
    }
    rf_info("sheets: read %zu rows of %s in %lld ms", out->n, src->sheet_id,
            (long long)src->sheet_read_ms);
    rv = check_count(out, cfg, "input_source", err);
    if (rv != RF_OK) {
        rf_rows_free(out);
    }
    return rv;
}

/* ---- csv ---- */

static bool
has_prefix_ci(const char *s, const char *prefix)
{
    return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

static bool
printable_ascii(const char *s)
{
    for (; *s != '\0'; s++) {
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f) {
            return false;
        }
    }
    return true;
}

static rf_err
csv_parse(const json_t *obj, const rf_coord_config *cfg, rf_source *src, rf_verr *err)
{
    const json_t *path = json_object_get(obj, "path");
    const json_t *url = json_object_get(obj, "url");

    if ((path == NULL) == (url == NULL)) {
        rf_verr_set(err, "input_source.path", "required",
                    "input_source of type csv needs exactly one of path or url");
        return RF_EINVAL;
    }
    if (path != NULL) {
        const char *p = json_string_value(path);
        if (!json_is_string(path)) {
            rf_verr_set(err, "input_source.path", "invalid_type",
                        "input_source.path must be a string");
            return RF_EINVAL;
        }
        if (p[0] != '/') {
            rf_verr_set(err, "input_source.path", "invalid_value",
                        "input_source.path must be an absolute path");
            return RF_EINVAL;
        }
        if (!cfg->csv_url_allow_file) {
            rf_verr_set(err, "input_source.path", "forbidden",
                        "reading local files is disabled on this coordinator");
            return RF_EINVAL;
        }
        if (rf_strlcpy(src->path, p, sizeof(src->path)) != RF_OK) {
            rf_verr_set(err, "input_source.path", "too_long", "input_source.path is too long");
            return RF_EINVAL;
        }
        return RF_OK;
    }
    const char *u = json_string_value(url);
    if (!json_is_string(url)) {
        rf_verr_set(err, "input_source.url", "invalid_type", "input_source.url must be a string");
        return RF_EINVAL;
    }
    if (!printable_ascii(u)) {
        rf_verr_set(err, "input_source.url", "invalid_value",
                    "input_source.url must not contain spaces or control characters");
        return RF_EINVAL;
    }
    if (has_prefix_ci(u, "file://")) {
        if (!cfg->csv_url_allow_file) {
            rf_verr_set(err, "input_source.url", "forbidden",
                        "file:// URLs are disabled on this coordinator");
            return RF_EINVAL;
        }
    } else if (!(has_prefix_ci(u, "http://") && u[7] != '\0') &&
               !(has_prefix_ci(u, "https://") && u[8] != '\0')) {
        rf_verr_set(err, "input_source.url", "invalid_value",
                    "input_source.url must be an http://, https:// or file:// URL");
        return RF_EINVAL;
    }
    if (rf_strlcpy(src->url, u, sizeof(src->url)) != RF_OK) {
        rf_verr_set(err, "input_source.url", "too_long", "input_source.url is too long");
        return RF_EINVAL;
    }
    return RF_OK;
}

static rf_csv_limits
csv_limits(const rf_coord_config *cfg)
{
    rf_csv_limits lim = {
        .max_field_bytes = RF_SCRIPT_MAX,
        /* a header, the data rows, and some slack for trailing empty records */
        .max_records = (size_t)cfg->max_rows_per_job + 1024,
        .max_cols = 256,
    };
    return lim;
}

static rf_err
csv_rows(const char *field, const char *buf, size_t len, const rf_coord_config *cfg, rf_rows *out,
         rf_verr *err)
{
    rf_csv_limits lim = csv_limits(cfg);
    char msg[256];
    rf_err rv;

    if (memchr(buf, '\0', len) != NULL) {
        rf_verr_set(err, field, "invalid_value", "%s is not a text CSV file (it has NUL bytes)",
                    field);
        return RF_EINVAL;
    }
    rv = rf_csv_read_rows(buf, len, &lim, (size_t)cfg->max_rows_per_job, out, msg, sizeof(msg));
    if (rv == RF_ENOMEM) {
        return rv;
    }
    if (rv != RF_OK) {
        rf_verr_set(err, field, rv == RF_ETOOBIG ? "too_large" : "invalid_value", "%s: CSV: %s",
                    field, msg);
        return rv;
    }
    rv = check_count(out, cfg, field, err);
    if (rv != RF_OK) {
        rf_rows_free(out);
    }
    return rv;
}

static bool
csvish_content_type(const char *ct)
{
    static const char *const ok[] = {"text/",
                                     "application/csv",
                                     "application/x-csv",
                                     "application/vnd.ms-excel",
                                     "application/octet-stream",
                                     "binary/octet-stream"};

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        if (has_prefix_ci(ct, ok[i])) {
            return true;
        }
    }
    return false;
}

static rf_err
csv_fetch(const char *url, const rf_coord_config *cfg, rf_bodybuf *b, rf_verr *err)
{
    char curl_err[CURL_ERROR_SIZE] = "";
    CURL *h = curl_easy_init();
    long status = 0;
    const char *ctype = NULL;
    bool is_file = has_prefix_ci(url, "file://");
    CURLcode rc;
    rf_err rv = RF_OK;

    if (h == NULL) {
        return RF_ENOMEM;
    }
    b->max = (size_t)cfg->csv_max_bytes;
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR,
                     cfg->csv_url_allow_file ? "http,https,file" : "http,https");
    curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(h, CURLOPT_MAXREDIRS, 5L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)cfg->csv_fetch_timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                     (long)(cfg->csv_fetch_timeout_ms < 10000 ? cfg->csv_fetch_timeout_ms : 10000));
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)cfg->csv_max_bytes);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, rf_bodybuf_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, b);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, curl_err);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "renderfarm-coordinator/0.1");
    rc = curl_easy_perform(h);
    if (b->too_big || rc == CURLE_FILESIZE_EXCEEDED) {
        rf_verr_set(err, "input_source.url", "too_large",
                    "input_source.url: the CSV is larger than %lld bytes",
                    (long long)cfg->csv_max_bytes);
        rv = RF_ETOOBIG;
        goto out;
    }
    if (rc != CURLE_OK) {
        rf_verr_set(err, "input_source.url", "unreachable",
                    "input_source.url: could not fetch %s: %s", url,
                    curl_err[0] != '\0' ? curl_err : curl_easy_strerror(rc));
        rv = RF_EINVAL;
        goto out;
    }
    if (!is_file) {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        if (status < 200 || status >= 300) {
            rf_verr_set(err, "input_source.url", "unreachable",
                        "input_source.url: %s answered HTTP %ld", url, status);
            rv = RF_EINVAL;
            goto out;
        }
        curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &ctype);
        if (ctype != NULL && !csvish_content_type(ctype)) {
            rf_verr_set(err, "input_source.url", "invalid_value",
                        "input_source.url: %s is %s, not CSV text", url, ctype);
            rv = RF_EINVAL;
            goto out;
        }
    }
out:
    curl_easy_cleanup(h);
    return rv;
}

static rf_err
csv_read(rf_source *src, const rf_coord_config *cfg, rf_rows *out, rf_verr *err)
{
    char *text = NULL;
    size_t len = 0;
    rf_err rv;

    if (src->path[0] != '\0') {
        struct stat sb;
        if (stat(src->path, &sb) != 0) {
            rf_verr_set(err, "input_source.path", "unreadable", "input_source.path: %s: %s",
                        src->path, strerror(errno));
            return RF_EINVAL;
        }
        if (!S_ISREG(sb.st_mode)) {
            rf_verr_set(err, "input_source.path", "unreadable",
                        "input_source.path: %s is not a regular file", src->path);
            return RF_EINVAL;
        }
        rv = rf_read_file(src->path, (size_t)cfg->csv_max_bytes, &text, &len);
        if (rv == RF_ETOOBIG) {
            rf_verr_set(err, "input_source.path", "too_large",
                        "input_source.path: %s is larger than %lld bytes", src->path,
                        (long long)cfg->csv_max_bytes);
            return rv;
        }
        if (rv != RF_OK) {
            rf_verr_set(err, "input_source.path", "unreadable",
                        "input_source.path: cannot read %s: %s", src->path, rf_strerror(rv));
            return RF_EINVAL;
        }
        rv = csv_rows("input_source.path", text, len, cfg, out, err);
        free(text);
        return rv;
    }
    rf_bodybuf b = {0};
    rv = csv_fetch(src->url, cfg, &b, err);
    if (rv == RF_OK) {
        rv = csv_rows("input_source.url", b.data != NULL ? b.data : "", b.len, cfg, out, err);
    }
    free(b.data);
    return rv;
}

/* ---- rows ---- */

static rf_err
rows_parse(const json_t *obj, const rf_coord_config *cfg, rf_source *src, rf_verr *err)
{
    const json_t *rows = json_object_get(obj, "rows");
    size_t i;
    const json_t *row;
    rf_err rv = RF_OK;

    if (rows == NULL) {
        rf_verr_set(err, "input_source.rows", "required", "input_source.rows is required");
        return RF_EINVAL;
    }
    if (!json_is_array(rows)) {
        rf_verr_set(err, "input_source.rows", "invalid_type",
                    "input_source.rows must be an array of objects");
        return RF_EINVAL;
    }
    src->row_count = json_array_size(rows);
    if (src->row_count == 0) {
        rf_verr_set(err, "input_source.rows", "empty", "input_source.rows has no data rows");
        return RF_EINVAL;
    }
    if (src->row_count > (size_t)cfg->max_rows_per_job) {
        rf_verr_set(err, "input_source.rows", "too_large",
                    "input_source.rows has %zu rows, more than the limit of %lld", src->row_count,
                    (long long)cfg->max_rows_per_job);
        return RF_ETOOBIG;
    }
    json_array_foreach(rows, i, row)
    {
        const char *key;
        const json_t *value;
        rf_row *r;
        char field[128];

        if (!json_is_object(row)) {
            snprintf(field, sizeof(field), "input_source.rows[%zu]", i);
            rf_verr_set(err, field, "invalid_type", "%s must be an object", field);
            return RF_EINVAL;
        }
        /* Inline rows are numbered from 1 in array order. */
        rv = rf_rows_add(&src->rows, (uint32_t)(i + 1), &r);
        if (rv != RF_OK) {
            return rv;
        }
        json_object_foreach((json_t *)row, key, value)
        {
            int f = rf_field_lookup(key);
            char num[64];

            if (f < 0 || json_is_null(value)) {
                continue; /* unknown keys are ignored, null means absent */
            }
            snprintf(field, sizeof(field), "input_source.rows[%zu].%s", i,
                     rf_field_name((rf_field)f));
            if (json_is_string(value)) {
                rv =
                    rf_row_set(r, (rf_field)f, json_string_value(value), json_string_length(value));
            } else if (f == RF_F_DURATION_SECONDS && json_is_integer(value)) {
                snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(value));
                rv = rf_row_set(r, (rf_field)f, num, strlen(num));
            } else if (f == RF_F_DURATION_SECONDS && json_is_real(value)) {
                /* %.17g keeps 1.5 as "1.5" so that row validation rejects it */
                snprintf(num, sizeof(num), "%.17g", json_real_value(value));
                rv = rf_row_set(r, (rf_field)f, num, strlen(num));
            } else {
                rf_verr_set(err, field, "invalid_type", "%s must be a string%s", field,
                            f == RF_F_DURATION_SECONDS ? " or a number" : "");
                return RF_EINVAL;
            }
            if (rv != RF_OK) {
                return rv;
            }
        }
    }
    return RF_OK;
}

static rf_err
rows_read(rf_source *src, const rf_coord_config *cfg, rf_rows *out, rf_verr *err)
{
    rf_err rv = check_count(&src->rows, cfg, "input_source.rows", err);

    if (rv != RF_OK) {
        return rv;
    }
    *out = src->rows;
    memset(&src->rows, 0, sizeof(src->rows));
    return RF_OK;
}
