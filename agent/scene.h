/* A scene: what a unit's video shows and when. Built once per unit from the
 * work unit and the narration timing: a styled background, a title card, one
 * layer per caption, an end card. Each layer has a time window with fades and
 * a small motion; rf_scene_states() says where every visible layer is at a
 * given time, which is all the per-frame loop needs. */
#ifndef RF_SCENE_H
#define RF_SCENE_H

#include <stdint.h>

#include "rf_compose.h"
#include "rf_err.h"
#include "rf_proto.h"

/* A caption: text shown from start_ms (inclusive) to end_ms (exclusive),
 * times on the video's timeline. */
typedef struct rf_caption {
    int64_t start_ms, end_ms;
    char *text;
} rf_caption;

/* The timeline of a video, in milliseconds from its start. */
typedef struct rf_timing {
    int64_t duration_ms;  /* whole video */
    int64_t title_end_ms; /* title card shown over [0, title_end_ms) */
    int64_t end_card_ms;  /* end card shown over [end_card_ms, duration_ms) */
} rf_timing;

typedef struct rf_scene_layer {
    int comp_index; /* index in the compositor (rf_comp_add_layer) */
    int width, height;
    int x, y;            /* resting top-left in frame pixels */
    int64_t t_in, t_out; /* visible over [t_in, t_out) */
    int fade_ms;         /* fade in after t_in and out before t_out */
    int rise_px;         /* starts rise_px lower and settles during fade-in */
} rf_scene_layer;

typedef struct rf_scene {
    int width, height;
    rf_frame background; /* host frame, YUV420P */
    int n_layers;
    rf_layer_tex *texs;     /* n_layers textures (host) */
    rf_scene_layer *layers; /* n_layers, in paint order */
} rf_scene;

/* Builds the scene for unit u (size, style, colours, font, title,
 * description) with the given captions and timing, and adds its background
 * and layers to compositor c. On failure nothing needs freeing beyond
 * rf_scene_free. */
rf_err rf_scene_build(const rf_unit *u, const rf_caption *caps, int n_caps, const rf_timing *tm,
                      rf_compositor *c, rf_scene *out);

/* Fills states[] with the layers visible at t_ms (at most max) and returns
 * how many. Deterministic: the same t gives the same states. */
int rf_scene_states(const rf_scene *s, int64_t t_ms, rf_layer_state *states, int max);

void rf_scene_free(rf_scene *s);

#endif
