/* Bulk-job request validation. */
#include "request.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rf_util.h"
#include "templates.h"

const char *
rf_priority_name(int priority)
{
    switch (priority) {
    case 0:
        return "low";
    case 2:
        return "high";
    default:
        return "normal";
    }
}

int
rf_priority_parse(const char *s)
{
    if (s == NULL) {
        return -1;
    }
    if (strcasecmp(s, "low") == 0) {
        return 0;
    }
    if (strcasecmp(s, "normal") == 0) {
        return 1;
    }
    if (strcasecmp(s, "high") == 0) {
        return 2;
    }
    return -1;
}

void
rf_job_spec_clear(rf_job_spec *spec)
{
    if (spec == NULL) {
        return;
    }
    free(spec->overrides_json);
    free(spec->request_json);
    free(spec->input_json);
    free(spec->template_json);
    rf_source_clear(&spec->source);
    memset(spec, 0, sizeof(*spec));
}

/* Lowercases s into out, dropping '.' so that "H.264" reads as "h264".
 * Returns false if it does not fit. */
static bool
normalise(const char *s, char *out, size_t len)
{
    size_t n = 0;

    for (; *s != '\0'; s++) {
        if (*s == '.') {
            continue;
        }
        if (n + 1 >= len) {
            return false;
        }
        out[n++] = (char)tolower((unsigned char)*s);
    }
    out[n] = '\0';
    return true;
}

/* An optional string enum: missing or null -> def. */
static rf_err
get_enum(const json_t *obj, const char *key, const char *path, const char *const *allowed,
         const char *allowed_text, const char *def, char *out, size_t len, rf_verr *err)
{
    const json_t *v = json_object_get(obj, key);

    if (v == NULL || json_is_null(v)) {
        snprintf(out, len, "%s", def);
        return RF_OK;
    }
    if (!json_is_string(v)) {
        rf_verr_set(err, path, "invalid_type", "%s must be a string (one of %s)", path,
                    allowed_text);
        return RF_EINVAL;
    }
    if (!normalise(json_string_value(v), out, len) || !rf_str_in_list(out, allowed)) {
        rf_verr_set(err, path, "invalid_value", "%s must be one of %s", path, allowed_text);
        return RF_EINVAL;
    }
    return RF_OK;
}

static bool
bucket_name_ok(const char *s)
{
    size_t n = strlen(s);

    if (n < 1 || n > 63 || strstr(s, "..") != NULL || strcmp(s, ".") == 0) {
        return false;
    }
    for (; *s != '\0'; s++) {
        if (!isalnum((unsigned char)*s) && *s != '.' && *s != '_' && *s != '-') {
            return false;
        }
    }
    return true;
}

static bool
http_url_ok(const char *s)
{
    const char *host;

    if (strncasecmp(s, "http://", 7) == 0) {
        host = s + 7;
    } else if (strncasecmp(s, "https://", 8) == 0) {
        host = s + 8;
    } else {
        return false;
    }
    if (*host == '\0' || *host == '/' || *host == '?' || *host == '#') {
        return false;
    }
    for (const char *p = s; *p != '\0'; p++) {
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p == 0x7f) {
            return false;
        }
    }
    return true;
}

static rf_err
parse_title(const json_t *root, rf_job_spec *out, rf_verr *err)
{
    const json_t *v = json_object_get(root, "title");
    const char *s, *end;
    size_t n;

    if (v == NULL || json_is_null(v)) {
        rf_verr_set(err, "title", "required", "title is required");
        return RF_EINVAL;
    }
    if (!json_is_string(v)) {
        rf_verr_set(err, "title", "invalid_type", "title must be a string");
        return RF_EINVAL;
    }
    s = json_string_value(v);
    while (isspace((unsigned char)*s)) {
        s++;
    }
    end = s + strlen(s);
    while (end > s && isspace((unsigned char)end[-1])) {
        end--;
    }
    n = (size_t)(end - s);
    if (n == 0) {
        rf_verr_set(err, "title", "required", "title must not be empty");
        return RF_EINVAL;
    }
    if (n >= sizeof(out->title)) {
        rf_verr_set(err, "title", "too_long", "title must be at most %d characters",
                    RF_JOB_TITLE_MAX_CHARS);
        return RF_EINVAL;
    }
    memcpy(out->title, s, n);
    out->title[n] = '\0';
    if (memchr(s, '\0', n) != NULL ||
        rf_utf8_chars(out->title, strlen(out->title)) > RF_JOB_TITLE_MAX_CHARS) {
        rf_verr_set(err, "title", "too_long", "title must be at most %d characters",
                    RF_JOB_TITLE_MAX_CHARS);
        return RF_EINVAL;
    }
    return RF_OK;
}

