/* Row validation. The moderate level reproduces jobs.c's row planning check
 * for check and message for message (same order, same wording), so that the
 * two agree until jobs.c calls this module; strict adds to it and permissive
 * repairs instead of refusing. */
#include "validate.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rf_util.h"

/* Length limits per field, as jobs.c applies them (bytes). */
#define AUDIENCE_MAX (RF_NAME_MAX * 4 - 1)
#define TONE_MAX (RF_NAME_MAX - 1)
#define PLATFORMS_TEXT_MAX 1024
#define DERIVED_TITLE_MAX 80

static const char *const known_platforms[RF_VALIDATE_MAX_PLATFORMS] = {
    "youtube", "tiktok", "shorts", "youtube_shorts", "reels", "instagram_reels", "instagram",
};
static const char *const voices[] = {"female", "male", "neutral"};
static const char *const styles[] = {"modern", "classic", "minimal", "corporate"};
static const char *const priorities[] = {"low", "normal", "high"};

/* Marks a field whose text is not UTF-8 (jansson refused it). */
static const char invalid_text[] = "\x01";

bool
rf_vlevel_parse(const char *s, rf_vlevel *out)
{
    if (s == NULL || s[0] == '\0' || strcasecmp(s, "moderate") == 0) {
        *out = RF_VLEVEL_MODERATE;
    } else if (strcasecmp(s, "strict") == 0) {
        *out = RF_VLEVEL_STRICT;
    } else if (strcasecmp(s, "permissive") == 0) {
        *out = RF_VLEVEL_PERMISSIVE;
    } else {
        return false;
    }
    return true;
}

const char *
rf_vlevel_name(rf_vlevel level)
{
    switch (level) {
    case RF_VLEVEL_STRICT:
        return "strict";
    case RF_VLEVEL_PERMISSIVE:
        return "permissive";
    case RF_VLEVEL_MODERATE:
        break;
    }
    return "moderate";
}

static int
list_index(const char *s, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(s, list[i]) == 0) {
            return (int)i;
        }
    }
    return -1;
}

static const char *
platform_canonical(const char *name)
{
    int i = list_index(name, known_platforms, RF_VALIDATE_MAX_PLATFORMS);
    return i < 0 ? NULL : known_platforms[i];
}

bool
rf_validate_platform_known(const char *name)
{
    return name != NULL && platform_canonical(name) != NULL;
}

/* ---- messages ---- */

/* Appends "row N: msg", or "; msg" after the first one, to buf (the format
 * of jobs.c's plan_error: the first message carries the row number). */
static void
append_msg(char *buf, size_t size, uint32_t rn, const char *fmt, va_list ap)
{
    size_t used = strlen(buf);

    if (used + 8 >= size) {
        return;
    }
    if (used == 0) {
        used = (size_t)snprintf(buf, size, "row %u: ", rn);
    } else {
        used += (size_t)snprintf(buf + used, size - used, "; ");
    }
    if (used >= size) {
        return;
    }
    vsnprintf(buf + used, size - used, fmt, ap);
}

