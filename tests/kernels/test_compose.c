/* The CPU compositor: colour conversion, texture conversion, blending,
 * clipping, dirty rects, both output formats, and a randomised comparison
 * against a naive per-pixel reference written here independently. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "compose_priv.h"
#include "rf_compose.h"

/* ---------------------------------------------------------------- helpers */

static uint32_t
argb(unsigned a, unsigned r, unsigned g, unsigned b)
{
    return (a << 24) | (r << 16) | (g << 8) | b;
}

/* A w x h ARGB32 image (premultiplied) of one colour; stride 4*w + 8 to
 * exercise strides that are not the width. */
static uint8_t *
solid_argb(int w, int h, uint32_t px, int *stride)
{
    *stride = 4 * w + 8;
    uint8_t *p = malloc((size_t)*stride * (size_t)h);
    assert_non_null(p);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            memcpy(p + (size_t)y * (size_t)*stride + 4 * (size_t)x, &px, 4);
    return p;
}

static uint8_t
fy(const rf_frame *f, int x, int y)
{
    return f->data[0][(size_t)y * (size_t)f->linesize[0] + (size_t)x];
}

/* chroma at chroma coordinates, plane 0 = U, 1 = V, whatever the format */
static uint8_t
fc(const rf_frame *f, int p, int cx, int cy)
{
    if (f->fmt == RF_PIX_NV12)
        return f->data[1][(size_t)cy * (size_t)f->linesize[1] + 2 * (size_t)cx + (size_t)p];
    return f->data[1 + p][(size_t)cy * (size_t)f->linesize[1 + p] + (size_t)cx];
}

static void
fill_frame(rf_frame *f, uint8_t v)
{
    for (int y = 0; y < f->height; y++)
        memset(f->data[0] + (size_t)y * (size_t)f->linesize[0], v, (size_t)f->width);
    int cw = f->fmt == RF_PIX_NV12 ? f->width : f->width / 2;
    for (int p = 1; p < (f->fmt == RF_PIX_NV12 ? 2 : 3); p++)
        for (int y = 0; y < f->height / 2; y++)
            memset(f->data[p] + (size_t)y * (size_t)f->linesize[p], v, (size_t)cw);
}

/* A compositor whose background is the solid colour (r, g, b). */
static rf_compositor *
make_comp(rf_pixfmt fmt, int w, int h, uint8_t r, uint8_t g, uint8_t b)
{
    rf_compositor *c = NULL;
    assert_int_equal(rf_comp_create("cpu", w, h, fmt, &c), RF_OK);
    assert_string_equal(rf_comp_backend(c), "cpu");
    int stride;
    uint8_t *img = solid_argb(w, h, argb(255, r, g, b), &stride);
    rf_frame bg;
    assert_int_equal(rf_frame_alloc(&bg, RF_PIX_YUV420P, w, h), RF_OK);
    assert_int_equal(rf_frame_from_argb32(img, stride, &bg), RF_OK);
    assert_int_equal(rf_comp_set_background(c, &bg), RF_OK);
    rf_frame_release(&bg);
    free(img);
    return c;
}

static int
add_solid_layer(rf_compositor *c, int w, int h, uint32_t px)
{
    int stride, idx = -1;
    uint8_t *img = solid_argb(w, h, px, &stride);
    rf_layer_tex t;
    assert_int_equal(rf_layer_from_argb32(img, w, h, stride, &t), RF_OK);
    assert_int_equal(rf_comp_add_layer(c, &t, &idx), RF_OK);
    rf_layer_tex_release(&t);
    free(img);
    return idx;
}

/* ------------------------------------------------------------- conversion */

static void
test_known_colours(void **state)
{
    (void)state;
    static const struct {
        uint8_t r, g, b, y, u, v;
    } k[] = {
        {0, 0, 0, 16, 128, 128},     {255, 255, 255, 235, 128, 128}, {255, 0, 0, 63, 102, 240},
        {0, 255, 0, 173, 42, 26},    {0, 0, 255, 32, 240, 118},      {128, 128, 128, 126, 128, 128},
        {255, 255, 0, 219, 16, 138}, {0, 255, 255, 188, 154, 16},
    };
    for (size_t i = 0; i < sizeof(k) / sizeof(k[0]); i++) {
        uint8_t y, u, v;
        rf_rgb_to_yuv709(k[i].r, k[i].g, k[i].b, &y, &u, &v);
        assert_int_equal(y, k[i].y);
        assert_int_equal(u, k[i].u);
        assert_int_equal(v, k[i].v);
    }
}

