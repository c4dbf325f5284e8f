/* The agent: dials the coordinator, announces what this host can do (the
 * first slot to run says HELLO, again whenever the coordinator forgets us),
 * and runs `slots` unit loops. Each loop leases a unit, renders it while a
 * heartbeat thread reports progress (and learns of a lost lease or a
 * cancel), and reports completion or failure. Signals are handled here in
 * the main thread with sigwait, never in a handler. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libavutil/log.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#ifdef RF_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "encoder.h"
#include "render.h"
#include "rf_compose.h"
#include "rf_log.h"
#include "rf_net.h"
#include "rf_proto.h"
#include "rf_util.h"

#define AGENT_VERSION "0.1.0"
#define CALL_TIMEOUT_MS 10000

typedef struct agent_config {
    const char *coordinator;
    char agent_id[RF_ID_MAX];
    int slots;
    const char *compositor; /* auto, cpu, cuda */
    const char *log_level;
    const char *vaapi_device; /* render node for VAAPI encoders */
    int nvenc_sessions;       /* NVENC sessions the slots may hold at once */
} agent_config;

typedef struct agent {
    agent_config cfg;
    nng_socket sock;
    rf_hello hello;
    rf_enc_host *enc_host; /* shared by the slots' encoders */
    _Atomic uint32_t heartbeat_ms;
    atomic_bool stop;
    atomic_bool registered; /* the coordinator knows us (HELLO answered) */
    pthread_mutex_t hello_mu;
} agent;

typedef struct slot {
    agent *a;
    int index;
    pthread_t thread;
} slot;

