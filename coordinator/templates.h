/* Built-in video templates: the defaults a job's overrides and a row's
 * voice_preference / style_override are layered on (row > job overrides >
 * template). Custom templates stored in SQLite come with the templates API;
 * they will be looked up through the same function.
 *
 * Templates are constant tables: nothing to free. */
#ifndef RF_TEMPLATES_H
#define RF_TEMPLATES_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

typedef struct rf_template {
    const char *id;
    const char *name;
    const char *style;     /* modern, classic, minimal, corporate */
    const char *voice;     /* female, male, neutral */
    const char *colors[3]; /* brand "#RRGGBB" (see rf_unit.colors) or NULL: style palette */
    const char *font_family;
    const char *logo_position;    /* top_left, top_right, bottom_left, bottom_right, none */
    const char *background_music; /* asset name or "" */
    double voice_speed;           /* 0.5..2.0 */
    double voice_pitch;           /* -12..12 semitones */
} rf_template;

/* The built-in template with that id, or NULL. */
const rf_template *rf_template_find(const char *id);

/* Number of built-ins and access by index (for listings); NULL past the end. */
size_t rf_template_count(void);
const rf_template *rf_template_at(size_t i);

/* Value checks shared by request and row validation (case-sensitive; callers
 * lowercase first). */
bool rf_style_valid(const char *style);
bool rf_voice_valid(const char *voice);

/* A custom template id: len (== strlen(s)) is 1..63 bytes of [A-Za-z0-9_.-]. */
bool rf_template_id_valid(const char *s, size_t len);

/* A template colour: "#" and six hex digits. */
bool rf_template_color_valid(const char *s);

/* A template's colour list: a JSON array of 1 to RF_MAX_COLORS colours. */
bool rf_template_colors_valid(const json_t *colors);

#endif
