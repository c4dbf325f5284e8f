/* The coordinator daemon: configuration, store, HTTP API, agent dispatch and
 * lease reaper, with signals handled in the main loop (sigwait) and systemd
 * readiness notification when built with libsystemd. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#ifdef RF_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "api.h"
#include "config.h"
#include "dispatch.h"
#include "reaper.h"
#include "rf_log.h"
#include "rf_util.h"
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

int
main(int argc, char **argv)
{
    rf_coord_config cfg;
    rf_store *st = NULL;
    rf_api *api = NULL;
    rf_dispatch *dispatch = NULL;
    rf_reaper *reaper = NULL;
    sigset_t sigs;
    bool help = false;
    char err[512] = "";
    int exit_code = 1;
    rf_err rv;

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
    if (rv != RF_OK) {
        fprintf(stderr, "coordinator: %s\n", err);
        return 2;
    }
    rf_log_init("coordinator", rf_log_level_parse(cfg.log_level));

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
    rv = rf_dispatch_start(st, &cfg, &dispatch);
    if (rv != RF_OK) {
        goto out;
    }
    rv = rf_reaper_start(st, &cfg, &reaper);
    if (rv != RF_OK) {
        goto out;
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
    rf_dispatch_stop(&dispatch);
    rf_reaper_stop(&reaper);
    rf_store_close(&st);
    curl_global_cleanup();
    if (exit_code == 0) {
        rf_info("coordinator stopped");
    }
    return exit_code;
}
