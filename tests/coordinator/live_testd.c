/* Test server for the live-progress integration tests (not installed):
 * civetweb on 127.0.0.1 with the WebSocket feed (ws.h) and the webhook
 * workers (webhooks.h) over an in-memory job table, plus a control API the
 * Python tests drive:
 *
 *   POST /ctl/jobs     {"job_id","tenant"}            create a job (pending)
 *   POST /ctl/publish  {"job_id","msg":{type,data}}   update the job, publish
 *   POST /ctl/burst    {"job_id","count","pad","sleep_us"}
 *                      publish count video.completed messages of about pad
 *                      bytes; answers the longest single publish in us
 *   GET  /ctl/stats                                    rf_ws_get_stats
 *   POST /ctl/webhook  {"job_id","tenant","url","type","state"}  enqueue
 *   GET  /ctl/webhook?id=N                             state and attempts
 *
 * Tokens: tok-acme (tenant acme, jobs:read), tok-globex (globex, jobs:read),
 * tok-noscope (acme, no scope), tok-op (every tenant).
 * Prints "PORT <n>" on stdout once listening; exits on SIGTERM/SIGINT. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <civetweb.h>
#include <jansson.h>

#include "rf_log.h"
#include "rf_util.h"
#include "ssrf.h"
#include "webhooks.h"
#include "ws.h"

#define MAX_JOBS 64

typedef struct tjob {
    char id[64];
    char tenant[64];
    char state[32];
    char prior[32];
    json_t *progress; /* last job.progress message */
    json_t *final;    /* job.completed / job.failed message */
} tjob;

typedef struct testd {
    pthread_mutex_t mu;
    tjob jobs[MAX_JOBS];
    size_t n_jobs;
    rf_ws *ws;
    rf_webhooks *wh;
    rf_webhook_memstore *store;
    char secret[RF_WEBHOOK_SECRET_MAX];
} testd;

static rf_err
auth(void *ctx, const char *token, rf_ws_principal *out)
{
    (void)ctx;
    if (strcmp(token, "tok-acme") == 0 || strcmp(token, "tok-noscope") == 0) {
        strcpy(out->tenant, "acme");
        strcpy(out->scopes, strcmp(token, "tok-acme") == 0 ? "jobs:read jobs:write" : "");
        return RF_OK;
    }
    if (strcmp(token, "tok-globex") == 0) {
        strcpy(out->tenant, "globex");
        strcpy(out->scopes, "jobs:read");
        return RF_OK;
    }
    if (strcmp(token, "tok-op") == 0) {
        strcpy(out->tenant, "operator");
        strcpy(out->scopes, "jobs:read");
        out->all_tenants = true;
        return RF_OK;
    }
    return RF_ENOTFOUND;
}

static tjob *
find_job(testd *t, const char *id)
{
    for (size_t i = 0; i < t->n_jobs; i++) {
        if (strcmp(t->jobs[i].id, id) == 0) {
            return &t->jobs[i];
        }
    }
    return NULL;
}

/* The snapshot a coordinator would build from its store. */
static rf_err
snapshot(void *ctx, const char *job_id, const char *tenant, json_t **msgs)
{
    testd *t = ctx;
    tjob *j;
    rf_err rv = RF_OK;

    pthread_mutex_lock(&t->mu);
    j = find_job(t, job_id);
    if (j == NULL || (tenant != NULL && strcmp(j->tenant, tenant) != 0)) {
        rv = RF_ENOTFOUND;
        goto out;
    }
    *msgs = json_array();
    json_array_append_new(*msgs, rf_ws_msg_state_changed(job_id, j->prior, j->state, "snapshot"));
    if (j->progress != NULL) {
        json_array_append(*msgs, j->progress);
    }
    if (j->final != NULL) {
        json_array_append(*msgs, j->final);
    }
out:
    pthread_mutex_unlock(&t->mu);
    return rv;
}

static rf_err
secret_fn(void *ctx, const char *tenant, char *out, size_t len)
{
    testd *t = ctx;
    (void)tenant;
    return rf_strlcpy(out, t->secret, len);
}

static json_t *
read_body(struct mg_connection *conn)
{
    char buf[65536];
    int n = 0, r;

    while (n < (int)sizeof(buf) - 1 && (r = mg_read(conn, buf + n, sizeof(buf) - 1 - n)) > 0) {
        n += r;
    }
    buf[n] = '\0';
    return json_loads(buf, 0, NULL);
}

