/* The CPU compositor (the reference every other backend is compared with),
 * plus the backend-independent parts of rf_compose.h: argument checks, rect
 * normalisation, colour conversion and host frame/texture allocation.
 *
 * The blend arithmetic is defined once in compose_priv.h; the inner loops
 * below are that formula written so the compiler can vectorise it (no
 * divisions, no branches per sample, pointers walking rows). */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "compose_priv.h"
#ifdef RF_HAVE_CUDA
#include "compose_cuda.h"
#endif

#define RF_DIM_MAX 16384 /* larger frames or layers are refused (RF_EINVAL) */
#define RF_ROW_ALIGN 64

/* ---------------------------------------------------------------------
 * BT.709, limited range, 8 bit, in 16.16 fixed point.
 *   Y = 16  + 219/255 * (Kr R + Kg G + Kb B)
 *   U = 128 + 224/255 * (B - Y') / (2 (1 - Kb))
 *   V = 128 + 224/255 * (R - Y') / (2 (1 - Kr))
 * with Kr = 0.2126, Kb = 0.0722, Kg = 0.7152 and Y' = Kr R + Kg G + Kb B.
 * The chroma coefficients are made to sum to exactly zero so that every grey
 * maps to U = V = 128 exactly. */
#define FX_SHIFT 16
#define FX_HALF (1 << (FX_SHIFT - 1))
#define FX(v) ((int32_t)((v)*65536.0 + ((v) < 0 ? -0.5 : 0.5)))
#define LSCALE (219.0 / 255.0)
#define CSCALE (224.0 / 255.0)
#define K_YR FX(0.2126 * LSCALE)
#define K_YG FX(0.7152 * LSCALE)
#define K_YB FX(0.0722 * LSCALE)
#define K_UR FX(-0.2126 / 1.8556 * CSCALE)
#define K_UG FX(-0.7152 / 1.8556 * CSCALE)
#define K_UB (-(K_UR + K_UG))
#define K_VG FX(-0.7152 / 1.5748 * CSCALE)
#define K_VB FX(-0.0722 / 1.5748 * CSCALE)
#define K_VR (-(K_VG + K_VB))

/* Unrounded 16.16 values; always positive (Y in 16..235, U/V in 16..240). */
static inline int32_t
y_fx(int r, int g, int b)
{
    return K_YR * r + K_YG * g + K_YB * b + (16 << FX_SHIFT);
}

static inline int32_t
u_fx(int r, int g, int b)
{
    return K_UR * r + K_UG * g + K_UB * b + (128 << FX_SHIFT);
}

static inline int32_t
v_fx(int r, int g, int b)
{
    return K_VR * r + K_VG * g + K_VB * b + (128 << FX_SHIFT);
}

static inline uint8_t
fx_round(int32_t v)
{
    return (uint8_t)((v + FX_HALF) >> FX_SHIFT);
}

void
rf_rgb_to_yuv709(uint8_t r, uint8_t g, uint8_t b, uint8_t *y, uint8_t *u, uint8_t *v)
{
    if (y != NULL)
        *y = fx_round(y_fx(r, g, b));
    if (u != NULL)
        *u = fx_round(u_fx(r, g, b));
    if (v != NULL)
        *v = fx_round(v_fx(r, g, b));
}

/* --------------------------------------------------------------------- rects */

static int64_t
min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

static int64_t
max64(int64_t a, int64_t b)
{
    return a > b ? a : b;
}

bool
rf_rect_intersect(rf_rect a, rf_rect b, rf_rect *out)
{
    rf_rect empty = {0, 0, 0, 0};
    if (a.w <= 0 || a.h <= 0 || b.w <= 0 || b.h <= 0) {
        if (out != NULL)
            *out = empty;
        return false;
    }
    /* 64-bit so that x + w cannot overflow for far-away layers */
    int64_t x0 = max64(a.x, b.x), y0 = max64(a.y, b.y);
    int64_t x1 = min64((int64_t)a.x + a.w, (int64_t)b.x + b.w);
    int64_t y1 = min64((int64_t)a.y + a.h, (int64_t)b.y + b.h);
    if (x1 <= x0 || y1 <= y0) {
        if (out != NULL)
            *out = empty;
        return false;
    }
    if (out != NULL)
        *out = (rf_rect){(int)x0, (int)y0, (int)(x1 - x0), (int)(y1 - y0)};
    return true;
}

rf_rect
rf_rect_union(rf_rect a, rf_rect b)
{
    if (a.w <= 0 || a.h <= 0)
        return b;
    if (b.w <= 0 || b.h <= 0)
        return a;
    int64_t x0 = min64(a.x, b.x), y0 = min64(a.y, b.y);
    int64_t x1 = max64((int64_t)a.x + a.w, (int64_t)b.x + b.w);
    int64_t y1 = max64((int64_t)a.y + a.h, (int64_t)b.y + b.h);
    int64_t w = min64(x1 - x0, INT_MAX), h = min64(y1 - y0, INT_MAX);
    return (rf_rect){(int)x0, (int)y0, (int)w, (int)h};
}

