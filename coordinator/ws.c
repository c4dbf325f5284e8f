/* WebSocket job feed: a hub of per-job subscriber lists with bounded
 * queues (no civetweb in the first half of this file), then the civetweb
 * glue: handshake checks, one sender thread per connection, and the
 * shutdown of connections that fall behind. */
#include "ws.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <civetweb.h>

#include "rf_log.h"
#include "rf_util.h"

#define N_BUCKETS 256
#define JOB_ID_MAX 128
#define TENANT_MAX 128

struct rf_ws_frame {
    atomic_int refs;
    size_t len;
    char tenant[TENANT_MAX];
    char text[];
};

typedef struct qnode {
    struct qnode *next;
    rf_ws_frame *f;
} qnode;

typedef struct job job;

struct rf_ws_sub {
    job *job;
    struct rf_ws_sub *next; /* in the job's list */
    char tenant[TENANT_MAX];
    bool all_tenants;
    qnode *head, *tail;
    size_t q_msgs, q_bytes;
    bool overflow, canceled, killed;
    int64_t overflow_at;
    pthread_cond_t cv;
    rf_ws_kill_fn kill;
    void *kill_arg;
};

struct job {
    char id[JOB_ID_MAX];
    job *next; /* hash chain */
    rf_ws_sub *subs;
    size_t n_subs;
    rf_ws_frame *pending; /* newest held-back progress */
    rf_ws_frame *last;    /* last progress delivered (heartbeats repeat it) */
    int64_t last_sent;    /* when a progress frame last went out */
    bool sent_any;        /* whether last_sent is meaningful */
    bool terminal;        /* no heartbeats after the job ended */
    bool state_known;     /* a state message was published (beats snapshots) */
};

struct rf_ws {
    rf_ws_config cfg;
    pthread_mutex_t mu;
    job *buckets[N_BUCKETS];
    size_t n_clients, n_jobs;
    rf_ws_stats stats;
    /* civetweb glue */
    struct mg_context *ctx;
    rf_ws_auth_fn auth;
    void *auth_ctx;
    pthread_t ticker;
    bool ticker_started;
    bool stop;
    pthread_cond_t stop_cv;
};

/* ---- frames ---- */

static rf_ws_frame *
frame_new(const char *text, size_t len, const char *tenant)
{
    rf_ws_frame *f = malloc(sizeof(*f) + len + 1);

    if (f == NULL) {
        return NULL;
    }
    atomic_init(&f->refs, 1);
    f->len = len;
    rf_strlcpy(f->tenant, tenant != NULL ? tenant : "", sizeof(f->tenant));
    memcpy(f->text, text, len);
    f->text[len] = '\0';
    return f;
}

static rf_ws_frame *
frame_ref(rf_ws_frame *f)
{
    atomic_fetch_add(&f->refs, 1);
    return f;
}

void
rf_ws_frame_release(rf_ws_frame *f)
{
    if (f != NULL && atomic_fetch_sub(&f->refs, 1) == 1) {
        free(f);
    }
}

const char *
rf_ws_frame_text(const rf_ws_frame *f, size_t *len)
{
    if (len != NULL) {
        *len = f->len;
    }
    return f->text;
}

/* ---- hub (everything below holds ws->mu unless it says otherwise) ---- */

static int64_t
now_ms(const rf_ws *ws)
{
    return ws->cfg.clock != NULL ? ws->cfg.clock(ws->cfg.clock_ctx) : rf_mono_ms();
}

static size_t
bucket_of(const char *id)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)id; *p != '\0'; p++) {
        h = (h ^ *p) * 16777619u;
    }
    return h % N_BUCKETS;
}

static job *
job_find(rf_ws *ws, const char *id)
{
    for (job *j = ws->buckets[bucket_of(id)]; j != NULL; j = j->next) {
        if (strcmp(j->id, id) == 0) {
            return j;
        }
    }
    return NULL;
}

static void
job_unlink_free(rf_ws *ws, job *j)
{
    job **pp = &ws->buckets[bucket_of(j->id)];

    while (*pp != NULL && *pp != j) {
        pp = &(*pp)->next;
    }
    if (*pp == j) {
        *pp = j->next;
    }
    rf_ws_frame_release(j->pending);
    rf_ws_frame_release(j->last);
    ws->n_jobs--;
    free(j);
}

static void
queue_clear(rf_ws_sub *s)
{
    qnode *n = s->head;

    while (n != NULL) {
        qnode *next = n->next;
        rf_ws_frame_release(n->f);
        free(n);
        n = next;
    }
    s->head = s->tail = NULL;
    s->q_msgs = s->q_bytes = 0;
}

static bool
sub_wants(const rf_ws_sub *s, const rf_ws_frame *f)
{
    return s->all_tenants || strcmp(s->tenant, f->tenant) == 0;
}

