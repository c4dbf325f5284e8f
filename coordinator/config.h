/* Coordinator configuration: one table of {key, type, default, reloadable,
 * help} (config.c) filling one struct that is passed explicitly to every
 * module. Sources, later ones overriding earlier ones: the defaults, an
 * optional file given by --config FILE (lines "key = value", '#' comments),
 * then command-line flags "--key value" or "--key=value" where the key may be
 * spelled with dashes or underscores. */
#ifndef RF_CONFIG_H
#define RF_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "rf_err.h"
#include "rf_proto.h"

typedef struct rf_coord_config {
    char http_listen[128];         /* civetweb listening_ports, e.g. "127.0.0.1:8080" */
    int64_t http_threads;          /* civetweb worker threads */
    char nng_listen[256];          /* nng URL the REP socket listens on */
    char db_path[RF_PATH_MAX];     /* SQLite file */
    char bucket_root[RF_PATH_MAX]; /* local directory holding every output_bucket */
    int64_t lease_ttl_ms;
    int64_t reaper_interval_ms;
    int64_t max_attempts;               /* leases a unit gets before it fails */
    int64_t tenant_max_units_in_flight; /* a tenant's leased units at most; 0: no limit */
    int64_t fps;
    char x264_preset[RF_NAME_MAX];
    int64_t max_rows_per_job;
    int64_t max_body_bytes; /* HTTP request bodies */
    int64_t csv_max_bytes;  /* a CSV file or download */
    int64_t csv_fetch_timeout_ms;
    char log_level[16];
    bool csv_url_allow_file; /* input_source "path" and file:// URLs may read local files */

    /* Authentication (auth.h): HS256 bearer tokens. */
    char jwt_secret[512];              /* at least 32 bytes unless auth_disabled */
    char jwt_secret_file[RF_PATH_MAX]; /* read into jwt_secret by rf_config_load_secret */
    char jwt_issuer[256];              /* required "iss" when set */
    char jwt_audience[256];            /* required in "aud" when set */
    int64_t jwt_leeway_s;              /* clock skew allowed on exp, nbf, iat */
    bool auth_disabled;                /* every request is tenant "default" with all scopes */

    /* Rate limits (ratelimit.h): token buckets refilled over one minute. */
    int64_t rate_user_per_min;
    int64_t rate_project_per_min;

    /* Idempotency-Key records. */
    int64_t idempotency_ttl_s;      /* a key replays for this long */
    int64_t idempotency_inflight_s; /* an unfinished first request is abandoned after this */

    int64_t deadline_min_ms; /* smallest processing_deadline_ms accepted (API: 60000) */

    /* Cost model (docs/API.md): per output minute by resolution, plus per
     * render minute on CPU or GPU; and the dry run's speed guess (render
     * seconds per output second) when there is no history. */
    char cost_currency[8];
    double cost_output_min_720p;
    double cost_output_min_1080p;
    double cost_output_min_4k;
    double cost_cpu_min;
    double cost_gpu_min;
    double estimate_render_factor_720p;
    double estimate_render_factor_1080p;
    double estimate_render_factor_4k;

    /* Google Sheets (sheets.h, docs/SHEETS.md): endpoints, the three kinds of
     * access, retries and Google's per-minute quotas. */
    char sheets_api_base[256];
    char sheets_csv_export_base[256];
    char sheets_api_key[256];
    char sheets_credentials_file[1024];
    bool sheets_csv_export;
    int64_t sheets_timeout_ms;
    int64_t sheets_max_retries;
    int64_t sheets_backoff_initial_ms;
    int64_t sheets_backoff_max_ms;
    int64_t sheets_read_calls_per_min;
    int64_t sheets_write_calls_per_min;
    int64_t sheets_write_batch_ranges;
    int64_t sheets_writeback_poll_ms; /* how often the Sheets workers look for work */
    int64_t sheets_patience_s;        /* reads and writes keep trying through 429s this long */

    /* Live progress (live_wiring.h, docs/LIVE.md): the WebSocket feed, the
     * job webhooks and the ETA estimator. */
    int64_t ws_max_clients;                  /* open WebSockets, all jobs together */
    int64_t ws_queue_max_msgs;               /* per client before it is disconnected */
    int64_t ws_queue_max_bytes;              /* per client before it is disconnected */
    int64_t ws_progress_interval_ms;         /* job.progress coalescing window */
    int64_t ws_heartbeat_ms;                 /* the latest progress is repeated this often */
    int64_t ws_close_grace_ms;               /* a too-slow client is cut after this */
    char webhook_schedule[256];              /* retry delays, "0,5s,5m,..." */
    double webhook_jitter;                   /* each delay scaled by 1 +- jitter */
    int64_t webhook_timeout_ms;              /* one delivery attempt */
    int64_t webhook_workers;                 /* parallel deliveries */
    bool webhook_follow_redirects;           /* follow 307/308 (re-vetted) */
    char webhook_allow[1024];                /* SSRF allow list: CIDRs, addresses, host names */
    char webhook_secret_master[RF_PATH_MAX]; /* file with a master key; "" = random per tenant */
    int64_t eta_tau_ms;                      /* ETA smoothing time constant */

    /* Runtime objects, not configuration keys: set by main() after start-up
     * (NULL in tests that do not need them); owned by main(). */
    struct rf_sheets_client *sheets;    /* the Google Sheets client */
    struct rf_sheets_wiring *sheets_wb; /* write-back worker (sheets_wiring.h) */
    struct rf_live *live;               /* live feed and webhooks (live_wiring.h) */
    struct rf_holdback *holdback;       /* jobs held back by a rate limit (holdback.h) */
} rf_coord_config;

/* Fills cfg with the table's defaults. */
void rf_config_defaults(rf_coord_config *cfg);

/* Sets one key from its text value. key may use dashes or underscores.
 * RF_ENOTFOUND for an unknown key, RF_EINVAL for a value of the wrong type or
 * out of range; err gets a message naming the key either way. */
rf_err rf_config_set(rf_coord_config *cfg, const char *key, const char *value, char *err,
                     size_t err_len);

/* Applies a "key = value" file. Errors name the file and line. RF_EIO when
 * the file cannot be read. */
rf_err rf_config_load_file(rf_coord_config *cfg, const char *path, char *err, size_t err_len);

/* Parses argv (argv[0] skipped): --config FILE is applied first wherever it
 * appears, then every other flag in order. *help is set when --help or -h is
 * present (nothing else is then checked). Unknown flags are RF_ENOTFOUND. */
rf_err rf_config_parse_args(rf_coord_config *cfg, int argc, char **argv, bool *help, char *err,
                            size_t err_len);

/* Makes bucket_root absolute (relative to the working directory) without
 * requiring it to exist, and strips trailing slashes. */
rf_err rf_config_finalize(rf_coord_config *cfg, char *err, size_t err_len);

/* When jwt_secret_file is set, reads it into jwt_secret (trailing newline
 * removed). RF_EIO when it cannot be read, RF_ETOOBIG when it is too long. */
rf_err rf_config_load_secret(rf_coord_config *cfg, char *err, size_t err_len);

/* The daemon's auth precondition: a jwt_secret of at least 32 bytes unless
 * auth_disabled. RF_EINVAL with a message otherwise. */
rf_err rf_config_check_auth(const rf_coord_config *cfg, char *err, size_t err_len);

/* Prints the table (key, type, default, reloadable, help) as usage text. */
void rf_config_print_help(FILE *f);

#endif
