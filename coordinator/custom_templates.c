/* Custom template validation, views and storage. */
#include "custom_templates.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rf_util.h"
#include "templates.h"

static const char *const logo_positions[] = {"top_left",     "top_right", "bottom_left",
                                             "bottom_right", "none",      NULL};

/* Lowercased copy of an optional enum string into obj[key] (normalised in
 * place), checked against list; def when absent. */
static rf_err
enum_field(json_t *obj, const char *key, const char *path, const char *const *list,
           const char *allowed, const char *def, rf_verr *err)
{
    json_t *v = json_object_get(obj, key);
    char buf[RF_NAME_MAX];
    size_t n;

    if (v == NULL || json_is_null(v)) {
        return json_object_set_new(obj, key, json_string(def)) == 0 ? RF_OK : RF_ENOMEM;
    }
    if (!json_is_string(v) || json_string_length(v) >= sizeof(buf)) {
        rf_verr_set(err, path, "invalid_value", "%s must be one of %s", path, allowed);
        return RF_EINVAL;
    }
    n = json_string_length(v);
    for (size_t i = 0; i <= n; i++) {
        buf[i] = (char)tolower((unsigned char)json_string_value(v)[i]);
    }
    if (strlen(buf) != n || !rf_str_in_list(buf, list)) {
        rf_verr_set(err, path, "invalid_value", "%s must be one of %s", path, allowed);
        return RF_EINVAL;
    }
    return json_string_set(v, buf) == 0 ? RF_OK : RF_ENOMEM;
}

static rf_err
string_field(json_t *obj, const char *key, const char *path, size_t max, rf_verr *err)
{
    json_t *v = json_object_get(obj, key);

    if (v == NULL || json_is_null(v)) {
        json_object_del(obj, key);
        return RF_OK;
    }
    if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > max ||
        json_string_length(v) != strlen(json_string_value(v))) {
        rf_verr_set(err, path, "invalid_value", "%s must be a string of 1 to %zu bytes", path, max);
        return RF_EINVAL;
    }
    return RF_OK;
}

static rf_err
number_field(json_t *obj, const char *key, const char *path, double lo, double hi, double def,
             rf_verr *err)
{
    json_t *v = json_object_get(obj, key);

    if (v == NULL || json_is_null(v)) {
        return json_object_set_new(obj, key, json_real(def)) == 0 ? RF_OK : RF_ENOMEM;
    }
    if (!json_is_number(v) || !isfinite(json_number_value(v)) || json_number_value(v) < lo ||
        json_number_value(v) > hi) {
        rf_verr_set(err, path, "out_of_range", "%s must be a number from %g to %g", path, lo, hi);
        return RF_EINVAL;
    }
    return json_object_set_new(obj, key, json_real(json_number_value(v))) == 0 ? RF_OK : RF_ENOMEM;
}

/* The object at obj[key], created empty when absent; RF_EINVAL if not an
 * object. */
static rf_err
sub_object(json_t *obj, const char *key, const char *path, json_t **out, rf_verr *err)
{
    json_t *v = json_object_get(obj, key);

    if (v == NULL || json_is_null(v)) {
        v = json_object();
        if (v == NULL || json_object_set_new(obj, key, v) != 0) {
            return RF_ENOMEM;
        }
    }
    if (!json_is_object(v)) {
        rf_verr_set(err, path, "invalid_type", "%s must be an object", path);
        return RF_EINVAL;
    }
    *out = v;
    return RF_OK;
}

