/* The coordinator daemon: configuration, store, HTTP API, agent dispatch and
 * lease reaper, with signals handled in the main loop (sigwait) and systemd
 * readiness notification when built with libsystemd.
 *
 * `coordinator mint-token ...` prints a bearer token for local use instead
 * (signed with the configured jwt_secret). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#ifdef RF_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "api.h"
#include "auth.h"
#include "config.h"
#include "dispatch.h"
#include "holdback.h"
#include "live_wiring.h"
#include "reaper.h"
#include "rf_log.h"
#include "rf_util.h"
#include "sheets.h"
#include "sheets_wiring.h"
#include "store.h"

static void
notify(const char *state)
{
#ifdef RF_HAVE_SYSTEMD
    sd_notify(0, state);
#else
    (void)state;
#endif
}

#define MINT_DEFAULT_SCOPE "jobs:read jobs:write sheets:connect templates:write"

/* coordinator mint-token [--sub U] [--tenant T | --project T] [--scope S]
 * [--ttl SECONDS] plus any configuration flags (for jwt_secret or
 * jwt_secret_file, jwt_issuer, jwt_audience, or --config FILE). */
static int
mint_token(int argc, char **argv)
{
    const char *sub = "local-user", *tenant = "default", *scope = MINT_DEFAULT_SCOPE;
    long long ttl = 3600;
    char **rest = calloc((size_t)argc + 1, sizeof(*rest));
    int n_rest = 1;
    rf_coord_config cfg;
    rf_auth_params params;
    bool help = false;
    char err[512] = "";
    char *token = NULL;
    int code = 2;
    rf_err rv;

    if (rest == NULL) {
        return 1;
    }
    rest[0] = argv[0];
    for (int i = 2; i < argc; i++) {
        const char *k = argv[i];
        const char **slot = NULL;
        if (strcmp(k, "--sub") == 0) {
            slot = &sub;
        } else if (strcmp(k, "--tenant") == 0 || strcmp(k, "--project") == 0) {
            slot = &tenant;
        } else if (strcmp(k, "--scope") == 0) {
            slot = &scope;
        } else if (strcmp(k, "--ttl") == 0) {
            char *end = NULL;
            if (i + 1 >= argc || (ttl = strtoll(argv[i + 1], &end, 10)) < 1 || *end != '\0') {
                fprintf(stderr, "coordinator mint-token: --ttl needs a number of seconds >= 1\n");
                goto out;
            }
            i++;
            continue;
        } else {
            rest[n_rest++] = argv[i];
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "coordinator mint-token: %s needs a value\n", k);
            goto out;
        }
        *slot = argv[++i];
    }
    rf_config_defaults(&cfg);
    rv = rf_config_parse_args(&cfg, n_rest, rest, &help, err, sizeof(err));
    if (rv == RF_OK && help) {
        printf("usage: coordinator mint-token [--sub USER] [--tenant TENANT] [--scope \"S ...\"]\n"
               "                              [--ttl SECONDS] [--config FILE | --jwt-secret S |\n"
               "                               --jwt-secret-file F] [--jwt-issuer I]\n"
               "                              [--jwt-audience A]\n"
               "Prints an HS256 bearer token (default scope: %s; ttl 3600 s).\n",
               MINT_DEFAULT_SCOPE);
        code = 0;
        goto out;
    }
    if (rv == RF_OK) {
        rv = rf_config_load_secret(&cfg, err, sizeof(err));
    }
    if (rv == RF_OK && strlen(cfg.jwt_secret) < 32) {
        snprintf(err, sizeof(err),
                 "a jwt_secret of at least 32 bytes is needed "
                 "(--jwt-secret, --jwt-secret-file or --config)");
        rv = RF_EINVAL;
    }
    if (rv != RF_OK) {
        fprintf(stderr, "coordinator mint-token: %s\n", err);
        goto out;
    }
    rf_auth_params_from_config(&cfg, &params);
    rv = rf_auth_mint(&params, sub, tenant, scope, ttl, rf_now_ms() / 1000, &token);
    if (rv != RF_OK) {
        fprintf(stderr,
                "coordinator mint-token: cannot mint (sub must be 1..127 bytes, tenant 1..63 "
                "of A-Z a-z 0-9 . _ -): %s\n",
                rf_strerror(rv));
        goto out;
    }
    printf("%s\n", token);
    code = 0;
out:
    free(token);
    free(rest);
    return code;
}

/* The live feed is started after the holdback set, so it is looked up at
 * each change. */
static void
on_holdback_change(void *ctx, const char *job_id, bool rate_limited)
{
    const rf_coord_config *cfg = ctx;

    (void)rate_limited;
    rf_live_progress_changed(cfg->live, job_id);
}

