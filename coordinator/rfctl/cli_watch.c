/* `rfctl watch`: polling, item bookkeeping and rendering. */
#include "cli_watch.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli_out.h"
#include "rf_util.h"

#define VIDEO_PAGES_MAX 10   /* 1000 items per tick at most */
#define INFLIGHT_LINES_MAX 8 /* item lines under the bar */
#define PLAIN_HEARTBEAT_MS 30000
#define TTY_VIDEO_EVERY 3 /* ticks between item refreshes when nothing moved */
#define PACE_MAX_MS 60000
#define LINE_MAX_BYTES 1024

/* What we last saw of one item, to print each transition once. */
typedef struct seen {
    char *id; /* NULL: empty slot */
    char state[16];
} seen;

typedef struct watch {
    rf_cli_http *h;
    const rf_cli_watch_opts *o;
    FILE *out;
    char id_esc[512];
    seen *slots;
    size_t cap;
    size_t used;
    int block_lines; /* lines of the live block now on screen */
    char last_plain[LINE_MAX_BYTES];
    int64_t last_plain_ms;
    char last_counts[128]; /* counters of the last tick that fetched videos */
    bool first_tick;
    json_t *inflight;  /* videos in "processing" from the last fetch */
    int tick_requests; /* requests made in this tick */
    long rl_remaining; /* lowest RateLimit-Remaining seen this tick, -1 */
    long rl_reset_s;   /* its RateLimit-Reset */
} watch;