static int
reply(struct mg_connection *conn, int status, json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    mg_printf(conn,
              "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
              "Connection: close\r\n\r\n%s",
              status, strlen(text), text);
    free(text);
    return status;
}

static int
on_ctl(struct mg_connection *conn, void *cbdata)
{
    testd *t = cbdata;
    const struct mg_request_info *ri = mg_get_request_info(conn);
    const char *uri = ri->local_uri;
    json_t *req = NULL;
    int rc;

    if (strcmp(ri->request_method, "GET") == 0 && strcmp(uri, "/ctl/stats") == 0) {
        rf_ws_stats st;
        rf_ws_get_stats(t->ws, &st);
        return reply(conn, 200,
                     json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "clients", (json_int_t)st.clients,
                               "jobs", (json_int_t)st.jobs, "frames_sent",
                               (json_int_t)st.frames_sent, "progress_merged",
                               (json_int_t)st.progress_merged, "heartbeats",
                               (json_int_t)st.heartbeats, "slow_disconnects",
                               (json_int_t)st.slow_disconnects, "refused", (json_int_t)st.refused));
    }
    if (strcmp(ri->request_method, "GET") == 0 && strcmp(uri, "/ctl/webhook") == 0) {
        char idv[32], state[16];
        int attempts;
        rf_webhook_attempt *a = NULL;
        size_t n = 0;
        json_t *arr;

        if (ri->query_string == NULL ||
            mg_get_var(ri->query_string, strlen(ri->query_string), "id", idv, sizeof(idv)) <= 0 ||
            rf_webhook_memstore_state(t->store, atoll(idv), state, &attempts) != RF_OK ||
            rf_webhook_memstore_attempts(t->store, atoll(idv), &a, &n) != RF_OK) {
            return reply(conn, 404, json_pack("{s:s}", "error", "no such delivery"));
        }
        arr = json_array();
        for (size_t i = 0; i < n; i++) {
            json_array_append_new(
                arr,
                json_pack("{s:i,s:I,s:I,s:i,s:s,s:s,s:I}", "attempt", a[i].attempt, "started_ms",
                          (json_int_t)a[i].started_ms, "duration_ms", (json_int_t)a[i].duration_ms,
                          "status_code", a[i].status_code, "error", a[i].error, "outcome",
                          a[i].outcome, "next_attempt_ms", (json_int_t)a[i].next_attempt_ms));
        }
        free(a);
        return reply(conn, 200,
                     json_pack("{s:s,s:i,s:o}", "state", state, "attempts", attempts, "log", arr));
    }
    if (strcmp(ri->request_method, "POST") != 0) {
        return reply(conn, 405, json_pack("{s:s}", "error", "method"));
    }
    req = read_body(conn);
    if (req == NULL) {
        return reply(conn, 400, json_pack("{s:s}", "error", "bad json"));
    }
    if (strcmp(uri, "/ctl/jobs") == 0) {
        const char *id = json_string_value(json_object_get(req, "job_id"));
        const char *tenant = json_string_value(json_object_get(req, "tenant"));
        pthread_mutex_lock(&t->mu);
        if (id != NULL && tenant != NULL && t->n_jobs < MAX_JOBS && find_job(t, id) == NULL) {
            tjob *j = &t->jobs[t->n_jobs++];
            memset(j, 0, sizeof(*j));
            rf_strlcpy(j->id, id, sizeof(j->id));
            rf_strlcpy(j->tenant, tenant, sizeof(j->tenant));
            strcpy(j->state, "pending");
            strcpy(j->prior, "pending");
            rc = 201;
        } else {
            rc = 400;
        }
        pthread_mutex_unlock(&t->mu);
        json_decref(req);
        return reply(conn, rc, json_object());
    }
    if (strcmp(uri, "/ctl/publish") == 0) {
        const char *id = json_string_value(json_object_get(req, "job_id"));
        json_t *msg = json_object_get(req, "msg");
        const char *type = json_string_value(json_object_get(msg, "type"));
        char tenant[64] = "";
        int64_t t0;
        tjob *j;

        pthread_mutex_lock(&t->mu);
        j = id != NULL ? find_job(t, id) : NULL;
        if (j != NULL && type != NULL) {
            rf_strlcpy(tenant, j->tenant, sizeof(tenant));
            if (strcmp(type, "job.state_changed") == 0) {
                const char *ns =
                    json_string_value(json_object_get(json_object_get(msg, "data"), "new_state"));
                rf_strlcpy(j->prior, j->state, sizeof(j->prior));
                rf_strlcpy(j->state, ns != NULL ? ns : "?", sizeof(j->state));
            } else if (strcmp(type, "job.progress") == 0) {
                json_decref(j->progress);
                j->progress = json_incref(msg);
            } else if (strcmp(type, "job.completed") == 0 || strcmp(type, "job.failed") == 0) {
                json_decref(j->final);
                j->final = json_incref(msg);
            }
        }
        pthread_mutex_unlock(&t->mu);
        if (tenant[0] == '\0') {
            json_decref(req);
            return reply(conn, 404, json_pack("{s:s}", "error", "no such job"));
        }
        t0 = rf_mono_ns();
        rf_err rv = rf_ws_publish(t->ws, id, tenant, msg);
        int64_t us = (rf_mono_ns() - t0) / 1000;
        json_decref(req);
        return reply(
            conn, rv == RF_OK ? 200 : 400,
            json_pack("{s:I,s:s}", "publish_us", (json_int_t)us, "result", rf_strerror(rv)));
    }
    if (strcmp(uri, "/ctl/burst") == 0) {
        const char *id = json_string_value(json_object_get(req, "job_id"));
        int count = (int)json_integer_value(json_object_get(req, "count"));
        int pad = (int)json_integer_value(json_object_get(req, "pad"));
        int sleep_us = (int)json_integer_value(json_object_get(req, "sleep_us"));
        char tenant[64] = "";
        char *padding;
        int64_t max_us = 0, start = rf_mono_ns();
        tjob *j;

        pthread_mutex_lock(&t->mu);
        j = id != NULL ? find_job(t, id) : NULL;
        if (j != NULL) {
            rf_strlcpy(tenant, j->tenant, sizeof(tenant));
        }
        pthread_mutex_unlock(&t->mu);
        if (tenant[0] == '\0' || pad < 0 || pad > 1 << 20) {
            json_decref(req);
            return reply(conn, 404, json_pack("{s:s}", "error", "no such job"));
        }
        padding = malloc((size_t)pad + 1);
        memset(padding, 'p', (size_t)pad);
        padding[pad] = '\0';
        for (int i = 0; i < count; i++) {
            char vid[32];
            json_t *m;
            int64_t t0;

            snprintf(vid, sizeof(vid), "item_%d", i);
            m = rf_ws_msg_video_completed(
                id, vid, i, json_pack("[{s:s,s:s}]", "type", "video", "url", padding));
            t0 = rf_mono_ns();
            rf_ws_publish(t->ws, id, tenant, m);
            if ((rf_mono_ns() - t0) / 1000 > max_us) {
                max_us = (rf_mono_ns() - t0) / 1000;
            }
            json_decref(m);
            if (sleep_us > 0) {
                usleep((useconds_t)sleep_us);
            }
        }
        free(padding);
        json_decref(req);
        return reply(conn, 200,
                     json_pack("{s:I,s:I}", "max_publish_us", (json_int_t)max_us, "total_us",
                               (json_int_t)((rf_mono_ns() - start) / 1000)));
    }
    if (strcmp(uri, "/ctl/webhook") == 0) {
        int64_t did = 0;
        rf_err rv = rf_webhooks_enqueue(t->wh, json_string_value(json_object_get(req, "job_id")),
                                        json_string_value(json_object_get(req, "tenant")),
                                        json_string_value(json_object_get(req, "url")),
                                        json_string_value(json_object_get(req, "type")),
                                        json_string_value(json_object_get(req, "state")), 50.0, 5,
                                        1, 10, json_object_get(req, "data"), 0, &did);
        json_decref(req);
        if (rv != RF_OK) {
            return reply(conn, 400, json_pack("{s:s}", "error", rf_strerror(rv)));
        }
        return reply(conn, 201, json_pack("{s:I}", "delivery_id", (json_int_t)did));
    }
    json_decref(req);
    return reply(conn, 404, json_pack("{s:s}", "error", "unknown"));
}