/* Clips r to the frame and widens it to even edges; false when empty. */
static bool
normalise_rect(const rf_compositor *c, rf_rect r, rf_rect *out)
{
    rf_rect frame = {0, 0, c->width, c->height};
    rf_rect k;
    if (!rf_rect_intersect(r, frame, &k))
        return false;
    /* frame size is even, so rounding outwards stays inside the frame */
    int x0 = k.x & ~1, y0 = k.y & ~1;
    int x1 = (k.x + k.w + 1) & ~1, y1 = (k.y + k.h + 1) & ~1;
    *out = (rf_rect){x0, y0, x1 - x0, y1 - y0};
    return true;
}

bool
rf_comp_layer_clip(const rf_compositor *c, const rf_layer_state *st, rf_rect rect, rf_rect *out)
{
    rf_rect l = {rf_even_floor(st->x), rf_even_floor(st->y), c->layer_w[st->layer],
                 c->layer_h[st->layer]};
    return rf_rect_intersect(l, rect, out);
}

/* ------------------------------------------------------ host frames, textures */

static size_t
align_up(size_t v, size_t a)
{
    return (v + a - 1) / a * a;
}

rf_err
rf_frame_alloc(rf_frame *f, rf_pixfmt fmt, int width, int height)
{
    if (f == NULL)
        return RF_EINVAL;
    memset(f, 0, sizeof(*f));
    if (width <= 0 || height <= 0 || width > RF_DIM_MAX || height > RF_DIM_MAX || (width & 1) ||
        (height & 1) || (fmt != RF_PIX_YUV420P && fmt != RF_PIX_NV12))
        return RF_EINVAL;
    size_t ls0 = align_up((size_t)width, RF_ROW_ALIGN);
    size_t lsc = fmt == RF_PIX_NV12 ? ls0 : align_up((size_t)width / 2, RF_ROW_ALIGN);
    size_t ysz = ls0 * (size_t)height, csz = lsc * (size_t)(height / 2);
    size_t total = ysz + (fmt == RF_PIX_NV12 ? csz : 2 * csz);
    uint8_t *p = aligned_alloc(RF_ROW_ALIGN, align_up(total, RF_ROW_ALIGN));
    if (p == NULL)
        return RF_ENOMEM;
    /* black, so a frame never shows uninitialised memory */
    memset(p, 16, ysz);
    memset(p + ysz, 128, total - ysz);
    f->fmt = fmt;
    f->width = width;
    f->height = height;
    f->data[0] = p;
    f->linesize[0] = (int)ls0;
    f->data[1] = p + ysz;
    f->linesize[1] = (int)lsc;
    if (fmt == RF_PIX_YUV420P) {
        f->data[2] = p + ysz + csz;
        f->linesize[2] = (int)lsc;
    }
    return RF_OK;
}

void
rf_frame_release(rf_frame *f)
{
    if (f == NULL)
        return;
    free(f->data[0]);
    memset(f, 0, sizeof(*f));
}

rf_err
rf_layer_tex_alloc(rf_layer_tex *tex, int width, int height)
{
    if (tex == NULL)
        return RF_EINVAL;
    memset(tex, 0, sizeof(*tex));
    if (width <= 0 || height <= 0 || width > RF_DIM_MAX || height > RF_DIM_MAX)
        return RF_EINVAL;
    width += width & 1;
    height += height & 1;
    /* one block: y, a at luma size then u, v, ca at chroma size */
    size_t yp = align_up((size_t)width, 16), cp = align_up((size_t)width / 2, 16);
    size_t ysz = yp * (size_t)height, csz = cp * (size_t)(height / 2);
    uint8_t *p = calloc(1, 2 * ysz + 3 * csz);
    if (p == NULL)
        return RF_ENOMEM;
    tex->width = width;
    tex->height = height;
    tex->y = p;
    tex->a = p + ysz;
    tex->u = p + 2 * ysz;
    tex->v = p + 2 * ysz + csz;
    tex->ca = p + 2 * ysz + 2 * csz;
    tex->y_pitch = (int)yp;
    tex->c_pitch = (int)cp;
    return RF_OK;
}

void
rf_layer_tex_release(rf_layer_tex *tex)
{
    if (tex == NULL)
        return;
    free(tex->y); /* the block rf_layer_tex_alloc made */
    memset(tex, 0, sizeof(*tex));
}

