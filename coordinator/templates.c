/* The built-in template table. Built-ins carry no brand colours or font:
 * their look is their style preset's palette and typeface, which are
 * designed together for legibility. */
#include "templates.h"

#include "rf_proto.h"

#include <ctype.h>
#include <string.h>

static const rf_template builtins[] = {
    {"tpl_standard",
     "Standard",
     "modern",
     "female",
     {NULL, NULL, NULL},
     "",
     "bottom_right",
     "",
     1.0,
     0.0},
    {"tpl_promotional",
     "Promotional",
     "modern",
     "female",
     {NULL, NULL, NULL},
     "",
     "top_right",
     "upbeat",
     1.1,
     1.0},
    {"tpl_tutorial",
     "Tutorial",
     "minimal",
     "neutral",
     {NULL, NULL, NULL},
     "",
     "top_left",
     "",
     0.95,
     0.0},
    {"tpl_testimonial",
     "Testimonial",
     "classic",
     "male",
     {NULL, NULL, NULL},
     "",
     "bottom_left",
     "soft_piano",
     0.9,
     -1.0},
    {"tpl_abc123",
     "Corporate",
     "corporate",
     "female",
     {NULL, NULL, NULL},
     "",
     "bottom_right",
     "",
     1.0,
     0.0},
};

static const char *const styles[] = {"modern", "classic", "minimal", "corporate"};
static const char *const voices[] = {"female", "male", "neutral"};

const rf_template *
rf_template_find(const char *id)
{
    if (id == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < sizeof(builtins) / sizeof(builtins[0]); i++) {
        if (strcmp(builtins[i].id, id) == 0) {
            return &builtins[i];
        }
    }
    return NULL;
}

size_t
rf_template_count(void)
{
    return sizeof(builtins) / sizeof(builtins[0]);
}

const rf_template *
rf_template_at(size_t i)
{
    return i < rf_template_count() ? &builtins[i] : NULL;
}

static bool
in_list(const char *s, const char *const *list, size_t n)
{
    if (s == NULL) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (strcmp(s, list[i]) == 0) {
            return true;
        }
    }
    return false;
}

bool
rf_style_valid(const char *style)
{
    return in_list(style, styles, sizeof(styles) / sizeof(styles[0]));
}

bool
rf_voice_valid(const char *voice)
{
    return in_list(voice, voices, sizeof(voices) / sizeof(voices[0]));
}

bool
rf_template_id_valid(const char *s, size_t len)
{
    if (len < 1 || len >= RF_NAME_MAX || strlen(s) != len) {
        return false;
    }
    for (; *s != '\0'; s++) {
        if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-' && *s != '.') {
            return false;
        }
    }
    return true;
}

bool
rf_template_color_valid(const char *s)
{
    if (strlen(s) != 7 || s[0] != '#') {
        return false;
    }
    for (int i = 1; i < 7; i++) {
        if (!isxdigit((unsigned char)s[i])) {
            return false;
        }
    }
    return true;
}

bool
rf_template_colors_valid(const json_t *colors)
{
    size_t i;
    const json_t *c;

    if (!json_is_array(colors) || json_array_size(colors) < 1 ||
        json_array_size(colors) > RF_MAX_COLORS) {
        return false;
    }
    json_array_foreach(colors, i, c)
    {
        if (!json_is_string(c) || !rf_template_color_valid(json_string_value(c))) {
            return false;
        }
    }
    return true;
}
