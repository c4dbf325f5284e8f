/* Custom templates (the user guide's "Custom Templates"): a tenant's own
 * named settings stored in SQLite next to the built-ins of templates.h.
 *
 * Request body of POST /templates:
 *   {"template_id": "my_brand_template", "name": "My Brand Style",
 *    "description": "...",
 *    "settings": {"style": {"colors": ["#FF0000", ...], "font_family": "Arial",
 *                           "logo_position": "bottom_right", "preset": "modern"},
 *                 "audio": {"background_music": "brand_track.mp3", "voice": "female",
 *                           "voice_settings": {"speed": 1.0, "pitch": 0.0}}}}
 * "preset" and "voice" are our additions (defaults modern, female).
 *
 * A job made with a custom template keeps a resolved snapshot of it (so a
 * later template never changes a running job): a JSON object with the
 * rf_resolved_template fields, stored with the job and read when its units
 * are leased.
 *
 * Errors: RF_EINVAL with *err (field named) for a bad body, RF_ECONFLICT when
 * the id exists (or is a built-in), RF_ENOTFOUND, RF_ESTORE, RF_ENOMEM. */
#ifndef RF_CUSTOM_TEMPLATES_H
#define RF_CUSTOM_TEMPLATES_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "rf_err.h"
#include "rf_proto.h"
#include "store.h"
#include "templates.h"
#include "verr.h"

#define RF_CTPL_NAME_MAX_CHARS 200
#define RF_CTPL_DESC_MAX_BYTES 1000
#define RF_CTPL_LIST_MAX 1000 /* custom templates listed per tenant */

typedef struct rf_resolved_template {
    char style[RF_NAME_MAX];
    char voice[RF_NAME_MAX];
    char colors[RF_MAX_COLORS][8];
    size_t n_colors;
    char font_family[RF_NAME_MAX];
    char logo_position[RF_NAME_MAX];
    char background_music[256];
    double voice_speed;
    double voice_pitch;
} rf_resolved_template;

/* Validates a POST /templates body into out (tenant, created_by and times
 * are the caller's): id, name, description and the normalised settings
 * (out->settings_json, heap). Release with rf_tpl_rec_clear either way. */
rf_err rf_ctpl_parse(const char *body, size_t len, rf_tpl_rec *out, rf_verr *err);

/* The API view: {"template_id","name","description","built_in","settings",
 * "created_at"}. New reference or NULL (allocation). */
json_t *rf_ctpl_json(const rf_tpl_rec *rec);
json_t *rf_builtin_template_json(const rf_template *t);

/* The snapshot a job keeps, from stored settings. *out malloc'd. */
rf_err rf_ctpl_resolve(const char *settings_json, char **out);

/* Reads a snapshot. RF_EINVAL when it is not one. */
rf_err rf_ctpl_load_resolved(const char *json, rf_resolved_template *out);

/* Store operations, each in its own transaction. create refuses built-in
 * ids and existing ids with RF_ECONFLICT. */
rf_err rf_ctpl_create(rf_store *st, const rf_tpl_rec *rec);
rf_err rf_ctpl_get(rf_store *st, const char *tenant, const char *id, rf_tpl_rec *out);
rf_err rf_ctpl_list(rf_store *st, const char *tenant, rf_tpl_rec **out, size_t *n);

/* rf_template_lookup_fn for request parsing: ctx is an rf_ctpl_lookup. */
typedef struct rf_ctpl_lookup {
    rf_store *st;
    const char *tenant;
} rf_ctpl_lookup;

rf_err rf_ctpl_lookup_resolved(void *ctx, const char *template_id, char **resolved);

#endif