static inline uint32_t
load_px(const uint8_t *row, int x)
{
    uint32_t px;
    memcpy(&px, row + 4 * (size_t)x, 4); /* Cairo rows are aligned, but be exact */
    return px;
}

/* Layer texture from premultiplied ARGB32. Per pixel: un-premultiply to get
 * the colour, convert, premultiply Y back (Y_pm = round(Y * a / 255)). Per
 * 2x2 block: ca = round(mean alpha); U_pm = round(sum(U_i * a_i) / 1020),
 * which is the U of the alpha-weighted mean colour times the exact mean alpha
 * (sum a_i / 4) / 255: U is linear in RGB. The unrounded 16.16 U_i are used
 * so that an opaque block gives exactly what rf_frame_from_argb32 gives.
 * tex is allocated here (release with rf_layer_tex_release). */
rf_err
rf_layer_from_argb32(const uint8_t *argb, int width, int height, int stride, rf_layer_tex *tex)
{
    if (tex == NULL)
        return RF_EINVAL;
    memset(tex, 0, sizeof(*tex));
    if (argb == NULL || width <= 0 || height <= 0 || width > RF_DIM_MAX || height > RF_DIM_MAX ||
        stride < 4 * width)
        return RF_EINVAL;
    rf_err rv = rf_layer_tex_alloc(tex, width, height);
    if (rv != RF_OK)
        return rv;
    const int64_t cdiv = 1020LL << FX_SHIFT;
    for (int cy = 0; cy < tex->height / 2; cy++) {
        for (int cx = 0; cx < tex->width / 2; cx++) {
            int sum_a = 0;
            int64_t su = 0, sv = 0;
            for (int dy = 0; dy < 2; dy++) {
                int yy = 2 * cy + dy;
                if (yy >= height)
                    break;
                const uint8_t *row = argb + (size_t)yy * (size_t)stride;
                for (int dx = 0; dx < 2; dx++) {
                    int xx = 2 * cx + dx;
                    if (xx >= width)
                        break;
                    uint32_t px = load_px(row, xx);
                    int a = (int)(px >> 24);
                    if (a == 0)
                        continue; /* texture is zeroed: transparent */
                    int r = (int)((px >> 16) & 255), g = (int)((px >> 8) & 255),
                        b = (int)(px & 255);
                    if (a != 255) {
                        /* un-premultiply, rounded; clamp malformed r > a */
                        r = (r * 255 + a / 2) / a;
                        g = (g * 255 + a / 2) / a;
                        b = (b * 255 + a / 2) / a;
                        r = r > 255 ? 255 : r;
                        g = g > 255 ? 255 : g;
                        b = b > 255 ? 255 : b;
                    }
                    size_t o = (size_t)yy * (size_t)tex->y_pitch + (size_t)xx;
                    tex->y[o] = (uint8_t)rf_div255((unsigned)fx_round(y_fx(r, g, b)) * (unsigned)a);
                    tex->a[o] = (uint8_t)a;
                    sum_a += a;
                    su += (int64_t)u_fx(r, g, b) * a;
                    sv += (int64_t)v_fx(r, g, b) * a;
                }
            }
            size_t co = (size_t)cy * (size_t)tex->c_pitch + (size_t)cx;
            tex->ca[co] = (uint8_t)((sum_a + 2) >> 2);
            tex->u[co] = (uint8_t)((su + cdiv / 2) / cdiv);
            tex->v[co] = (uint8_t)((sv + cdiv / 2) / cdiv);
        }
    }
    return RF_OK;
}

static bool
frame_ok(const rf_frame *f)
{
    if (f == NULL || f->width <= 0 || f->height <= 0 || f->width > RF_DIM_MAX ||
        f->height > RF_DIM_MAX || (f->width & 1) || (f->height & 1) || f->data[0] == NULL ||
        f->data[1] == NULL || f->linesize[0] < f->width)
        return false;
    if (f->fmt == RF_PIX_YUV420P)
        return f->data[2] != NULL && f->linesize[1] >= f->width / 2 &&
               f->linesize[2] >= f->width / 2;
    if (f->fmt == RF_PIX_NV12)
        return f->linesize[1] >= f->width;
    return false;
}

/* Opaque ARGB32 -> frame: Y per pixel; U, V of the 2x2 block from the mean of
 * the four unrounded 16.16 values. Alpha is ignored (the image is opaque). */