static void
sub_overflow(rf_ws *ws, rf_ws_sub *s, int64_t now)
{
    s->overflow = true;
    s->overflow_at = now;
    queue_clear(s);
    ws->stats.slow_disconnects++;
    rf_warn("ws: client of job %s fell behind its queue limits; disconnecting it", s->job->id);
    pthread_cond_broadcast(&s->cv);
}

/* Appends (or prepends) f to one subscriber, enforcing its limits. */
static void
sub_push(rf_ws *ws, rf_ws_sub *s, rf_ws_frame *f, bool front, int64_t now)
{
    qnode *n;

    if (s->overflow || s->canceled) {
        return;
    }
    if (s->q_msgs + 1 > ws->cfg.queue_max_msgs || s->q_bytes + f->len > ws->cfg.queue_max_bytes) {
        sub_overflow(ws, s, now);
        return;
    }
    n = malloc(sizeof(*n));
    if (n == NULL) {
        /* Losing a message silently would break the feed's promise; treat
         * it like a client that cannot keep up. */
        sub_overflow(ws, s, now);
        return;
    }
    n->f = frame_ref(f);
    n->next = NULL;
    if (front) {
        n->next = s->head;
        s->head = n;
        if (s->tail == NULL) {
            s->tail = n;
        }
    } else {
        if (s->tail != NULL) {
            s->tail->next = n;
        } else {
            s->head = n;
        }
        s->tail = n;
    }
    s->q_msgs++;
    s->q_bytes += f->len;
    pthread_cond_signal(&s->cv);
}

static void
deliver(rf_ws *ws, job *j, rf_ws_frame *f, int64_t now)
{
    for (rf_ws_sub *s = j->subs; s != NULL; s = s->next) {
        if (sub_wants(s, f)) {
            sub_push(ws, s, f, false, now);
        }
    }
}

static void
deliver_progress(rf_ws *ws, job *j, rf_ws_frame *f, int64_t now)
{
    deliver(ws, j, f, now);
    if (j->last != f) {
        rf_ws_frame_release(j->last);
        j->last = frame_ref(f);
    }
    j->last_sent = now;
    j->sent_any = true;
}

static bool
is_terminal_state(const char *s)
{
    return s != NULL && (strcmp(s, "completed") == 0 || strcmp(s, "failed") == 0 ||
                         strcmp(s, "canceled") == 0 || strcmp(s, "cancelled") == 0);
}

/* Classifies msg: progress or not, and whether it says the job ended
 * (*terminal = 1), restarted (0) or neither (-1). */
static rf_err
classify(json_t *msg, bool *progress, int *terminal)
{
    const char *type = json_string_value(json_object_get(msg, "type"));

    if (type == NULL) {
        return RF_EINVAL;
    }
    *progress = strcmp(type, "job.progress") == 0;
    *terminal = -1;
    if (strcmp(type, "job.completed") == 0 || strcmp(type, "job.failed") == 0) {
        *terminal = 1;
    } else if (strcmp(type, "job.state_changed") == 0) {
        const char *st =
            json_string_value(json_object_get(json_object_get(msg, "data"), "new_state"));
        *terminal = is_terminal_state(st) ? 1 : 0;
    }
    return RF_OK;
}

void
rf_ws_config_defaults(rf_ws_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->progress_min_interval_ms = 250;
    cfg->heartbeat_ms = 5000;
    cfg->queue_max_msgs = 256;
    cfg->queue_max_bytes = 1 << 20;
    cfg->close_grace_ms = 2000;
    cfg->max_clients = 64;
}

rf_err
rf_ws_new(const rf_ws_config *cfg, rf_ws **out)
{
    rf_ws *ws = calloc(1, sizeof(*ws));
    pthread_condattr_t attr;

    *out = NULL;
    if (ws == NULL) {
        return RF_ENOMEM;
    }
    ws->cfg = *cfg;
    if (ws->cfg.queue_max_msgs == 0) {
        ws->cfg.queue_max_msgs = 1;
    }
    pthread_mutex_init(&ws->mu, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&ws->stop_cv, &attr);
    pthread_condattr_destroy(&attr);
    *out = ws;
    return RF_OK;
}