/* Against the floating-point definition over a coarse RGB grid: the integer
 * code may differ by one only where the exact value is within a hair of .5. */
static void
test_conversion_matches_float(void **state)
{
    (void)state;
    for (int r = 0; r < 256; r += 15)
        for (int g = 0; g < 256; g += 17)
            for (int b = 0; b < 256; b += 13) {
                double yl = 0.2126 * r + 0.7152 * g + 0.0722 * b;
                double ey = 16 + 219.0 / 255.0 * yl;
                double eu = 128 + 224.0 / 255.0 * (b - yl) / 1.8556;
                double ev = 128 + 224.0 / 255.0 * (r - yl) / 1.5748;
                uint8_t y, u, v;
                rf_rgb_to_yuv709((uint8_t)r, (uint8_t)g, (uint8_t)b, &y, &u, &v);
                assert_true(fabs(y - ey) <= 0.52);
                assert_true(fabs(u - eu) <= 0.52);
                assert_true(fabs(v - ev) <= 0.52);
            }
}

static void
test_layer_from_argb32_premultiplied(void **state)
{
    (void)state;
    /* 3x3 (odd): half-transparent white everywhere */
    int stride;
    uint8_t *img = solid_argb(3, 3, argb(128, 128, 128, 128), &stride);
    rf_layer_tex t;
    assert_int_equal(rf_layer_from_argb32(img, 3, 3, stride, &t), RF_OK);
    assert_int_equal(t.width, 4);
    assert_int_equal(t.height, 4);
    /* un-premultiplied colour is white: Y = 235, Y_pm = round(235*128/255) */
    assert_int_equal(t.y[0], 118);
    assert_int_equal(t.a[0], 128);
    assert_int_equal(t.ca[0], 128);
    assert_int_equal(t.u[0], 64); /* round(128 * 128 / 255) */
    assert_int_equal(t.v[0], 64);
    /* padding column/row is transparent */
    assert_int_equal(t.a[3], 0);
    assert_int_equal(t.y[3], 0);
    assert_int_equal(t.a[3 * t.y_pitch], 0);
    /* the block (1,1) covers one real pixel out of four */
    size_t co = (size_t)t.c_pitch + 1;
    assert_int_equal(t.ca[co], 32); /* round(128 / 4) */
    assert_int_equal(t.u[co], 16);  /* round(128 * 128 / 1020) */
    rf_layer_tex_release(&t);
    rf_layer_tex_release(&t); /* idempotent */

    assert_int_equal(rf_layer_from_argb32(NULL, 3, 3, 12, &t), RF_EINVAL);
    assert_int_equal(rf_layer_from_argb32(img, 3, 3, 4, &t), RF_EINVAL); /* stride too small */
    free(img);
}

/* ------------------------------------------------------------ compositing */

static void
test_background_exact(void **state)
{
    (void)state;
    rf_compositor *c = make_comp(RF_PIX_YUV420P, 64, 48, 30, 120, 200);
    rf_frame f;
    assert_int_equal(rf_frame_alloc(&f, RF_PIX_YUV420P, 64, 48), RF_OK);
    fill_frame(&f, 0);
    rf_rect all = {0, 0, 64, 48};
    assert_int_equal(rf_comp_render(c, &f, NULL, 0, &all, 1), RF_OK);
    uint8_t y, u, v;
    rf_rgb_to_yuv709(30, 120, 200, &y, &u, &v);
    for (int j = 0; j < 48; j++)
        for (int i = 0; i < 64; i++)
            assert_int_equal(fy(&f, i, j), y);
    for (int j = 0; j < 24; j++)
        for (int i = 0; i < 32; i++) {
            assert_int_equal(fc(&f, 0, i, j), u);
            assert_int_equal(fc(&f, 1, i, j), v);
        }
    rf_frame_release(&f);
    rf_comp_free(&c);
    assert_null(c);
    rf_comp_free(&c); /* NULL-safe */
}