static void refuse(rf_row_check *c, rf_field f, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void repair(rf_row_check *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
refuse(rf_row_check *c, rf_field f, const char *fmt, ...)
{
    va_list ap;

    if (c->error_field[0] == '\0') {
        rf_err rv = rf_strlcpy(c->error_field, rf_field_name(f), sizeof(c->error_field));
        (void)rv; /* field names are short constants */
    }
    va_start(ap, fmt);
    append_msg(c->error, sizeof(c->error), c->row_number, fmt, ap);
    va_end(ap);
}

static void
repair(rf_row_check *c, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    append_msg(c->warning, sizeof(c->warning), c->row_number, fmt, ap);
    va_end(ap);
}

/* ---- field access ---- */

/* Stores a copy of s[0..len) under the field's name; returns the stored
 * string (owned by data), invalid_text when s is not UTF-8, NULL on
 * allocation failure. */
static const char *
store_text(json_t *data, rf_field f, const char *s, size_t len)
{
    json_t *v = json_stringn(s, len);

    if (v == NULL) {
        return invalid_text;
    }
    if (json_object_set_new(data, rf_field_name(f), v) != 0) {
        return NULL;
    }
    return json_string_value(json_object_get(data, rf_field_name(f)));
}

/* Trimmed copy of a field into data (jobs.c's take_field): NULL when absent
 * or blank, invalid_text when not UTF-8. *oom is set on allocation failure. */
static const char *
take_field(json_t *data, const rf_row *row, rf_field f, bool *oom)
{
    const char *s = row->fields[f];
    const char *end;
    const char *stored;

    if (s == NULL) {
        return NULL;
    }
    while (*s != '\0' && isspace((unsigned char)*s)) {
        s++;
    }
    end = s + strlen(s);
    while (end > s && isspace((unsigned char)end[-1])) {
        end--;
    }
    if (end == s) {
        return NULL;
    }
    stored = store_text(data, f, s, (size_t)(end - s));
    if (stored == NULL) {
        *oom = true;
    }
    return stored;
}

/* Largest length <= max that does not split a UTF-8 sequence of s. */
static size_t
utf8_cut(const char *s, size_t len, size_t max)
{
    size_t cut = len < max ? len : max;

    while (cut > 0 && cut < len && ((unsigned char)s[cut] & 0xC0) == 0x80) {
        cut--;
    }
    return cut;
}

static void
lowercase_ascii(char *s)
{
    for (; *s != '\0'; s++) {
        *s = (char)tolower((unsigned char)*s);
    }
}

static bool
has_control_chars(const char *s)
{
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c == 0x7F) {
            return true;
        }
    }
    return false;
}

/* ---- per-field checks ---- */

typedef struct fields {
    const char *v[RF_F_COUNT];
} fields;

static void
check_length(rf_row_check *c, rf_vlevel level, fields *fv, rf_field f, size_t max, bool *oom)
{
    const char *s = fv->v[f];
    size_t len, cut;

    if (s == NULL || (len = strlen(s)) <= max) {
        return;
    }
    if (level != RF_VLEVEL_PERMISSIVE) {
        refuse(c, f, "%s is longer than %zu bytes", rf_field_name(f), max);
        return;
    }
    cut = utf8_cut(s, len, max);
    fv->v[f] = store_text(c->data, f, s, cut);
    if (fv->v[f] == NULL) {
        *oom = true;
        return;
    }
    repair(c, "%s cut to %zu bytes", rf_field_name(f), cut);
}

static void
check_duration(rf_row_check *c, rf_vlevel level, const char *text, bool *oom)
{
    char *end = NULL;
    double d;
    bool digits_only = true;

    c->duration_s = RF_VALIDATE_DEFAULT_DURATION_S;
    if (text == NULL) {
        return;
    }
    for (const char *p = text; *p != '\0'; p++) {
        digits_only = digits_only && isdigit((unsigned char)*p);
    }
    errno = 0;
    d = strtod(text, &end);
    if (level == RF_VLEVEL_PERMISSIVE) {
        /* Any number is taken (rounded, clamped); anything else is the default. */
        if (end == text || errno != 0 || !isfinite(d)) {
            repair(c, "duration_seconds '%.32s' is not a number; using %d", text,
                   RF_VALIDATE_DEFAULT_DURATION_S);
            json_object_del(c->data, "duration_seconds");
            return;
        }
        d = floor(d + 0.5);
        if (*end != '\0' || d != strtod(text, NULL)) {
            repair(c, "duration_seconds '%.32s' read as %.0f", text, d);
        }
        if (d < 1) {
            repair(c, "duration_seconds '%.32s' is below 1; using %d", text,
                   RF_VALIDATE_DEFAULT_DURATION_S);
            d = RF_VALIDATE_DEFAULT_DURATION_S;
        } else if (d > RF_VALIDATE_MAX_DURATION_S) {
            repair(c, "duration_seconds '%.32s' is above %d; using %d", text,
                   RF_VALIDATE_MAX_DURATION_S, RF_VALIDATE_MAX_DURATION_S);
            d = RF_VALIDATE_MAX_DURATION_S;
        }
    } else {
        if (end == text || *end != '\0' || errno != 0 || !isfinite(d) || d != floor(d) ||
            !isdigit((unsigned char)text[0]) || (level == RF_VLEVEL_STRICT && !digits_only)) {
            refuse(c, RF_F_DURATION_SECONDS,
                   "duration_seconds must be a whole number of seconds (got '%.32s')", text);
            return;
        }
        if (d < 1 || d > RF_VALIDATE_MAX_DURATION_S) {
            refuse(c, RF_F_DURATION_SECONDS, "duration_seconds must be between 1 and %d",
                   RF_VALIDATE_MAX_DURATION_S);
            return;
        }
    }
    c->duration_s = (uint32_t)d;
    if (json_object_set_new(c->data, "duration_seconds", json_integer((json_int_t)c->duration_s)) !=
        0) {
        *oom = true;
    }
}