static rf_err
parse_settings(json_t *settings, rf_verr *err)
{
    json_t *style = NULL, *audio = NULL, *voice = NULL, *colors;
    rf_err rv;

    rv = sub_object(settings, "style", "settings.style", &style, err);
    if (rv == RF_OK) {
        rv = sub_object(settings, "audio", "settings.audio", &audio, err);
    }
    if (rv == RF_OK) {
        rv = sub_object(audio, "voice_settings", "settings.audio.voice_settings", &voice, err);
    }
    if (rv != RF_OK) {
        return rv;
    }
    colors = json_object_get(style, "colors");
    if (colors != NULL && !json_is_null(colors)) {
        if (!rf_template_colors_valid(colors)) {
            rf_verr_set(err, "settings.style.colors", "invalid_value",
                        "settings.style.colors must be an array of 1 to %d \"#RRGGBB\" strings",
                        RF_MAX_COLORS);
            return RF_EINVAL;
        }
    } else {
        json_object_del(style, "colors");
    }
    rv = string_field(style, "font_family", "settings.style.font_family", RF_NAME_MAX - 1, err);
    if (rv == RF_OK) {
        rv =
            enum_field(style, "logo_position", "settings.style.logo_position", logo_positions,
                       "top_left, top_right, bottom_left, bottom_right, none", "bottom_right", err);
    }
    if (rv == RF_OK) {
        static const char *const presets[] = {"modern", "classic", "minimal", "corporate", NULL};
        rv = enum_field(style, "preset", "settings.style.preset", presets,
                        "modern, classic, minimal, corporate", "modern", err);
    }
    if (rv == RF_OK) {
        rv = string_field(audio, "background_music", "settings.audio.background_music", 255, err);
    }
    if (rv == RF_OK) {
        static const char *const voices[] = {"female", "male", "neutral", NULL};
        rv = enum_field(audio, "voice", "settings.audio.voice", voices, "female, male, neutral",
                        "female", err);
    }
    if (rv == RF_OK) {
        rv =
            number_field(voice, "speed", "settings.audio.voice_settings.speed", 0.5, 2.0, 1.0, err);
    }
    if (rv == RF_OK) {
        rv = number_field(voice, "pitch", "settings.audio.voice_settings.pitch", -12.0, 12.0, 0.0,
                          err);
    }
    return rv;
}

rf_err
rf_ctpl_parse(const char *body, size_t len, rf_tpl_rec *out, rf_verr *err)
{
    json_t *root = NULL, *settings = NULL;
    const json_t *id, *name, *desc;
    rf_err rv;

    memset(out, 0, sizeof(*out));
    rv = rf_verr_json_body(body, len, &root, err);
    if (rv != RF_OK) {
        return rv;
    }
    id = json_object_get(root, "template_id");
    if (!json_is_string(id) ||
        !rf_template_id_valid(json_string_value(id), json_string_length(id))) {
        rf_verr_set(err, "template_id", id == NULL ? "required" : "invalid_value",
                    "template_id must be 1 to 63 characters of A-Z a-z 0-9 _ . -");
        rv = RF_EINVAL;
        goto out;
    }
    name = json_object_get(root, "name");
    if (!json_is_string(name) || json_string_length(name) == 0 ||
        json_string_length(name) >= sizeof(out->name) ||
        json_string_length(name) != strlen(json_string_value(name)) ||
        rf_utf8_chars(json_string_value(name), strlen(json_string_value(name))) >
            RF_CTPL_NAME_MAX_CHARS) {
        rf_verr_set(err, "name", name == NULL ? "required" : "invalid_value",
                    "name must be a string of 1 to %d characters", RF_CTPL_NAME_MAX_CHARS);
        rv = RF_EINVAL;
        goto out;
    }
    desc = json_object_get(root, "description");
    if (desc != NULL && !json_is_null(desc) &&
        (!json_is_string(desc) || json_string_length(desc) > RF_CTPL_DESC_MAX_BYTES ||
         json_string_length(desc) != strlen(json_string_value(desc)))) {
        rf_verr_set(err, "description", "invalid_value",
                    "description must be a string of at most %d bytes", RF_CTPL_DESC_MAX_BYTES);
        rv = RF_EINVAL;
        goto out;
    }
    settings = json_object_get(root, "settings");
    if (settings != NULL && !json_is_null(settings) && !json_is_object(settings)) {
        rf_verr_set(err, "settings", "invalid_type", "settings must be an object");
        rv = RF_EINVAL;
        goto out;
    }
    settings = json_is_object(settings) ? json_deep_copy(settings) : json_object();
    if (settings == NULL) {
        rv = RF_ENOMEM;
        goto out;
    }
    rv = parse_settings(settings, err);
    if (rv != RF_OK) {
        goto out;
    }
    memcpy(out->id, json_string_value(id), json_string_length(id) + 1);
    memcpy(out->name, json_string_value(name), json_string_length(name) + 1);
    if (json_is_string(desc)) {
        memcpy(out->description, json_string_value(desc), json_string_length(desc) + 1);
    }
    out->settings_json = json_dumps(settings, JSON_COMPACT | JSON_SORT_KEYS);
    if (out->settings_json == NULL) {
        rv = RF_ENOMEM;
    }
out:
    json_decref(settings);
    json_decref(root);
    if (rv != RF_OK) {
        rf_tpl_rec_clear(out);
    }
    return rv;
}