rf_err
rf_ws_publish(rf_ws *ws, const char *job_id, const char *tenant, json_t *msg)
{
    bool progress;
    int terminal;
    char *text;
    rf_ws_frame *f;
    job *j;
    int64_t now;
    rf_err rv;

    if (ws == NULL || job_id == NULL) {
        return RF_EINVAL;
    }
    rv = classify(msg, &progress, &terminal);
    if (rv != RF_OK) {
        return rv;
    }
    /* Cheap exit before serialising: most jobs have no watcher. */
    pthread_mutex_lock(&ws->mu);
    j = job_find(ws, job_id);
    pthread_mutex_unlock(&ws->mu);
    if (j == NULL) {
        return RF_OK;
    }
    text = json_dumps(msg, JSON_COMPACT);
    if (text == NULL) {
        return RF_ENOMEM;
    }
    f = frame_new(text, strlen(text), tenant);
    free(text);
    if (f == NULL) {
        return RF_ENOMEM;
    }

    pthread_mutex_lock(&ws->mu);
    j = job_find(ws, job_id); /* may have gone while we serialised */
    if (j == NULL) {
        goto out;
    }
    now = now_ms(ws);
    if (progress) {
        if (!j->sent_any || now - j->last_sent >= ws->cfg.progress_min_interval_ms) {
            if (j->pending != NULL) {
                rf_ws_frame_release(j->pending); /* f is newer */
                j->pending = NULL;
                ws->stats.progress_merged++;
            }
            deliver_progress(ws, j, f, now);
        } else {
            if (j->pending != NULL) {
                rf_ws_frame_release(j->pending);
                ws->stats.progress_merged++;
            }
            j->pending = frame_ref(f);
        }
    } else {
        if (j->pending != NULL) {
            /* Keep order: the progress that came before this event goes
             * first, even if that is sooner than the interval. */
            rf_ws_frame *p = j->pending;
            j->pending = NULL;
            deliver_progress(ws, j, p, now);
            rf_ws_frame_release(p);
        }
        deliver(ws, j, f, now);
        if (terminal >= 0) {
            j->terminal = terminal == 1;
            j->state_known = true;
        }
    }
out:
    pthread_mutex_unlock(&ws->mu);
    rf_ws_frame_release(f);
    return RF_OK;
}

void
rf_ws_tick(rf_ws *ws)
{
    int64_t now;

    pthread_mutex_lock(&ws->mu);
    now = now_ms(ws);
    for (size_t b = 0; b < N_BUCKETS; b++) {
        for (job *j = ws->buckets[b]; j != NULL; j = j->next) {
            if (j->pending != NULL &&
                (!j->sent_any || now - j->last_sent >= ws->cfg.progress_min_interval_ms)) {
                rf_ws_frame *p = j->pending;
                j->pending = NULL;
                deliver_progress(ws, j, p, now);
                rf_ws_frame_release(p);
            } else if (j->pending == NULL && j->last != NULL && !j->terminal &&
                       ws->cfg.heartbeat_ms > 0 && now - j->last_sent >= ws->cfg.heartbeat_ms) {
                deliver_progress(ws, j, j->last, now);
                ws->stats.heartbeats++;
            }
            for (rf_ws_sub *s = j->subs; s != NULL; s = s->next) {
                if (s->overflow && !s->killed && now - s->overflow_at >= ws->cfg.close_grace_ms) {
                    s->killed = true;
                    if (s->kill != NULL) {
                        s->kill(s->kill_arg);
                    }
                }
            }
        }
    }
    pthread_mutex_unlock(&ws->mu);
}

void
rf_ws_get_stats(rf_ws *ws, rf_ws_stats *out)
{
    pthread_mutex_lock(&ws->mu);
    *out = ws->stats;
    out->clients = ws->n_clients;
    out->jobs = ws->n_jobs;
    pthread_mutex_unlock(&ws->mu);
}

rf_err
rf_ws_sub_open(rf_ws *ws, const char *job_id, const char *tenant, rf_ws_kill_fn kill,
               void *kill_arg, rf_ws_sub **out)
{
    rf_ws_sub *s;
    job *j;
    rf_err rv = RF_OK;
    pthread_condattr_t attr;

    *out = NULL;
    if (job_id == NULL || job_id[0] == '\0' || strlen(job_id) >= JOB_ID_MAX ||
        (tenant != NULL && strlen(tenant) >= TENANT_MAX)) {
        return RF_EINVAL;
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return RF_ENOMEM;
    }
    s->all_tenants = tenant == NULL;
    rf_strlcpy(s->tenant, tenant != NULL ? tenant : "", sizeof(s->tenant));
    s->kill = kill;
    s->kill_arg = kill_arg;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &attr);
    pthread_condattr_destroy(&attr);

    pthread_mutex_lock(&ws->mu);
    if (ws->n_clients >= ws->cfg.max_clients) {
        rv = RF_ECONFLICT;
        goto out;
    }
    j = job_find(ws, job_id);
    if (j == NULL) {
        size_t b = bucket_of(job_id);
        j = calloc(1, sizeof(*j));
        if (j == NULL) {
            rv = RF_ENOMEM;
            goto out;
        }
        rf_strlcpy(j->id, job_id, sizeof(j->id));
        j->next = ws->buckets[b];
        ws->buckets[b] = j;
        ws->n_jobs++;
    }
    s->job = j;
    s->next = j->subs;
    j->subs = s;
    j->n_subs++;
    ws->n_clients++;
out:
    pthread_mutex_unlock(&ws->mu);
    if (rv != RF_OK) {
        pthread_cond_destroy(&s->cv);
        free(s);
        return rv;
    }
    *out = s;
    return RF_OK;
}