static void
check_opaque_box(rf_pixfmt fmt)
{
    const int W = 64, H = 48, LX = 8, LY = 4, LW = 10, LH = 6;
    rf_compositor *c = make_comp(fmt, W, H, 0, 0, 255);
    int idx = add_solid_layer(c, LW, LH, argb(255, 255, 0, 0));
    assert_int_equal(idx, 0);
    rf_frame f;
    assert_int_equal(rf_frame_alloc(&f, fmt, W, H), RF_OK);
    rf_layer_state st = {.layer = idx, .x = LX, .y = LY, .opacity = 255};
    rf_rect all = {0, 0, W, H};
    assert_int_equal(rf_comp_render(c, &f, &st, 1, &all, 1), RF_OK);
    uint8_t ry, ru, rv, by, bu, bv;
    rf_rgb_to_yuv709(255, 0, 0, &ry, &ru, &rv);
    rf_rgb_to_yuv709(0, 0, 255, &by, &bu, &bv);
    for (int j = 0; j < H; j++)
        for (int i = 0; i < W; i++) {
            bool in = i >= LX && i < LX + LW && j >= LY && j < LY + LH;
            assert_int_equal(fy(&f, i, j), in ? ry : by);
        }
    for (int j = 0; j < H / 2; j++)
        for (int i = 0; i < W / 2; i++) {
            bool in = i >= LX / 2 && i < (LX + LW) / 2 && j >= LY / 2 && j < (LY + LH) / 2;
            assert_int_equal(fc(&f, 0, i, j), in ? ru : bu);
            assert_int_equal(fc(&f, 1, i, j), in ? rv : bv);
        }
    rf_frame_release(&f);
    rf_comp_free(&c);
}

static void
test_opaque_layer_exact(void **state)
{
    (void)state;
    check_opaque_box(RF_PIX_YUV420P);
    check_opaque_box(RF_PIX_NV12);
}

static void
test_half_opacity_mix(void **state)
{
    (void)state;
    const int W = 32, H = 32;
    rf_compositor *c = make_comp(RF_PIX_YUV420P, W, H, 20, 40, 60);
    int idx = add_solid_layer(c, 16, 16, argb(255, 240, 200, 10));
    rf_frame f;
    assert_int_equal(rf_frame_alloc(&f, RF_PIX_YUV420P, W, H), RF_OK);
    rf_layer_state st = {.layer = idx, .x = 8, .y = 8, .opacity = 128};
    rf_rect all = {0, 0, W, H};
    assert_int_equal(rf_comp_render(c, &f, &st, 1, &all, 1), RF_OK);
    uint8_t ly, lu, lv, by, bu, bv;
    rf_rgb_to_yuv709(240, 200, 10, &ly, &lu, &lv);
    rf_rgb_to_yuv709(20, 40, 60, &by, &bu, &bv);
    double k = 128.0 / 255.0;
    assert_true(fabs(fy(&f, 12, 12) - (ly * k + by * (1 - k))) <= 1.0);
    assert_true(fabs(fc(&f, 0, 6, 6) - (lu * k + bu * (1 - k))) <= 1.0);
    assert_true(fabs(fc(&f, 1, 6, 6) - (lv * k + bv * (1 - k))) <= 1.0);
    assert_int_equal(fy(&f, 2, 2), by);
    /* opacity 0 shows the background only */
    st.opacity = 0;
    assert_int_equal(rf_comp_render(c, &f, &st, 1, &all, 1), RF_OK);
    assert_int_equal(fy(&f, 12, 12), by);
    rf_frame_release(&f);
    rf_comp_free(&c);
}

