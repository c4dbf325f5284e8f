/* The configuration table and its parsers. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "rf_util.h"

typedef enum opt_type { OPT_STR, OPT_INT, OPT_BOOL, OPT_DOUBLE } opt_type;

typedef struct opt {
    const char *key;
    opt_type type;
    size_t offset;
    size_t size; /* OPT_STR: buffer size */
    const char *def;
    bool reloadable;  /* may change on reload without a restart (reload comes later) */
    int64_t min, max; /* OPT_INT range */
    const char *help;
} opt;

#define STR(k, def, rel, help)                                                                     \
    {                                                                                              \
#k, OPT_STR, offsetof(rf_coord_config, k), sizeof(((rf_coord_config *)0)->k), def, rel, 0, \
            0, help                                                                                \
    }
#define INT(k, def, rel, lo, hi, help)                                                             \
    {                                                                                              \
#k, OPT_INT, offsetof(rf_coord_config, k), sizeof(int64_t), def, rel, lo, hi, help         \
    }
/* Doubles: a non-negative finite number at most max. */
#define DBL(k, def, rel, hi, help)                                                                 \
    {                                                                                              \
#k, OPT_DOUBLE, offsetof(rf_coord_config, k), sizeof(double), def, rel, 0, hi, help        \
    }
#define BOOL(k, def, rel, help)                                                                    \
    {                                                                                              \
#k, OPT_BOOL, offsetof(rf_coord_config, k), sizeof(bool), def, rel, 0, 0, help             \
    }