static json_t *
time_or_null(int64_t ms)
{
    char buf[40];

    if (ms <= 0) {
        return json_null();
    }
    rf_time_rfc3339(ms, buf, sizeof(buf));
    return json_string(buf);
}

json_t *
rf_ctpl_json(const rf_tpl_rec *rec)
{
    json_t *settings = json_loads(rec->settings_json != NULL ? rec->settings_json : "{}", 0, NULL);

    if (settings == NULL) {
        settings = json_object();
    }
    return json_pack("{s:s, s:s, s:s, s:b, s:o, s:o}", "template_id", rec->id, "name", rec->name,
                     "description", rec->description, "built_in", 0, "settings", settings,
                     "created_at", time_or_null(rec->created_at));
}

json_t *
rf_builtin_template_json(const rf_template *t)
{
    json_t *colors = json_array();

    for (size_t i = 0; colors != NULL && i < 3 && t->colors[i] != NULL; i++) {
        json_array_append_new(colors, json_string(t->colors[i]));
    }
    /* Built-ins carry no brand colours or font: the style preset's own. */
    return json_pack(
        "{s:s, s:s, s:s, s:b, s:{s:{s:o, s:o, s:s, s:s}, s:{s:o, s:s, s:{s:f, s:f}}},"
        " s:n}",
        "template_id", t->id, "name", t->name, "description", "built-in template", "built_in", 1,
        "settings", "style", "colors", colors, "font_family",
        t->font_family[0] != '\0' ? json_string(t->font_family) : json_null(), "logo_position",
        t->logo_position, "preset", t->style, "audio", "background_music",
        t->background_music[0] != '\0' ? json_string(t->background_music) : json_null(), "voice",
        t->voice, "voice_settings", "speed", t->voice_speed, "pitch", t->voice_pitch, "created_at");
}

rf_err
rf_ctpl_resolve(const char *settings_json, char **out)
{
    json_t *s = json_loads(settings_json, 0, NULL);
    json_t *style, *audio, *voice, *r;
    rf_err rv = RF_OK;

    *out = NULL;
    if (!json_is_object(s)) {
        json_decref(s);
        return RF_EINVAL;
    }
    style = json_object_get(s, "style");
    audio = json_object_get(s, "audio");
    voice = json_object_get(audio, "voice_settings");
    r = json_pack("{s:O*, s:O*, s:O*, s:O*, s:O*, s:O*, s:O*, s:O*}", "style",
                  json_object_get(style, "preset"), "colors", json_object_get(style, "colors"),
                  "font_family", json_object_get(style, "font_family"), "logo_position",
                  json_object_get(style, "logo_position"), "voice", json_object_get(audio, "voice"),
                  "background_music", json_object_get(audio, "background_music"), "voice_speed",
                  json_object_get(voice, "speed"), "voice_pitch", json_object_get(voice, "pitch"));
    if (r == NULL) {
        rv = RF_ENOMEM;
    } else {
        *out = json_dumps(r, JSON_COMPACT | JSON_SORT_KEYS);
        rv = *out != NULL ? RF_OK : RF_ENOMEM;
    }
    json_decref(r);
    json_decref(s);
    return rv;
}

