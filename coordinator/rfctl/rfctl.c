/* rfctl: the command-line client of the coordinator's REST API.
 *
 *   rfctl [--url URL] [--token TOKEN] [--json] <command> [args]
 *
 * Each command is one function below that builds a request, calls the API
 * through cli_http and prints the answer; exit codes are in cli_out.h and
 * docs/RFCTL.md. Argument parsing is table driven: a global option table and
 * one table per command. */
#include <errno.h>
#include <langinfo.h>
#include <limits.h>
#include <locale.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <jansson.h>

#include "cli_http.h"
#include "cli_out.h"
#include "cli_watch.h"
#include "rf_util.h"

#define RFCTL_VERSION "0.1.0"
#define DEFAULT_URL "http://127.0.0.1:8080"
#define MAX_KV 32
#define MAX_POS 4
#define LIST_PAGES_MAX 10000
#define PATH_BYTES 2048

typedef struct opt_spec {
    const char *name; /* without the leading "--" */
    bool has_arg;
} opt_spec;

typedef struct kv {
    const char *name;
    const char *value; /* "1" for flags */
} kv;

typedef struct args {
    const char *url;
    const char *token;
    bool json;
    bool verbose;
    bool plain;
    long http_timeout_ms;
    int retries;
    const char *pos[MAX_POS];
    int n_pos;
    kv opts[MAX_KV];
    int n_opts;
} args;

typedef struct command command;

typedef struct ctx {
    args *a;
    const command *cmd;
    rf_cli_http *http;
} ctx;

typedef int (*cmd_fn)(ctx *c);

struct command {
    const char *name;
    const opt_spec *opts;
    int min_pos;
    int max_pos;
    cmd_fn fn;
    const char *usage;
};

static const opt_spec global_opts[] = {
    {"url", true},      {"token", true},  {"json", false},
    {"verbose", false}, {"plain", false}, {"http-timeout-ms", true},
    {"retries", true},  {"help", false},  {"version", false},
    {NULL, false},
};

static const opt_spec submit_opts[] = {
    {"bucket", true},
    {"title", true},
    {"priority", true},
    {"resolution", true},
    {"format", true},
    {"video-codec", true},
    {"audio-codec", true},
    {"template", true},
    {"style", true},
    {"voice", true},
    {"deadline-min", true},
    {"callback-url", true},
    {"idempotency-key", true},
    {"sheet", true},
    {"range", true},
    {"watch", false},
    {"interval-ms", true},
    {"timeout", true},
    {NULL, false},
};
static const opt_spec list_opts[] = {
    {"state", true}, {"page-size", true},  {"sort", true}, {"order", true},
    {"all", false},  {"page-token", true}, {NULL, false},
};
static const opt_spec videos_opts[] = {{"state", true}, {"page-size", true}, {NULL, false}};
static const opt_spec watch_opts[] = {{"interval-ms", true}, {"timeout", true}, {NULL, false}};
static const opt_spec no_opts[] = {{NULL, false}};

static const char *const job_states[] = {"pending",    "running",   "pausing",   "paused",
                                         "completing", "completed", "canceling", "canceled",
                                         "failed",     NULL};
static const char *const video_states[] = {"pending", "processing", "completed",
                                           "failed",  "skipped",    NULL};
static const char *const priorities[] = {"low", "normal", "high", NULL};
static const char *const resolutions[] = {"720p", "1080p", "4k", NULL};
static const char *const formats[] = {"mp4", "mov", "webm", NULL};
static const char *const vcodecs[] = {"h264", "h265", "vp9", NULL};
static const char *const acodecs[] = {"aac", "opus", NULL};
static const char *const sorts[] = {"created_at", "updated_at", "percent_complete", NULL};
static const char *const orders[] = {"asc", "desc", NULL};

static int cmd_submit(ctx *c);
static int cmd_list(ctx *c);
static int cmd_show(ctx *c);
static int cmd_videos(ctx *c);
static int cmd_action(ctx *c);
static int cmd_watch(ctx *c);
static int cmd_health(ctx *c);

static const command commands[] = {
    {"submit", submit_opts, 0, 1, cmd_submit,
     "submit FILE.csv --bucket NAME [--title T] [--priority low|normal|high]\n"
     "         [--resolution 720p|1080p|4k] [--format mp4|mov|webm] [--video-codec C]\n"
     "         [--audio-codec C] [--template ID] [--style S] [--voice V] [--deadline-min N]\n"
     "         [--callback-url URL] [--idempotency-key K] [--watch [--interval-ms N]]\n"
     "  submit --sheet SHEET_ID --range A1:J50 --bucket NAME [same options]"},
    {"list", list_opts, 0, 0, cmd_list,
     "list [--state S] [--page-size N] [--sort created_at|updated_at|percent_complete]\n"
     "         [--order asc|desc] [--page-token T] [--all]"},
    {"show", no_opts, 1, 1, cmd_show, "show JOB"},
    {"videos", videos_opts, 1, 1, cmd_videos, "videos JOB [--state S] [--page-size N]"},
    {"pause", no_opts, 1, 1, cmd_action, "pause JOB"},
    {"resume", no_opts, 1, 1, cmd_action, "resume JOB"},
    {"cancel", no_opts, 1, 1, cmd_action, "cancel JOB"},
    {"retry", no_opts, 1, 1, cmd_action, "retry JOB"},
    {"watch", watch_opts, 1, 1, cmd_watch, "watch JOB [--interval-ms N] [--timeout SECONDS]"},
    {"health", no_opts, 0, 0, cmd_health, "health"},
};
#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