static void
sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (ms > 0 && nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static uint64_t
hash_str(const char *s)
{
    uint64_t x = 1469598103934665603ULL; /* FNV-1a */

    for (; *s != '\0'; s++) {
        x = (x ^ (unsigned char)*s) * 1099511628211ULL;
    }
    return x;
}

static rf_err
seen_grow(watch *w)
{
    size_t ncap = w->cap > 0 ? w->cap * 2 : 256;
    seen *ns = calloc(ncap, sizeof(*ns));

    if (ns == NULL) {
        return RF_ENOMEM;
    }
    for (size_t i = 0; i < w->cap; i++) {
        if (w->slots[i].id != NULL) {
            size_t j = hash_str(w->slots[i].id) & (ncap - 1);
            while (ns[j].id != NULL) {
                j = (j + 1) & (ncap - 1);
            }
            ns[j] = w->slots[i];
        }
    }
    free(w->slots);
    w->slots = ns;
    w->cap = ncap;
    return RF_OK;
}

/* Records state for id; *prev gets the earlier state ("" when new). */
static rf_err
seen_update(watch *w, const char *id, const char *state, char *prev, size_t prev_len)
{
    size_t j;
    rf_err rv;

    if (w->used * 2 >= w->cap) {
        rv = seen_grow(w);
        if (rv != RF_OK) {
            return rv;
        }
    }
    j = hash_str(id) & (w->cap - 1);
    while (w->slots[j].id != NULL && strcmp(w->slots[j].id, id) != 0) {
        j = (j + 1) & (w->cap - 1);
    }
    if (w->slots[j].id == NULL) {
        w->slots[j].id = strdup(id);
        if (w->slots[j].id == NULL) {
            return RF_ENOMEM;
        }
        w->used++;
        snprintf(prev, prev_len, "%s", "");
    } else {
        snprintf(prev, prev_len, "%s", w->slots[j].state);
    }
    snprintf(w->slots[j].state, sizeof(w->slots[j].state), "%s", state);
    return RF_OK;
}

static void
watch_clear(watch *w)
{
    for (size_t i = 0; i < w->cap; i++) {
        free(w->slots[i].id);
    }
    free(w->slots);
    json_decref(w->inflight);
    memset(w, 0, sizeof(*w));
}

static int
cols_of(const watch *w)
{
    return w->o->cols > 0 ? w->o->cols : 80;
}

/* Removes the live block so that event lines can be printed where it was. */
static void
erase_block(watch *w)
{
    if (w->o->tty && w->block_lines > 0) {
        fprintf(w->out, "\r\x1b[%dA\x1b[J", w->block_lines);
        w->block_lines = 0;
    }
}

/* One event line, above the live block. */
static void
event_line(watch *w, const char *text)
{
    erase_block(w);
    rf_cli_put_line(w->out, text, w->o->tty ? cols_of(w) - 1 : 0);
}

/* A short list of an item's artifacts ("youtube, tiktok") or its first
 * error ("validation_error: ..."). */
static void
item_detail(const json_t *v, char *buf, size_t len)
{
    const json_t *errors = json_object_get(v, "errors");
    const json_t *arts = json_object_get(v, "artifacts");
    const json_t *e = json_array_get(errors, 0);
    size_t i, pos = 0;
    const json_t *a;

    buf[0] = '\0';
    if (e != NULL) {
        snprintf(buf, len, "%s: %s", rf_cli_str(e, "error_code", "error"),
                 rf_cli_str(e, "error_message", ""));
        return;
    }
    json_array_foreach(arts, i, a)
    {
        /* One entry per rendition: its poster and captions are artifacts too. */
        if (strcmp(rf_cli_str(a, "type", "video"), "video") != 0) {
            continue;
        }
        int n = snprintf(buf + pos, len - pos, "%s%s", pos > 0 ? ", " : "",
                         rf_cli_str(a, "rendition", rf_cli_str(a, "type", "?")));
        if (n < 0 || (size_t)n >= len - pos) {
            break;
        }
        pos += (size_t)n;
    }
}

static void
item_event(watch *w, const json_t *v, const char *state)
{
    char line[LINE_MAX_BYTES], detail[512];
    const char *tag = strcmp(state, "completed") == 0    ? "done "
                      : strcmp(state, "failed") == 0     ? "FAIL "
                      : strcmp(state, "skipped") == 0    ? "skip "
                      : strcmp(state, "processing") == 0 ? "start"
                                                         : state;

    item_detail(v, detail, sizeof(detail));
    snprintf(line, sizeof(line), "  %s row %lld  %s%s%s", tag,
             (long long)rf_cli_int(v, "row_number", 0), rf_cli_str(v, "title", ""),
             detail[0] != '\0' ? "  -- " : "", detail);
    event_line(w, line);
}

/* Remembers what the rate limiter said, so that the poll interval can be
 * stretched before the limit is hit rather than after. */
static void
note_rate(watch *w, const rf_cli_resp *r)
{
    w->tick_requests++;
    if (r->ratelimit_remaining >= 0 &&
        (w->rl_remaining < 0 || r->ratelimit_remaining < w->rl_remaining)) {
        w->rl_remaining = r->ratelimit_remaining;
        w->rl_reset_s = r->ratelimit_reset_s;
    }
}

/* The pause before the next tick: the requested interval, or longer when at
 * this tick's request rate we would spend more than half of what the rate
 * limiter has left before its window resets (the user's other commands share
 * that budget). */
static long
next_sleep_ms(const watch *w, long interval)
{
    long pace;

    if (w->rl_remaining < 0 || w->rl_reset_s < 0) {
        return interval;
    }
    pace = w->rl_reset_s * 1000 * w->tick_requests /
           (w->rl_remaining / 2 > 0 ? w->rl_remaining / 2 : 1);
    if (pace > PACE_MAX_MS) {
        pace = PACE_MAX_MS;
    }
    return pace > interval ? pace : interval;
}

/* Fetches the job's videos (bounded), prints transitions and keeps the
 * in-flight ones for the live block. Transport or API trouble here is not
 * fatal: the next tick tries again. */
static rf_err
poll_videos(watch *w)
{
    char path[1024], token[256] = "";
    json_t *inflight = json_array();
    rf_err rv = RF_OK;

    if (inflight == NULL) {
        return RF_ENOMEM;
    }
    for (int page = 0; page < VIDEO_PAGES_MAX; page++) {
        rf_cli_resp r;
        const json_t *list, *v;
        const char *next;
        size_t i;

        snprintf(path, sizeof(path), "/api/v1/bulk-jobs/%s/videos", w->id_esc);
        rv = rf_cli_query_add(path, sizeof(path), "page_size", "100");
        if (rv == RF_OK && token[0] != '\0') {
            rv = rf_cli_query_add(path, sizeof(path), "page_token", token);
        }
        if (rv != RF_OK) {
            break;
        }
        rv = rf_cli_http_do(w->h, "GET", path, NULL, NULL, &r);
        note_rate(w, &r);
        if (rv != RF_OK || r.status != 200) {
            rf_cli_resp_clear(&r);
            rv = rv == RF_ENOMEM ? RF_ENOMEM : RF_OK;
            break;
        }
        list = json_object_get(r.body, "videos");
        json_array_foreach(list, i, v)
        {
            const char *id = rf_cli_str(v, "id", NULL);
            const char *state = rf_cli_str(v, "state", "?");
            char prev[16];
            if (id == NULL) {
                continue;
            }
            rv = seen_update(w, id, state, prev, sizeof(prev));
            if (rv != RF_OK) {
                break;
            }
            if (strcmp(state, "processing") == 0) {
                json_array_append(inflight, (json_t *)v);
            }
            if (strcmp(prev, state) == 0) {
                continue;
            }
            /* On the first look only failures are worth showing: they say
             * why a job that is already over ended as it did. */
            if (w->first_tick ? strcmp(state, "failed") == 0
                              : (strcmp(state, "pending") != 0 &&
                                 (strcmp(state, "processing") != 0 || !w->o->tty))) {
                item_event(w, v, state);
            }
        }
        next = rf_cli_str(r.body, "next_page_token", NULL);
        snprintf(token, sizeof(token), "%s", next != NULL ? next : "");
        rf_cli_resp_clear(&r);
        if (rv != RF_OK || token[0] == '\0') {
            break;
        }
    }
    json_decref(w->inflight);
    w->inflight = inflight;
    return rv;
}

static void
bar(const watch *w, double pct, char *buf, size_t len)
{
    int width = cols_of(w) >= 100 ? 30 : 20;
    int filled = (int)(pct / 100.0 * width + 0.5);
    size_t pos = 0;

    if (filled < 0) {
        filled = 0;
    }
    if (filled > width) {
        filled = width;
    }
    buf[pos++] = '[';
    for (int i = 0; i < width && pos + 4 < len; i++) {
        const char *g =
            i < filled ? (w->o->utf8 ? "\xe2\x96\x88" : "#") : (w->o->utf8 ? "\xe2\x96\x91" : "-");
        size_t gl = strlen(g);
        memcpy(buf + pos, g, gl);
        pos += gl;
    }
    buf[pos++] = ']';
    buf[pos] = '\0';
}

/* The counters line shared by both modes. */
static void
counters(const json_t *p, char *buf, size_t len)
{
    const json_t *items = json_object_get(p, "items_status");
    const json_t *timing = json_object_get(p, "timing");
    char eta[32], elapsed[32];
    int64_t skipped = rf_cli_int(items, "skipped", 0);
    char skip_text[48] = "";

    rf_cli_fmt_duration(rf_cli_int(timing, "eta_ms", -1), eta, sizeof(eta));
    rf_cli_fmt_duration(rf_cli_int(timing, "processing_time_ms", -1), elapsed, sizeof(elapsed));
    if (skipped > 0) {
        snprintf(skip_text, sizeof(skip_text), "  %lld skipped", (long long)skipped);
    }
    snprintf(buf, len,
             "%5.1f%%  %s  %lld/%lld done  %lld failed  %lld pending%s  ETA %s  elapsed %s%s",
             rf_cli_num(p, "percent_complete", 0.0), rf_cli_str(p, "state", "?"),
             (long long)rf_cli_int(items, "completed", 0), (long long)rf_cli_int(items, "total", 0),
             (long long)rf_cli_int(items, "failed", 0), (long long)rf_cli_int(items, "pending", 0),
             skip_text, eta, elapsed,
             json_is_true(json_object_get(p, "rate_limited")) ? "  (rate limited)" : "");
}

static void
rendition_text(const json_t *rd, char *buf, size_t len)
{
    const char *name = rf_cli_str(rd, "rendition", "?");
    const char *state = rf_cli_str(rd, "state", "?");
    int64_t done = rf_cli_int(rd, "frames_done", 0), total = rf_cli_int(rd, "frames_total", 0);

    if (strcmp(state, "leased") == 0 && total > 0) {
        snprintf(buf, len, "%s %lld%%", name, (long long)(done * 100 / total));
    } else {
        snprintf(buf, len, "%s %s", name, state);
    }
}

static void
draw_block(watch *w, const json_t *p, bool final)
{
    char line[LINE_MAX_BYTES], b[256], c[512];
    int cols = cols_of(w) - 1;
    size_t i, shown = 0;
    const json_t *v;

    erase_block(w);
    bar(w, rf_cli_num(p, "percent_complete", 0.0), b, sizeof(b));
    counters(p, c, sizeof(c));
    snprintf(line, sizeof(line), "%s %s", b, c);
    rf_cli_put_line(w->out, line, cols);
    w->block_lines = 1;
    if (final) {
        w->block_lines = 0; /* the last bar stays on screen */
        return;
    }
    json_array_foreach(w->inflight, i, v)
    {
        const json_t *rends = json_object_get(v, "renditions"), *rd;
        size_t k, pos;
        if (shown == INFLIGHT_LINES_MAX) {
            snprintf(line, sizeof(line), "  ... and %zu more in flight",
                     json_array_size(w->inflight) - shown);
            rf_cli_put_line(w->out, line, cols);
            w->block_lines++;
            break;
        }
        pos = (size_t)snprintf(line, sizeof(line), "  > row %lld ",
                               (long long)rf_cli_int(v, "row_number", 0));
        json_array_foreach(rends, k, rd)
        {
            char rt[96];
            rendition_text(rd, rt, sizeof(rt));
            if (pos < sizeof(line)) {
                pos += (size_t)snprintf(line + pos, sizeof(line) - pos, " [%s]", rt);
            }
        }
        if (pos < sizeof(line)) {
            snprintf(line + pos, sizeof(line) - pos, "  %s", rf_cli_str(v, "title", ""));
        }
        rf_cli_put_line(w->out, line, cols);
        w->block_lines++;
        shown++;
    }
}

static void
counts_key(const json_t *p, char *buf, size_t len)
{
    const json_t *it = json_object_get(p, "items_status");

    snprintf(buf, len, "%s %lld %lld %lld %lld %d", rf_cli_str(p, "state", "?"),
             (long long)rf_cli_int(it, "completed", 0), (long long)rf_cli_int(it, "failed", 0),
             (long long)rf_cli_int(it, "skipped", 0), (long long)rf_cli_int(it, "pending", 0),
             (int)rf_cli_num(p, "percent_complete", 0.0));
}

/* A plain line when the state, a counter or the whole percent moved, and
 * otherwise every PLAIN_HEARTBEAT_MS (the ETA and elapsed time alone change
 * on every poll and would make a log of identical lines). */
static void
plain_line(watch *w, const json_t *p, const char *job_id, bool force)
{
    char c[512], line[LINE_MAX_BYTES], stamp[16], key[160];
    int64_t now = rf_mono_ms();
    time_t t = time(NULL);
    struct tm tm;

    counts_key(p, key, sizeof(key));
    if (!force && strcmp(key, w->last_plain) == 0 && now - w->last_plain_ms < PLAIN_HEARTBEAT_MS) {
        return;
    }
    snprintf(w->last_plain, sizeof(w->last_plain), "%s", key);
    counters(p, c, sizeof(c));
    w->last_plain_ms = now;
    localtime_r(&t, &tm);
    strftime(stamp, sizeof(stamp), "%H:%M:%S", &tm);
    snprintf(line, sizeof(line), "%s %s %s", stamp, job_id, c);
    rf_cli_put_line(w->out, line, 0);
}

static bool
terminal(const char *state)
{
    return strcmp(state, "completed") == 0 || strcmp(state, "failed") == 0 ||
           strcmp(state, "canceled") == 0;
}

/* The closing line: counts, time, and for failed or canceled jobs the job's
 * own error code and message. */
static void
summary(watch *w, const json_t *p, const char *job_id)
{
    const json_t *items = json_object_get(p, "items_status");
    const char *state = rf_cli_str(p, "state", "?");
    char elapsed[32], path[1024];
    rf_cli_resp r;

    rf_cli_fmt_duration(rf_cli_int(json_object_get(p, "timing"), "processing_time_ms", -1), elapsed,
                        sizeof(elapsed));
    fprintf(w->out, "job %s %s: %lld completed, %lld failed, %lld skipped of %lld items in %s\n",
            job_id, state, (long long)rf_cli_int(items, "completed", 0),
            (long long)rf_cli_int(items, "failed", 0), (long long)rf_cli_int(items, "skipped", 0),
            (long long)rf_cli_int(items, "total", 0), elapsed);
    if (strcmp(state, "completed") == 0) {
        return;
    }
    snprintf(path, sizeof(path), "/api/v1/bulk-jobs/%s", w->id_esc);
    if (rf_cli_http_do(w->h, "GET", path, NULL, NULL, &r) == RF_OK && r.status == 200) {
        const char *code = rf_cli_str(r.body, "error_code", NULL);
        if (code != NULL) {
            fprintf(w->out, "  reason: %s: %s\n", code, rf_cli_str(r.body, "error_message", ""));
        }
    }
    rf_cli_resp_clear(&r);
}

rf_err
rf_cli_watch(rf_cli_http *h, const char *job_id, const rf_cli_watch_opts *opts, char *final_state,
             size_t len)
{
    watch w;
    char path[1024], key[128];
    long interval = opts->interval_ms > 0 ? opts->interval_ms : 1000;
    long grace = opts->grace_ms > 0 ? opts->grace_ms : 30000;
    int64_t start = rf_mono_ms(), fail_since = -1;
    long ticks = 0;
    bool answered = false;
    rf_err rv = RF_OK;

    memset(&w, 0, sizeof(w));
    w.h = h;
    w.o = opts;
    w.out = opts->out != NULL ? opts->out : stdout;
    w.first_tick = true;
    final_state[0] = '\0';
    rv = rf_cli_path_escape(job_id, w.id_esc, sizeof(w.id_esc));
    if (rv != RF_OK) {
        fprintf(stderr, "rfctl: watch: job id is too long\n");
        goto out;
    }
    snprintf(path, sizeof(path), "/api/v1/bulk-jobs/%s/progress", w.id_esc);
    for (;;) {
        int64_t tick = rf_mono_ms();
        rf_cli_resp r;
        const char *state;
        bool done;

        if (opts->timeout_s > 0 && tick - start >= opts->timeout_s * 1000) {
            erase_block(&w);
            fprintf(stderr, "rfctl: watch: job %s still not finished after %ld s\n", job_id,
                    opts->timeout_s);
            rv = RF_ETIMEDOUT;
            goto out;
        }
        w.tick_requests = 0;
        w.rl_remaining = -1;
        w.rl_reset_s = -1;
        ticks++;
        rv = rf_cli_http_do(h, "GET", path, NULL, NULL, &r);
        note_rate(&w, &r);
        if (rv == RF_ENOMEM || rv == RF_ETOOBIG) {
            rf_cli_resp_clear(&r);
            goto out;
        }
        if (rv == RF_ENET || r.status == 429 || r.status >= 500) {
            /* A coordinator restart or a blip: keep the last picture and
             * try again, but a URL that never answered is a mistake. */
            if (fail_since < 0) {
                fail_since = tick;
            }
            if (!answered || tick - fail_since > grace) {
                erase_block(&w);
                rf_cli_print_error(stderr, "watch", &r);
                rf_cli_resp_clear(&r);
                rv = RF_ENET;
                goto out;
            }
            rf_cli_resp_clear(&r);
            sleep_ms(next_sleep_ms(&w, interval));
            continue;
        }
        if (r.status != 200) {
            erase_block(&w);
            rf_cli_print_error(stderr, "watch", &r);
            rv = r.status == 404 ? RF_ENOTFOUND : RF_EPROTO;
            rf_cli_resp_clear(&r);
            goto out;
        }
        answered = true;
        fail_since = -1;
        state = rf_cli_str(r.body, "state", "?");
        done = terminal(state);
        counts_key(r.body, key, sizeof(key));
        /* Items are fetched when a counter moved, and on a terminal also
         * every few ticks so that the per-item frame counts stay live. */
        if (done || w.first_tick || strcmp(key, w.last_counts) != 0 ||
            (opts->tty && ticks % TTY_VIDEO_EVERY == 0)) {
            rv = poll_videos(&w);
            if (rv != RF_OK) {
                rf_cli_resp_clear(&r);
                goto out;
            }
            snprintf(w.last_counts, sizeof(w.last_counts), "%s", key);
        }
        w.first_tick = false;
        if (opts->tty) {
            draw_block(&w, r.body, done);
        } else {
            plain_line(&w, r.body, job_id, done);
        }
        if (done) {
            summary(&w, r.body, job_id);
            snprintf(final_state, len, "%s", state);
            rf_cli_resp_clear(&r);
            rv = RF_OK;
            break;
        }
        rf_cli_resp_clear(&r);
        fflush(w.out);
        sleep_ms(next_sleep_ms(&w, interval) - (long)(rf_mono_ms() - tick));
    }
out:
    fflush(w.out);
    watch_clear(&w);
    return rv;
}
