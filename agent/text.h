/* Text and shape rasterisation with Pango + Cairo, done once per layer.
 * Output is a compositor layer texture (rf_layer_tex); per-frame work never
 * touches Pango or Cairo. Pango does shaping, bidi, line breaking and font
 * fallback, so any script (Latin, Cyrillic, Arabic, CJK, emoji) lays out. */
#ifndef RF_TEXT_H
#define RF_TEXT_H

#include <stdint.h>

#include "rf_compose.h"
#include "rf_err.h"

typedef enum rf_align { RF_ALIGN_LEFT = 0, RF_ALIGN_CENTER = 1, RF_ALIGN_RIGHT = 2 } rf_align;

typedef struct rf_text_style {
    const char *font_family; /* fontconfig family, e.g. "DejaVu Sans"; NULL = "Sans" */
    double size_px;          /* font size in pixels */
    int weight;              /* 400 normal, 700 bold */
    uint32_t color;          /* 0xRRGGBBAA */
    rf_align align;
    double line_spacing; /* multiplier, 1.0 = font default */
    uint32_t shadow;     /* 0xRRGGBBAA drop shadow, 0 = none */
    uint32_t box;        /* 0xRRGGBBAA rounded box behind the text, 0 = none */
    int box_pad;         /* box padding in pixels */
    int max_lines;       /* ellipsize after this many lines, 0 = unlimited */
} rf_text_style;

/* Lays out utf8 wrapped to max_width pixels and rasterises it into *out
 * (allocated here; release with rf_layer_tex_release). The texture is the
 * tight size of the laid-out text plus box padding and shadow, rounded up to
 * even. Invalid UTF-8 is replaced, not refused. RF_ETEXT on Cairo/Pango
 * failure. Thread-safe (each call has its own Cairo surface and Pango
 * context). */
rf_err rf_text_render(const char *utf8, const rf_text_style *st, int max_width, rf_layer_tex *out);

/* Rasterises a filled rounded rectangle (colour 0xRRGGBBAA) of w x h. */
rf_err rf_shape_rect(int w, int h, double radius, uint32_t color, rf_layer_tex *out);

#endif