/* ---- usage and argument parsing ---- */

static void
usage(FILE *f)
{
    fprintf(f, "usage: rfctl [--url URL] [--token TOKEN] [--json] [--verbose] [--plain]\n"
               "             [--http-timeout-ms N] [--retries N] <command> [args]\n\n"
               "commands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++) {
        fprintf(f, "  %s\n", commands[i].usage);
    }
    fprintf(f, "\nURL defaults to $RF_URL or " DEFAULT_URL "; TOKEN to $RF_TOKEN.\n"
               "exit codes: 0 ok, 1 API error, 2 usage, 3 job failed or canceled,\n"
               "            4 coordinator unreachable, 5 watch timed out\n");
}

static int
usage_error(const command *cmd, const char *fmt, const char *what)
{
    fprintf(stderr, "rfctl: ");
    fprintf(stderr, fmt, what);
    fprintf(stderr, "\n");
    if (cmd != NULL) {
        fprintf(stderr, "usage: rfctl %s\n", cmd->usage);
    } else {
        fprintf(stderr, "run 'rfctl --help' for the commands\n");
    }
    return RF_CLI_EXIT_USAGE;
}

static const opt_spec *
find_opt(const opt_spec *table, const char *name, size_t len)
{
    for (const opt_spec *o = table; o != NULL && o->name != NULL; o++) {
        if (strlen(o->name) == len && strncmp(o->name, name, len) == 0) {
            return o;
        }
    }
    return NULL;
}

static const char *
opt(const args *a, const char *name)
{
    const char *v = NULL;

    for (int i = 0; i < a->n_opts; i++) {
        if (strcmp(a->opts[i].name, name) == 0) {
            v = a->opts[i].value; /* the last one wins */
        }
    }
    return v;
}

static bool
parse_long(const char *s, long lo, long hi, long *out)
{
    char *end = NULL;
    long v;

    if (s == NULL || *s == '\0') {
        return false;
    }
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < lo || v > hi) {
        return false;
    }
    *out = v;
    return true;
}

static bool
one_of(const char *s, const char *const *allowed)
{
    for (; *allowed != NULL; allowed++) {
        if (strcmp(s, *allowed) == 0) {
            return true;
        }
    }
    return false;
}

static void
set_global(args *a, const char *name, const char *value)
{
    if (strcmp(name, "url") == 0) {
        a->url = value;
    } else if (strcmp(name, "token") == 0) {
        a->token = value;
    } else if (strcmp(name, "json") == 0) {
        a->json = true;
    } else if (strcmp(name, "verbose") == 0) {
        a->verbose = true;
    } else if (strcmp(name, "plain") == 0) {
        a->plain = true;
    }
}

/* Parses argv into *a and finds the command. Returns -1 to go on, or an
 * exit code (help, version, usage error). */
