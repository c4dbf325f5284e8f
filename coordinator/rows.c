/* Row table helpers and the header-name table. */
#include "rows.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

static const char *const field_names[RF_F_COUNT] = {
    "idea_title",     "description",      "target_audience",
    "tone",           "duration_seconds", "platform_preferences",
    "script_content", "voice_preference", "style_override",
    "priority",
};

/* Normalised spellings (lowercase letters and digits only) -> field. The
 * canonical names come first; the rest are the guide's column titles and
 * common short forms. */
static const struct {
    const char *norm;
    rf_field field;
} aliases[] = {
    {"ideatitle", RF_F_IDEA_TITLE},
    {"description", RF_F_DESCRIPTION},
    {"targetaudience", RF_F_TARGET_AUDIENCE},
    {"tone", RF_F_TONE},
    {"durationseconds", RF_F_DURATION_SECONDS},
    {"platformpreferences", RF_F_PLATFORM_PREFERENCES},
    {"scriptcontent", RF_F_SCRIPT_CONTENT},
    {"voicepreference", RF_F_VOICE_PREFERENCE},
    {"styleoverride", RF_F_STYLE_OVERRIDE},
    {"priority", RF_F_PRIORITY},
    {"idea", RF_F_IDEA_TITLE},
    {"title", RF_F_IDEA_TITLE},
    {"audience", RF_F_TARGET_AUDIENCE},
    {"duration", RF_F_DURATION_SECONDS},
    {"platform", RF_F_PLATFORM_PREFERENCES},
    {"platforms", RF_F_PLATFORM_PREFERENCES},
    {"platformpreference", RF_F_PLATFORM_PREFERENCES},
    {"script", RF_F_SCRIPT_CONTENT},
    {"voice", RF_F_VOICE_PREFERENCE},
    {"style", RF_F_STYLE_OVERRIDE},
};

const char *
rf_field_name(rf_field f)
{
    if ((int)f < 0 || f >= RF_F_COUNT) {
        return NULL;
    }
    return field_names[f];
}

int
rf_field_lookup(const char *name)
{
    char norm[64];
    size_t n = 0;

    if (name == NULL) {
        return -1;
    }
    for (const char *p = name; *p != '\0'; p++) {
        unsigned char c = (unsigned char)*p;
        if (!isalnum(c) || c >= 0x80) {
            continue;
        }
        if (n + 1 >= sizeof(norm)) {
            return -1; /* longer than any known name */
        }
        norm[n++] = (char)tolower(c);
    }
    norm[n] = '\0';
    if (n == 0) {
        return -1;
    }
    for (size_t i = 0; i < sizeof(aliases) / sizeof(aliases[0]); i++) {
        if (strcmp(aliases[i].norm, norm) == 0) {
            return (int)aliases[i].field;
        }
    }
    return -1;
}

rf_err
rf_rows_add(rf_rows *rows, uint32_t row_number, rf_row **out)
{
    if (rows->n == rows->cap) {
        size_t cap = rows->cap == 0 ? 16 : rows->cap * 2;
        rf_row *grown = realloc(rows->rows, cap * sizeof(*grown));
        if (grown == NULL) {
            return RF_ENOMEM;
        }
        rows->rows = grown;
        rows->cap = cap;
    }
    rf_row *row = &rows->rows[rows->n++];
    memset(row, 0, sizeof(*row));
    row->row_number = row_number;
    *out = row;
    return RF_OK;
}

rf_err
rf_row_set(rf_row *row, rf_field f, const char *value, size_t len)
{
    char *copy = malloc(len + 1);
    if (copy == NULL) {
        return RF_ENOMEM;
    }
    memcpy(copy, value, len);
    copy[len] = '\0';
    free(row->fields[f]);
    row->fields[f] = copy;
    return RF_OK;
}

void
rf_rows_free(rf_rows *rows)
{
    if (rows == NULL) {
        return;
    }
    for (size_t i = 0; i < rows->n; i++) {
        for (int f = 0; f < RF_F_COUNT; f++) {
            free(rows->rows[i].fields[f]);
        }
    }
    free(rows->rows);
    memset(rows, 0, sizeof(*rows));
}