/* Sleeps up to ms, returning early once the agent is stopping. */
static void
nap(agent *a, int64_t ms)
{
    int64_t until = rf_mono_ms() + ms;

    while (!atomic_load(&a->stop) && rf_mono_ms() < until) {
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

static rf_err
call(agent *a, const rf_msg *req, rf_msg *rep)
{
    char err[256] = "";
    rf_err rv = rf_net_call(a->sock, req, rep, CALL_TIMEOUT_MS, err, sizeof(err));

    if (rv != RF_OK)
        rf_warn("%s to coordinator failed: %s %s", rf_msg_type_name(req->type), rf_strerror(rv),
                err);
    return rv;
}

/* HELLO until the coordinator answers WELCOME (backing off to 5 s). */
static rf_err
say_hello(agent *a)
{
    int64_t backoff = 200;
    rf_msg req = {.type = RF_MSG_HELLO};

    pthread_mutex_lock(&a->hello_mu);
    if (atomic_load(&a->registered)) {
        /* Another slot registered while this one waited for the lock. */
        pthread_mutex_unlock(&a->hello_mu);
        return RF_OK;
    }
    req.u.hello = a->hello;
    while (!atomic_load(&a->stop)) {
        rf_msg rep = {0};
        if (call(a, &req, &rep) == RF_OK && rep.type == RF_MSG_WELCOME) {
            uint32_t hb = rep.u.welcome.heartbeat_ms;
            atomic_store(&a->heartbeat_ms, hb > 0 ? hb : 1000);
            rf_info("registered as %s (lease ttl %u ms, heartbeat %u ms)", a->hello.agent_id,
                    rep.u.welcome.lease_ttl_ms, atomic_load(&a->heartbeat_ms));
            rf_msg_clear(&rep);
#ifdef RF_HAVE_SYSTEMD
            sd_notify(0, "READY=1");
#endif
            atomic_store(&a->registered, true);
            pthread_mutex_unlock(&a->hello_mu);
            return RF_OK;
        }
        rf_msg_clear(&rep);
        nap(a, backoff);
        backoff = backoff * 2 > 5000 ? 5000 : backoff * 2;
    }
    pthread_mutex_unlock(&a->hello_mu);
    return RF_ECANCELED;
}

typedef struct heartbeat {
    agent *a;
    const rf_unit *u;
    rf_render_progress *progress;
    atomic_bool done;
    pthread_t thread;
} heartbeat;

/* One PROGRESS report; a refusal (stale lease, job canceled) cancels the
 * render. Returns false when refused. */
static bool
send_progress(heartbeat *hb)
{
    agent *a = hb->a;
    rf_msg req = {.type = RF_MSG_PROGRESS}, rep = {0};
    rf_progress *p = &req.u.progress;
    bool ok = true;

    rf_strlcpy(p->agent_id, a->hello.agent_id, sizeof(p->agent_id));
    rf_strlcpy(p->unit_id, hb->u->unit_id, sizeof(p->unit_id));
    rf_strlcpy(p->lease_id, hb->u->lease_id, sizeof(p->lease_id));
    p->frames_done = atomic_load(&hb->progress->frames_done);
    p->frames_total = atomic_load(&hb->progress->frames_total);
    rf_strlcpy(p->stage, rf_render_stage_name(atomic_load(&hb->progress->stage)), sizeof(p->stage));
    if (call(a, &req, &rep) == RF_OK && rep.type == RF_MSG_REFUSED) {
        rf_warn("unit %s: progress refused (%s: %s); stopping it", hb->u->unit_id,
                rep.u.refused.code, rep.u.refused.reason);
        atomic_store(&hb->progress->cancel, true);
        ok = false;
    }
    rf_msg_clear(&rep);
    return ok;
}

/* Asked by the renderer just before it moves the finished files into place:
 * one more heartbeat, so a lease that lapsed unnoticed places nothing. */
static bool
may_place(void *ctx)
{
    heartbeat *hb = ctx;
    return send_progress(hb) && !atomic_load(&hb->progress->cancel);
}

/* Reports progress every heartbeat_ms while the unit renders. A refusal
 * (stale lease, job canceled) cancels the render: someone else owns the unit
 * now, or nobody wants it. */
static void *
heartbeat_main(void *arg)
{
    heartbeat *hb = arg;
    agent *a = hb->a;

    while (!atomic_load(&hb->done)) {
        int64_t next = rf_mono_ms() + atomic_load(&a->heartbeat_ms);
        while (!atomic_load(&hb->done) && rf_mono_ms() < next) {
            struct timespec ts = {0, 20 * 1000 * 1000};
            nanosleep(&ts, NULL);
            if (atomic_load(&a->stop))
                atomic_store(&hb->progress->cancel, true);
        }
        if (atomic_load(&hb->done))
            break;
        send_progress(hb);
    }
    return NULL;
}

/* Sends a COMPLETE or FAIL, retrying transport errors for as long as the
 * lease could still be valid: a finished unit must not be lost to a blip. */
static void
report(agent *a, const rf_msg *req, const char *unit_id)
{
    /* While shutting down, a few seconds: the lease lapses anyway. */
    int64_t deadline = rf_mono_ms() + (atomic_load(&a->stop) ? 3000 : 60000);
    int64_t backoff = 200;

    for (;;) {
        rf_msg rep = {0};
        rf_err rv = call(a, req, &rep);
        if (rv == RF_OK) {
            if (rep.type == RF_MSG_REFUSED)
                rf_warn("unit %s: %s refused (%s: %s)", unit_id, rf_msg_type_name(req->type),
                        rep.u.refused.code, rep.u.refused.reason);
            rf_msg_clear(&rep);
            return;
        }
        if (rf_mono_ms() > deadline) {
            rf_error("unit %s: giving up reporting %s", unit_id, rf_msg_type_name(req->type));
            return;
        }
        struct timespec ts = {0, backoff * 1000 * 1000};
        nanosleep(&ts, NULL);
        backoff = backoff * 2 > 1000 ? 1000 : backoff * 2;
    }
}

static void
run_unit(agent *a, const rf_unit *u)
{
    rf_render_progress progress;
    heartbeat hb = {.a = a, .u = u, .progress = &progress};
    rf_render_opts opts = {.compositor = a->cfg.compositor,
                           .progress = &progress,
                           .may_place = may_place,
                           .may_place_ctx = &hb,
                           .encoders = a->hello.encoders,
                           .n_encoders = (int)a->hello.n_encoders,
                           .enc_host = a->enc_host};
    rf_render_result res;
    rf_msg req = {0};
    rf_err rv;

    atomic_init(&progress.frames_done, 0);
    atomic_init(&progress.frames_total, 0);
    atomic_init(&progress.stage, RF_STAGE_QUEUED);
    atomic_init(&progress.cancel, false);
    atomic_init(&hb.done, false);

    rf_info("unit %s (job %s row %u, %s %ux%u, %u ms): rendering to %s", u->unit_id, u->job_id,
            u->row_number, u->rendition, u->width, u->height, u->duration_ms, u->output_path);
    if (pthread_create(&hb.thread, NULL, heartbeat_main, &hb) != 0) {
        rf_error("cannot start the heartbeat thread");
        return;
    }
    rv = rf_render_unit(u, &opts, &res);
    atomic_store(&hb.done, true);
    pthread_join(hb.thread, NULL);

    if (rv == RF_OK) {
        rf_complete *c = &req.u.complete;
        req.type = RF_MSG_COMPLETE;
        rf_strlcpy(c->agent_id, a->hello.agent_id, sizeof(c->agent_id));
        rf_strlcpy(c->unit_id, u->unit_id, sizeof(c->unit_id));
        rf_strlcpy(c->lease_id, u->lease_id, sizeof(c->lease_id));
        rf_strlcpy(c->output_path, res.output_path, sizeof(c->output_path));
        c->size_bytes = res.size_bytes;
        memcpy(c->sha256, res.sha256, sizeof(c->sha256));
        c->duration_ms = res.duration_ms;
        c->frames = res.frames;
        rf_strlcpy(c->encoder, res.encoder, sizeof(c->encoder));
        c->render_ms = res.render_ms;
        rf_strlcpy(c->compositor, res.compositor, sizeof(c->compositor));
        rf_strlcpy(c->encoder_note, res.encoder_note, sizeof(c->encoder_note));
        rf_strlcpy(c->poster_path, res.poster_path, sizeof(c->poster_path));
        rf_strlcpy(c->captions_path, res.captions_path, sizeof(c->captions_path));
        rf_info("unit %s done: %u frames in %u ms (%.1f frames/s, %u composited), %s, %s "
                "compositor, %.1f LUFS, %.1f dBTP",
                u->unit_id, res.frames, res.render_ms,
                res.render_ms ? res.frames * 1000.0 / res.render_ms : 0.0, res.frames_composited,
                res.encoder, res.compositor, res.lufs, res.true_peak_db);
    } else if (rv == RF_ECANCELED && !atomic_load(&a->stop)) {
        rf_info("unit %s stopped: its lease is gone", u->unit_id);
        return;
    } else {
        rf_fail *f = &req.u.fail;
        req.type = RF_MSG_FAIL;
        rf_strlcpy(f->agent_id, a->hello.agent_id, sizeof(f->agent_id));
        rf_strlcpy(f->unit_id, u->unit_id, sizeof(f->unit_id));
        rf_strlcpy(f->lease_id, u->lease_id, sizeof(f->lease_id));
        if (rv == RF_ECANCELED) {
            /* Shutting down: hand the unit back at once instead of letting
             * its lease lapse. */
            rf_strlcpy(f->error_code, "agent_shutdown", sizeof(f->error_code));
            rf_strlcpy(f->error_message, "the agent is shutting down", sizeof(f->error_message));
            f->retryable = true;
        } else {
            rf_strlcpy(f->error_code, res.error_code[0] ? res.error_code : "internal_error",
                       sizeof(f->error_code));
            rf_strlcpy(f->error_message, res.error_message, sizeof(f->error_message));
            f->retryable = res.retryable;
        }
        rf_warn("unit %s failed: %s: %s", u->unit_id, f->error_code, f->error_message);
    }
    report(a, &req, u->unit_id);
}

static void *
slot_main(void *arg)
{
    slot *s = arg;
    agent *a = s->a;

    while (!atomic_load(&a->stop)) {
        if (!atomic_load(&a->registered) && say_hello(a) != RF_OK)
            break; /* stopping */
        rf_msg req = {.type = RF_MSG_LEASE_REQ}, rep = {0};
        rf_strlcpy(req.u.lease_req.agent_id, a->hello.agent_id, sizeof(req.u.lease_req.agent_id));
        req.u.lease_req.free_slots = 1;
        if (call(a, &req, &rep) != RF_OK) {
            nap(a, 1000);
            continue;
        }
        switch (rep.type) {
        case RF_MSG_UNIT:
            run_unit(a, &rep.u.unit);
            break;
        case RF_MSG_NO_WORK:
            nap(a, rep.u.no_work.retry_ms > 0 ? rep.u.no_work.retry_ms : 500);
            break;
        case RF_MSG_REFUSED:
            rf_warn("lease request refused (%s: %s)", rep.u.refused.code, rep.u.refused.reason);
            if (strcmp(rep.u.refused.code, "unknown_agent") == 0)
                atomic_store(&a->registered, false); /* HELLO again, then lease */
            else
                nap(a, 1000);
            break;
        default:
            rf_warn("unexpected reply %s to a lease request", rf_msg_type_name(rep.type));
            nap(a, 1000);
            break;
        }
        rf_msg_clear(&rep);
    }
    return NULL;
}

static void
usage(FILE *f)
{
    fprintf(f,
            "usage: agent [options]\n"
            "  --coordinator URL   nng address of the coordinator (tcp://127.0.0.1:5555)\n"
            "  --agent-id ID       stable name of this agent (default: the hostname)\n"
            "  --slots N           units rendered at once (default 1)\n"
            "  --compositor NAME   auto, cpu or cuda (default auto)\n"
            "  --log-level LEVEL   debug, info, warn, error (default info)\n"
            "  --vaapi-device PATH render node of VAAPI encoders (default " RF_VAAPI_NODE_DEFAULT
            ")\n"
            "  --nvenc-sessions N  NVENC sessions used at once, 0..64 (default %d); slots\n"
            "                      beyond it encode in software\n"
            "  --probe             print the encoders that open on this host and exit\n",
            RF_NVENC_SESSIONS_DEFAULT);
}

static int
parse_args(int argc, char **argv, agent_config *cfg, int *probe_only)
{
    for (int i = 1; i < argc; i++) {
        const char *k = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;

        if (strcmp(k, "--help") == 0 || strcmp(k, "-h") == 0) {
            usage(stdout);
            exit(0);
        } else if (strcmp(k, "--probe") == 0) {
            *probe_only = 1;
            continue;
        }
        if (!v) {
            fprintf(stderr, "agent: %s needs a value\n", k);
            return -1;
        }
        i++;
        if (strcmp(k, "--coordinator") == 0) {
            cfg->coordinator = v;
        } else if (strcmp(k, "--agent-id") == 0) {
            if (rf_strlcpy(cfg->agent_id, v, sizeof(cfg->agent_id)) != RF_OK) {
                fprintf(stderr, "agent: --agent-id is too long\n");
                return -1;
            }
        } else if (strcmp(k, "--slots") == 0) {
            char *end;
            long n = strtol(v, &end, 10);
            if (*end || n < 1 || n > 64) {
                fprintf(stderr, "agent: --slots must be 1..64\n");
                return -1;
            }
            cfg->slots = (int)n;
        } else if (strcmp(k, "--compositor") == 0) {
            if (strcmp(v, "auto") && strcmp(v, "cpu") && strcmp(v, "cuda")) {
                fprintf(stderr, "agent: --compositor must be auto, cpu or cuda\n");
                return -1;
            }
            cfg->compositor = v;
        } else if (strcmp(k, "--log-level") == 0) {
            cfg->log_level = v;
        } else if (strcmp(k, "--vaapi-device") == 0) {
            cfg->vaapi_device = v;
        } else if (strcmp(k, "--nvenc-sessions") == 0) {
            char *end;
            long n = strtol(v, &end, 10);
            if (*end || end == v || n < 0 || n > 64) {
                fprintf(stderr, "agent: --nvenc-sessions must be 0..64\n");
                return -1;
            }
            cfg->nvenc_sessions = (int)n;
        } else {
            fprintf(stderr, "agent: unknown option %s\n", k);
            usage(stderr);
            return -1;
        }
    }
    return 0;
}

/* Fills the capabilities announced in HELLO: what actually works here. */
static void
probe_host(agent *a)
{
    rf_hello *h = &a->hello;
    rf_compositor *c = NULL;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);

    rf_strlcpy(h->agent_id, a->cfg.agent_id, sizeof(h->agent_id));
    if (gethostname(h->hostname, sizeof(h->hostname) - 1) != 0)
        rf_strlcpy(h->hostname, "unknown", sizeof(h->hostname));
    rf_strlcpy(h->version, AGENT_VERSION, sizeof(h->version));
    h->cpu_cores = cores > 0 ? (uint32_t)cores : 1;
    h->slots = (uint32_t)a->cfg.slots;
    h->n_encoders = (uint32_t)rf_enc_probe(a->enc_host, h->encoders, RF_MAX_ENCODERS);

    if (strcmp(a->cfg.compositor, "cpu") != 0 &&
        rf_comp_create("cuda", 64, 64, RF_PIX_YUV420P, &c) == RF_OK) {
        h->gpus = 1;
        rf_strlcpy(h->compositor, "cuda", sizeof(h->compositor));
    } else {
        rf_strlcpy(h->compositor, "cpu", sizeof(h->compositor));
    }
    rf_comp_free(&c);
    char list[RF_MAX_ENCODERS * RF_NAME_MAX] = "";
    for (uint32_t i = 0; i < h->n_encoders; i++) {
        strncat(list, h->encoders[i], sizeof(list) - strlen(list) - 2);
        if (i + 1 < h->n_encoders)
            strncat(list, " ", sizeof(list) - strlen(list) - 1);
    }
    rf_info("host %s: %u cores, %u slots, compositor %s, encoders: %s", h->hostname, h->cpu_cores,
            h->slots, h->compositor, list[0] ? list : "(none)");
}

int
main(int argc, char **argv)
{
    agent a = {0};
    int probe_only = 0;
    sigset_t sigs;
    slot *slots = NULL;
    int rc = 1, rv;

    a.cfg.coordinator = "tcp://127.0.0.1:5555";
    a.cfg.slots = 1;
    a.cfg.compositor = "auto";
    a.cfg.log_level = "info";
    a.cfg.vaapi_device = RF_VAAPI_NODE_DEFAULT;
    a.cfg.nvenc_sessions = RF_NVENC_SESSIONS_DEFAULT;
    if (gethostname(a.cfg.agent_id, sizeof(a.cfg.agent_id) - 1) != 0)
        rf_strlcpy(a.cfg.agent_id, "agent", sizeof(a.cfg.agent_id));
    if (parse_args(argc, argv, &a.cfg, &probe_only) != 0)
        return 2;
    rf_log_init("agent", rf_log_level_parse(a.cfg.log_level));
    /* Frame-sized buffers (x264's, libav's) come and go every frame: keep
     * them in the heap rather than mmap/munmap, which made the kernel zero
     * fresh pages for about 6 % of a 1080p unit's CPU time. */
    mallopt(M_MMAP_THRESHOLD, 64 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
    /* libav's own chatter (x264 statistics, probe failures) would drown the
     * agent's log; its errors reach us as return codes we log with context. */
    av_log_set_level(a.cfg.log_level && strcmp(a.cfg.log_level, "debug") == 0 ? AV_LOG_INFO
                                                                              : AV_LOG_ERROR);
    atomic_init(&a.stop, false);
    atomic_init(&a.registered, false);
    atomic_init(&a.heartbeat_ms, 1000);
    pthread_mutex_init(&a.hello_mu, NULL);

    /* Block the signals in every thread; the main thread waits for them. */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);

    if (rf_enc_host_create(a.cfg.vaapi_device, a.cfg.nvenc_sessions, &a.enc_host) != RF_OK) {
        rf_error("--vaapi-device: path too long");
        return 2;
    }
    probe_host(&a);
    if (probe_only) {
        for (uint32_t i = 0; i < a.hello.n_encoders; i++)
            printf("%s\n", a.hello.encoders[i]);
        rf_enc_host_free(&a.enc_host);
        return 0;
    }

    rv = nng_req0_open(&a.sock);
    if (rv != 0) {
        rf_error("nng_req0_open: %s", nng_strerror(rv));
        rf_enc_host_free(&a.enc_host);
        return 1;
    }
    if (rf_net_socket_setup(a.sock) != RF_OK)
        goto out;
    /* Non-blocking dial: nng keeps reconnecting in the background, so the
     * agent may start before the coordinator. */
    rv = nng_dial(a.sock, a.cfg.coordinator, NULL, NNG_FLAG_NONBLOCK);
    if (rv != 0) {
        rf_error("dial %s: %s", a.cfg.coordinator, nng_strerror(rv));
        goto out;
    }
    rf_info("agent %s dialing %s", a.hello.agent_id, a.cfg.coordinator);

    slots = calloc((size_t)a.cfg.slots, sizeof(*slots));
    if (!slots)
        goto out;
    for (int i = 0; i < a.cfg.slots; i++) {
        slots[i].a = &a;
        slots[i].index = i;
        if (pthread_create(&slots[i].thread, NULL, slot_main, &slots[i]) != 0) {
            rf_error("cannot start slot %d", i);
            atomic_store(&a.stop, true);
            a.cfg.slots = i;
            break;
        }
    }

    int sig = 0;
    if (!atomic_load(&a.stop))
        sigwait(&sigs, &sig);
    rf_info("signal %d: stopping (in-flight units are handed back)", sig);
#ifdef RF_HAVE_SYSTEMD
    sd_notify(0, "STOPPING=1");
#endif
    atomic_store(&a.stop, true);
    /* Slots hand their units back within a frame; one blocked in a request
     * to an absent coordinator is freed by closing the socket after a grace
     * period. */
    struct timespec grace;
    clock_gettime(CLOCK_REALTIME, &grace);
    if (atomic_load(&a.registered))
        grace.tv_sec += 5; /* unregistered slots hold no units: no grace */
    bool closed = false;
    for (int i = 0; i < a.cfg.slots; i++) {
        if (!closed && pthread_timedjoin_np(slots[i].thread, NULL, &grace) == 0)
            continue;
        if (!closed) {
            nng_close(a.sock);
            closed = true;
        }
        pthread_join(slots[i].thread, NULL);
    }
    if (closed)
        a.sock = (nng_socket)NNG_SOCKET_INITIALIZER;
    rc = 0;
out:
    free(slots);
    nng_close(a.sock);
    rf_enc_host_free(&a.enc_host);
    return rc;
}