static int
parse_args(int argc, char **argv, args *a, const command **cmd_out)
{
    const command *cmd = NULL;
    const char *timeout_text = NULL, *retries_text = NULL;
    long v;

    *cmd_out = NULL;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *name, *eq, *value = NULL;
        const opt_spec *spec;
        size_t len;

        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            if (cmd != NULL) {
                printf("usage: rfctl %s\n", cmd->usage);
            } else {
                usage(stdout);
            }
            return RF_CLI_EXIT_OK;
        }
        if (strcmp(arg, "-v") == 0) {
            a->verbose = true;
            continue;
        }
        if (strcmp(arg, "--") == 0 || strncmp(arg, "--", 2) != 0) {
            if (strcmp(arg, "--") == 0 && i + 1 < argc) {
                arg = argv[++i];
            }
            if (cmd == NULL) {
                for (size_t k = 0; k < N_COMMANDS; k++) {
                    if (strcmp(commands[k].name, arg) == 0) {
                        cmd = &commands[k];
                    }
                }
                if (cmd == NULL) {
                    return usage_error(NULL, "unknown command '%s'", arg);
                }
                continue;
            }
            if (a->n_pos >= cmd->max_pos) {
                return usage_error(cmd, "unexpected argument '%s'", arg);
            }
            a->pos[a->n_pos++] = arg;
            continue;
        }
        name = arg + 2;
        eq = strchr(name, '=');
        len = eq != NULL ? (size_t)(eq - name) : strlen(name);
        spec = find_opt(global_opts, name, len);
        if (spec == NULL && cmd != NULL) {
            spec = find_opt(cmd->opts, name, len);
        }
        if (spec == NULL) {
            return usage_error(cmd, "unknown option '%s'", arg);
        }
        if (spec->has_arg) {
            if (eq != NULL) {
                value = eq + 1;
            } else if (i + 1 < argc) {
                value = argv[++i];
            } else {
                return usage_error(cmd, "option '%s' needs a value", arg);
            }
        } else if (eq != NULL) {
            return usage_error(cmd, "option '--%s' takes no value", spec->name);
        } else {
            value = "1";
        }
        if (strcmp(spec->name, "version") == 0) {
            printf("rfctl " RFCTL_VERSION "\n");
            return RF_CLI_EXIT_OK;
        }
        if (strcmp(spec->name, "http-timeout-ms") == 0) {
            timeout_text = value;
        } else if (strcmp(spec->name, "retries") == 0) {
            retries_text = value;
        } else if (find_opt(global_opts, spec->name, strlen(spec->name)) == spec) {
            set_global(a, spec->name, value);
        } else {
            if (a->n_opts >= MAX_KV) {
                return usage_error(cmd, "too many options (%s)", arg);
            }
            a->opts[a->n_opts].name = spec->name;
            a->opts[a->n_opts].value = value;
            a->n_opts++;
        }
    }
    if (cmd == NULL) {
        usage(stderr);
        return RF_CLI_EXIT_USAGE;
    }
    if (a->n_pos < cmd->min_pos) {
        return usage_error(cmd, "'%s' needs more arguments", cmd->name);
    }
    if (timeout_text != NULL) {
        if (!parse_long(timeout_text, 100, 3600000, &v)) {
            return usage_error(cmd, "--http-timeout-ms must be 100..3600000, not '%s'",
                               timeout_text);
        }
        a->http_timeout_ms = v;
    }
    if (retries_text != NULL) {
        if (!parse_long(retries_text, 0, 20, &v)) {
            return usage_error(cmd, "--retries must be 0..20, not '%s'", retries_text);
        }
        a->retries = (int)v;
    }
    *cmd_out = cmd;
    return -1;
}

/* Checks an enumerated option; returns an exit code or -1 when fine. */
static int
check_enum(const command *cmd, const args *a, const char *name, const char *const *allowed)
{
    const char *v = opt(a, name);
    char msg[256];
    size_t pos;

    if (v == NULL || one_of(v, allowed)) {
        return -1;
    }
    pos = (size_t)snprintf(msg, sizeof(msg), "--%s must be one of", name);
    for (const char *const *p = allowed; *p != NULL && pos < sizeof(msg); p++) {
        pos += (size_t)snprintf(msg + pos, sizeof(msg) - pos, " %s", *p);
    }
    if (pos < sizeof(msg)) {
        snprintf(msg + pos, sizeof(msg) - pos, ", not '%%s'");
    }
    return usage_error(cmd, msg, v);
}

/* ---- shared pieces of the commands ---- */

static void
print_json(const json_t *v)
{
    char *text = json_dumps(v, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

    if (text != NULL) {
        printf("%s\n", text);
        free(text);
    }
}

/* Does one request and reports failure. Returns -1 when the answer has the
 * wanted status, else the exit code (after printing the error). */
static int
call(ctx *c, const char *what, const char *method, const char *path, const char *body,
     const char *idem, long want, rf_cli_resp *r)
{
    rf_err rv = rf_cli_http_do(c->http, method, path, body, idem, r);

    if (rv == RF_OK && (r->status == want || (want == 200 && r->status == 201))) {
        return -1;
    }
    if (rv == RF_OK || rv == RF_ENET) {
        rf_cli_print_error(stderr, what, r);
    } else {
        fprintf(stderr, "rfctl: %s: %s\n", what, rf_strerror(rv));
    }
    if (rv == RF_OK && r->status == 404 && strcmp(r->error_code, "not_found") == 0 &&
        strstr(r->error_message, "endpoint") != NULL) {
        fprintf(stderr, "  (this coordinator does not serve %s %s)\n", method, path);
    }
    return rf_cli_exit_for(rv, r) == RF_CLI_EXIT_OK ? RF_CLI_EXIT_API : rf_cli_exit_for(rv, r);
}

static int
job_path(const char *job_id, const char *suffix, char *buf, size_t len)
{
    char esc[512];

    if (rf_cli_path_escape(job_id, esc, sizeof(esc)) != RF_OK ||
        rf_fmt(buf, len, "/api/v1/bulk-jobs/%s%s", esc, suffix) != RF_OK) {
        fprintf(stderr, "rfctl: job id '%.64s...' is too long\n", job_id);
        return RF_CLI_EXIT_USAGE;
    }
    return -1;
}

static bool
stdout_is_tty(void)
{
    const char *term = getenv("TERM");
    return isatty(STDOUT_FILENO) && (term == NULL || strcmp(term, "dumb") != 0);
}

static int
term_cols(void)
{
    struct winsize ws;
    const char *env = getenv("COLUMNS");
    long v;

    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) {
        return ws.ws_col;
    }
    if (env != NULL && parse_long(env, 20, 1000, &v)) {
        return (int)v;
    }
    return 80;
}