rf_err
rf_frame_from_argb32(const uint8_t *argb, int stride, rf_frame *dst)
{
    if (argb == NULL || !frame_ok(dst) || stride < 4 * dst->width)
        return RF_EINVAL;
    for (int cy = 0; cy < dst->height / 2; cy++) {
        const uint8_t *r0 = argb + (size_t)(2 * cy) * (size_t)stride;
        const uint8_t *r1 = r0 + stride;
        uint8_t *y0 = dst->data[0] + (size_t)(2 * cy) * (size_t)dst->linesize[0];
        uint8_t *y1 = y0 + dst->linesize[0];
        uint8_t *c1 = dst->data[1] + (size_t)cy * (size_t)dst->linesize[1];
        uint8_t *c2 = dst->fmt == RF_PIX_YUV420P
                          ? dst->data[2] + (size_t)cy * (size_t)dst->linesize[2]
                          : NULL;
        for (int cx = 0; cx < dst->width / 2; cx++) {
            int32_t su = 0, sv = 0;
            for (int k = 0; k < 4; k++) {
                uint32_t px = load_px(k < 2 ? r0 : r1, 2 * cx + (k & 1));
                int r = (int)((px >> 16) & 255), g = (int)((px >> 8) & 255), b = (int)(px & 255);
                uint8_t *yr = k < 2 ? y0 : y1;
                yr[2 * cx + (k & 1)] = fx_round(y_fx(r, g, b));
                su += u_fx(r, g, b);
                sv += v_fx(r, g, b);
            }
            uint8_t u = (uint8_t)((su + (2 << FX_SHIFT)) >> (FX_SHIFT + 2));
            uint8_t v = (uint8_t)((sv + (2 << FX_SHIFT)) >> (FX_SHIFT + 2));
            if (c2 != NULL) {
                c1[cx] = u;
                c2[cx] = v;
            } else {
                c1[2 * cx] = u;
                c1[2 * cx + 1] = v;
            }
        }
    }
    return RF_OK;
}

/* ------------------------------------------------------------ CPU backend */

/* A layer as the CPU keeps it: its texture plus, per row, the span of
 * non-zero alpha. Blending a zero-alpha sample leaves dst exactly unchanged
 * (s <= a = 0, eff = 0, D(d * 255) = d), so skipping outside the spans is
 * exact and saves most of the work for box-less text. */
typedef struct cpu_layer {
    rf_layer_tex tex;
    int *yspan; /* 2 per luma row: [x0, x1) */
    int *cspan; /* 2 per chroma row */
} cpu_layer;

typedef struct cpu_comp {
    rf_frame bg; /* in the compositor's format */
    cpu_layer *layers;
    int cap;
} cpu_comp;

static rf_err
cpu_create(rf_compositor *c)
{
    cpu_comp *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return RF_ENOMEM;
    rf_err rv = rf_frame_alloc(&p->bg, c->fmt, c->width, c->height);
    if (rv != RF_OK) {
        free(p);
        return rv;
    }
    c->impl = p;
    return RF_OK;
}

static void
cpu_destroy(rf_compositor *c)
{
    cpu_comp *p = c->impl;
    if (p == NULL)
        return;
    for (int i = 0; i < c->n_layers; i++) {
        rf_layer_tex_release(&p->layers[i].tex);
        free(p->layers[i].yspan);
        free(p->layers[i].cspan);
    }
    free(p->layers);
    rf_frame_release(&p->bg);
    free(p);
    c->impl = NULL;
}

static void
copy_plane(uint8_t *dst, int dls, const uint8_t *src, int sls, int x, int y, int w, int h)
{
    dst += (size_t)y * (size_t)dls + (size_t)x;
    src += (size_t)y * (size_t)sls + (size_t)x;
    for (int i = 0; i < h; i++, dst += dls, src += sls)
        memcpy(dst, src, (size_t)w);
}

/* Copies rect r (even) of src into dst; both frames have the same size, any
 * format each. */
void
rf_frame_copy_rect(rf_frame *dst, const rf_frame *src, rf_rect r)
{
    copy_plane(dst->data[0], dst->linesize[0], src->data[0], src->linesize[0], r.x, r.y, r.w, r.h);
    int cx = r.x / 2, cy = r.y / 2, cw = r.w / 2, ch = r.h / 2;
    if (dst->fmt == src->fmt) {
        if (dst->fmt == RF_PIX_NV12) {
            copy_plane(dst->data[1], dst->linesize[1], src->data[1], src->linesize[1], 2 * cx, cy,
                       2 * cw, ch);
        } else {
            for (int p = 1; p < 3; p++)
                copy_plane(dst->data[p], dst->linesize[p], src->data[p], src->linesize[p], cx, cy,
                           cw, ch);
        }
        return;
    }
    for (int j = cy; j < cy + ch; j++) {
        if (dst->fmt == RF_PIX_NV12) {
            const uint8_t *u = src->data[1] + (size_t)j * (size_t)src->linesize[1];
            const uint8_t *v = src->data[2] + (size_t)j * (size_t)src->linesize[2];
            uint8_t *uv = dst->data[1] + (size_t)j * (size_t)dst->linesize[1];
            for (int i = cx; i < cx + cw; i++) {
                uv[2 * i] = u[i];
                uv[2 * i + 1] = v[i];
            }
        } else {
            const uint8_t *uv = src->data[1] + (size_t)j * (size_t)src->linesize[1];
            uint8_t *u = dst->data[1] + (size_t)j * (size_t)dst->linesize[1];
            uint8_t *v = dst->data[2] + (size_t)j * (size_t)dst->linesize[2];
            for (int i = cx; i < cx + cw; i++) {
                u[i] = uv[2 * i];
                v[i] = uv[2 * i + 1];
            }
        }
    }
}