static void
test_clipping(void **state)
{
    (void)state;
    const int W = 40, H = 30;
    rf_compositor *c = make_comp(RF_PIX_YUV420P, W, H, 0, 0, 0);
    int idx = add_solid_layer(c, 12, 10, argb(255, 255, 255, 255));
    rf_frame f;
    assert_int_equal(rf_frame_alloc(&f, RF_PIX_YUV420P, W, H), RF_OK);
    rf_rect all = {0, 0, W, H};
    /* top-left, partly off-frame; x -5 rounds down to -6, y -3 to -4 */
    rf_layer_state st[2] = {{.layer = idx, .x = -5, .y = -3, .opacity = 255},
                            {.layer = idx, .x = W - 4, .y = H - 2, .opacity = 255}};
    assert_int_equal(rf_comp_render(c, &f, st, 2, &all, 1), RF_OK);
    for (int j = 0; j < H; j++)
        for (int i = 0; i < W; i++) {
            bool in = (i < 6 && j < 6) || (i >= W - 4 && j >= H - 2);
            assert_int_equal(fy(&f, i, j), in ? 235 : 16);
        }
    /* entirely outside the frame: nothing drawn, no crash */
    rf_layer_state far[3] = {{.layer = idx, .x = -1000000, .y = 5, .opacity = 255},
                             {.layer = idx, .x = W, .y = 0, .opacity = 255},
                             {.layer = idx, .x = 2147483600, .y = 2147483600, .opacity = 255}};
    assert_int_equal(rf_comp_render(c, &f, far, 3, &all, 1), RF_OK);
    for (int j = 0; j < H; j++)
        for (int i = 0; i < W; i++)
            assert_int_equal(fy(&f, i, j), 16);
    /* an unknown layer index is refused */
    rf_layer_state bad = {.layer = 7, .x = 0, .y = 0, .opacity = 255};
    assert_int_equal(rf_comp_render(c, &f, &bad, 1, &all, 1), RF_EINVAL);
    rf_frame_release(&f);
    rf_comp_free(&c);
}

static void
test_dirty_rect_leaves_rest(void **state)
{
    (void)state;
    const int W = 48, H = 40;
    rf_compositor *c = make_comp(RF_PIX_NV12, W, H, 200, 10, 10);
    int idx = add_solid_layer(c, 30, 30, argb(255, 0, 255, 0));
    rf_frame f;
    assert_int_equal(rf_frame_alloc(&f, RF_PIX_NV12, W, H), RF_OK);
    fill_frame(&f, 0xAB);
    /* odd rect: expands to x 10..32, y 8..22 */
    rf_rect r = {11, 9, 20, 13};
    rf_layer_state st = {.layer = idx, .x = 20, .y = 14, .opacity = 255};
    assert_int_equal(rf_comp_render(c, &f, &st, 1, &r, 1), RF_OK);
    uint8_t gy, by;
    rf_rgb_to_yuv709(0, 255, 0, &gy, NULL, NULL);
    rf_rgb_to_yuv709(200, 10, 10, &by, NULL, NULL);
    for (int j = 0; j < H; j++)
        for (int i = 0; i < W; i++) {
            bool in_rect = i >= 10 && i < 32 && j >= 8 && j < 22;
            bool in_layer = i >= 20 && j >= 14;
            uint8_t want = !in_rect ? 0xAB : in_layer ? gy : by;
            assert_int_equal(fy(&f, i, j), want);
        }
    for (int j = 0; j < H / 2; j++)
        for (int i = 0; i < W / 2; i++) {
            bool in_rect = i >= 5 && i < 16 && j >= 4 && j < 11;
            if (!in_rect) {
                assert_int_equal(fc(&f, 0, i, j), 0xAB);
                assert_int_equal(fc(&f, 1, i, j), 0xAB);
            } else {
                assert_int_not_equal(fc(&f, 0, i, j), 0xAB);
            }
        }
    /* rects outside the frame or empty do nothing */
    fill_frame(&f, 0xAB);
    rf_rect none[3] = {{-50, -50, 10, 10}, {W, 0, 10, 10}, {5, 5, 0, 7}};
    assert_int_equal(rf_comp_render(c, &f, &st, 1, none, 3), RF_OK);
    for (int j = 0; j < H; j++)
        for (int i = 0; i < W; i++)
            assert_int_equal(fy(&f, i, j), 0xAB);
    rf_frame_release(&f);
    rf_comp_free(&c);
}