/* Runs a watch and maps its outcome to the exit code. */
static int
run_watch(ctx *c, const command *cmd, const char *job_id)
{
    rf_cli_watch_opts wo;
    const char *interval = opt(c->a, "interval-ms"), *timeout = opt(c->a, "timeout");
    const char *codeset = nl_langinfo(CODESET);
    char state[32];
    long v;
    rf_err rv;

    memset(&wo, 0, sizeof(wo));
    wo.interval_ms = 1000;
    if (interval != NULL) {
        if (!parse_long(interval, 50, 3600000, &v)) {
            return usage_error(cmd, "--interval-ms must be 50..3600000, not '%s'", interval);
        }
        wo.interval_ms = v;
    }
    if (timeout != NULL) {
        if (!parse_long(timeout, 1, 31 * 86400, &v)) {
            return usage_error(cmd, "--timeout must be 1..2678400 seconds, not '%s'", timeout);
        }
        wo.timeout_s = v;
    }
    wo.tty = !c->a->plain && stdout_is_tty();
    wo.cols = wo.tty ? term_cols() : 0;
    wo.utf8 = codeset != NULL && strcmp(codeset, "UTF-8") == 0;
    wo.out = stdout;
    rv = rf_cli_watch(c->http, job_id, &wo, state, sizeof(state));
    switch (rv) {
    case RF_OK:
        return strcmp(state, "completed") == 0 ? RF_CLI_EXIT_OK : RF_CLI_EXIT_JOB;
    case RF_ENET:
        return RF_CLI_EXIT_NET;
    case RF_ETIMEDOUT:
        return RF_CLI_EXIT_TIMEOUT;
    case RF_ENOMEM:
        fprintf(stderr, "rfctl: watch: out of memory\n");
        return RF_CLI_EXIT_API;
    default:
        return RF_CLI_EXIT_API;
    }
}

/* ---- commands ---- */

/* Builds the creation request from the options; returns an exit code or -1
 * with *out set. */
static int
submit_request(const command *cmd, const args *a, json_t **out)
{
    const char *file = a->n_pos > 0 ? a->pos[0] : NULL;
    const char *sheet = opt(a, "sheet"), *range = opt(a, "range");
    const char *bucket = opt(a, "bucket"), *title = opt(a, "title");
    const char *format = opt(a, "format"), *vcodec = opt(a, "video-codec");
    const char *acodec = opt(a, "audio-codec"), *deadline = opt(a, "deadline-min");
    const char *style = opt(a, "style"), *voice = opt(a, "voice");
    const char *tpl = opt(a, "template"), *callback = opt(a, "callback-url");
    const char *priority = opt(a, "priority"), *resolution = opt(a, "resolution");
    char abs_path[PATH_MAX], default_title[256];
    json_t *req = NULL, *input = NULL, *output = NULL, *tmpl = NULL, *overrides = NULL;
    long minutes = 0;
    int ex;

    *out = NULL;
    if ((file == NULL) == (sheet == NULL)) {
        return usage_error(cmd, "%s", "give either FILE.csv or --sheet SHEET_ID (not both)");
    }
    if (sheet != NULL && range == NULL) {
        return usage_error(cmd, "%s", "--sheet needs --range (e.g. A1:J50)");
    }
    if (file != NULL && range != NULL) {
        return usage_error(cmd, "%s", "--range goes with --sheet, not with a CSV file");
    }
    if (bucket == NULL) {
        return usage_error(cmd, "%s", "--bucket NAME is required");
    }
    if ((ex = check_enum(cmd, a, "priority", priorities)) >= 0 ||
        (ex = check_enum(cmd, a, "resolution", resolutions)) >= 0 ||
        (ex = check_enum(cmd, a, "format", formats)) >= 0 ||
        (ex = check_enum(cmd, a, "video-codec", vcodecs)) >= 0 ||
        (ex = check_enum(cmd, a, "audio-codec", acodecs)) >= 0) {
        return ex;
    }
    if (deadline != NULL && !parse_long(deadline, 1, 1440, &minutes)) {
        return usage_error(cmd, "--deadline-min must be 1..1440 minutes, not '%s'", deadline);
    }
    if (file != NULL) {
        /* The coordinator reads the file itself, so it needs a full path;
         * a typo is caught here rather than as a 400 later. */
        if (realpath(file, abs_path) == NULL) {
            fprintf(stderr, "rfctl: %s: %s\n", file, strerror(errno));
            return RF_CLI_EXIT_USAGE;
        }
        input = json_pack("{s:s, s:s}", "type", "csv", "path", abs_path);
        if (title == NULL) {
            const char *base = strrchr(abs_path, '/');
            snprintf(default_title, sizeof(default_title), "%s", base != NULL ? base + 1 : file);
        }
    } else {
        input = json_pack("{s:s, s:s, s:s}", "type", "sheet", "sheet_id", sheet, "range", range);
        if (title == NULL) {
            snprintf(default_title, sizeof(default_title), "Sheet %.200s", sheet);
        }
    }
    /* webm only carries vp9 and opus: choose them unless told otherwise, so
     * that --format webm alone is a valid request. */
    if (format != NULL && strcmp(format, "webm") == 0) {
        vcodec = vcodec != NULL ? vcodec : "vp9";
        acodec = acodec != NULL ? acodec : "opus";
    }
    output = json_pack("{s:s}", "output_bucket", bucket);
    tmpl = json_object();
    overrides = json_object();
    req = json_pack("{s:s}", "title", title != NULL ? title : default_title);
    if (input == NULL || output == NULL || tmpl == NULL || overrides == NULL || req == NULL) {
        goto nomem;
    }
    const struct {
        json_t *obj;
        const char *key;
        const char *value;
    } fields[] = {
        {output, "format", format},      {output, "video_codec", vcodec},
        {output, "audio_codec", acodec}, {output, "resolution", resolution},
        {tmpl, "template_id", tpl},      {overrides, "style", style},
        {overrides, "voice", voice},     {req, "priority", priority},
        {req, "callback_url", callback},
    };
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        if (fields[i].value != NULL &&
            json_object_set_new(fields[i].obj, fields[i].key, json_string(fields[i].value)) != 0) {
            goto nomem;
        }
    }
    if ((json_object_size(overrides) > 0 && json_object_set(tmpl, "overrides", overrides) != 0) ||
        (minutes > 0 &&
         json_object_set_new(req, "processing_deadline_ms", json_integer(minutes * 60000)) != 0) ||
        json_object_set(req, "input_source", input) != 0 ||
        json_object_set(req, "output", output) != 0 ||
        (json_object_size(tmpl) > 0 && json_object_set(req, "template", tmpl) != 0)) {
        goto nomem;
    }
    json_decref(input);
    json_decref(output);
    json_decref(tmpl);
    json_decref(overrides);
    *out = req;
    return -1;