static const char *
arg_value(int argc, char **argv, const char *name, const char *dflt)
{
    for (int i = 1; i + 1 < argc; i++) {
        if (strcmp(argv[i], name) == 0) {
            return argv[i + 1];
        }
    }
    return dflt;
}

int
main(int argc, char **argv)
{
    testd t;
    rf_ws_config wcfg;
    rf_webhooks_config hcfg;
    rf_ssrf_policy *policy = NULL;
    struct mg_callbacks cbs;
    struct mg_context *ctx;
    struct mg_server_port ports[4];
    char err[256];
    sigset_t set;
    int sig, rc = 1;
    const char *opts[] = {"listening_ports",
                          "127.0.0.1:0",
                          "num_threads",
                          "48",
                          "enable_websocket_ping_pong",
                          "yes",
                          "websocket_timeout_ms",
                          arg_value(argc, argv, "--ws-timeout-ms", "20000"),
                          NULL};

    rf_log_init("live_testd", RF_LOG_INFO);
    memset(&t, 0, sizeof(t));
    pthread_mutex_init(&t.mu, NULL);
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL); /* every thread inherits the mask */
    signal(SIGPIPE, SIG_IGN);

    rf_ws_config_defaults(&wcfg);
    wcfg.queue_max_msgs = (size_t)atol(arg_value(argc, argv, "--queue-msgs", "256"));
    wcfg.queue_max_bytes = (size_t)atol(arg_value(argc, argv, "--queue-bytes", "1048576"));
    wcfg.sndbuf_bytes = atoi(arg_value(argc, argv, "--sndbuf", "0"));
    wcfg.heartbeat_ms = atol(arg_value(argc, argv, "--heartbeat-ms", "5000"));
    wcfg.progress_min_interval_ms = atol(arg_value(argc, argv, "--progress-ms", "250"));
    wcfg.close_grace_ms = atol(arg_value(argc, argv, "--grace-ms", "1000"));
    wcfg.max_clients = 32;
    strcpy(wcfg.required_scope, "jobs:read");
    wcfg.snapshot = snapshot;
    wcfg.snapshot_ctx = &t;

    rf_webhooks_config_defaults(&hcfg);
    if (rf_webhooks_parse_schedule(&hcfg, arg_value(argc, argv, "--webhook-schedule", "0,5s"), err,
                                   sizeof(err)) != RF_OK) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    hcfg.timeout_ms = atol(arg_value(argc, argv, "--webhook-timeout-ms", "5000"));
    hcfg.workers = 2;
    if (rf_ssrf_policy_new(arg_value(argc, argv, "--webhook-allow", ""), &policy, err,
                           sizeof(err)) != RF_OK) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    rf_strlcpy(t.secret,
               arg_value(argc, argv, "--webhook-secret",
                         "whsec_cmVuZGVyZmFybS10ZXN0LWtleS0wMTIzNDU2Nzg5YWI="),
               sizeof(t.secret));

    memset(&cbs, 0, sizeof(cbs));
    mg_init_library(0);
    ctx = mg_start(&cbs, &t, opts);
    if (ctx == NULL) {
        fprintf(stderr, "cannot start civetweb\n");
        return 1;
    }
    mg_set_request_handler(ctx, "/ctl", on_ctl, &t);
    if (rf_ws_attach(ctx, &wcfg, auth, NULL, &t.ws) != RF_OK ||
        rf_webhook_memstore_new(&t.store) != RF_OK ||
        rf_webhooks_start(&hcfg, policy, &rf_webhook_memstore_ops, t.store, secret_fn, &t, &t.wh) !=
            RF_OK) {
        fprintf(stderr, "cannot start the live modules\n");
        goto out;
    }
    memset(ports, 0, sizeof(ports));
    if (mg_get_server_ports(ctx, 4, ports) < 1) {
        goto out;
    }
    printf("PORT %d\n", ports[0].port);
    fflush(stdout);
    sigwait(&set, &sig);
    rc = 0;
out:
    rf_webhooks_stop(&t.wh);
    mg_stop(ctx);
    rf_ws_free(&t.ws);
    rf_webhook_memstore_free(&t.store);
    rf_ssrf_policy_free(&policy);
    for (size_t i = 0; i < t.n_jobs; i++) {
        json_decref(t.jobs[i].progress);
        json_decref(t.jobs[i].final);
    }
    mg_exit_library();
    return rc;
}