rf_err
rf_ws_sub_prepend(rf_ws *ws, rf_ws_sub *sub, json_t *msgs)
{
    size_t n = json_array_size(msgs);
    rf_ws_frame **frames;
    rf_err rv = RF_OK;
    int64_t now;

    if (n == 0) {
        return json_is_array(msgs) ? RF_OK : RF_EINVAL;
    }
    frames = calloc(n, sizeof(*frames));
    if (frames == NULL) {
        return RF_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *m = json_array_get(msgs, i);
        bool progress;
        int terminal;
        char *text;

        rv = classify(m, &progress, &terminal);
        if (rv != RF_OK) {
            goto out;
        }
        text = json_dumps(m, JSON_COMPACT);
        if (text == NULL) {
            rv = RF_ENOMEM;
            goto out;
        }
        frames[i] = frame_new(text, strlen(text), sub->tenant);
        free(text);
        if (frames[i] == NULL) {
            rv = RF_ENOMEM;
            goto out;
        }
    }
    pthread_mutex_lock(&ws->mu);
    now = now_ms(ws);
    for (size_t i = n; i-- > 0;) {
        json_t *m = json_array_get(msgs, i);
        bool progress;
        int terminal;
        job *j = sub->job;

        sub_push(ws, sub, frames[i], true, now);
        classify(m, &progress, &terminal);
        /* What the snapshot says seeds the job's heartbeat state, unless
         * live events already told us more. */
        /* (An all-tenants subscriber's frames carry no tenant: they could
         * not be repeated to the job's own tenant.) */
        if (progress && j->last == NULL && !sub->all_tenants) {
            j->last = frame_ref(frames[i]);
            j->last_sent = now;
            j->sent_any = true;
        }
        if (terminal >= 0 && !j->state_known) {
            j->terminal = terminal == 1;
            if (terminal == 1) {
                j->state_known = true;
            }
        }
    }
    pthread_mutex_unlock(&ws->mu);
out:
    for (size_t i = 0; i < n; i++) {
        rf_ws_frame_release(frames[i]);
    }
    free(frames);
    return rv;
}

rf_err
rf_ws_sub_pop(rf_ws *ws, rf_ws_sub *sub, int64_t wait_ms, rf_ws_frame **out)
{
    struct timespec deadline;
    qnode *n;
    rf_err rv = RF_OK;

    *out = NULL;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += wait_ms / 1000;
    deadline.tv_nsec += (wait_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&ws->mu);
    while (sub->head == NULL && !sub->overflow && !sub->canceled) {
        if (wait_ms <= 0 || pthread_cond_timedwait(&sub->cv, &ws->mu, &deadline) == ETIMEDOUT) {
            break;
        }
    }
    if (sub->overflow || sub->canceled) {
        rv = RF_ECANCELED;
        goto out;
    }
    n = sub->head;
    if (n == NULL) {
        rv = RF_ETIMEDOUT;
        goto out;
    }
    sub->head = n->next;
    if (sub->head == NULL) {
        sub->tail = NULL;
    }
    sub->q_msgs--;
    sub->q_bytes -= n->f->len;
    *out = n->f;
    free(n);
    ws->stats.frames_sent++;
out:
    pthread_mutex_unlock(&ws->mu);
    return rv;
}

bool
rf_ws_sub_overflowed(rf_ws *ws, rf_ws_sub *sub)
{
    bool v;

    pthread_mutex_lock(&ws->mu);
    v = sub->overflow;
    pthread_mutex_unlock(&ws->mu);
    return v;
}

void
rf_ws_sub_cancel(rf_ws *ws, rf_ws_sub *sub)
{
    pthread_mutex_lock(&ws->mu);
    sub->canceled = true;
    pthread_cond_broadcast(&sub->cv);
    pthread_mutex_unlock(&ws->mu);
}