static rf_err
parse_job_fields(const json_t *root, const rf_coord_config *cfg, rf_job_spec *out, rf_verr *err)
{
    const json_t *v;

    v = json_object_get(root, "priority");
    out->priority = 1;
    if (v != NULL && !json_is_null(v)) {
        int p = json_is_string(v) ? rf_priority_parse(json_string_value(v)) : -1;
        if (p < 0) {
            rf_verr_set(err, "priority", json_is_string(v) ? "invalid_value" : "invalid_type",
                        "priority must be one of low, normal, high");
            return RF_EINVAL;
        }
        out->priority = p;
    }
    v = json_object_get(root, "processing_deadline_ms");
    if (v != NULL && !json_is_null(v)) {
        json_int_t d;
        if (!json_is_integer(v)) {
            rf_verr_set(err, "processing_deadline_ms", "invalid_type",
                        "processing_deadline_ms must be an integer number of milliseconds");
            return RF_EINVAL;
        }
        d = json_integer_value(v);
        /* The API's minimum is one minute; tests may lower it (deadline_min_ms). */
        if (d < cfg->deadline_min_ms || d > 86400000) {
            rf_verr_set(err, "processing_deadline_ms", "out_of_range",
                        "processing_deadline_ms must be between %lld (%s) and 86400000 "
                        "(1440 minutes)",
                        (long long)cfg->deadline_min_ms,
                        cfg->deadline_min_ms == 60000 ? "1 minute" : "test minimum");
            return RF_EINVAL;
        }
        out->processing_deadline_ms = d;
    }
    v = json_object_get(root, "callback_url");
    if (v != NULL && !json_is_null(v)) {
        if (!json_is_string(v)) {
            rf_verr_set(err, "callback_url", "invalid_type", "callback_url must be a string");
            return RF_EINVAL;
        }
        if (json_string_length(v) > 0) {
            if (!http_url_ok(json_string_value(v)) ||
                json_string_length(v) != strlen(json_string_value(v))) {
                rf_verr_set(err, "callback_url", "invalid_value",
                            "callback_url must be an http:// or https:// URL");
                return RF_EINVAL;
            }
            if (rf_strlcpy(out->callback_url, json_string_value(v), sizeof(out->callback_url)) !=
                RF_OK) {
                rf_verr_set(err, "callback_url", "too_long", "callback_url is too long");
                return RF_EINVAL;
            }
        }
    }
    return RF_OK;
}

