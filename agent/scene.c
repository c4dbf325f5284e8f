/* Scene building: a unit's style preset, colours and frame shape become one
 * background frame (drawn with Cairo once, converted once) and a list of
 * text layers with time windows. Everything that depends on time is in
 * rf_scene_states(), which is pure integer arithmetic so that the same t
 * always gives the same frame. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cairo.h>

#include "scene.h"
#include "text.h"

#define TITLE_FADE_MS 400
#define CAPTION_FADE_MS 120
#define END_FADE_MS 400

typedef enum style_id { ST_MODERN, ST_CLASSIC, ST_MINIMAL, ST_CORPORATE } style_id;

/* Palette slots, in the order u->colors overrides them. */
enum { PAL_BG = 0, PAL_BG2 = 1, PAL_ACCENT = 2, PAL_TEXT = 3, PAL_N = 4 };

typedef struct style {
    style_id id;
    uint32_t pal[PAL_N]; /* 0xRRGGBB */
    const char *font;    /* Pango family list */
    int title_weight, body_weight;
    uint32_t caption_box;  /* 0xRRGGBBAA or 0 */
    uint32_t title_shadow; /* 0xRRGGBBAA or 0 */
    double scale;          /* font size multiplier */
} style;

static const style k_styles[] = {
    [ST_MODERN] = {ST_MODERN,
                   {0x1E1B4B, 0x7C3AED, 0xF472B6, 0xFFFFFF},
                   "Noto Sans",
                   800,
                   600,
                   0x000000A0,
                   0x00000066,
                   1.0},
    [ST_CLASSIC] = {ST_CLASSIC,
                    {0xF6EEDB, 0xE4D2A8, 0x7A5230, 0x3B2414},
                    "Noto Serif, DejaVu Serif",
                    700,
                    400,
                    0,
                    0,
                    1.0},
    [ST_MINIMAL] =
        {ST_MINIMAL, {0xF8F8F6, 0xF8F8F6, 0x111111, 0x111111}, "Noto Sans", 400, 400, 0, 0, 0.9},
    [ST_CORPORATE] = {ST_CORPORATE,
                      {0x0B2545, 0x13315C, 0x13A89E, 0xFFFFFF},
                      "DejaVu Sans",
                      700,
                      400,
                      0,
                      0,
                      1.0},
};

/* Relative luminance (BT.709 weights) of 0xRRGGBB, 0..1. */
static double
luma(uint32_t rgb)
{
    return (0.2126 * ((rgb >> 16) & 0xFF) + 0.7152 * ((rgb >> 8) & 0xFF) + 0.0722 * (rgb & 0xFF)) /
           255.0;
}

/* Brand colours replace a style's background but rarely say which text
 * colour reads on it: pick near-white or near-black by the background's
 * mean luminance so text stays legible on any palette. */
static uint32_t
contrast_text(uint32_t bg, uint32_t bg2)
{
    return (luma(bg) + luma(bg2)) / 2 > 0.55 ? 0x111111 : 0xFFFFFF;
}

static style_id
style_parse(const char *name)
{
    if (strcmp(name, "classic") == 0)
        return ST_CLASSIC;
    if (strcmp(name, "minimal") == 0)
        return ST_MINIMAL;
    if (strcmp(name, "corporate") == 0)
        return ST_CORPORATE;
    return ST_MODERN; /* "modern" and anything unknown */
}

static int
hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* "#RRGGBB" -> 0xRRGGBB; false (keep the default) for anything else. */
static bool
parse_colour(const char *s, uint32_t *out)
{
    if (s[0] != '#')
        return false;
    uint32_t v = 0;
    for (int i = 1; i <= 6; i++) {
        int h = hexval(s[i]);
        if (h < 0)
            return false;
        v = v << 4 | (uint32_t)h;
    }
    if (s[7] != '\0')
        return false;
    *out = v;
    return true;
}

static void
set_rgb(cairo_t *cr, uint32_t c)
{
    cairo_set_source_rgb(cr, (c >> 16) / 255.0, ((c >> 8) & 255) / 255.0, (c & 255) / 255.0);
}