int
main(int argc, char **argv)
{
    rf_coord_config cfg;
    rf_store *st = NULL;
    rf_api *api = NULL;
    rf_dispatch *dispatch = NULL;
    rf_reaper *reaper = NULL;
    rf_sheets_client *sheets = NULL;
    rf_sheets_wiring *sheets_wb = NULL;
    rf_live *live = NULL;
    rf_holdback *holdback = NULL;
    sigset_t sigs;
    bool help = false;
    char err[512] = "";
    int exit_code = 1;
    rf_err rv;

    if (argc > 1 && strcmp(argv[1], "mint-token") == 0) {
        return mint_token(argc, argv);
    }
    rf_config_defaults(&cfg);
    rv = rf_config_parse_args(&cfg, argc, argv, &help, err, sizeof(err));
    if (rv != RF_OK) {
        fprintf(stderr, "coordinator: %s\n", err);
        return 2;
    }
    if (help) {
        rf_config_print_help(stdout);
        return 0;
    }
    rv = rf_config_finalize(&cfg, err, sizeof(err));
    if (rv == RF_OK) {
        rv = rf_config_load_secret(&cfg, err, sizeof(err));
    }
    if (rv == RF_OK) {
        rv = rf_config_check_auth(&cfg, err, sizeof(err));
    }
    if (rv != RF_OK) {
        fprintf(stderr, "coordinator: %s\n", err);
        return 2;
    }
    rf_log_init("coordinator", rf_log_level_parse(cfg.log_level));
    if (cfg.auth_disabled) {
        rf_warn("auth_disabled: the API accepts requests without tokens (tenant 'default')");
    }

    /* Block the signals we wait for before any thread starts, so that every
     * thread inherits the mask and only sigwait below sees them. */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
        rf_error("libcurl initialisation failed");
        return 1;
    }
    rv = rf_mkdirs(cfg.bucket_root);
    if (rv != RF_OK) {
        rf_error("cannot create bucket_root %s: %s", cfg.bucket_root, rf_strerror(rv));
        goto out;
    }
    rv = rf_store_open(cfg.db_path, &st);
    if (rv != RF_OK) {
        rf_error("cannot open the database %s: %s", cfg.db_path, rf_strerror(rv));
        goto out;
    }
    rv = rf_holdback_new(on_holdback_change, &cfg, &holdback);
    if (rv != RF_OK) {
        goto out;
    }
    cfg.holdback = holdback;
    /* The live feed and webhooks hook into the store before anything can
     * write an event (live_wiring.h). */
    rv = rf_live_start(st, &cfg, &live);
    if (rv != RF_OK) {
        goto out;
    }
    cfg.live = live;
    rv = rf_dispatch_start(st, &cfg, &dispatch);
    if (rv != RF_OK) {
        goto out;
    }
    rv = rf_reaper_start(st, &cfg, &reaper);
    if (rv != RF_OK) {
        goto out;
    }
    {
        /* Google Sheets: the client (credentials checked now, so that a bad
         * key file stops start-up) and the write-back worker. */
        rf_sheets_config scfg;
        rf_sheets_config_from(&cfg, &scfg);
        rv = rf_sheets_client_new(&scfg, &sheets, err, sizeof(err));
        if (rv != RF_OK) {
            rf_error("Google Sheets: %s", err);
            goto out;
        }
        rf_info("Google Sheets access: %s%s%s",
                rf_sheets_access_name(rf_sheets_client_access(sheets)),
                rf_sheets_client_email(sheets)[0] != '\0' ? " as " : "",
                rf_sheets_client_email(sheets));
        cfg.sheets = sheets;
        rv = rf_sheets_wiring_start(st, &cfg, sheets, &sheets_wb);
        if (rv != RF_OK) {
            goto out;
        }
        cfg.sheets_wb = sheets_wb;
    }
    rv = rf_api_start(st, &cfg, &api);
    if (rv != RF_OK) {
        goto out;
    }
    rf_info("coordinator ready http=%s (port %d) nng=%s db=%s bucket_root=%s", cfg.http_listen,
            rf_api_port(api), cfg.nng_listen, cfg.db_path, cfg.bucket_root);
    notify("READY=1");

    for (;;) {
        int sig = 0;
        if (sigwait(&sigs, &sig) != 0) {
            continue;
        }
        if (sig == SIGHUP) {
            rf_info("SIGHUP: configuration reload is not supported yet; ignoring");
            continue;
        }
        rf_info("received %s, shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
        break;
    }
    notify("STOPPING=1");
    exit_code = 0;
out:
    /* HTTP first (no new jobs), then the agents' side, then the reaper. */
    rf_api_stop(&api);
    rf_sheets_wiring_stop(&sheets_wb);
    rf_dispatch_stop(&dispatch);
    rf_reaper_stop(&reaper);
    rf_live_stop(&live); /* after mg_stop (rf_api_stop): the feed's connections are closed */
    rf_holdback_free(&holdback);
    rf_store_close(&st);
    rf_sheets_client_free(&sheets);
    curl_global_cleanup();
    if (exit_code == 0) {
        rf_info("coordinator stopped");
    }
    return exit_code;
}