static void
take(char *dst, size_t len, const json_t *obj, const char *key, const char *def)
{
    const char *v = json_string_value(json_object_get(obj, key));
    snprintf(dst, len, "%s", v != NULL ? v : def);
}

rf_err
rf_ctpl_load_resolved(const char *json, rf_resolved_template *out)
{
    json_t *r = json_loads(json, 0, NULL);
    const json_t *colors, *v;
    size_t i;

    memset(out, 0, sizeof(*out));
    if (!json_is_object(r)) {
        json_decref(r);
        return RF_EINVAL;
    }
    take(out->style, sizeof(out->style), r, "style", "modern");
    take(out->voice, sizeof(out->voice), r, "voice", "female");
    take(out->font_family, sizeof(out->font_family), r, "font_family", "");
    take(out->logo_position, sizeof(out->logo_position), r, "logo_position", "bottom_right");
    take(out->background_music, sizeof(out->background_music), r, "background_music", "");
    colors = json_object_get(r, "colors");
    json_array_foreach(colors, i, v)
    {
        if (out->n_colors < RF_MAX_COLORS && json_is_string(v) &&
            rf_template_color_valid(json_string_value(v))) {
            snprintf(out->colors[out->n_colors++], 8, "%s", json_string_value(v));
        }
    }
    out->voice_speed = json_is_number(json_object_get(r, "voice_speed"))
                           ? json_number_value(json_object_get(r, "voice_speed"))
                           : 1.0;
    out->voice_pitch = json_is_number(json_object_get(r, "voice_pitch"))
                           ? json_number_value(json_object_get(r, "voice_pitch"))
                           : 0.0;
    json_decref(r);
    return RF_OK;
}

rf_err
rf_ctpl_create(rf_store *st, const rf_tpl_rec *rec)
{
    rf_err rv;

    if (rf_template_find(rec->id) != NULL) {
        return RF_ECONFLICT;
    }
    rv = rf_store_begin(st);
    if (rv != RF_OK) {
        return rv;
    }
    rv = rf_store_tpl_insert(st, rec);
    if (rv != RF_OK) {
        rf_store_rollback(st);
        return rv;
    }
    return rf_store_commit(st);
}

rf_err
rf_ctpl_get(rf_store *st, const char *tenant, const char *id, rf_tpl_rec *out)
{
    rf_err rv = rf_store_begin(st);

    memset(out, 0, sizeof(*out));
    if (rv != RF_OK) {
        return rv;
    }
    rv = rf_store_tpl_get(st, tenant, id, out);
    rf_store_rollback(st); /* read only */
    return rv;
}

rf_err
rf_ctpl_list(rf_store *st, const char *tenant, rf_tpl_rec **out, size_t *n)
{
    rf_err rv = rf_store_begin(st);

    *out = NULL;
    *n = 0;
    if (rv != RF_OK) {
        return rv;
    }
    rv = rf_store_tpl_list(st, tenant, RF_CTPL_LIST_MAX, out, n);
    rf_store_rollback(st);
    return rv;
}

rf_err
rf_ctpl_lookup_resolved(void *ctx, const char *template_id, char **resolved)
{
    rf_ctpl_lookup *lk = ctx;
    rf_tpl_rec rec;
    rf_err rv = rf_ctpl_get(lk->st, lk->tenant, template_id, &rec);

    *resolved = NULL;
    if (rv == RF_OK) {
        rv = rf_ctpl_resolve(rec.settings_json, resolved);
    }
    rf_tpl_rec_clear(&rec);
    return rv;
}