static void
stop_rgb(cairo_pattern_t *p, double at, uint32_t c)
{
    cairo_pattern_add_color_stop_rgb(p, at, (c >> 16) / 255.0, ((c >> 8) & 255) / 255.0,
                                     (c & 255) / 255.0);
}

/* floor to even (the compositor wants even positions) */
static int
even(int v)
{
    return v % 2 != 0 ? v - 1 : v;
}

/* The frame shape decides where things go. */
typedef enum shape { SH_LANDSCAPE, SH_PORTRAIT, SH_SQUARE } shape;

typedef struct geom {
    int w, h, s; /* frame size, s = min(w, h) */
    shape sh;
    int wrap; /* text wrap width */
    double title_px, desc_px, caption_px;
    int band_top; /* corporate: y where the lower band starts */
} geom;

static void
geom_init(geom *g, int w, int h, const style *st)
{
    g->w = w;
    g->h = h;
    g->s = w < h ? w : h;
    g->sh = (int64_t)w * 10 > (int64_t)h * 11   ? SH_LANDSCAPE
            : (int64_t)h * 10 > (int64_t)w * 11 ? SH_PORTRAIT
                                                : SH_SQUARE;
    double frac = g->sh == SH_LANDSCAPE ? 0.80 : g->sh == SH_PORTRAIT ? 0.88 : 0.84;
    g->wrap = even((int)(w * frac));
    double s = g->s * st->scale;
    switch (g->sh) {
    case SH_LANDSCAPE:
        g->title_px = s * 0.075, g->desc_px = s * 0.036, g->caption_px = s * 0.046;
        break;
    case SH_PORTRAIT:
        g->title_px = s * 0.088, g->desc_px = s * 0.044, g->caption_px = s * 0.058;
        break;
    case SH_SQUARE:
        g->title_px = s * 0.080, g->desc_px = s * 0.040, g->caption_px = s * 0.052;
        break;
    }
    /* portrait: the band starts higher so that captions (70% down) sit on it */
    g->band_top = even((int)(h * (g->sh == SH_PORTRAIT ? 0.62 : 0.76)));
}

/* Draws the style's background over the whole frame. */
static void
draw_background(cairo_t *cr, const style *st, const uint32_t *pal, const geom *g)
{
    double W = g->w, H = g->h, s = g->s;
    cairo_pattern_t *p = NULL;
    switch (st->id) {
    case ST_MODERN:
        p = cairo_pattern_create_linear(0, 0, W, H);
        stop_rgb(p, 0, pal[PAL_BG]);
        stop_rgb(p, 1, pal[PAL_BG2]);
        cairo_set_source(cr, p);
        cairo_paint(cr);
        break;
    case ST_CLASSIC: {
        p = cairo_pattern_create_linear(0, 0, 0, H);
        stop_rgb(p, 0, pal[PAL_BG]);
        stop_rgb(p, 1, pal[PAL_BG2]);
        cairo_set_source(cr, p);
        cairo_paint(cr);
        /* a thin double frame inset from the edges */
        double inset = s * 0.035, lw = s * 0.004 < 2 ? 2 : s * 0.004;
        set_rgb(cr, pal[PAL_ACCENT]);
        cairo_set_line_width(cr, lw);
        cairo_rectangle(cr, inset, inset, W - 2 * inset, H - 2 * inset);
        cairo_stroke(cr);
        double in2 = inset + 3 * lw;
        cairo_set_line_width(cr, lw / 2);
        cairo_rectangle(cr, in2, in2, W - 2 * in2, H - 2 * in2);
        cairo_stroke(cr);
        break;
    }
    case ST_MINIMAL:
        set_rgb(cr, pal[PAL_BG]);
        cairo_paint(cr);
        break;
    case ST_CORPORATE: {
        set_rgb(cr, pal[PAL_BG]);
        cairo_paint(cr);
        set_rgb(cr, pal[PAL_BG2]);
        cairo_rectangle(cr, 0, g->band_top, W, H - g->band_top);
        cairo_fill(cr);
        double stripe = s * 0.012 < 4 ? 4 : s * 0.012;
        set_rgb(cr, pal[PAL_ACCENT]);
        cairo_rectangle(cr, 0, g->band_top - stripe, W, stripe);
        cairo_fill(cr);
        /* a short accent bar top-left, the "logo corner" */
        cairo_rectangle(cr, s * 0.05, s * 0.05, s * 0.12, stripe);
        cairo_fill(cr);
        break;
    }
    }
    if (p != NULL)
        cairo_pattern_destroy(p);
}