static const opt opts[] = {
    STR(http_listen, "127.0.0.1:8080", false, "HTTP address:port for the REST API"),
    INT(http_threads, "8", false, 1, 256, "HTTP worker threads"),
    STR(nng_listen, "tcp://127.0.0.1:5555", false, "nng URL agents dial"),
    STR(db_path, "./renderfarm.db", false, "SQLite database file"),
    STR(bucket_root, "./buckets", false, "local directory holding every output_bucket"),
    INT(lease_ttl_ms, "30000", true, 100, 3600000, "a lease lapses this long after a heartbeat"),
    INT(reaper_interval_ms, "500", true, 10, 600000, "how often lapsed leases are requeued"),
    INT(max_attempts, "3", true, 1, 100, "leases a unit gets before it fails"),
    INT(tenant_max_units_in_flight, "0", true, 0, 1000000,
        "units one tenant may have leased at once (0: no limit)"),
    INT(fps, "30", true, 1, 120, "frames per second of rendered videos"),
    STR(x264_preset, "veryfast", true, "software encoder speed preset"),
    INT(max_rows_per_job, "10000", true, 1, 1000000, "data rows accepted in one job"),
    INT(max_body_bytes, "1048576", true, 1024, 1073741824, "largest HTTP request body"),
    INT(csv_max_bytes, "67108864", true, 1024, 1073741824, "largest CSV file or download"),
    INT(csv_fetch_timeout_ms, "30000", true, 100, 600000, "timeout for CSV downloads"),
    STR(log_level, "info", true, "debug, info, warn or error"),
    BOOL(csv_url_allow_file, "true", true, "allow CSV from local paths and file:// URLs"),
    STR(jwt_secret, "", false, "HS256 secret for bearer tokens (at least 32 bytes)"),
    STR(jwt_secret_file, "", false, "file holding jwt_secret (overrides jwt_secret)"),
    STR(jwt_issuer, "", true, "when set, tokens must carry this iss"),
    STR(jwt_audience, "", true, "when set, tokens must carry this aud"),
    INT(jwt_leeway_s, "30", true, 0, 300, "clock skew allowed on exp, nbf and iat"),
    BOOL(auth_disabled, "false", false,
         "no tokens: every request is tenant 'default' with every scope (tests only)"),
    INT(rate_user_per_min, "60", true, 1, 1000000, "requests per minute per user"),
    INT(rate_project_per_min, "300", true, 1, 1000000, "requests per minute per tenant"),
    INT(idempotency_ttl_s, "86400", true, 60, 604800, "Idempotency-Key replay window"),
    INT(idempotency_inflight_s, "120", true, 5, 3600,
        "an unfinished first request of a key is abandoned after this"),
    INT(deadline_min_ms, "60000", true, 1000, 60000,
        "smallest processing_deadline_ms accepted (lower only for tests)"),
    STR(cost_currency, "USD", true, "currency of cost figures"),
    DBL(cost_output_min_720p, "0.01", true, 1000, "cost per rendered output minute, 720p"),
    DBL(cost_output_min_1080p, "0.02", true, 1000, "cost per rendered output minute, 1080p"),
    DBL(cost_output_min_4k, "0.06", true, 1000, "cost per rendered output minute, 4k"),
    DBL(cost_cpu_min, "0.002", true, 1000, "cost per agent render minute on CPU encoders"),
    DBL(cost_gpu_min, "0.01", true, 1000, "cost per agent render minute on GPU encoders"),
    DBL(estimate_render_factor_720p, "0.5", true, 1000,
        "dry-run guess without history: render s per output s, 720p"),
    DBL(estimate_render_factor_1080p, "1.0", true, 1000,
        "dry-run guess without history: render s per output s, 1080p"),
    DBL(estimate_render_factor_4k, "4.0", true, 1000,
        "dry-run guess without history: render s per output s, 4k"),
    STR(sheets_api_base, "https://sheets.googleapis.com", false, "Google Sheets API base URL"),
    STR(sheets_csv_export_base, "https://docs.google.com", false,
        "base URL of Google's public CSV export"),
    STR(sheets_api_key, "", false, "Google API key for sheets shared by link (\"\" = none)"),
    STR(sheets_credentials_file, "", false,
        "service-account key JSON (reads private sheets, needed for write-back)"),
    BOOL(sheets_csv_export, "true", false,
         "read link-shared sheets through the CSV export when no credentials are set"),
    INT(sheets_timeout_ms, "30000", false, 100, 600000, "one Google Sheets HTTP request"),
    INT(sheets_max_retries, "5", false, 0, 20, "retries of a 429, 5xx or network failure"),
    INT(sheets_backoff_initial_ms, "1000", false, 1, 600000, "first retry wait"),
    INT(sheets_backoff_max_ms, "32000", false, 1, 600000, "longest retry wait"),
    INT(sheets_read_calls_per_min, "60", false, 1, 100000, "Sheets reads sent per minute at most"),
    INT(sheets_write_calls_per_min, "60", false, 1, 100000,
        "Sheets batchUpdate calls per minute at most"),
    INT(sheets_write_batch_ranges, "100", false, 1, 1000, "ranges in one batchUpdate call"),
    INT(sheets_writeback_poll_ms, "1000", false, 10, 600000,
        "how often jobs are looked for whose rows to read or results to write back"),
    INT(sheets_patience_s, "3600", false, 0, 604800,
        "how long a job's sheet read or write-back keeps trying through Google's 429s and "
        "outages"),
    INT(ws_max_clients, "64", false, 1, 4096, "open WebSocket feeds at most (all jobs)"),
    INT(ws_queue_max_msgs, "256", false, 1, 1000000, "messages queued per WebSocket client"),
    INT(ws_queue_max_bytes, "1048576", false, 1024, 1073741824,
        "bytes queued per WebSocket client"),
    INT(ws_progress_interval_ms, "250", false, 1, 60000, "job.progress sent at most this often"),
    INT(ws_heartbeat_ms, "5000", false, 100, 600000,
        "the latest job.progress is repeated this often"),
    INT(ws_close_grace_ms, "2000", false, 10, 60000,
        "a too-slow WebSocket client is cut after this"),
    STR(webhook_schedule, "0,5s,5m,30m,2h,5h,10h,14h,20h,24h", false,
        "webhook retry delays (ms, s, m, h)"),
    DBL(webhook_jitter, "0.2", false, 1, "webhook retry delays vary by this fraction"),
    INT(webhook_timeout_ms, "15000", false, 100, 600000, "one webhook delivery attempt"),
    INT(webhook_workers, "2", false, 1, 64, "parallel webhook deliveries"),
    BOOL(webhook_follow_redirects, "false", false, "follow 307/308 from webhook receivers"),
    STR(webhook_allow, "", false,
        "internal webhook targets allowed despite the SSRF guard (CIDRs, addresses, hosts)"),
    STR(webhook_secret_master, "", false,
        "file with a master key per-tenant webhook secrets derive from (\"\" = random, stored)"),
    INT(eta_tau_ms, "30000", false, 1000, 3600000, "ETA smoothing time constant"),
};