static void
check_platforms(rf_row_check *c, rf_vlevel level, const char *text, bool *oom)
{
    char buf[PLATFORMS_TEXT_MAX];
    char *save = NULL;
    size_t unknown = 0;

    c->n_platforms = 0;
    if (text == NULL) {
        text = "youtube";
    }
    if (rf_strlcpy(buf, text, sizeof(buf)) != RF_OK) {
        if (level != RF_VLEVEL_PERMISSIVE) {
            refuse(c, RF_F_PLATFORM_PREFERENCES, "platform_preferences is too long");
            return;
        }
        repair(c, "platform_preferences is too long; only its start is read");
    }
    lowercase_ascii(buf);
    for (char *tok = strtok_r(buf, ",; \t\r\n|/", &save); tok != NULL;
         tok = strtok_r(NULL, ",; \t\r\n|/", &save)) {
        const char *name;
        bool seen = false;

        for (char *p = tok; *p != '\0'; p++) {
            if (*p == '-') {
                *p = '_';
            }
        }
        name = platform_canonical(tok);
        if (name == NULL) {
            if (level == RF_VLEVEL_PERMISSIVE) {
                unknown++;
                repair(c, "platform_preferences: unknown platform '%.40s' ignored", tok);
            } else {
                refuse(c, RF_F_PLATFORM_PREFERENCES,
                       "platform_preferences: unknown platform '%.40s' (use youtube, tiktok, "
                       "shorts, reels, instagram)",
                       tok);
            }
            continue;
        }
        for (size_t i = 0; i < c->n_platforms; i++) {
            seen = seen || c->platforms[i] == name;
        }
        if (!seen && c->n_platforms < RF_VALIDATE_MAX_PLATFORMS) {
            c->platforms[c->n_platforms++] = name;
        }
    }
    if (c->n_platforms == 0 && (c->error[0] == '\0' || level == RF_VLEVEL_PERMISSIVE)) {
        c->platforms[c->n_platforms++] = known_platforms[0];
    }
    if (level == RF_VLEVEL_PERMISSIVE && unknown > 0) {
        /* Keep what will be rendered, so the stored row says the same. */
        char list[160] = "";
        for (size_t i = 0; i < c->n_platforms; i++) {
            size_t used = strlen(list);
            snprintf(list + used, sizeof(list) - used, "%s%s", i > 0 ? "," : "", c->platforms[i]);
        }
        if (store_text(c->data, RF_F_PLATFORM_PREFERENCES, list, strlen(list)) == NULL) {
            *oom = true;
        }
    }
}

/* An enum-like field: lowercased into data when known (moderate, strict),
 * refused when unknown; dropped with a warning at the permissive level.
 * Returns the index in list, -1 when absent or refused. */
