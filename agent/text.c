/* Text and shape rasterisation: Pango lays out (shaping, bidi, wrapping,
 * font fallback through fontconfig), Cairo draws into a premultiplied ARGB32
 * surface, and rf_layer_from_argb32 turns that into a compositor texture.
 * Runs once per layer; nothing here is on the per-frame path. */
#include <math.h>
#include <string.h>

#include <pango/pangocairo.h>

#include "text.h"

#define RF_TEXT_DIM_MAX 16384 /* textures are cut to this (compositor limit) */

static void
set_rgba32(cairo_t *cr, uint32_t c)
{
    cairo_set_source_rgba(cr, (c >> 24) / 255.0, ((c >> 16) & 255) / 255.0,
                          ((c >> 8) & 255) / 255.0, (c & 255) / 255.0);
}

static void
rounded_rect(cairo_t *cr, double x, double y, double w, double h, double r)
{
    double m = (w < h ? w : h) / 2.0;
    if (r > m)
        r = m;
    if (r <= 0) {
        cairo_rectangle(cr, x, y, w, h);
        return;
    }
    cairo_new_sub_path(cr);
    cairo_arc(cr, x + w - r, y + r, r, -M_PI / 2, 0);
    cairo_arc(cr, x + w - r, y + h - r, r, 0, M_PI / 2);
    cairo_arc(cr, x + r, y + h - r, r, M_PI / 2, M_PI);
    cairo_arc(cr, x + r, y + r, r, M_PI, 3 * M_PI / 2);
    cairo_close_path(cr);
}

/* The drop shadow's offset: about 1/18 of the font size, at least 1 px. */
static int
shadow_offset(const rf_text_style *st)
{
    if (st->shadow == 0)
        return 0;
    int o = (int)lround(st->size_px / 18.0);
    return o < 1 ? 1 : o;
}

static void
configure_layout(PangoLayout *layout, const char *text, const rf_text_style *st, int wrap_w)
{
    PangoFontDescription *fd = pango_font_description_new();
    const char *family =
        st->font_family != NULL && st->font_family[0] != '\0' ? st->font_family : "Sans";
    int weight = st->weight <= 0 ? 400 : st->weight;
    weight = weight < 100 ? 100 : weight > 1000 ? 1000 : weight;
    pango_font_description_set_family(fd, family);
    pango_font_description_set_absolute_size(fd, st->size_px * PANGO_SCALE);
    pango_font_description_set_weight(fd, (PangoWeight)weight);
    pango_layout_set_font_description(layout, fd);
    pango_font_description_free(fd);

    pango_layout_set_width(layout, wrap_w > 0 ? wrap_w * PANGO_SCALE : -1);
    pango_layout_set_wrap(layout, PANGO_WRAP_WORD_CHAR);
    pango_layout_set_alignment(layout, st->align == RF_ALIGN_CENTER  ? PANGO_ALIGN_CENTER
                                       : st->align == RF_ALIGN_RIGHT ? PANGO_ALIGN_RIGHT
                                                                     : PANGO_ALIGN_LEFT);
    /* Line spacing as extra space between line boxes, not through
     * pango_layout_set_line_spacing(): that factor multiplies each line's own
     * font height, and a line set in a fallback font with small metrics (a
     * line holding only an emoji) then lands on top of the line above. */
    if (st->line_spacing > 0 && st->line_spacing != 1.0)
        pango_layout_set_spacing(layout,
                                 (int)lround((st->line_spacing - 1.0) * st->size_px * PANGO_SCALE));
    if (st->max_lines > 0) {
        /* a negative height is a line count: ellipsize after that many */
        pango_layout_set_height(layout, -st->max_lines);
        pango_layout_set_ellipsize(layout, PANGO_ELLIPSIZE_END);
    }
    pango_layout_set_text(layout, text, -1);
}

/* Font options shared by the measuring and the drawing surface so both lay
 * out identically: grey antialiasing, no hinting of metrics (advances stay
 * fractional, so the layout does not depend on the pixel grid). */
static void
set_font_options(PangoLayout *layout)
{
    cairo_font_options_t *fo = cairo_font_options_create();
    cairo_font_options_set_antialias(fo, CAIRO_ANTIALIAS_GRAY);
    cairo_font_options_set_hint_metrics(fo, CAIRO_HINT_METRICS_OFF);
    cairo_font_options_set_hint_style(fo, CAIRO_HINT_STYLE_SLIGHT);
    pango_cairo_context_set_font_options(pango_layout_get_context(layout), fo);
    pango_layout_context_changed(layout);
    cairo_font_options_destroy(fo);
}

static int
clamp_dim(int v)
{
    v += v & 1;
    if (v < 2)
        v = 2;
    return v > RF_TEXT_DIM_MAX ? RF_TEXT_DIM_MAX : v;
}