static rf_err
cpu_set_background(rf_compositor *c, const rf_frame *bg)
{
    cpu_comp *p = c->impl;
    rf_frame_copy_rect(&p->bg, bg, (rf_rect){0, 0, c->width, c->height});
    return RF_OK;
}

static void
row_spans(const uint8_t *a, int pitch, int w, int h, int *span)
{
    for (int j = 0; j < h; j++, a += pitch) {
        int x0 = 0, x1 = w;
        while (x0 < w && a[x0] == 0)
            x0++;
        while (x1 > x0 && a[x1 - 1] == 0)
            x1--;
        span[2 * j] = x0;
        span[2 * j + 1] = x1;
    }
}

static rf_err
cpu_add_layer(rf_compositor *c, const rf_layer_tex *tex, int index)
{
    cpu_comp *p = c->impl;
    if (index >= p->cap) {
        int cap = p->cap ? p->cap * 2 : 16;
        cpu_layer *nl = realloc(p->layers, (size_t)cap * sizeof(*nl));
        if (nl == NULL)
            return RF_ENOMEM;
        p->layers = nl;
        p->cap = cap;
    }
    cpu_layer *l = &p->layers[index];
    memset(l, 0, sizeof(*l));
    int w = tex->width, h = tex->height, cw = w / 2, ch = h / 2;
    rf_err rv = rf_layer_tex_alloc(&l->tex, w, h);
    if (rv != RF_OK)
        goto out;
    l->yspan = malloc(sizeof(int) * 2 * (size_t)h);
    l->cspan = malloc(sizeof(int) * 2 * (size_t)ch);
    if (l->yspan == NULL || l->cspan == NULL) {
        rv = RF_ENOMEM;
        goto out;
    }
    copy_plane(l->tex.y, l->tex.y_pitch, tex->y, tex->y_pitch, 0, 0, w, h);
    copy_plane(l->tex.a, l->tex.y_pitch, tex->a, tex->y_pitch, 0, 0, w, h);
    copy_plane(l->tex.u, l->tex.c_pitch, tex->u, tex->c_pitch, 0, 0, cw, ch);
    copy_plane(l->tex.v, l->tex.c_pitch, tex->v, tex->c_pitch, 0, 0, cw, ch);
    copy_plane(l->tex.ca, l->tex.c_pitch, tex->ca, tex->c_pitch, 0, 0, cw, ch);
    row_spans(l->tex.a, l->tex.y_pitch, w, h, l->yspan);
    row_spans(l->tex.ca, l->tex.c_pitch, cw, ch, l->cspan);
out:
    if (rv != RF_OK) {
        rf_layer_tex_release(&l->tex);
        free(l->yspan);
        free(l->cspan);
        memset(l, 0, sizeof(*l));
    }
    return rv;
}

/* The inner loops: the formula of compose_priv.h, one version for op == 255
 * (where it reduces exactly to out = s + D(d * (255 - a))) and one general. */
static void
blend_row(uint8_t *restrict d, const uint8_t *restrict s, const uint8_t *restrict a, int n,
          unsigned op)
{
    if (op == 255) {
        for (int i = 0; i < n; i++)
            d[i] = (uint8_t)(s[i] + rf_div255(d[i] * (255u - a[i])));
    } else {
        for (int i = 0; i < n; i++) {
            unsigned eff = rf_div255(a[i] * op);
            d[i] = (uint8_t)(rf_div255(s[i] * op) + rf_div255(d[i] * (255u - eff)));
        }
    }
}

/* NV12: d holds n interleaved (U, V) pairs. */
static void
blend_row_uv(uint8_t *restrict d, const uint8_t *restrict u, const uint8_t *restrict v,
             const uint8_t *restrict a, int n, unsigned op)
{
    if (op == 255) {
        for (int i = 0; i < n; i++) {
            unsigned k = 255u - a[i];
            d[2 * i] = (uint8_t)(u[i] + rf_div255(d[2 * i] * k));
            d[2 * i + 1] = (uint8_t)(v[i] + rf_div255(d[2 * i + 1] * k));
        }
    } else {
        for (int i = 0; i < n; i++) {
            unsigned k = 255u - rf_div255(a[i] * op);
            d[2 * i] = (uint8_t)(rf_div255(u[i] * op) + rf_div255(d[2 * i] * k));
            d[2 * i + 1] = (uint8_t)(rf_div255(v[i] * op) + rf_div255(d[2 * i + 1] * k));
        }
    }
}