void
rf_ws_sub_close(rf_ws *ws, rf_ws_sub **subp)
{
    rf_ws_sub *s;
    job *j;

    if (subp == NULL || *subp == NULL) {
        return;
    }
    s = *subp;
    pthread_mutex_lock(&ws->mu);
    j = s->job;
    for (rf_ws_sub **pp = &j->subs; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    }
    j->n_subs--;
    ws->n_clients--;
    if (j->n_subs == 0) {
        job_unlink_free(ws, j);
    }
    queue_clear(s);
    pthread_mutex_unlock(&ws->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
    *subp = NULL;
}

/* ---- message builders ---- */

json_t *
rf_ws_msg(const char *type, json_t *data)
{
    if (data == NULL) {
        return NULL;
    }
    return json_pack("{s:s, s:o}", "type", type, "data", data);
}

json_t *
rf_ws_msg_state_changed(const char *job_id, const char *prior_state, const char *new_state,
                        const char *reason)
{
    return rf_ws_msg("job.state_changed",
                     json_pack("{s:s, s:s?, s:s, s:s?}", "job_id", job_id, "prior_state",
                               prior_state, "new_state", new_state, "reason", reason));
}

json_t *
rf_ws_msg_progress(const char *job_id, const rf_ws_progress *p)
{
    json_t *eta = p->eta_ms >= 0 ? json_integer(p->eta_ms) : json_null();

    return rf_ws_msg(
        "job.progress",
        json_pack("{s:s, s:f, s:I, s:I, s:I, s:I, s:I, s:o, s:b}", "job_id", job_id,
                  "percent_complete", p->percent_complete, "items_completed",
                  (json_int_t)p->items_completed, "items_failed", (json_int_t)p->items_failed,
                  "items_total", (json_int_t)p->items_total, "frames_done",
                  (json_int_t)p->frames_done, "frames_total", (json_int_t)p->frames_total, "eta_ms",
                  eta, "rate_limited", p->rate_limited ? 1 : 0));
}

json_t *
rf_ws_msg_video_completed(const char *job_id, const char *video_id, int64_t row_number,
                          json_t *artifacts)
{
    if (artifacts == NULL) {
        artifacts = json_array();
    }
    return rf_ws_msg("video.completed",
                     json_pack("{s:s, s:s, s:I, s:o}", "job_id", job_id, "id", video_id,
                               "row_number", (json_int_t)row_number, "artifacts", artifacts));
}

json_t *
rf_ws_msg_video_failed(const char *job_id, const char *video_id, int64_t row_number,
                       const char *error_code, const char *error_message)
{
    return rf_ws_msg("video.failed",
                     json_pack("{s:s, s:s, s:I, s:[{s:s, s:s}]}", "job_id", job_id, "id", video_id,
                               "row_number", (json_int_t)row_number, "errors", "error_code",
                               error_code, "error_message", error_message));
}

json_t *
rf_ws_msg_job_completed(const char *job_id, json_t *summary, json_t *artifacts)
{
    if (summary == NULL) {
        summary = json_object();
    }
    if (artifacts == NULL) {
        artifacts = json_array();
    }
    return rf_ws_msg("job.completed", json_pack("{s:s, s:o, s:o}", "job_id", job_id, "summary",
                                                summary, "artifacts", artifacts));
}

json_t *
rf_ws_msg_job_failed(const char *job_id, const char *error_code, const char *error_message)
{
    return rf_ws_msg("job.failed", json_pack("{s:s, s:s, s:s}", "job_id", job_id, "error_code",
                                             error_code, "error_message", error_message));
}

/* ---- civetweb glue ---- */

typedef struct ws_conn {
    rf_ws *ws;
    rf_ws_sub *sub;
    struct mg_connection *conn;
    int fd;      /* the connection's socket, -1 until found; guarded by ws->mu */
    bool closed; /* close handler ran: fd is civetweb's to close; ws->mu */
    bool sender_started;
    pthread_t sender;
    char job_id[JOB_ID_MAX];
} ws_conn;

static const char *bearer_protocols[] = {"bearer", NULL};
static struct mg_websocket_subprotocols bearer_subprotocols = {1, bearer_protocols};

static const char *const ws_paths[] = {"/api/v1/ws/bulk-jobs", "/api/ws/bulk-jobs",
                                       "/ws/bulk-jobs"};

static void
refuse(const struct mg_connection *cconn, rf_ws *ws, int status, const char *reason,
       const char *code, const char *message)
{
    struct mg_connection *conn = (struct mg_connection *)cconn;
    json_t *body = json_pack("{s:s, s:s}", "error_code", code, "error_message", message);
    char *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    const char *t = text != NULL ? text : "{}";

    /* Written by hand: the upgrade has not happened, and civetweb's error
     * page helper is not meant for a WebSocket request. */
    mg_printf(conn,
              "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
              "%sConnection: close\r\n\r\n%s",
              status, reason, strlen(t),
              status == 401 ? "WWW-Authenticate: Bearer realm=\"renderfarm\"\r\n" : "", t);
    free(text);
    json_decref(body);
    pthread_mutex_lock(&ws->mu);
    ws->stats.refused++;
    pthread_mutex_unlock(&ws->mu);
}

/* Finds the token: Authorization: Bearer, else Sec-WebSocket-Protocol as
 * "Bearer <token>" or as the list "bearer, <token>". */
static bool
find_token(const struct mg_connection *conn, char *out, size_t len)
{
    const char *h = mg_get_header(conn, "Authorization");
    const char *p;

    if (h != NULL && strncasecmp(h, "Bearer ", 7) == 0) {
        h += 7;
        while (*h == ' ') {
            h++;
        }
        return h[0] != '\0' && rf_strlcpy(out, h, len) == RF_OK;
    }
    h = mg_get_header(conn, "Sec-WebSocket-Protocol");
    if (h == NULL) {
        return false;
    }
    while (*h == ' ') {
        h++;
    }
    if (strncasecmp(h, "Bearer ", 7) == 0 && strchr(h, ',') == NULL) {
        h += 7;
        while (*h == ' ') {
            h++;
        }
        return h[0] != '\0' && rf_strlcpy(out, h, len) == RF_OK;
    }
    /* "bearer, <token>": the element after "bearer". */
    p = h;
    while (*p != '\0') {
        size_t n = strcspn(p, ",");
        const char *next = p[n] == ',' ? p + n + 1 : p + n;
        size_t i = 0;
        while (n > 0 && p[n - 1] == ' ') {
            n--;
        }
        if (n == 6 && strncasecmp(p, "bearer", 6) == 0) {
            while (*next == ' ') {
                next++;
            }
            i = strcspn(next, ", ");
            if (i == 0 || i >= len) {
                return false;
            }
            memcpy(out, next, i);
            out[i] = '\0';
            return true;
        }
        p = next;
        while (*p == ' ') {
            p++;
        }
    }
    return false;
}

static bool
valid_job_id(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n >= JOB_ID_MAX) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-')) {
            return false;
        }
    }
    return true;
}