static rf_err
parse_output(const json_t *root, rf_job_spec *out, rf_verr *err)
{
    static const char *const formats[] = {"mp4", "mov", "webm", NULL};
    static const char *const vcodecs[] = {"h264", "h265", "vp9", NULL};
    static const char *const acodecs[] = {"aac", "opus", NULL};
    static const char *const resolutions[] = {"720p", "1080p", "4k", NULL};
    const json_t *o = json_object_get(root, "output");
    const json_t *b;
    rf_err rv;

    if (o == NULL || json_is_null(o)) {
        rf_verr_set(err, "output", "required", "output is required (it names output_bucket)");
        return RF_EINVAL;
    }
    if (!json_is_object(o)) {
        rf_verr_set(err, "output", "invalid_type", "output must be an object");
        return RF_EINVAL;
    }
    rv = get_enum(o, "format", "output.format", formats, "mp4, mov, webm", "mp4", out->format,
                  sizeof(out->format), err);
    if (rv == RF_OK) {
        rv = get_enum(o, "video_codec", "output.video_codec", vcodecs, "h264, h265, vp9", "h264",
                      out->video_codec, sizeof(out->video_codec), err);
    }
    if (rv == RF_OK) {
        rv = get_enum(o, "audio_codec", "output.audio_codec", acodecs, "aac, opus", "aac",
                      out->audio_codec, sizeof(out->audio_codec), err);
    }
    if (rv == RF_OK) {
        rv = get_enum(o, "resolution", "output.resolution", resolutions, "720p, 1080p, 4k", "1080p",
                      out->resolution, sizeof(out->resolution), err);
    }
    if (rv != RF_OK) {
        return rv;
    }
    b = json_object_get(o, "output_bucket");
    if (b == NULL || json_is_null(b)) {
        rf_verr_set(err, "output.output_bucket", "required", "output.output_bucket is required");
        return RF_EINVAL;
    }
    if (!json_is_string(b)) {
        rf_verr_set(err, "output.output_bucket", "invalid_type",
                    "output.output_bucket must be a string");
        return RF_EINVAL;
    }
    if (json_string_length(b) != strlen(json_string_value(b)) ||
        !bucket_name_ok(json_string_value(b))) {
        rf_verr_set(err, "output.output_bucket", "invalid_value",
                    "output.output_bucket must be 1 to 63 characters of A-Z a-z 0-9 . _ - "
                    "without '..'");
        return RF_EINVAL;
    }
    snprintf(out->output_bucket, sizeof(out->output_bucket), "%s", json_string_value(b));

    /* Containers and codecs that do not go together. */
    if (strcmp(out->format, "webm") == 0) {
        if (strcmp(out->video_codec, "vp9") != 0) {
            rf_verr_set(err, "output.video_codec", "incompatible",
                        "output.format webm requires video_codec vp9");
            return RF_EINVAL;
        }
        if (strcmp(out->audio_codec, "opus") != 0) {
            rf_verr_set(err, "output.audio_codec", "incompatible",
                        "output.format webm requires audio_codec opus");
            return RF_EINVAL;
        }
    }
    if (strcmp(out->format, "mov") == 0) {
        if (strcmp(out->video_codec, "vp9") == 0) {
            rf_verr_set(err, "output.video_codec", "incompatible",
                        "output.format mov cannot carry vp9 (use mp4 or webm)");
            return RF_EINVAL;
        }
        if (strcmp(out->audio_codec, "opus") == 0) {
            rf_verr_set(err, "output.audio_codec", "incompatible",
                        "output.format mov cannot carry opus (use mp4 or webm)");
            return RF_EINVAL;
        }
    }
    return RF_OK;
}

/* Lowercases a string override in place and checks it against valid(). */
static rf_err
check_override(json_t *ov, const char *key, bool (*valid)(const char *), const char *allowed,
               rf_verr *err)
{
    json_t *v = json_object_get(ov, key);
    char path[64], buf[RF_NAME_MAX];

    if (v == NULL || json_is_null(v)) {
        return RF_OK;
    }
    snprintf(path, sizeof(path), "template.overrides.%s", key);
    if (!json_is_string(v)) {
        rf_verr_set(err, path, "invalid_type", "%s must be a string (one of %s)", path, allowed);
        return RF_EINVAL;
    }
    if (!normalise(json_string_value(v), buf, sizeof(buf)) || !valid(buf)) {
        rf_verr_set(err, path, "invalid_value", "%s must be one of %s", path, allowed);
        return RF_EINVAL;
    }
    if (json_string_set(v, buf) != 0) {
        return RF_ENOMEM;
    }
    return RF_OK;
}