nomem:
    json_decref(input);
    json_decref(output);
    json_decref(tmpl);
    json_decref(overrides);
    json_decref(req);
    fprintf(stderr, "rfctl: submit: out of memory\n");
    return RF_CLI_EXIT_API;
}

static int
cmd_submit(ctx *c)
{
    const command *cmd = c->cmd;
    const char *key = opt(c->a, "idempotency-key");
    char gen_key[64], id[256];
    json_t *req = NULL;
    char *body = NULL;
    rf_cli_resp r = {0};
    int ex;

    ex = submit_request(cmd, c->a, &req);
    if (ex >= 0) {
        return ex;
    }
    if (key == NULL) {
        /* Generated once per invocation: every retry of this submit carries
         * the same key, so a retry after a lost answer cannot make two jobs. */
        rf_new_id("rfctl_", gen_key, sizeof(gen_key));
        key = gen_key;
    }
    body = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    if (body == NULL) {
        fprintf(stderr, "rfctl: submit: out of memory\n");
        return RF_CLI_EXIT_API;
    }
    ex = call(c, "submit", "POST", "/api/v1/bulk-jobs", body, key, 201, &r);
    free(body);
    if (ex >= 0) {
        /* Only when the outcome is unknown is a repeat with the same key the
         * right advice; a refused request would be refused again. */
        if (r.status == 0 || r.status == 429 || r.status >= 500) {
            fprintf(stderr,
                    "  idempotency key: %s (repeat with --idempotency-key %s: it cannot create a "
                    "second job)\n",
                    key, key);
        }
        rf_cli_resp_clear(&r);
        return ex;
    }
    snprintf(id, sizeof(id), "%s", rf_cli_str(r.body, "id", ""));
    if (id[0] == '\0') {
        fprintf(stderr, "rfctl: submit: the answer has no job id\n");
        rf_cli_resp_clear(&r);
        return RF_CLI_EXIT_API;
    }
    if (c->a->json) {
        print_json(r.body);
    } else {
        printf("%s\n", id);
        fprintf(stderr, "rfctl: job %s: state %s, items %lld (idempotency key %s)\n", id,
                rf_cli_str(r.body, "state", "?"), (long long)rf_cli_int(r.body, "items_total", 0),
                key);
    }
    fflush(stdout);
    rf_cli_resp_clear(&r);
    if (opt(c->a, "watch") != NULL) {
        return run_watch(c, cmd, id);
    }
    return RF_CLI_EXIT_OK;
}