static bool
has_scope(const char *scopes, const char *want)
{
    size_t wl = strlen(want);
    const char *p = scopes;

    if (wl == 0) {
        return true;
    }
    while (*p != '\0') {
        size_t n = strcspn(p, " ");
        if (n == wl && strncmp(p, want, wl) == 0) {
            return true;
        }
        p += n;
        while (*p == ' ') {
            p++;
        }
    }
    return false;
}

static void
kill_conn(void *arg)
{
    ws_conn *c = arg;

    /* Under ws->mu: closed and fd cannot change while we look. shutdown()
     * makes civetweb's blocked send fail and its read loop see EOF, so the
     * connection ends through civetweb's own close path. */
    if (!c->closed && c->fd >= 0) {
        shutdown(c->fd, SHUT_RDWR);
    }
}

static int
on_connect(const struct mg_connection *conn, void *cbdata)
{
    rf_ws *ws = cbdata;
    const struct mg_request_info *ri = mg_get_request_info(conn);
    char job_id[JOB_ID_MAX], token[4096];
    rf_ws_principal who;
    ws_conn *c = NULL;
    json_t *snap = NULL;
    rf_err rv;
    int got;

    got = ri->query_string != NULL ? mg_get_var(ri->query_string, strlen(ri->query_string),
                                                "job_id", job_id, sizeof(job_id))
                                   : -1;
    if (got <= 0 || !valid_job_id(job_id)) {
        refuse(conn, ws, 400, "Bad Request", "validation_error",
               "query parameter job_id is required");
        return 1;
    }
    if (!find_token(conn, token, sizeof(token))) {
        refuse(conn, ws, 401, "Unauthorized", "unauthorized", "a bearer token is required");
        return 1;
    }
    memset(&who, 0, sizeof(who));
    rv = ws->auth(ws->auth_ctx, token, &who);
    memset(token, 0, sizeof(token));
    if (rv != RF_OK) {
        refuse(conn, ws, 401, "Unauthorized", "unauthorized", "invalid or expired token");
        return 1;
    }
    if (!has_scope(who.scopes, ws->cfg.required_scope)) {
        refuse(conn, ws, 403, "Forbidden", "forbidden", "token lacks the required scope");
        return 1;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        refuse(conn, ws, 500, "Internal Server Error", "internal_error", "out of memory");
        return 1;
    }
    c->ws = ws;
    c->fd = -1;
    rf_strlcpy(c->job_id, job_id, sizeof(c->job_id));
    /* Subscribe before reading the snapshot: nothing published meanwhile is
     * lost; the snapshot is then put in front of it. */
    rv = rf_ws_sub_open(ws, job_id, who.all_tenants ? NULL : who.tenant, kill_conn, c, &c->sub);
    if (rv == RF_ECONFLICT) {
        refuse(conn, ws, 503, "Service Unavailable", "service_unavailable",
               "too many live connections; poll GET /bulk-jobs/{id}/progress instead");
        goto fail;
    }
    if (rv != RF_OK) {
        refuse(conn, ws, 500, "Internal Server Error", "internal_error", rf_strerror(rv));
        goto fail;
    }
    if (ws->cfg.snapshot != NULL) {
        rv = ws->cfg.snapshot(ws->cfg.snapshot_ctx, job_id, who.all_tenants ? NULL : who.tenant,
                              &snap);
        if (rv == RF_ENOTFOUND) {
            refuse(conn, ws, 404, "Not Found", "not_found", "no such job");
            goto fail;
        }
        if (rv == RF_OK) {
            rv = rf_ws_sub_prepend(ws, c->sub, snap);
        }
        json_decref(snap);
        if (rv != RF_OK) {
            refuse(conn, ws, 500, "Internal Server Error", "internal_error",
                   "cannot read the job's state");
            goto fail;
        }
    }
    mg_set_user_connection_data(conn, c);
    return 0;
fail:
    rf_ws_sub_close(ws, &c->sub);
    free(c);
    return 1;
}