static void
test_odd_texture(void **state)
{
    (void)state;
    const int W = 24, H = 24;
    rf_compositor *c = make_comp(RF_PIX_YUV420P, W, H, 0, 0, 0);
    int idx = add_solid_layer(c, 7, 5, argb(255, 255, 255, 255)); /* padded to 8x6 */
    rf_frame f;
    assert_int_equal(rf_frame_alloc(&f, RF_PIX_YUV420P, W, H), RF_OK);
    rf_layer_state st = {.layer = idx, .x = 4, .y = 2, .opacity = 255};
    rf_rect all = {0, 0, W, H};
    assert_int_equal(rf_comp_render(c, &f, &st, 1, &all, 1), RF_OK);
    for (int j = 0; j < H; j++)
        for (int i = 0; i < W; i++) {
            bool in = i >= 4 && i < 11 && j >= 2 && j < 7;
            assert_int_equal(fy(&f, i, j), in ? 235 : 16);
        }
    /* white over black, chroma stays neutral everywhere (padding included) */
    for (int j = 0; j < H / 2; j++)
        for (int i = 0; i < W / 2; i++)
            assert_int_equal(fc(&f, 0, i, j), 128);
    rf_frame_release(&f);
    rf_comp_free(&c);
}

/* A hand-made texture that breaks the premultiplied invariant (y > a) is
 * clamped on add, so the blend cannot wrap around. */
static void
test_invalid_texture_clamped(void **state)
{
    (void)state;
    rf_compositor *c = make_comp(RF_PIX_YUV420P, 16, 16, 255, 255, 255);
    rf_layer_tex t;
    assert_int_equal(rf_layer_tex_alloc(&t, 4, 4), RF_OK);
    memset(t.y, 250, (size_t)t.y_pitch * 4);
    memset(t.a, 10, (size_t)t.y_pitch * 4);
    int idx;
    assert_int_equal(rf_comp_add_layer(c, &t, &idx), RF_OK);
    rf_frame f;
    assert_int_equal(rf_frame_alloc(&f, RF_PIX_YUV420P, 16, 16), RF_OK);
    rf_layer_state st = {.layer = idx, .x = 0, .y = 0, .opacity = 255};
    rf_rect all = {0, 0, 16, 16};
    assert_int_equal(rf_comp_render(c, &f, &st, 1, &all, 1), RF_OK);
    /* clamped to y = a = 10: 10 + round(235 * 245 / 255) = 236 */
    assert_int_equal(fy(&f, 1, 1), 236);
    rf_layer_tex_release(&t);
    rf_frame_release(&f);
    rf_comp_free(&c);
}

static void
test_nv12_equals_yuv420p(void **state)
{
    (void)state;
    const int W = 50, H = 34;
    rf_compositor *a = make_comp(RF_PIX_YUV420P, W, H, 90, 30, 160);
    rf_compositor *b = make_comp(RF_PIX_NV12, W, H, 90, 30, 160);
    int stride;
    uint8_t *img = solid_argb(21, 13, argb(200, 10, 150, 190), &stride);
    /* give it some alpha structure */
    for (int j = 0; j < 13; j++)
        for (int i = 0; i < 21; i++)
            if ((i + j) % 3 == 0)
                memset(img + (size_t)j * (size_t)stride + 4 * (size_t)i, 0, 4);
    rf_layer_tex t;
    assert_int_equal(rf_layer_from_argb32(img, 21, 13, stride, &t), RF_OK);
    int ia, ib;
    assert_int_equal(rf_comp_add_layer(a, &t, &ia), RF_OK);
    assert_int_equal(rf_comp_add_layer(b, &t, &ib), RF_OK);
    rf_frame fa, fb;
    assert_int_equal(rf_frame_alloc(&fa, RF_PIX_YUV420P, W, H), RF_OK);
    assert_int_equal(rf_frame_alloc(&fb, RF_PIX_NV12, W, H), RF_OK);
    rf_layer_state st[2] = {{.layer = ia, .x = 3, .y = 7, .opacity = 255},
                            {.layer = ia, .x = 30, .y = 25, .opacity = 77}};
    rf_rect all = {0, 0, W, H};
    assert_int_equal(rf_comp_render(a, &fa, st, 2, &all, 1), RF_OK);
    assert_int_equal(rf_comp_render(b, &fb, st, 2, &all, 1), RF_OK);
    for (int j = 0; j < H; j++)
        for (int i = 0; i < W; i++)
            assert_int_equal(fy(&fa, i, j), fy(&fb, i, j));
    for (int j = 0; j < H / 2; j++)
        for (int i = 0; i < W / 2; i++) {
            assert_int_equal(fc(&fa, 0, i, j), fc(&fb, 0, i, j));
            assert_int_equal(fc(&fa, 1, i, j), fc(&fb, 1, i, j));
        }
    free(img);
    rf_layer_tex_release(&t);
    rf_frame_release(&fa);
    rf_frame_release(&fb);
    rf_comp_free(&a);
    rf_comp_free(&b);
}