static void
print_job_row(const json_t *j)
{
    char items[64], created[32];

    snprintf(items, sizeof(items), "%lld/%lld/%lld", (long long)rf_cli_int(j, "items_completed", 0),
             (long long)rf_cli_int(j, "items_failed", 0),
             (long long)rf_cli_int(j, "items_total", 0));
    snprintf(created, sizeof(created), "%s", rf_cli_str(j, "created_at", "-"));
    printf("%-32s %-10s %6.1f%% %-14s %-20s ", rf_cli_str(j, "id", "?"),
           rf_cli_str(j, "state", "?"), rf_cli_num(j, "percent_complete", 0.0), items, created);
    rf_cli_put_line(stdout, rf_cli_str(j, "title", ""), 0);
}

static int
cmd_list(ctx *c)
{
    const command *cmd = c->cmd;
    const args *a = c->a;
    const char *page_size = opt(a, "page-size"), *token = opt(a, "page-token");
    bool all = opt(a, "all") != NULL;
    char base[PATH_BYTES] = "/api/v1/bulk-jobs", path[PATH_BYTES + 512], next[512] = "";
    json_t *collected = NULL;
    long v;
    int ex = -1, pages = 0;

    if ((ex = check_enum(cmd, a, "state", job_states)) >= 0 ||
        (ex = check_enum(cmd, a, "sort", sorts)) >= 0 ||
        (ex = check_enum(cmd, a, "order", orders)) >= 0) {
        return ex;
    }
    if (page_size != NULL && !parse_long(page_size, 1, 100, &v)) {
        return usage_error(cmd, "--page-size must be 1..100, not '%s'", page_size);
    }
    const char *const names[][2] = {{"page_size", page_size},
                                    {"sort", opt(a, "sort")},
                                    {"order", opt(a, "order")},
                                    {"state", opt(a, "state")}};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (names[i][1] != NULL &&
            rf_cli_query_add(base, sizeof(base), names[i][0], names[i][1]) != RF_OK) {
            return usage_error(cmd, "%s", "the options are too long");
        }
    }
    snprintf(next, sizeof(next), "%s", token != NULL ? token : "");
    collected = json_array();
    if (collected == NULL) {
        return RF_CLI_EXIT_API;
    }
    ex = RF_CLI_EXIT_OK;
    for (;;) {
        rf_cli_resp r = {0};
        const json_t *jobs, *j;
        const char *nt;
        size_t i;
        int e;

        snprintf(path, sizeof(path), "%s", base);
        if (next[0] != '\0' && rf_cli_query_add(path, sizeof(path), "page_token", next) != RF_OK) {
            ex = usage_error(cmd, "%s", "the page token is too long");
            break;
        }
        e = call(c, "list", "GET", path, NULL, NULL, 200, &r);
        if (e >= 0) {
            rf_cli_resp_clear(&r);
            ex = e;
            break;
        }
        jobs = json_object_get(r.body, "jobs");
        if (!json_is_array(jobs)) {
            fprintf(stderr, "rfctl: list: the answer has no \"jobs\" array\n");
            rf_cli_resp_clear(&r);
            ex = RF_CLI_EXIT_API;
            break;
        }
        if (!a->json && pages == 0) {
            printf("%-32s %-10s %7s %-14s %-20s %s\n", "ID", "STATE", "DONE", "OK/FAIL/TOTAL",
                   "CREATED", "TITLE");
        }
        json_array_foreach(jobs, i, j)
        {
            if (a->json) {
                json_array_append(collected, (json_t *)j);
            } else {
                print_job_row(j);
            }
        }
        nt = rf_cli_str(r.body, "next_page_token", NULL);
        pages++;
        /* A token that does not move would loop forever: stop on it. */
        if (nt == NULL || nt[0] == '\0' || strcmp(nt, next) == 0 || !all ||
            pages >= LIST_PAGES_MAX) {
            if (!a->json && nt != NULL && nt[0] != '\0' && !all) {
                fprintf(stderr, "rfctl: more jobs: --page-token %s (or --all)\n", nt);
            }
            snprintf(next, sizeof(next), "%s", nt != NULL && !all ? nt : "");
            rf_cli_resp_clear(&r);
            break;
        }
        snprintf(next, sizeof(next), "%s", nt);
        rf_cli_resp_clear(&r);
    }
    if (ex == RF_CLI_EXIT_OK && a->json) {
        json_t *outj = json_pack("{s:O, s:o}", "jobs", collected, "next_page_token",
                                 next[0] != '\0' ? json_string(next) : json_null());
        if (outj != NULL) {
            print_json(outj);
            json_decref(outj);
        }
    }
    json_decref(collected);
    return ex;
}