rf_err
rf_text_render(const char *utf8, const rf_text_style *st, int max_width, rf_layer_tex *out)
{
    rf_err rv = RF_OK;
    cairo_surface_t *msurf = NULL, *surf = NULL;
    cairo_t *mcr = NULL, *cr = NULL;
    PangoLayout *layout = NULL;
    gchar *text = NULL;

    if (out == NULL)
        return RF_EINVAL;
    memset(out, 0, sizeof(*out));
    if (utf8 == NULL || st == NULL || !(st->size_px > 0) || st->size_px > 4096)
        return RF_EINVAL;

    /* Pango wants valid UTF-8: replace bad sequences with U+FFFD */
    text = g_utf8_make_valid(utf8, -1);
    int pad = st->box != 0 && st->box_pad > 0 ? st->box_pad : 0;
    pad = pad > 1024 ? 1024 : pad;
    int off = shadow_offset(st);
    int wrap_w = 0;
    if (max_width > 0) {
        max_width = max_width > RF_TEXT_DIM_MAX ? RF_TEXT_DIM_MAX : max_width;
        wrap_w = max_width - 2 * pad - off;
        if (wrap_w < 1)
            wrap_w = 1;
    }

    /* measure on a 1x1 surface, then draw on one of the right size */
    msurf = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, 1, 1);
    mcr = cairo_create(msurf);
    if (cairo_status(mcr) != CAIRO_STATUS_SUCCESS) {
        rv = RF_ETEXT;
        goto out;
    }
    layout = pango_cairo_create_layout(mcr);
    if (layout == NULL) {
        rv = RF_ETEXT;
        goto out;
    }
    set_font_options(layout);
    configure_layout(layout, text, st, wrap_w);
    PangoRectangle ink, logical;
    pango_layout_get_pixel_extents(layout, &ink, &logical);
    /* union of ink (glyph overhangs, accents) and logical (line boxes) */
    int x0 = logical.x, y0 = logical.y;
    int x1 = logical.x + logical.width, y1 = logical.y + logical.height;
    if (ink.width > 0 && ink.height > 0) {
        x0 = ink.x < x0 ? ink.x : x0;
        y0 = ink.y < y0 ? ink.y : y0;
        x1 = ink.x + ink.width > x1 ? ink.x + ink.width : x1;
        y1 = ink.y + ink.height > y1 ? ink.y + ink.height : y1;
    }
    int tw = x1 > x0 ? x1 - x0 : 0, th = y1 > y0 ? y1 - y0 : 0;
    int W = clamp_dim(tw + 2 * pad + off), H = clamp_dim(th + 2 * pad + off);
    if (max_width > 0 && W > max_width)
        W = clamp_dim(max_width); /* a single glyph wider than the wrap width */

    surf = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, W, H);
    cr = cairo_create(surf);
    if (cairo_status(cr) != CAIRO_STATUS_SUCCESS) {
        rv = RF_ETEXT;
        goto out;
    }
    pango_cairo_update_layout(cr, layout);
    if (st->box != 0) {
        double r = pad > 0 ? pad * 0.9 : st->size_px * 0.25;
        rounded_rect(cr, 0, 0, tw + 2 * pad, th + 2 * pad, r);
        set_rgba32(cr, st->box);
        cairo_fill(cr);
    }
    double ox = pad - x0, oy = pad - y0;
    if (st->shadow != 0) {
        cairo_move_to(cr, ox + off, oy + off);
        set_rgba32(cr, st->shadow);
        pango_cairo_show_layout(cr, layout);
    }
    cairo_move_to(cr, ox, oy);
    set_rgba32(cr, st->color);
    pango_cairo_show_layout(cr, layout);
    cairo_surface_flush(surf);
    if (cairo_status(cr) != CAIRO_STATUS_SUCCESS) {
        rv = RF_ETEXT;
        goto out;
    }
    rv = rf_layer_from_argb32(cairo_image_surface_get_data(surf), W, H,
                              cairo_image_surface_get_stride(surf), out);
out:
    if (layout != NULL)
        g_object_unref(layout);
    if (cr != NULL)
        cairo_destroy(cr);
    if (surf != NULL)
        cairo_surface_destroy(surf);
    if (mcr != NULL)
        cairo_destroy(mcr);
    if (msurf != NULL)
        cairo_surface_destroy(msurf);
    g_free(text);
    return rv;
}

rf_err
rf_shape_rect(int w, int h, double radius, uint32_t color, rf_layer_tex *out)
{
    rf_err rv = RF_OK;
    if (out == NULL)
        return RF_EINVAL;
    memset(out, 0, sizeof(*out));
    if (w <= 0 || h <= 0 || w > RF_TEXT_DIM_MAX || h > RF_TEXT_DIM_MAX)
        return RF_EINVAL;
    cairo_surface_t *surf = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, w, h);
    cairo_t *cr = cairo_create(surf);
    if (cairo_status(cr) != CAIRO_STATUS_SUCCESS) {
        rv = RF_ETEXT;
        goto out;
    }
    rounded_rect(cr, 0, 0, w, h, radius);
    set_rgba32(cr, color);
    cairo_fill(cr);
    cairo_surface_flush(surf);
    rv = rf_layer_from_argb32(cairo_image_surface_get_data(surf), w, h,
                              cairo_image_surface_get_stride(surf), out);
out:
    cairo_destroy(cr);
    cairo_surface_destroy(surf);
    return rv;
}