/* ------------------------------------------------ randomised vs reference */

static uint32_t
rnd(uint64_t *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(*s >> 33);
}

static int
rnd_range(uint64_t *s, int lo, int hi) /* inclusive */
{
    return lo + (int)(rnd(s) % (uint32_t)(hi - lo + 1));
}

static int
floor_even(int v)
{
    return (int)floor(v / 2.0) * 2;
}

/* round(x / 255) written the obvious way */
static unsigned
ref_div(unsigned x)
{
    return (x + 127) / 255;
}

static unsigned
ref_blend(unsigned d, unsigned s, unsigned a, unsigned op)
{
    unsigned eff = ref_div(a * op);
    return ref_div(s * op) + ref_div(d * (255 - eff));
}

static uint8_t *
ref_sample(rf_frame *f, int plane, int x, int y)
{
    if (plane == 0)
        return &f->data[0][(size_t)y * (size_t)f->linesize[0] + (size_t)x];
    if (f->fmt == RF_PIX_NV12)
        return &f->data[1][(size_t)y * (size_t)f->linesize[1] + 2 * (size_t)x + (size_t)plane - 1];
    return &f->data[plane][(size_t)y * (size_t)f->linesize[plane] + (size_t)x];
}

static void
random_case(uint64_t *seed, rf_pixfmt fmt)
{
    int W = 2 * rnd_range(seed, 8, 48), H = 2 * rnd_range(seed, 8, 40);
    /* background: random opaque image */
    int bstride = 4 * W;
    uint8_t *bimg = malloc((size_t)bstride * (size_t)H);
    assert_non_null(bimg);
    for (int i = 0; i < W * H; i++) {
        uint32_t px = argb(255, rnd(seed) & 255, rnd(seed) & 255, rnd(seed) & 255);
        memcpy(bimg + 4 * (size_t)i, &px, 4);
    }
    rf_frame bg, out, ref;
    assert_int_equal(rf_frame_alloc(&bg, RF_PIX_YUV420P, W, H), RF_OK);
    assert_int_equal(rf_frame_from_argb32(bimg, bstride, &bg), RF_OK);
    rf_compositor *c = NULL;
    assert_int_equal(rf_comp_create("cpu", W, H, fmt, &c), RF_OK);
    assert_int_equal(rf_comp_set_background(c, &bg), RF_OK);

    enum { NL = 4 };
    rf_layer_tex tex[NL];
    for (int l = 0; l < NL; l++) {
        int lw = rnd_range(seed, 1, 41), lh = rnd_range(seed, 1, 33);
        uint8_t *img = malloc(4 * (size_t)lw * (size_t)lh);
        assert_non_null(img);
        for (int i = 0; i < lw * lh; i++) {
            unsigned a = rnd(seed) % 4 == 0 ? 0 : rnd(seed) % 4 == 0 ? 255 : rnd(seed) & 255;
            uint32_t px = argb(a, rnd(seed) % (a + 1), rnd(seed) % (a + 1), rnd(seed) % (a + 1));
            memcpy(img + 4 * (size_t)i, &px, 4);
        }
        assert_int_equal(rf_layer_from_argb32(img, lw, lh, 4 * lw, &tex[l]), RF_OK);
        int idx;
        assert_int_equal(rf_comp_add_layer(c, &tex[l], &idx), RF_OK);
        assert_int_equal(idx, l);
        free(img);
    }
    enum { NS = 6 };
    rf_layer_state st[NS];
    for (int k = 0; k < NS; k++) {
        st[k].layer = rnd_range(seed, 0, NL - 1);
        st[k].x = rnd_range(seed, -45, W + 5);
        st[k].y = rnd_range(seed, -37, H + 5);
        int o = rnd_range(seed, 0, 5);
        st[k].opacity = (uint8_t)(o == 0 ? 255 : o == 1 ? 0 : rnd(seed) & 255);
    }
    int nd = rnd_range(seed, 1, 3);
    rf_rect dirty[3];
    for (int k = 0; k < nd; k++)
        dirty[k] = (rf_rect){rnd_range(seed, -10, W), rnd_range(seed, -10, H),
                             rnd_range(seed, 0, W + 10), rnd_range(seed, 0, H + 10)};

    /* both start from the same random "previous frame" */
    assert_int_equal(rf_frame_alloc(&out, fmt, W, H), RF_OK);
    assert_int_equal(rf_frame_alloc(&ref, fmt, W, H), RF_OK);
    for (int p = 0; p < 3; p++) {
        int pw = p == 0 ? W : W / 2, ph = p == 0 ? H : H / 2;
        for (int y = 0; y < ph; y++)
            for (int x = 0; x < pw; x++) {
                uint8_t v = (uint8_t)rnd(seed);
                *ref_sample(&out, p, x, y) = v;
                *ref_sample(&ref, p, x, y) = v;
            }
    }
    assert_int_equal(rf_comp_render(c, &out, st, NS, dirty, nd), RF_OK);

    /* reference, one sample at a time */
    for (int k = 0; k < nd; k++) {
        int x0 = dirty[k].x < 0 ? 0 : dirty[k].x, y0 = dirty[k].y < 0 ? 0 : dirty[k].y;
        int x1 = dirty[k].x + dirty[k].w > W ? W : dirty[k].x + dirty[k].w;
        int y1 = dirty[k].y + dirty[k].h > H ? H : dirty[k].y + dirty[k].h;
        if (dirty[k].w <= 0 || dirty[k].h <= 0 || x1 <= x0 || y1 <= y0)
            continue;
        x0 = floor_even(x0), y0 = floor_even(y0);
        x1 = x1 % 2 ? x1 + 1 : x1, y1 = y1 % 2 ? y1 + 1 : y1;
        for (int p = 0; p < 3; p++) {
            int sh = p == 0 ? 0 : 1;
            for (int y = y0 >> sh; y < y1 >> sh; y++)
                for (int x = x0 >> sh; x < x1 >> sh; x++) {
                    unsigned d = *ref_sample(&bg, p, x, y);
                    for (int s = 0; s < NS; s++) {
                        const rf_layer_tex *t = &tex[st[s].layer];
                        int tx = x - (floor_even(st[s].x) >> sh);
                        int ty = y - (floor_even(st[s].y) >> sh);
                        int tw = t->width >> sh, th = t->height >> sh;
                        if (tx < 0 || ty < 0 || tx >= tw || ty >= th)
                            continue;
                        unsigned sv, av;
                        if (p == 0) {
                            sv = t->y[ty * t->y_pitch + tx];
                            av = t->a[ty * t->y_pitch + tx];
                        } else {
                            sv = (p == 1 ? t->u : t->v)[ty * t->c_pitch + tx];
                            av = t->ca[ty * t->c_pitch + tx];
                        }
                        d = ref_blend(d, sv, av, st[s].opacity);
                        assert_true(d <= 255);
                    }
                    *ref_sample(&ref, p, x, y) = (uint8_t)d;
                }
        }
    }
    for (int p = 0; p < 3; p++) {
        int pw = p == 0 ? W : W / 2, ph = p == 0 ? H : H / 2;
        for (int y = 0; y < ph; y++)
            for (int x = 0; x < pw; x++)
                assert_int_equal(*ref_sample(&out, p, x, y), *ref_sample(&ref, p, x, y));
    }
    for (int l = 0; l < NL; l++)
        rf_layer_tex_release(&tex[l]);
    rf_frame_release(&bg);
    rf_frame_release(&out);
    rf_frame_release(&ref);
    rf_comp_free(&c);
    free(bimg);
}