/* The socket of conn: civetweb does not expose it, so match the peer and
 * local port of our sockets against the request info. */
static int
find_socket(const struct mg_connection *conn)
{
    const struct mg_request_info *ri = mg_get_request_info(conn);
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int found = -1;

    if (d == NULL) {
        return -1;
    }
    while ((e = readdir(d)) != NULL && found < 0) {
        struct sockaddr_storage peer, local;
        socklen_t pl = sizeof(peer), ll = sizeof(local);
        char addr[INET6_ADDRSTRLEN];
        int fd, pport, lport;
        const void *a;

        if (e->d_name[0] < '0' || e->d_name[0] > '9') {
            continue;
        }
        fd = atoi(e->d_name);
        if (getpeername(fd, (struct sockaddr *)&peer, &pl) != 0 ||
            getsockname(fd, (struct sockaddr *)&local, &ll) != 0) {
            continue;
        }
        if (peer.ss_family == AF_INET) {
            a = &((struct sockaddr_in *)&peer)->sin_addr;
            pport = ntohs(((struct sockaddr_in *)&peer)->sin_port);
            lport = ntohs(((struct sockaddr_in *)&local)->sin_port);
        } else if (peer.ss_family == AF_INET6) {
            a = &((struct sockaddr_in6 *)&peer)->sin6_addr;
            pport = ntohs(((struct sockaddr_in6 *)&peer)->sin6_port);
            lport = ntohs(((struct sockaddr_in6 *)&local)->sin6_port);
        } else {
            continue;
        }
        if (pport != ri->remote_port || lport != ri->server_port ||
            inet_ntop(peer.ss_family, a, addr, sizeof(addr)) == NULL ||
            strcmp(addr, ri->remote_addr) != 0) {
            continue;
        }
        found = fd;
    }
    closedir(d);
    return found;
}

static void
send_close(ws_conn *c, uint16_t code, const char *reason)
{
    char payload[64];
    size_t rl = strlen(reason);
    struct pollfd pfd;

    if (rl > sizeof(payload) - 2) {
        rl = sizeof(payload) - 2;
    }
    payload[0] = (char)(code >> 8);
    payload[1] = (char)(code & 0xff);
    memcpy(payload + 2, reason, rl);
    /* Only if the socket takes it now: a client that stopped reading would
     * block us until civetweb's write timeout. */
    pfd.fd = c->fd;
    pfd.events = POLLOUT;
    if (c->fd >= 0 && poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLOUT) != 0) {
        mg_websocket_write(c->conn, MG_WEBSOCKET_OPCODE_CONNECTION_CLOSE, payload, rl + 2);
    }
}

static void *
sender_main(void *arg)
{
    ws_conn *c = arg;
    rf_ws *ws = c->ws;
    bool cut = false;

    for (;;) {
        rf_ws_frame *f;
        size_t len;
        const char *text;
        int n;
        rf_err rv = rf_ws_sub_pop(ws, c->sub, 1000, &f);

        if (rv == RF_ETIMEDOUT) {
            continue;
        }
        if (rv != RF_OK) {
            break;
        }
        text = rf_ws_frame_text(f, &len);
        n = mg_websocket_write(c->conn, MG_WEBSOCKET_OPCODE_TEXT, text, len);
        rf_ws_frame_release(f);
        if (n <= 0 || (size_t)n < len) {
            /* A timed-out write may have sent part of a frame: the stream
             * is unusable, end it. */
            rf_info("ws: write to a client of job %s failed; closing", c->job_id);
            cut = true;
            break;
        }
    }
    if (rf_ws_sub_overflowed(ws, c->sub)) {
        send_close(c, 1008, "client too slow");
        cut = true;
    }
    if (cut) {
        pthread_mutex_lock(&ws->mu);
        kill_conn(c);
        pthread_mutex_unlock(&ws->mu);
    }
    return NULL;
}

static void
on_ready(struct mg_connection *conn, void *cbdata)
{
    rf_ws *ws = cbdata;
    ws_conn *c = mg_get_user_connection_data(conn);
    pthread_attr_t attr;
    int fd;

    if (c == NULL) {
        return;
    }
    c->conn = conn;
    fd = find_socket(conn);
    if (fd < 0) {
        rf_warn("ws: cannot find the socket of a connection; slow-client cut-off relies on "
                "civetweb's timeouts for it");
    } else if (ws->cfg.sndbuf_bytes > 0) {
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &ws->cfg.sndbuf_bytes, sizeof(ws->cfg.sndbuf_bytes));
    }
    pthread_mutex_lock(&ws->mu);
    c->fd = fd;
    pthread_mutex_unlock(&ws->mu);
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    if (pthread_create(&c->sender, &attr, sender_main, c) == 0) {
        c->sender_started = true;
    } else {
        rf_error("ws: cannot start a sender thread; closing the connection");
        pthread_mutex_lock(&ws->mu);
        kill_conn(c);
        pthread_mutex_unlock(&ws->mu);
    }
    pthread_attr_destroy(&attr);
}