/* Blends the part r (even, inside the frame and the layer) of layer l placed
 * at (lx, ly) (even) into dst. */
static void
cpu_blend_layer(rf_frame *dst, const cpu_layer *l, int lx, int ly, rf_rect r, unsigned op)
{
    const rf_layer_tex *t = &l->tex;
    int tx = r.x - lx, ty = r.y - ly; /* texture coordinates of r's corner, even */
    int ls = dst->linesize[0];
    uint8_t *d = dst->data[0] + (size_t)r.y * (size_t)ls;
    for (int j = 0; j < r.h; j++, d += ls) {
        const int *sp = &l->yspan[2 * (ty + j)];
        int x0 = sp[0] > tx ? sp[0] : tx;
        int x1 = sp[1] < tx + r.w ? sp[1] : tx + r.w;
        if (x1 <= x0)
            continue;
        size_t o = (size_t)(ty + j) * (size_t)t->y_pitch + (size_t)x0;
        blend_row(d + (lx + x0), t->y + o, t->a + o, x1 - x0, op);
    }
    int ctx = tx / 2, cty = ty / 2, cw = r.w / 2, ch = r.h / 2, clx = lx / 2;
    int cy0 = r.y / 2;
    for (int j = 0; j < ch; j++) {
        const int *sp = &l->cspan[2 * (cty + j)];
        int x0 = sp[0] > ctx ? sp[0] : ctx;
        int x1 = sp[1] < ctx + cw ? sp[1] : ctx + cw;
        if (x1 <= x0)
            continue;
        size_t o = (size_t)(cty + j) * (size_t)t->c_pitch + (size_t)x0;
        int fx = clx + x0; /* frame chroma column */
        if (dst->fmt == RF_PIX_NV12) {
            uint8_t *uv = dst->data[1] + (size_t)(cy0 + j) * (size_t)dst->linesize[1];
            blend_row_uv(uv + 2 * fx, t->u + o, t->v + o, t->ca + o, x1 - x0, op);
        } else {
            uint8_t *u = dst->data[1] + (size_t)(cy0 + j) * (size_t)dst->linesize[1];
            uint8_t *v = dst->data[2] + (size_t)(cy0 + j) * (size_t)dst->linesize[2];
            blend_row(u + fx, t->u + o, t->ca + o, x1 - x0, op);
            blend_row(v + fx, t->v + o, t->ca + o, x1 - x0, op);
        }
    }
}

static rf_err
cpu_render(rf_compositor *c, rf_frame *dst, const rf_layer_state *states, int n_states,
           const rf_rect *rects, int n_rects)
{
    cpu_comp *p = c->impl;
    for (int i = 0; i < n_rects; i++) {
        rf_frame_copy_rect(dst, &p->bg, rects[i]);
        for (int k = 0; k < n_states; k++) {
            const rf_layer_state *st = &states[k];
            rf_rect part;
            if (st->opacity == 0 || !rf_comp_layer_clip(c, st, rects[i], &part))
                continue;
            cpu_blend_layer(dst, &p->layers[st->layer], rf_even_floor(st->x), rf_even_floor(st->y),
                            part, st->opacity);
        }
    }
    return RF_OK;
}

static rf_err
cpu_frame_alloc(rf_compositor *c, rf_frame *f)
{
    return rf_frame_alloc(f, c->fmt, c->width, c->height);
}

static void
cpu_frame_free(rf_compositor *c, rf_frame *f)
{
    rf_frame_release(f);
}

static rf_err
cpu_download(rf_compositor *c, const rf_frame *src, rf_frame *host, const rf_rect *rects,
             int n_rects)
{
    for (int i = 0; i < n_rects; i++)
        rf_frame_copy_rect(host, src, rects[i]);
    return RF_OK;
}

static const rf_comp_ops cpu_ops = {
    .name = "cpu",
    .frame_alloc = cpu_frame_alloc,
    .frame_free = cpu_frame_free,
    .download = cpu_download,
    .create = cpu_create,
    .set_background = cpu_set_background,
    .add_layer = cpu_add_layer,
    .render = cpu_render,
    .destroy = cpu_destroy,
};

/* ------------------------------------------------------ the public API */

rf_err
rf_comp_gpu_memory(size_t *free_bytes, size_t *total_bytes)
{
    *free_bytes = 0;
    *total_bytes = 0;
#ifdef RF_HAVE_CUDA
    return rf_comp_gpu_memory_cuda(free_bytes, total_bytes);
#else
    return RF_EUNSUPPORTED;
#endif
}