static int
check_choice(rf_row_check *c, rf_vlevel level, rf_field f, const char *value,
             const char *const *list, size_t n, const char *allowed, bool *oom)
{
    char buf[RF_NAME_MAX];
    int idx;

    if (value == NULL) {
        return -1;
    }
    if (rf_strlcpy(buf, value, sizeof(buf)) != RF_OK) {
        idx = -1;
    } else {
        lowercase_ascii(buf);
        idx = list_index(buf, list, n);
    }
    if (idx < 0) {
        if (level == RF_VLEVEL_PERMISSIVE) {
            repair(c, "%s '%.32s' is not one of %s; ignored", rf_field_name(f), value, allowed);
            json_object_del(c->data, rf_field_name(f));
        } else if (strlen(value) >= sizeof(buf)) {
            refuse(c, f, "%s must be one of %s", rf_field_name(f), allowed);
        } else {
            refuse(c, f, "%s must be one of %s (got '%.32s')", rf_field_name(f), allowed, value);
        }
        return -1;
    }
    if (json_object_set_new(c->data, rf_field_name(f), json_string(list[idx])) != 0) {
        *oom = true;
    }
    return idx;
}

/* Permissive: the first line of the script, cut near DERIVED_TITLE_MAX bytes
 * at a space when there is one in its second half. */
static const char *
derive_title(rf_row_check *c, const char *script, bool *oom)
{
    size_t len = strcspn(script, "\r\n");
    size_t cut = utf8_cut(script, len, DERIVED_TITLE_MAX);
    const char *stored;

    if (cut < len) {
        size_t sp = cut;
        while (sp > DERIVED_TITLE_MAX / 2 && script[sp] != ' ') {
            sp--;
        }
        if (script[sp] == ' ') {
            cut = sp;
        }
    }
    while (cut > 0 && isspace((unsigned char)script[cut - 1])) {
        cut--;
    }
    stored = store_text(c->data, RF_F_IDEA_TITLE, script, cut);
    if (stored == NULL) {
        *oom = true;
    }
    return stored == invalid_text ? NULL : stored;
}