static int
on_data(struct mg_connection *conn, int bits, char *data, size_t len, void *cbdata)
{
    (void)cbdata;
    if ((bits & 0x0f) == MG_WEBSOCKET_OPCODE_CONNECTION_CLOSE) {
        /* Answer the client's close (RFC 6455 5.5.1) with its own status
         * code; civetweb ends the connection without one and clients would
         * report an abnormal closure (1006). */
        mg_websocket_write(conn, MG_WEBSOCKET_OPCODE_CONNECTION_CLOSE, data, len >= 2 ? 2 : 0);
        return 0;
    }
    /* The feed is one-way; client frames (pongs, text) are ignored. */
    return 1;
}

static void
on_close(const struct mg_connection *conn, void *cbdata)
{
    rf_ws *ws = cbdata;
    ws_conn *c = mg_get_user_connection_data(conn);

    if (c == NULL) {
        return;
    }
    pthread_mutex_lock(&ws->mu);
    /* Unblock a sender stuck in a write before civetweb closes the socket. */
    kill_conn(c);
    c->closed = true;
    pthread_mutex_unlock(&ws->mu);
    rf_ws_sub_cancel(ws, c->sub);
    if (c->sender_started) {
        pthread_join(c->sender, NULL);
    }
    rf_ws_sub_close(ws, &c->sub);
    mg_set_user_connection_data(conn, NULL);
    free(c);
}

static void *
ticker_main(void *arg)
{
    rf_ws *ws = arg;
    struct timespec deadline;

    pthread_mutex_lock(&ws->mu);
    while (!ws->stop) {
        pthread_mutex_unlock(&ws->mu);
        rf_ws_tick(ws);
        pthread_mutex_lock(&ws->mu);
        clock_gettime(CLOCK_MONOTONIC, &deadline);
        deadline.tv_nsec += 50 * 1000000L;
        if (deadline.tv_nsec >= 1000000000L) {
            deadline.tv_sec++;
            deadline.tv_nsec -= 1000000000L;
        }
        while (!ws->stop) {
            if (pthread_cond_timedwait(&ws->stop_cv, &ws->mu, &deadline) == ETIMEDOUT) {
                break;
            }
        }
    }
    pthread_mutex_unlock(&ws->mu);
    return NULL;
}

rf_err
rf_ws_attach(struct mg_context *ctx, const rf_ws_config *cfg, rf_ws_auth_fn auth, void *auth_ctx,
             rf_ws **out)
{
    rf_ws *ws;
    rf_err rv;

    *out = NULL;
    if (ctx == NULL || auth == NULL) {
        return RF_EINVAL;
    }
    if (mg_check_feature(16) == 0) {
        rf_error("ws: this civetweb has no WebSocket support");
        return RF_EUNSUPPORTED;
    }
    rv = rf_ws_new(cfg, &ws);
    if (rv != RF_OK) {
        return rv;
    }
    ws->ctx = ctx;
    ws->auth = auth;
    ws->auth_ctx = auth_ctx;
    if (pthread_create(&ws->ticker, NULL, ticker_main, ws) != 0) {
        rf_ws_free(&ws);
        return RF_ENOMEM;
    }
    ws->ticker_started = true;
    for (size_t i = 0; i < sizeof(ws_paths) / sizeof(ws_paths[0]); i++) {
        mg_set_websocket_handler_with_subprotocols(ctx, ws_paths[i], &bearer_subprotocols,
                                                   on_connect, on_ready, on_data, on_close, ws);
    }
    *out = ws;
    return RF_OK;
}

void
rf_ws_free(rf_ws **wsp)
{
    rf_ws *ws;

    if (wsp == NULL || *wsp == NULL) {
        return;
    }
    ws = *wsp;
    if (ws->ticker_started) {
        pthread_mutex_lock(&ws->mu);
        ws->stop = true;
        pthread_cond_broadcast(&ws->stop_cv);
        pthread_mutex_unlock(&ws->mu);
        pthread_join(ws->ticker, NULL);
    }
    /* Subscribers still open here belong to a caller that did not close
     * them (tests, or mg_stop not called): free their jobs' state. */
    for (size_t b = 0; b < N_BUCKETS; b++) {
        while (ws->buckets[b] != NULL) {
            job *j = ws->buckets[b];
            rf_ws_sub *s = j->subs;
            while (s != NULL) {
                rf_ws_sub *next = s->next;
                queue_clear(s);
                pthread_cond_destroy(&s->cv);
                free(s);
                s = next;
            }
            j->subs = NULL;
            job_unlink_free(ws, j);
        }
    }
    pthread_cond_destroy(&ws->stop_cv);
    pthread_mutex_destroy(&ws->mu);
    free(ws);
    *wsp = NULL;
}