static int
cmd_show(ctx *c)
{
    char path[PATH_BYTES], line[64], eta[32];
    rf_cli_resp r = {0};
    const json_t *j, *out, *tpl;
    char *ov = NULL, *in = NULL;
    int ex = job_path(c->a->pos[0], "", path, sizeof(path));

    if (ex >= 0) {
        return ex;
    }
    ex = call(c, "show", "GET", path, NULL, NULL, 200, &r);
    if (ex >= 0) {
        rf_cli_resp_clear(&r);
        return ex;
    }
    j = r.body;
    if (c->a->json) {
        print_json(j);
        rf_cli_resp_clear(&r);
        return RF_CLI_EXIT_OK;
    }
    out = json_object_get(j, "output");
    tpl = json_object_get(j, "template");
    rf_cli_fmt_duration(rf_cli_int(j, "eta_ms", -1), eta, sizeof(eta));
    printf("id:          %s\n", rf_cli_str(j, "id", "?"));
    printf("title:       ");
    rf_cli_put_line(stdout, rf_cli_str(j, "title", ""), 0);
    printf("state:       %s\n", rf_cli_str(j, "state", "?"));
    printf("priority:    %s\n", rf_cli_str(j, "priority", "?"));
    printf(
        "progress:    %.1f%% (%lld completed, %lld failed, %lld pending, %lld skipped of "
        "%lld)\n",
        rf_cli_num(j, "percent_complete", 0.0), (long long)rf_cli_int(j, "items_completed", 0),
        (long long)rf_cli_int(j, "items_failed", 0), (long long)rf_cli_int(j, "items_pending", 0),
        (long long)rf_cli_int(j, "items_skipped", 0), (long long)rf_cli_int(j, "items_total", 0));
    printf("eta:         %s\n", eta);
    printf("created_at:  %s\n", rf_cli_str(j, "created_at", "-"));
    printf("started_at:  %s\n", rf_cli_str(j, "started_at", "-"));
    printf("finished_at: %s\n", rf_cli_str(j, "finished_at", "-"));
    if (rf_cli_int(j, "processing_deadline_ms", 0) > 0) {
        snprintf(line, sizeof(line), "%lld min",
                 (long long)(rf_cli_int(j, "processing_deadline_ms", 0) / 60000));
        printf("deadline:    %s\n", line);
    }
    printf("output:      %s %s/%s %s -> bucket %s\n", rf_cli_str(out, "format", "?"),
           rf_cli_str(out, "video_codec", "?"), rf_cli_str(out, "audio_codec", "?"),
           rf_cli_str(out, "resolution", "?"), rf_cli_str(out, "output_bucket", "?"));
    ov = json_dumps(json_object_get(tpl, "overrides"), JSON_COMPACT | JSON_SORT_KEYS);
    printf("template:    %s %s\n", rf_cli_str(tpl, "template_id", "?"), ov != NULL ? ov : "");
    in = json_dumps(json_object_get(j, "input_source"), JSON_COMPACT | JSON_SORT_KEYS);
    printf("input:       %s\n", in != NULL ? in : "?");
    if (rf_cli_str(j, "callback_url", NULL) != NULL) {
        printf("callback:    %s\n", rf_cli_str(j, "callback_url", ""));
    }
    if (rf_cli_str(j, "error_code", NULL) != NULL) {
        printf("error:       %s: %s\n", rf_cli_str(j, "error_code", ""),
               rf_cli_str(j, "error_message", ""));
    }
    free(ov);
    free(in);
    rf_cli_resp_clear(&r);
    return RF_CLI_EXIT_OK;
}

static void
print_video_row(const json_t *v)
{
    const json_t *errors = json_object_get(v, "errors"), *arts = json_object_get(v, "artifacts");
    const json_t *x;
    size_t i;

    printf("%-5lld %-11s ", (long long)rf_cli_int(v, "row_number", 0), rf_cli_str(v, "state", "?"));
    rf_cli_put_line(stdout, rf_cli_str(v, "title", ""), 0);
    json_array_foreach(errors, i, x)
    {
        printf("      error %s: %s\n", rf_cli_str(x, "error_code", "?"),
               rf_cli_str(x, "error_message", ""));
    }
    json_array_foreach(arts, i, x)
    {
        printf("      %s %s %s\n", rf_cli_str(x, "type", "?"), rf_cli_str(x, "rendition", ""),
               rf_cli_str(x, "url", ""));
    }
}