rf_err
rf_validate_row(const rf_row *row, rf_vlevel level, rf_row_check *out)
{
    fields fv;
    bool empty = true, oom = false;
    int idx;

    memset(out, 0, sizeof(*out));
    out->row_number = row->row_number;
    out->priority = 1;
    out->duration_s = RF_VALIDATE_DEFAULT_DURATION_S;
    out->title = "";
    out->data = json_object();
    if (out->data == NULL) {
        return RF_ENOMEM;
    }
    for (int f = 0; f < RF_F_COUNT; f++) {
        fv.v[f] = take_field(out->data, row, (rf_field)f, &oom);
        if (fv.v[f] != NULL) {
            empty = false;
        }
        if (fv.v[f] == invalid_text) {
            if (level == RF_VLEVEL_PERMISSIVE) {
                repair(out, "%s is not valid UTF-8 text; ignored", rf_field_name((rf_field)f));
            } else {
                refuse(out, (rf_field)f, "%s is not valid UTF-8 text", rf_field_name((rf_field)f));
            }
            fv.v[f] = NULL;
        }
    }
    if (oom) {
        goto nomem;
    }
    if (empty) {
        out->skipped = true;
        out->n_platforms = 0;
        return RF_OK;
    }

    if (level == RF_VLEVEL_PERMISSIVE) {
        if (fv.v[RF_F_IDEA_TITLE] == NULL && fv.v[RF_F_SCRIPT_CONTENT] == NULL) {
            refuse(out, RF_F_IDEA_TITLE,
                   "idea_title and script_content are both empty: nothing to render");
            return RF_OK;
        }
        if (fv.v[RF_F_SCRIPT_CONTENT] == NULL) {
            const char *from =
                fv.v[RF_F_DESCRIPTION] != NULL ? fv.v[RF_F_DESCRIPTION] : fv.v[RF_F_IDEA_TITLE];
            fv.v[RF_F_SCRIPT_CONTENT] =
                store_text(out->data, RF_F_SCRIPT_CONTENT, from, strlen(from));
            if (fv.v[RF_F_SCRIPT_CONTENT] == NULL) {
                goto nomem;
            }
            repair(out, "script_content missing; narrating the %s",
                   from == fv.v[RF_F_DESCRIPTION] ? "description" : "title");
        }
        if (fv.v[RF_F_IDEA_TITLE] == NULL) {
            fv.v[RF_F_IDEA_TITLE] = derive_title(out, fv.v[RF_F_SCRIPT_CONTENT], &oom);
            if (oom) {
                goto nomem;
            }
            repair(out, "idea_title missing; using the start of script_content");
        }
    } else {
        if (fv.v[RF_F_IDEA_TITLE] == NULL) {
            refuse(out, RF_F_IDEA_TITLE, "idea_title is required");
        }
        if (fv.v[RF_F_SCRIPT_CONTENT] == NULL) {
            refuse(out, RF_F_SCRIPT_CONTENT, "script_content is required");
        }
    }
    if (level == RF_VLEVEL_STRICT) {
        for (int f = 0; f < RF_F_COUNT; f++) {
            if (f != RF_F_IDEA_TITLE && f != RF_F_SCRIPT_CONTENT && fv.v[f] == NULL) {
                refuse(out, (rf_field)f, "%s is required (strict validation)",
                       rf_field_name((rf_field)f));
            }
        }
        if (fv.v[RF_F_IDEA_TITLE] != NULL && has_control_chars(fv.v[RF_F_IDEA_TITLE])) {
            refuse(out, RF_F_IDEA_TITLE, "idea_title contains control characters");
        }
    }
    check_length(out, level, &fv, RF_F_IDEA_TITLE, RF_TITLE_MAX, &oom);
    check_length(out, level, &fv, RF_F_DESCRIPTION, RF_DESC_MAX, &oom);
    check_length(out, level, &fv, RF_F_SCRIPT_CONTENT, RF_SCRIPT_MAX, &oom);
    check_length(out, level, &fv, RF_F_TARGET_AUDIENCE, AUDIENCE_MAX, &oom);
    check_length(out, level, &fv, RF_F_TONE, TONE_MAX, &oom);
    check_duration(out, level, fv.v[RF_F_DURATION_SECONDS], &oom);
    check_platforms(out, level, fv.v[RF_F_PLATFORM_PREFERENCES], &oom);
    check_choice(out, level, RF_F_VOICE_PREFERENCE, fv.v[RF_F_VOICE_PREFERENCE], voices, 3,
                 "female, male, neutral", &oom);
    check_choice(out, level, RF_F_STYLE_OVERRIDE, fv.v[RF_F_STYLE_OVERRIDE], styles, 4,
                 "modern, classic, minimal, corporate", &oom);
    idx = check_choice(out, level, RF_F_PRIORITY, fv.v[RF_F_PRIORITY], priorities, 3,
                       "low, normal, high", &oom);
    if (idx >= 0) {
        out->priority = idx;
    }
    if (oom) {
        goto nomem;
    }
    /* The stored strings may have been replaced: read the title again. */
    out->title = json_string_value(json_object_get(out->data, "idea_title"));
    if (out->title == NULL) {
        out->title = "";
    }
    return RF_OK;
nomem:
    rf_row_check_clear(out);
    return RF_ENOMEM;
}

void
rf_row_check_clear(rf_row_check *c)
{
    if (c == NULL) {
        return;
    }
    json_decref(c->data);
    memset(c, 0, sizeof(*c));
}

/* ---- whole tables ---- */

/* Length of the valid UTF-8 sequence at s (RFC 3629: no overlongs, no
 * surrogates, nothing past U+10FFFF), 0 when it is not one. */