static rf_err
build_background(const style *st, const uint32_t *pal, const geom *g, rf_compositor *c,
                 rf_scene *out)
{
    rf_err rv = RF_OK;
    cairo_surface_t *surf = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, g->w, g->h);
    cairo_t *cr = cairo_create(surf);
    if (cairo_status(cr) != CAIRO_STATUS_SUCCESS) {
        rv = RF_ETEXT;
        goto out;
    }
    draw_background(cr, st, pal, g);
    cairo_surface_flush(surf);
    if (cairo_status(cr) != CAIRO_STATUS_SUCCESS) {
        rv = RF_ETEXT;
        goto out;
    }
    rv = rf_frame_alloc(&out->background, RF_PIX_YUV420P, g->w, g->h);
    if (rv != RF_OK)
        goto out;
    rv = rf_frame_from_argb32(cairo_image_surface_get_data(surf),
                              cairo_image_surface_get_stride(surf), &out->background);
    if (rv != RF_OK)
        goto out;
    rv = rf_comp_set_background(c, &out->background);
out:
    cairo_destroy(cr);
    cairo_surface_destroy(surf);
    return rv;
}

static rf_text_style
text_style(const char *font, double size, int weight, uint32_t rgb, uint8_t alpha, int max_lines)
{
    rf_text_style ts = {0};
    ts.font_family = font;
    ts.size_px = size;
    ts.weight = weight;
    ts.color = rgb << 8 | alpha;
    ts.align = RF_ALIGN_CENTER;
    ts.line_spacing = 1.0;
    ts.max_lines = max_lines;
    return ts;
}

/* Rasterises text as the next layer and adds it to the compositor; *lay is
 * the new layer (position and timing left for the caller). */
static rf_err
push_text(rf_scene *s, rf_compositor *c, const char *text, const rf_text_style *ts, int wrap,
          rf_scene_layer **lay)
{
    rf_layer_tex *t = &s->texs[s->n_layers];
    rf_err rv = rf_text_render(text, ts, wrap, t);
    if (rv != RF_OK)
        return rv;
    int idx = -1;
    rv = rf_comp_add_layer(c, t, &idx);
    if (rv != RF_OK) {
        rf_layer_tex_release(t);
        return rv;
    }
    rf_scene_layer *l = &s->layers[s->n_layers++];
    memset(l, 0, sizeof(*l));
    l->comp_index = idx;
    l->width = t->width;
    l->height = t->height;
    *lay = l;
    return RF_OK;
}

static void
set_window(rf_scene_layer *l, int64_t t_in, int64_t t_out, int fade, int rise)
{
    l->t_in = t_in;
    l->t_out = t_out;
    int64_t half = (t_out - t_in) / 2;
    l->fade_ms = fade > half ? (int)half : fade;
    l->rise_px = even(rise);
}

/* Two stacked text blocks (a over b, b may be absent) centred at cy. */
static void
place_pair(const geom *g, rf_scene_layer *a, rf_scene_layer *b, int gap, int cy)
{
    int total = a->height + (b != NULL ? gap + b->height : 0);
    int top = cy - total / 2;
    int margin = even(g->s / 20);
    if (top + total > g->h - margin)
        top = g->h - margin - total;
    if (top < margin)
        top = margin;
    a->x = even((g->w - a->width) / 2);
    a->y = even(top);
    if (b != NULL) {
        b->x = even((g->w - b->width) / 2);
        b->y = even(top + a->height + gap);
    }
}

static bool
nonempty(const char *s)
{
    if (s == NULL)
        return false;
    for (; *s != '\0'; s++)
        if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r')
            return true;
    return false;
}