#define N_OPTS (sizeof(opts) / sizeof(opts[0]))

static const opt *
find_opt(const char *key, size_t len)
{
    for (size_t i = 0; i < N_OPTS; i++) {
        const char *k = opts[i].key;
        size_t j = 0;
        for (; j < len && k[j] != '\0'; j++) {
            char c = key[j] == '-' ? '_' : key[j];
            if (c != k[j]) {
                break;
            }
        }
        if (j == len && k[j] == '\0') {
            return &opts[i];
        }
    }
    return NULL;
}

static rf_err
apply(rf_coord_config *cfg, const opt *o, const char *value, char *err, size_t err_len)
{
    char *base = (char *)cfg + o->offset;

    switch (o->type) {
    case OPT_STR:
        if (rf_strlcpy(base, value, o->size) != RF_OK) {
            rf_errf(err, err_len, "%s: value longer than %zu bytes", o->key, o->size - 1);
            return RF_EINVAL;
        }
        return RF_OK;
    case OPT_INT: {
        char *end = NULL;
        long long v;
        errno = 0;
        v = strtoll(value, &end, 10);
        if (errno != 0 || end == value || *end != '\0') {
            rf_errf(err, err_len, "%s: '%s' is not an integer", o->key, value);
            return RF_EINVAL;
        }
        if (v < o->min || v > o->max) {
            rf_errf(err, err_len, "%s: %lld is out of range %lld..%lld", o->key, v,
                    (long long)o->min, (long long)o->max);
            return RF_EINVAL;
        }
        *(int64_t *)(void *)base = v;
        return RF_OK;
    }
    case OPT_DOUBLE: {
        char *end = NULL;
        double v;
        errno = 0;
        v = strtod(value, &end);
        if (errno != 0 || end == value || *end != '\0' || !isfinite(v)) {
            rf_errf(err, err_len, "%s: '%s' is not a number", o->key, value);
            return RF_EINVAL;
        }
        if (v < 0.0 || v > (double)o->max) {
            rf_errf(err, err_len, "%s: %g is out of range 0..%lld", o->key, v, (long long)o->max);
            return RF_EINVAL;
        }
        *(double *)(void *)base = v;
        return RF_OK;
    }
    case OPT_BOOL:
        if (strcasecmp(value, "true") == 0 || strcmp(value, "1") == 0 ||
            strcasecmp(value, "yes") == 0 || strcasecmp(value, "on") == 0) {
            *(bool *)(void *)base = true;
        } else if (strcasecmp(value, "false") == 0 || strcmp(value, "0") == 0 ||
                   strcasecmp(value, "no") == 0 || strcasecmp(value, "off") == 0) {
            *(bool *)(void *)base = false;
        } else {
            rf_errf(err, err_len, "%s: '%s' is not a boolean (true/false)", o->key, value);
            return RF_EINVAL;
        }
        return RF_OK;
    }
    return RF_EINVAL;
}

void
rf_config_defaults(rf_coord_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    for (size_t i = 0; i < N_OPTS; i++) {
        rf_err rv = apply(cfg, &opts[i], opts[i].def, NULL, 0);
        (void)rv; /* the defaults are constants checked by the tests */
    }
}

rf_err
rf_config_set(rf_coord_config *cfg, const char *key, const char *value, char *err, size_t err_len)
{
    const opt *o = find_opt(key, strlen(key));

    if (o == NULL) {
        rf_errf(err, err_len, "unknown configuration key '%s'", key);
        return RF_ENOTFOUND;
    }
    return apply(cfg, o, value, err, err_len);
}