static size_t
utf8_seq(const unsigned char *s)
{
    unsigned char c = s[0];
    unsigned char lo = 0x80, hi = 0xBF;
    size_t n;

    if (c < 0x80) {
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        lo = c == 0xE0 ? 0xA0 : 0x80;
        hi = c == 0xED ? 0x9F : 0xBF;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        lo = c == 0xF0 ? 0x90 : 0x80;
        hi = c == 0xF4 ? 0x8F : 0xBF;
    } else {
        return 0;
    }
    if (s[1] < lo || s[1] > hi) {
        return 0;
    }
    for (size_t i = 2; i < n; i++) {
        if (s[i] < 0x80 || s[i] > 0xBF) {
            return 0;
        }
    }
    return n;
}

json_t *
rf_json_string_lossy(const char *s)
{
    const unsigned char *p = (const unsigned char *)(s != NULL ? s : "");
    size_t len = strlen((const char *)p), n = 0;
    char *buf = malloc(len * 3 + 1);
    json_t *out;

    if (buf == NULL) {
        return NULL;
    }
    while (*p != '\0') {
        size_t k = utf8_seq(p);
        if (k == 0) {
            memcpy(buf + n, "\xEF\xBF\xBD", 3); /* U+FFFD */
            n += 3;
            p++;
            continue;
        }
        memcpy(buf + n, p, k);
        n += k;
        p += k;
    }
    out = json_stringn(buf, n);
    free(buf);
    return out;
}

rf_err
rf_validate_rows(const rf_rows *rows, rf_vlevel level, size_t max_messages, rf_validation *out)
{
    size_t errors_left_out = 0, warnings_left_out = 0;
    rf_err rv = RF_OK;

    memset(out, 0, sizeof(*out));
    out->errors = json_array();
    out->warnings = json_array();
    if (out->errors == NULL || out->warnings == NULL) {
        rv = RF_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < rows->n; i++) {
        rf_row_check c;

        rv = rf_validate_row(&rows->rows[i], level, &c);
        if (rv != RF_OK) {
            goto out;
        }
        if (c.skipped) {
            out->skipped++;
        } else if (c.error[0] != '\0') {
            out->refused++;
            if (json_array_size(out->errors) < max_messages) {
                if (json_array_append_new(out->errors,
                                          json_pack("{s:i, s:s, s:o}", "row", (int)c.row_number,
                                                    "field", c.error_field, "message",
                                                    rf_json_string_lossy(c.error))) != 0) {
                    rv = RF_ENOMEM;
                }
            } else {
                errors_left_out++;
            }
        } else {
            out->accepted++;
        }
        if (!c.skipped && c.warning[0] != '\0') {
            if (c.error[0] == '\0') {
                out->repaired++;
            }
            if (json_array_size(out->warnings) < max_messages) {
                if (json_array_append_new(out->warnings, rf_json_string_lossy(c.warning)) != 0) {
                    rv = RF_ENOMEM;
                }
            } else {
                warnings_left_out++;
            }
        }
        rf_row_check_clear(&c);
        if (rv != RF_OK) {
            goto out;
        }
    }
    if (errors_left_out > 0) {
        char msg[96];
        snprintf(msg, sizeof(msg), "... and %zu more refused rows", errors_left_out);
        if (json_array_append_new(out->errors, json_pack("{s:n, s:s, s:s}", "row", "field", "",
                                                         "message", msg)) != 0) {
            rv = RF_ENOMEM;
            goto out;
        }
    }
    if (warnings_left_out > 0) {
        char msg[96];
        snprintf(msg, sizeof(msg), "... and %zu more rows with warnings", warnings_left_out);
        if (json_array_append_new(out->warnings, json_string(msg)) != 0) {
            rv = RF_ENOMEM;
            goto out;
        }
    }
out:
    if (rv != RF_OK) {
        rf_validation_clear(out);
    }
    return rv;
}

void
rf_validation_clear(rf_validation *v)
{
    if (v == NULL) {
        return;
    }
    json_decref(v->errors);
    json_decref(v->warnings);
    memset(v, 0, sizeof(*v));
}