rf_err
rf_comp_create(const char *backend, int width, int height, rf_pixfmt fmt, rf_compositor **out)
{
    if (out == NULL)
        return RF_EINVAL;
    *out = NULL;
    if (backend == NULL || width <= 0 || height <= 0 || width > RF_DIM_MAX || height > RF_DIM_MAX ||
        (width & 1) || (height & 1) || (fmt != RF_PIX_YUV420P && fmt != RF_PIX_NV12))
        return RF_EINVAL;
    const rf_comp_ops *ops = NULL;
    if (strcmp(backend, "cpu") == 0) {
        ops = &cpu_ops;
    } else if (strcmp(backend, "cuda") == 0) {
#ifndef RF_HAVE_CUDA
        return RF_EUNSUPPORTED; /* built without nvcc */
#endif
    } else {
        return RF_EINVAL;
    }
    rf_compositor *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return RF_ENOMEM;
    c->ops = ops;
    c->width = width;
    c->height = height;
    c->fmt = fmt;
#ifdef RF_HAVE_CUDA
    /* The CUDA backend installs its own ops, or says no device is usable. */
    rf_err rv = ops != NULL ? ops->create(c) : rf_comp_create_cuda(c);
#else
    rf_err rv = ops->create(c);
#endif
    if (rv != RF_OK) {
        free(c);
        return rv;
    }
    *out = c;
    return RF_OK;
}

const char *
rf_comp_backend(const rf_compositor *c)
{
    return c != NULL && c->ops != NULL ? c->ops->name : "none";
}

rf_err
rf_comp_set_background(rf_compositor *c, const rf_frame *bg)
{
    if (c == NULL || !frame_ok(bg) || bg->width != c->width || bg->height != c->height)
        return RF_EINVAL;
    return c->ops->set_background(c, bg);
}

static bool
tex_ok(const rf_layer_tex *t)
{
    return t != NULL && t->width > 0 && t->height > 0 && !(t->width & 1) && !(t->height & 1) &&
           t->width <= RF_DIM_MAX && t->height <= RF_DIM_MAX && t->y != NULL && t->a != NULL &&
           t->u != NULL && t->v != NULL && t->ca != NULL && t->y_pitch >= t->width &&
           t->c_pitch >= t->width / 2;
}

/* True when every premultiplied sample is <= its alpha, the invariant that
 * keeps the blend from overflowing (see compose_priv.h). */
static bool
tex_premul_valid(const rf_layer_tex *t)
{
    for (int j = 0; j < t->height; j++) {
        const uint8_t *y = t->y + (size_t)j * (size_t)t->y_pitch;
        const uint8_t *a = t->a + (size_t)j * (size_t)t->y_pitch;
        for (int i = 0; i < t->width; i++)
            if (y[i] > a[i])
                return false;
    }
    for (int j = 0; j < t->height / 2; j++) {
        size_t o = (size_t)j * (size_t)t->c_pitch;
        for (int i = 0; i < t->width / 2; i++)
            if (t->u[o + i] > t->ca[o + i] || t->v[o + i] > t->ca[o + i])
                return false;
    }
    return true;
}

/* A copy of t with every sample clamped to its alpha. */
static rf_err
tex_clamped_copy(const rf_layer_tex *t, rf_layer_tex *out)
{
    rf_err rv = rf_layer_tex_alloc(out, t->width, t->height);
    if (rv != RF_OK)
        return rv;
    for (int j = 0; j < t->height; j++) {
        for (int i = 0; i < t->width; i++) {
            uint8_t a = t->a[(size_t)j * (size_t)t->y_pitch + (size_t)i];
            uint8_t y = t->y[(size_t)j * (size_t)t->y_pitch + (size_t)i];
            out->a[(size_t)j * (size_t)out->y_pitch + (size_t)i] = a;
            out->y[(size_t)j * (size_t)out->y_pitch + (size_t)i] = y < a ? y : a;
        }
    }
    for (int j = 0; j < t->height / 2; j++) {
        for (int i = 0; i < t->width / 2; i++) {
            size_t si = (size_t)j * (size_t)t->c_pitch + (size_t)i;
            size_t di = (size_t)j * (size_t)out->c_pitch + (size_t)i;
            uint8_t a = t->ca[si];
            out->ca[di] = a;
            out->u[di] = t->u[si] < a ? t->u[si] : a;
            out->v[di] = t->v[si] < a ? t->v[si] : a;
        }
    }
    return RF_OK;
}