static rf_err
check_string_override(json_t *ov, const char *key, size_t max, rf_verr *err)
{
    json_t *v = json_object_get(ov, key);
    char path[64];

    if (v == NULL || json_is_null(v)) {
        return RF_OK;
    }
    snprintf(path, sizeof(path), "template.overrides.%s", key);
    if (!json_is_string(v) || json_string_length(v) >= max ||
        json_string_length(v) != strlen(json_string_value(v))) {
        rf_verr_set(err, path, "invalid_value", "%s must be a string shorter than %zu bytes", path,
                    max);
        return RF_EINVAL;
    }
    return RF_OK;
}

static rf_err
parse_template(const json_t *root, rf_template_lookup_fn lookup, void *lookup_ctx, rf_job_spec *out,
               rf_verr *err)
{
    const json_t *t = json_object_get(root, "template");
    const json_t *id = NULL;
    json_t *ov = NULL;
    const json_t *colors;
    rf_err rv = RF_OK;

    snprintf(out->template_id, sizeof(out->template_id), "tpl_standard");
    if (t != NULL && !json_is_null(t) && !json_is_object(t)) {
        rf_verr_set(err, "template", "invalid_type", "template must be an object");
        return RF_EINVAL;
    }
    if (t != NULL && json_is_object(t)) {
        id = json_object_get(t, "template_id");
    }
    if (id != NULL && !json_is_null(id)) {
        if (!json_is_string(id)) {
            rf_verr_set(err, "template.template_id", "invalid_type",
                        "template.template_id must be a string");
            return RF_EINVAL;
        }
        if (rf_template_find(json_string_value(id)) == NULL) {
            rv = RF_ENOTFOUND;
            if (lookup != NULL &&
                rf_template_id_valid(json_string_value(id), json_string_length(id))) {
                rv = lookup(lookup_ctx, json_string_value(id), &out->template_json);
            }
            if (rv == RF_ENOTFOUND) {
                rf_verr_set(err, "template.template_id", "not_found",
                            "template.template_id '%.64s' is not a known template",
                            json_string_value(id));
                return RF_EINVAL;
            }
            if (rv != RF_OK) {
                return rv;
            }
        }
        snprintf(out->template_id, sizeof(out->template_id), "%s", json_string_value(id));
    }
    if (t != NULL && json_is_object(t)) {
        const json_t *o = json_object_get(t, "overrides");
        if (o != NULL && !json_is_null(o)) {
            if (!json_is_object(o)) {
                rf_verr_set(err, "template.overrides", "invalid_type",
                            "template.overrides must be an object");
                return RF_EINVAL;
            }
            ov = json_deep_copy(o);
        }
    }
    if (ov == NULL) {
        ov = json_object();
    }
    if (ov == NULL) {
        return RF_ENOMEM;
    }
    rv = check_override(ov, "style", rf_style_valid, "modern, classic, minimal, corporate", err);
    if (rv == RF_OK) {
        rv = check_override(ov, "voice", rf_voice_valid, "female, male, neutral", err);
    }
    if (rv == RF_OK) {
        rv = check_string_override(ov, "font_family", RF_NAME_MAX, err);
    }
    if (rv == RF_OK) {
        rv = check_string_override(ov, "logo_position", RF_NAME_MAX, err);
    }
    if (rv == RF_OK) {
        rv = check_string_override(ov, "background_music", RF_PATH_MAX, err);
    }
    if (rv != RF_OK) {
        goto out;
    }
    colors = json_object_get(ov, "colors");
    if (colors != NULL && !json_is_null(colors)) {
        if (!rf_template_colors_valid(colors)) {
            rf_verr_set(err, "template.overrides.colors", "invalid_value",
                        "template.overrides.colors must be an array of 1 to %d \"#RRGGBB\" "
                        "strings",
                        RF_MAX_COLORS);
            rv = RF_EINVAL;
            goto out;
        }
    }
    out->overrides_json = json_dumps(ov, JSON_COMPACT | JSON_SORT_KEYS);
    if (out->overrides_json == NULL) {
        rv = RF_ENOMEM;
    }
out:
    json_decref(ov);
    return rv;
}

/* validation_level and the opt-in write-back (Google Sheets input only, and
 * only with a service account: API keys and public links cannot write).
 * Needs the source parsed. */