static void
test_random_vs_reference(void **state)
{
    (void)state;
    uint64_t seed = 0x5eed1234abcdULL;
    for (int i = 0; i < 150; i++) {
        random_case(&seed, RF_PIX_YUV420P);
        random_case(&seed, RF_PIX_NV12);
    }
}

/* The shift trick equals round(x / 255) over the whole 16-bit range: the
 * claim the blend formula (and the CUDA twin copying it) rests on. */
static void
test_div255_exact(void **state)
{
    (void)state;
    for (unsigned x = 0; x <= 65535; x++)
        assert_int_equal(rf_div255(x), (x + 127) / 255);
}

static void
test_rect_helpers(void **state)
{
    (void)state;
    rf_rect o;
    assert_true(rf_rect_intersect((rf_rect){0, 0, 10, 10}, (rf_rect){5, 6, 10, 10}, &o));
    assert_int_equal(o.x, 5);
    assert_int_equal(o.y, 6);
    assert_int_equal(o.w, 5);
    assert_int_equal(o.h, 4);
    assert_false(rf_rect_intersect((rf_rect){0, 0, 10, 10}, (rf_rect){10, 0, 5, 5}, &o));
    assert_int_equal(o.w, 0);
    assert_false(rf_rect_intersect((rf_rect){0, 0, 0, 10}, (rf_rect){0, 0, 5, 5}, &o));
    rf_rect u = rf_rect_union((rf_rect){2, 3, 4, 5}, (rf_rect){10, 1, 2, 2});
    assert_int_equal(u.x, 2);
    assert_int_equal(u.y, 1);
    assert_int_equal(u.w, 10);
    assert_int_equal(u.h, 7);
    u = rf_rect_union((rf_rect){0, 0, 0, 0}, (rf_rect){4, 4, 2, 2});
    assert_int_equal(u.x, 4);
    assert_int_equal(u.w, 2);
}