static char *
trim(char *s)
{
    char *end;

    while (isspace((unsigned char)*s)) {
        s++;
    }
    end = s + strlen(s);
    while (end > s && isspace((unsigned char)end[-1])) {
        *--end = '\0';
    }
    return s;
}

rf_err
rf_config_load_file(rf_coord_config *cfg, const char *path, char *err, size_t err_len)
{
    char *text = NULL;
    size_t len = 0;
    char *save = NULL;
    unsigned lineno = 0;
    rf_err rv;

    rv = rf_read_file(path, 1 << 20, &text, &len);
    if (rv != RF_OK) {
        rf_errf(err, err_len, "cannot read config file %s: %s", path, rf_strerror(rv));
        rv = RF_EIO;
        goto out;
    }
    /* strtok_r would merge empty lines and so miscount; split by hand. */
    for (char *line = text; line != NULL; line = save) {
        char *nl = strchr(line, '\n');
        char *eq, *key, *value, *hash;
        char msg[256];

        save = nl != NULL ? nl + 1 : NULL;
        if (nl != NULL) {
            *nl = '\0';
        }
        lineno++;
        hash = strchr(line, '#');
        if (hash != NULL) {
            *hash = '\0';
        }
        line = trim(line);
        if (*line == '\0') {
            continue;
        }
        eq = strchr(line, '=');
        if (eq == NULL) {
            rf_errf(err, err_len, "%s:%u: expected 'key = value'", path, lineno);
            rv = RF_EINVAL;
            goto out;
        }
        *eq = '\0';
        key = trim(line);
        value = trim(eq + 1);
        rv = rf_config_set(cfg, key, value, msg, sizeof(msg));
        if (rv != RF_OK) {
            rf_errf(err, err_len, "%s:%u: %s", path, lineno, msg);
            goto out;
        }
    }
out:
    free(text);
    return rv;
}

rf_err
rf_config_parse_args(rf_coord_config *cfg, int argc, char **argv, bool *help, char *err,
                     size_t err_len)
{
    rf_err rv = RF_OK;

    *help = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            *help = true;
            return RF_OK;
        }
    }
    /* The file first, so that flags override it wherever they appear. */
    for (int i = 1; i < argc; i++) {
        const char *path = NULL;
        if (strcmp(argv[i], "--config") == 0) {
            if (i + 1 >= argc) {
                rf_errf(err, err_len, "--config needs a file name");
                return RF_EINVAL;
            }
            path = argv[++i];
        } else if (strncmp(argv[i], "--config=", 9) == 0) {
            path = argv[i] + 9;
        }
        if (path != NULL) {
            rv = rf_config_load_file(cfg, path, err, err_len);
            if (rv != RF_OK) {
                return rv;
            }
        }
    }
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *name, *eq, *value;
        const opt *o;
        char msg[256];

        if (strcmp(arg, "--config") == 0) {
            i++;
            continue;
        }
        if (strncmp(arg, "--config=", 9) == 0) {
            continue;
        }
        if (strncmp(arg, "--", 2) != 0) {
            rf_errf(err, err_len, "unexpected argument '%s' (see --help)", arg);
            return RF_EINVAL;
        }
        name = arg + 2;
        eq = strchr(name, '=');
        o = find_opt(name, eq != NULL ? (size_t)(eq - name) : strlen(name));
        if (o == NULL) {
            rf_errf(err, err_len, "unknown option '%s' (see --help)", arg);
            return RF_ENOTFOUND;
        }
        if (eq != NULL) {
            value = eq + 1;
        } else if (o->type == OPT_BOOL && (i + 1 >= argc || strncmp(argv[i + 1], "--", 2) == 0)) {
            value = "true"; /* a bare boolean flag switches it on */
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            rf_errf(err, err_len, "option '%s' needs a value", arg);
            return RF_EINVAL;
        }
        rv = apply(cfg, o, value, msg, sizeof(msg));
        if (rv != RF_OK) {
            rf_errf(err, err_len, "--%s", msg);
            return rv;
        }
    }
    return RF_OK;
}