rf_err
rf_comp_add_layer(rf_compositor *c, const rf_layer_tex *tex, int *index)
{
    rf_layer_tex fixed = {0};
    rf_err rv = RF_OK;
    if (c == NULL || index == NULL || !tex_ok(tex))
        return RF_EINVAL;
    if (c->n_layers == INT_MAX)
        return RF_ETOOBIG;
    if (c->n_layers >= c->layer_cap) {
        int cap = c->layer_cap ? c->layer_cap * 2 : 16;
        int *w = realloc(c->layer_w, (size_t)cap * sizeof(int));
        if (w == NULL)
            return RF_ENOMEM;
        c->layer_w = w;
        int *h = realloc(c->layer_h, (size_t)cap * sizeof(int));
        if (h == NULL)
            return RF_ENOMEM;
        c->layer_h = h;
        c->layer_cap = cap;
    }
    /* Textures made by rf_layer_from_argb32 are always valid; a hand-made one
     * that is not gets clamped here so no backend can overflow a sample. */
    const rf_layer_tex *use = tex;
    if (!tex_premul_valid(tex)) {
        rv = tex_clamped_copy(tex, &fixed);
        if (rv != RF_OK)
            goto out;
        use = &fixed;
    }
    rv = c->ops->add_layer(c, use, c->n_layers);
    if (rv != RF_OK)
        goto out;
    c->layer_w[c->n_layers] = tex->width;
    c->layer_h[c->n_layers] = tex->height;
    *index = c->n_layers++;
out:
    rf_layer_tex_release(&fixed);
    return rv;
}

rf_err
rf_comp_render(rf_compositor *c, rf_frame *dst, const rf_layer_state *states, int n_states,
               const rf_rect *dirty, int n_dirty)
{
    enum { LOCAL_RECTS = 16 };
    rf_rect local[LOCAL_RECTS];
    rf_rect *rects = local;
    int n = 0;
    rf_err rv = RF_OK;
    if (c == NULL || !frame_ok(dst) || dst->fmt != c->fmt || dst->width != c->width ||
        dst->height != c->height || n_states < 0 || n_dirty < 0 ||
        (n_states > 0 && states == NULL) || (n_dirty > 0 && dirty == NULL))
        return RF_EINVAL;
    for (int k = 0; k < n_states; k++)
        if (states[k].layer < 0 || states[k].layer >= c->n_layers)
            return RF_EINVAL;
    if (n_dirty > LOCAL_RECTS) {
        rects = malloc((size_t)n_dirty * sizeof(*rects));
        if (rects == NULL)
            return RF_ENOMEM;
    }
    for (int i = 0; i < n_dirty; i++)
        if (normalise_rect(c, dirty[i], &rects[n]))
            n++;
    if (n > 0)
        rv = c->ops->render(c, dst, states, n_states, rects, n);
    if (rects != local)
        free(rects);
    return rv;
}

rf_err
rf_comp_frame_alloc(rf_compositor *c, rf_frame *f)
{
    if (c == NULL || f == NULL)
        return RF_EINVAL;
    memset(f, 0, sizeof(*f));
    return c->ops->frame_alloc(c, f);
}

void
rf_comp_frame_free(rf_compositor *c, rf_frame *f)
{
    if (c == NULL || f == NULL || f->data[0] == NULL)
        return;
    c->ops->frame_free(c, f);
    memset(f, 0, sizeof(*f));
}

rf_err
rf_comp_download(rf_compositor *c, const rf_frame *src, rf_frame *host, const rf_rect *rects,
                 int n_rects)
{
    enum { LOCAL_RECTS = 16 };
    rf_rect local[LOCAL_RECTS];
    rf_rect *norm = local;
    int n = 0;
    rf_err rv = RF_OK;

    if (c == NULL || !frame_ok(src) || !frame_ok(host) || src->fmt != c->fmt ||
        host->fmt != c->fmt || src->width != c->width || src->height != c->height ||
        host->width != c->width || host->height != c->height || n_rects < 0 ||
        (n_rects > 0 && rects == NULL))
        return RF_EINVAL;
    if (n_rects > LOCAL_RECTS) {
        norm = malloc((size_t)n_rects * sizeof(*norm));
        if (norm == NULL)
            return RF_ENOMEM;
    }
    for (int i = 0; i < n_rects; i++)
        if (normalise_rect(c, rects[i], &norm[n]))
            n++;
    if (n > 0)
        rv = c->ops->download(c, src, host, norm, n);
    if (norm != local)
        free(norm);
    return rv;
}

void
rf_comp_free(rf_compositor **c)
{
    if (c == NULL || *c == NULL)
        return;
    rf_compositor *p = *c;
    if (p->ops != NULL && p->impl != NULL)
        p->ops->destroy(p);
    free(p->layer_w);
    free(p->layer_h);
    free(p);
    *c = NULL;
}