static int
cmd_videos(ctx *c)
{
    const command *cmd = c->cmd;
    const char *page_size = opt(c->a, "page-size"), *state = opt(c->a, "state");
    char base[PATH_BYTES], path[PATH_BYTES + 512], token[512] = "";
    json_t *collected = json_array();
    long v;
    int ex;

    if (collected == NULL) {
        return RF_CLI_EXIT_API;
    }
    if ((ex = check_enum(cmd, c->a, "state", video_states)) >= 0 ||
        (page_size != NULL && !parse_long(page_size, 1, 100, &v) &&
         (ex = usage_error(cmd, "--page-size must be 1..100, not '%s'", page_size)) >= 0) ||
        (ex = job_path(c->a->pos[0], "/videos", base, sizeof(base))) >= 0) {
        json_decref(collected);
        return ex;
    }
    if ((state != NULL && rf_cli_query_add(base, sizeof(base), "state", state) != RF_OK) ||
        rf_cli_query_add(base, sizeof(base), "page_size", page_size != NULL ? page_size : "100") !=
            RF_OK) {
        json_decref(collected);
        return usage_error(cmd, "%s", "the options are too long");
    }
    ex = RF_CLI_EXIT_OK;
    for (int page = 0; page < LIST_PAGES_MAX; page++) {
        rf_cli_resp r = {0};
        const json_t *list, *x;
        const char *nt;
        size_t i;
        int e;

        snprintf(path, sizeof(path), "%s", base);
        if (token[0] != '\0' &&
            rf_cli_query_add(path, sizeof(path), "page_token", token) != RF_OK) {
            ex = RF_CLI_EXIT_API;
            break;
        }
        e = call(c, "videos", "GET", path, NULL, NULL, 200, &r);
        if (e >= 0) {
            rf_cli_resp_clear(&r);
            ex = e;
            break;
        }
        list = json_object_get(r.body, "videos");
        if (!c->a->json && page == 0) {
            printf("%-5s %-11s %s\n", "ROW", "STATE", "TITLE / ERRORS / ARTIFACTS");
        }
        json_array_foreach(list, i, x)
        {
            if (c->a->json) {
                json_array_append(collected, (json_t *)x);
            } else {
                print_video_row(x);
            }
        }
        nt = rf_cli_str(r.body, "next_page_token", NULL);
        if (nt == NULL || nt[0] == '\0' || strcmp(nt, token) == 0) {
            rf_cli_resp_clear(&r);
            break;
        }
        snprintf(token, sizeof(token), "%s", nt);
        rf_cli_resp_clear(&r);
    }
    if (ex == RF_CLI_EXIT_OK && c->a->json) {
        json_t *o = json_pack("{s:O}", "videos", collected);
        if (o != NULL) {
            print_json(o);
            json_decref(o);
        }
    }
    json_decref(collected);
    return ex;
}

static int
cmd_action(ctx *c)
{
    char path[PATH_BYTES], suffix[32];
    const char *action = c->cmd->name;
    rf_cli_resp r = {0};
    int ex;

    snprintf(suffix, sizeof(suffix), "/%s", action);
    ex = job_path(c->a->pos[0], suffix, path, sizeof(path));
    if (ex >= 0) {
        return ex;
    }
    ex = call(c, action, "POST", path, NULL, NULL, 200, &r);
    if (ex >= 0) {
        rf_cli_resp_clear(&r);
        return ex;
    }
    if (c->a->json) {
        print_json(r.body);
    } else {
        printf("job %s: %s\n", rf_cli_str(r.body, "id", c->a->pos[0]),
               rf_cli_str(r.body, "state", "?"));
    }
    rf_cli_resp_clear(&r);
    return RF_CLI_EXIT_OK;
}

static int
cmd_watch(ctx *c)
{
    return run_watch(c, c->cmd, c->a->pos[0]);
}

static int
cmd_health(ctx *c)
{
    rf_cli_resp r = {0};
    int ex = call(c, "health", "GET", "/healthz", NULL, NULL, 200, &r);

    if (ex < 0) {
        if (c->a->json) {
            print_json(r.body);
        } else {
            printf("%s\n", rf_cli_str(r.body, "status", "ok"));
        }
        ex = RF_CLI_EXIT_OK;
    }
    rf_cli_resp_clear(&r);
    return ex;
}

int
main(int argc, char **argv)
{
    args a;
    const command *cmd = NULL;
    rf_cli_http_opts ho;
    ctx c;
    int ex;
    rf_err rv;

    setlocale(LC_CTYPE, "");
    memset(&a, 0, sizeof(a));
    a.retries = -1;
    ex = parse_args(argc, argv, &a, &cmd);
    if (ex >= 0) {
        return ex;
    }
    if (a.url == NULL) {
        a.url = getenv("RF_URL") != NULL && getenv("RF_URL")[0] != '\0' ? getenv("RF_URL")
                                                                        : DEFAULT_URL;
    }
    if (a.token == NULL) {
        a.token = getenv("RF_TOKEN");
    }
    memset(&ho, 0, sizeof(ho));
    ho.base_url = a.url;
    ho.token = a.token;
    ho.timeout_ms = a.http_timeout_ms;
    ho.retries = a.retries;
    ho.verbose = a.verbose;
    memset(&c, 0, sizeof(c));
    c.a = &a;
    c.cmd = cmd;
    rv = rf_cli_http_new(&ho, &c.http);
    if (rv == RF_EINVAL) {
        return usage_error(cmd,
                           "'%s' is not an http:// or https:// URL (or the token has a "
                           "line break)",
                           a.url);
    }
    if (rv != RF_OK) {
        fprintf(stderr, "rfctl: cannot start the HTTP client: %s\n", rf_strerror(rv));
        return RF_CLI_EXIT_API;
    }
    ex = cmd->fn(&c);
    rf_cli_http_free(&c.http);
    return ex;
}