static void
test_bad_arguments(void **state)
{
    (void)state;
    rf_compositor *c = NULL;
    assert_int_equal(rf_comp_create("cpu", 15, 16, RF_PIX_NV12, &c), RF_EINVAL);
    assert_null(c);
    assert_int_equal(rf_comp_create("vulkan", 16, 16, RF_PIX_NV12, &c), RF_EINVAL);
    assert_int_equal(rf_comp_create(NULL, 16, 16, RF_PIX_NV12, &c), RF_EINVAL);
#ifndef RF_HAVE_CUDA
    assert_int_equal(rf_comp_create("cuda", 16, 16, RF_PIX_NV12, &c), RF_EUNSUPPORTED);
    assert_null(c);
#endif
    assert_int_equal(rf_comp_create("cpu", 16, 16, RF_PIX_NV12, &c), RF_OK);
    rf_frame f;
    assert_int_equal(rf_frame_alloc(&f, RF_PIX_YUV420P, 16, 16), RF_OK);
    rf_rect all = {0, 0, 16, 16};
    assert_int_equal(rf_comp_render(c, &f, NULL, 0, &all, 1), RF_EINVAL); /* wrong format */
    rf_frame_release(&f);
    assert_int_equal(rf_frame_alloc(&f, RF_PIX_NV12, 18, 16), RF_OK);
    assert_int_equal(rf_comp_render(c, &f, NULL, 0, &all, 1), RF_EINVAL); /* wrong size */
    assert_int_equal(rf_comp_set_background(c, &f), RF_EINVAL);
    rf_frame_release(&f);
    rf_layer_tex t = {0};
    int idx;
    assert_int_equal(rf_comp_add_layer(c, &t, &idx), RF_EINVAL);
    assert_int_equal(rf_frame_alloc(&f, RF_PIX_NV12, 0, 16), RF_EINVAL);
    rf_comp_free(&c);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_colours),
        cmocka_unit_test(test_conversion_matches_float),
        cmocka_unit_test(test_layer_from_argb32_premultiplied),
        cmocka_unit_test(test_background_exact),
        cmocka_unit_test(test_opaque_layer_exact),
        cmocka_unit_test(test_half_opacity_mix),
        cmocka_unit_test(test_clipping),
        cmocka_unit_test(test_dirty_rect_leaves_rest),
        cmocka_unit_test(test_odd_texture),
        cmocka_unit_test(test_invalid_texture_clamped),
        cmocka_unit_test(test_nv12_equals_yuv420p),
        cmocka_unit_test(test_random_vs_reference),
        cmocka_unit_test(test_div255_exact),
        cmocka_unit_test(test_rect_helpers),
        cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