rf_err
rf_scene_build(const rf_unit *u, const rf_caption *caps, int n_caps, const rf_timing *tm,
               rf_compositor *c, rf_scene *out)
{
    rf_err rv = RF_OK;
    if (out == NULL)
        return RF_EINVAL;
    memset(out, 0, sizeof(*out));
    if (u == NULL || tm == NULL || c == NULL || n_caps < 0 || (n_caps > 0 && caps == NULL) ||
        u->width < 16 || u->height < 16 || (u->width & 1) || (u->height & 1) || u->width > 7680 ||
        u->height > 7680 || tm->duration_ms <= 0)
        return RF_EINVAL;

    const style *st = &k_styles[style_parse(u->style)];
    uint32_t pal[PAL_N];
    memcpy(pal, st->pal, sizeof(pal));
    for (uint32_t i = 0; i < u->n_colors && i < PAL_N && i < RF_MAX_COLORS; i++)
        parse_colour(u->colors[i], &pal[i]);
    const char *font = u->font_family[0] != '\0' ? u->font_family : st->font;
    geom g;
    geom_init(&g, (int)u->width, (int)u->height, st);
    out->width = g.w;
    out->height = g.h;

    int cap = n_caps + 4; /* title, description, end title, end line */
    out->texs = calloc((size_t)cap, sizeof(*out->texs));
    out->layers = calloc((size_t)cap, sizeof(*out->layers));
    if (out->texs == NULL || out->layers == NULL) {
        rv = RF_ENOMEM;
        goto out;
    }
    rv = build_background(st, pal, &g, c, out);
    if (rv != RF_OK)
        goto out;

    int64_t dur = tm->duration_ms;
    int64_t title_end = tm->title_end_ms < 0 ? 0 : tm->title_end_ms > dur ? dur : tm->title_end_ms;
    int64_t end_card = tm->end_card_ms <= 0 || tm->end_card_ms > dur ? dur : tm->end_card_ms;
    if (end_card < title_end)
        end_card = title_end;
    uint32_t text_rgb = pal[PAL_TEXT];
    if (u->n_colors > 0 && u->n_colors <= PAL_TEXT)
        text_rgb = contrast_text(pal[PAL_BG], pal[PAL_BG2]);
    int rise_big = (int)(g.h * 0.02), rise_small = (int)(g.h * 0.01);

    /* title card */
    if (title_end > 0 && nonempty(u->title)) {
        rf_text_style ts = text_style(font, g.title_px, st->title_weight, text_rgb, 0xFF, 3);
        ts.shadow = st->title_shadow;
        ts.line_spacing = 0.95;
        rf_scene_layer *lt = NULL, *ld = NULL;
        rv = push_text(out, c, u->title, &ts, g.wrap, &lt);
        if (rv != RF_OK)
            goto out;
        if (nonempty(u->description)) {
            rf_text_style ds = text_style(font, g.desc_px, st->body_weight, text_rgb, 0xD8,
                                          g.sh == SH_PORTRAIT ? 6 : 4);
            ds.line_spacing = 1.15;
            rv = push_text(out, c, u->description, &ds, g.wrap, &ld);
            if (rv != RF_OK)
                goto out;
        }
        int cy = g.sh == SH_PORTRAIT ? (int)(g.h * 0.45) : g.h / 2;
        if (st->id == ST_CORPORATE)
            cy = g.band_top * 11 / 20; /* centred above the band */
        place_pair(&g, lt, ld, (int)(g.s * 0.03), cy);
        set_window(lt, 0, title_end, TITLE_FADE_MS, rise_big);
        if (ld != NULL)
            set_window(ld, 0, title_end, TITLE_FADE_MS, rise_big);
    }

    /* captions, kept out of the title and end cards and of each other */
    rf_text_style cs = text_style(font, g.caption_px, st->body_weight, text_rgb, 0xFF, 2);
    cs.line_spacing = 1.05;
    if (st->caption_box != 0) {
        cs.box = st->caption_box;
        cs.box_pad = (int)(g.caption_px * 0.45);
    }
    for (int i = 0; i < n_caps; i++) {
        int64_t t_in = caps[i].start_ms < title_end ? title_end : caps[i].start_ms;
        int64_t t_out = caps[i].end_ms > end_card ? end_card : caps[i].end_ms;
        /* a caption that starts later (or at the same time but later in
         * the list) and will be shown takes over the same spot: cut this
         * one there */
        for (int j = 0; j < n_caps; j++) {
            bool later = caps[j].start_ms > caps[i].start_ms ||
                         (caps[j].start_ms == caps[i].start_ms && j > i);
            bool shown = caps[j].end_ms > caps[j].start_ms && nonempty(caps[j].text);
            if (j != i && later && shown && caps[j].start_ms < t_out)
                t_out = caps[j].start_ms;
        }
        if (t_out <= t_in || !nonempty(caps[i].text))
            continue;
        rf_scene_layer *l = NULL;
        rv = push_text(out, c, caps[i].text, &cs, g.wrap, &l);
        if (rv != RF_OK)
            goto out;
        l->x = even((g.w - l->width) / 2);
        int y;
        if (st->id == ST_CORPORATE && g.sh != SH_PORTRAIT)
            y = (g.band_top + g.h) / 2 - l->height / 2; /* on the band */
        else if (g.sh == SH_LANDSCAPE)
            y = g.h - (int)(g.h * 0.08) - l->height; /* lower third */
        else if (g.sh == SH_PORTRAIT)
            y = (int)(g.h * 0.70) - l->height / 2;
        else
            y = (g.h - l->height) / 2;
        l->y = even(y < 0 ? 0 : y);
        set_window(l, t_in, t_out, CAPTION_FADE_MS, rise_small);
    }

    /* end card */
    if (end_card < dur && nonempty(u->title)) {
        rf_text_style ts = text_style(font, g.title_px * 0.8, st->title_weight, text_rgb, 0xFF, 2);
        ts.shadow = st->title_shadow;
        rf_scene_layer *lt = NULL, *lb = NULL;
        rv = push_text(out, c, u->title, &ts, g.wrap, &lt);
        if (rv != RF_OK)
            goto out;
        uint32_t line_rgb = st->id == ST_CORPORATE ? pal[PAL_ACCENT] : text_rgb;
        rf_text_style bs = text_style(font, g.desc_px * 1.1, st->body_weight, line_rgb, 0xE0, 1);
        rv = push_text(out, c, "Thanks for watching", &bs, g.wrap, &lb);
        if (rv != RF_OK)
            goto out;
        int cy = st->id == ST_CORPORATE ? g.band_top * 11 / 20 : g.h / 2;
        place_pair(&g, lt, lb, (int)(g.s * 0.035), cy);
        set_window(lt, end_card, dur, END_FADE_MS, rise_big);
        set_window(lb, end_card, dur, END_FADE_MS, rise_big);
    }
out:
    return rv;
}