rf_err
rf_config_finalize(rf_coord_config *cfg, char *err, size_t err_len)
{
    char cwd[PATH_MAX];
    char absolute[sizeof(cfg->bucket_root)];
    size_t n;

    if (cfg->bucket_root[0] == '\0') {
        rf_errf(err, err_len, "bucket_root must not be empty");
        return RF_EINVAL;
    }
    if (cfg->bucket_root[0] != '/') {
        const char *rel = cfg->bucket_root;
        if (getcwd(cwd, sizeof(cwd)) == NULL) {
            rf_errf(err, err_len, "getcwd failed: %s", strerror(errno));
            return RF_EIO;
        }
        while (strncmp(rel, "./", 2) == 0) {
            rel += 2;
        }
        if (strcmp(rel, ".") == 0) {
            rel = "";
        }
        if (rf_fmt(absolute, sizeof(absolute), "%s%s%s", cwd, rel[0] != '\0' ? "/" : "", rel) !=
            RF_OK) {
            rf_errf(err, err_len, "bucket_root is too long");
            return RF_ETOOBIG;
        }
        memcpy(cfg->bucket_root, absolute, sizeof(absolute));
    }
    n = strlen(cfg->bucket_root);
    while (n > 1 && cfg->bucket_root[n - 1] == '/') {
        cfg->bucket_root[--n] = '\0';
    }
    return RF_OK;
}

rf_err
rf_config_load_secret(rf_coord_config *cfg, char *err, size_t err_len)
{
    char *text = NULL;
    size_t len = 0;
    rf_err rv;

    if (cfg->jwt_secret_file[0] == '\0') {
        return RF_OK;
    }
    rv = rf_read_file(cfg->jwt_secret_file, sizeof(cfg->jwt_secret) - 1, &text, &len);
    if (rv != RF_OK) {
        rf_errf(err, err_len, "cannot read jwt_secret_file %s: %s", cfg->jwt_secret_file,
                rf_strerror(rv));
        return rv == RF_ETOOBIG ? RF_ETOOBIG : RF_EIO;
    }
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r')) {
        text[--len] = '\0';
    }
    if (memchr(text, '\0', len) != NULL) {
        rf_errf(err, err_len, "jwt_secret_file %s contains a NUL byte", cfg->jwt_secret_file);
        free(text);
        return RF_EINVAL;
    }
    memcpy(cfg->jwt_secret, text, len + 1);
    free(text);
    return RF_OK;
}

rf_err
rf_config_check_auth(const rf_coord_config *cfg, char *err, size_t err_len)
{
    if (cfg->auth_disabled) {
        return RF_OK;
    }
    if (cfg->jwt_secret[0] == '\0') {
        rf_errf(err, err_len,
                "no jwt_secret: set jwt_secret or jwt_secret_file (at least 32 bytes), or "
                "auth_disabled = true for a test setup without tokens");
        return RF_EINVAL;
    }
    /* RFC 7518 3.2: an HS256 key must be at least as long as the hash. */
    if (strlen(cfg->jwt_secret) < 32) {
        rf_errf(err, err_len, "jwt_secret must be at least 32 bytes (it has %zu)",
                strlen(cfg->jwt_secret));
        return RF_EINVAL;
    }
    return RF_OK;
}

void
rf_config_print_help(FILE *f)
{
    static const char *const type_names[] = {"string", "int", "bool", "double"};

    fprintf(f, "usage: coordinator [--config FILE] [--KEY VALUE | --KEY=VALUE ...]\n"
               "       coordinator mint-token [--sub USER] [--tenant T] [--scope \"S ...\"]\n"
               "                              [--ttl SECONDS] [--config FILE] [--KEY VALUE ...]\n\n"
               "Keys may be written with dashes or underscores. A config file holds\n"
               "'key = value' lines; '#' starts a comment. Flags override the file.\n\n");
    fprintf(f, "%-28s %-7s %-22s %-6s %s\n", "key", "type", "default", "reload", "description");
    for (size_t i = 0; i < N_OPTS; i++) {
        fprintf(f, "%-28s %-7s %-22s %-6s %s\n", opts[i].key, type_names[opts[i].type], opts[i].def,
                opts[i].reloadable ? "yes" : "no", opts[i].help);
    }
}