static rf_err
parse_sheet_options(const json_t *root, const rf_coord_config *cfg, rf_job_spec *out, rf_verr *err)
{
    const json_t *level = json_object_get(root, "validation_level");
    const json_t *wb = json_object_get(root, "writeback");
    const json_t *cols;

    out->validation_level = RF_VLEVEL_MODERATE;
    if (level != NULL && !json_is_null(level)) {
        if (!json_is_string(level) ||
            !rf_vlevel_parse(json_string_value(level), &out->validation_level)) {
            rf_verr_set(err, "validation_level", "invalid_value",
                        "validation_level must be one of strict, moderate, permissive");
            return RF_EINVAL;
        }
    }
    if (wb == NULL || json_is_null(wb) || json_is_false(wb)) {
        return RF_OK;
    }
    if (!json_is_object(wb)) {
        rf_verr_set(err, "writeback", "invalid_type",
                    "writeback must be an object such as {\"columns\": {\"state\": \"K\", "
                    "\"url\": \"L\", \"error\": \"M\"}}");
        return RF_EINVAL;
    }
    cols = json_object_get(wb, "columns");
    if (cols == NULL) {
        rf_verr_set(err, "writeback.columns", "required", "writeback.columns is required");
        return RF_EINVAL;
    }
    if (rf_wb_columns_parse(cols, "writeback.columns", &out->wb_columns, err) != RF_OK) {
        return RF_EINVAL;
    }
    if (out->source.sheet_id[0] == '\0') {
        rf_verr_set(err, "writeback", "invalid_value",
                    "writeback needs an input_source of type sheet");
        return RF_EINVAL;
    }
    if (cfg->sheets_credentials_file[0] == '\0') {
        rf_verr_set(err, "writeback", "writeback_not_allowed",
                    "writing results back needs a Google service account: set "
                    "sheets_credentials_file on the coordinator and share the sheet with the "
                    "service account as Editor (API keys and public links are read-only)");
        return RF_EINVAL;
    }
    out->writeback = true;
    return RF_OK;
}

rf_err
rf_job_request_parse(const char *body, size_t len, const rf_coord_config *cfg, rf_job_spec *out,
                     rf_verr *err)
{
    return rf_job_request_parse_ex(body, len, cfg, NULL, NULL, out, err);
}

rf_err
rf_job_request_parse_ex(const char *body, size_t len, const rf_coord_config *cfg,
                        rf_template_lookup_fn lookup, void *lookup_ctx, rf_job_spec *out,
                        rf_verr *err)
{
    json_t *root = NULL;
    json_t *summary = NULL;
    rf_err rv;

    memset(out, 0, sizeof(*out));
    rv = rf_verr_json_body(body, len, &root, err);
    if (rv != RF_OK) {
        return rv;
    }
    rv = parse_title(root, out, err);
    if (rv == RF_OK) {
        rv = parse_job_fields(root, cfg, out, err);
    }
    if (rv == RF_OK) {
        rv = parse_output(root, out, err);
    }
    if (rv == RF_OK) {
        rv = parse_template(root, lookup, lookup_ctx, out, err);
    }
    if (rv == RF_OK) {
        rv = rf_source_parse(json_object_get(root, "input_source"), cfg, &out->source, err);
    }
    if (rv == RF_OK) {
        rv = parse_sheet_options(root, cfg, out, err);
    }
    if (rv != RF_OK) {
        goto out;
    }
    summary = rf_source_summary(&out->source);
    out->input_json = summary != NULL ? json_dumps(summary, JSON_COMPACT) : NULL;
    out->request_json = malloc(len + 1);
    if (out->input_json == NULL || out->request_json == NULL) {
        rv = RF_ENOMEM;
        goto out;
    }
    memcpy(out->request_json, body, len);
    out->request_json[len] = '\0';
out:
    json_decref(summary);
    json_decref(root);
    if (rv != RF_OK) {
        rf_job_spec_clear(out);
    }
    return rv;
}