int
rf_scene_states(const rf_scene *s, int64_t t_ms, rf_layer_state *states, int max)
{
    int n = 0;
    if (s == NULL || states == NULL)
        return 0;
    for (int i = 0; i < s->n_layers && n < max; i++) {
        const rf_scene_layer *l = &s->layers[i];
        if (t_ms < l->t_in || t_ms >= l->t_out)
            continue;
        int64_t since = t_ms - l->t_in, left = l->t_out - t_ms;
        int64_t op = 255, dy = 0;
        if (l->fade_ms > 0) {
            int64_t a = since * 255 / l->fade_ms, b = left * 255 / l->fade_ms;
            op = a < op ? a : op;
            op = b < op ? b : op;
            if (since < l->fade_ms && l->rise_px > 0) {
                /* ease-out cubic: offset = rise * (1 - p)^3, p in 1/1024 */
                int64_t q = (l->fade_ms - since) * 1024 / l->fade_ms;
                dy = (int64_t)l->rise_px * q * q * q >> 30;
                dy &= ~(int64_t)1;
            }
        }
        if (op <= 0)
            continue;
        states[n].layer = l->comp_index;
        states[n].x = l->x;
        states[n].y = l->y + (int)dy;
        states[n].opacity = (uint8_t)op;
        n++;
    }
    return n;
}

void
rf_scene_free(rf_scene *s)
{
    if (s == NULL)
        return;
    if (s->texs != NULL)
        for (int i = 0; i < s->n_layers; i++)
            rf_layer_tex_release(&s->texs[i]);
    free(s->texs);
    free(s->layers);
    rf_frame_release(&s->background);
    memset(s, 0, sizeof(*s));
}
