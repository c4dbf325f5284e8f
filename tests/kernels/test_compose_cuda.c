/* The CUDA compositor against the CPU reference, the oracle: random layers
 * (odd texture sizes, premultiplied), random placements partly off-frame,
 * random opacities, random dirty rects, both pixel formats, frame sizes with
 * odd halves. Every sample must be within RF_COMPOSE_TOLERANCE, and samples
 * outside the dirty rects must be left untouched by both.
 * Exits 77 (skipped) where no CUDA device is usable, and says so. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rf_compose.h"

static uint32_t rng = 12345;

static uint32_t
next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return rng;
}

static int
rnd(int lo, int hi)
{
    return lo + (int)(next() % (uint32_t)(hi - lo + 1));
}

/* A random premultiplied ARGB32 image with transparent, partial and opaque
 * areas, converted the way the agent converts text. */
static void
random_layer(int w, int h, rf_layer_tex *tex)
{
    uint32_t *px = malloc((size_t)w * (size_t)h * 4);
    assert_non_null(px);
    for (int i = 0; i < w * h; i++) {
        uint32_t a = (uint32_t)rnd(0, 3) == 0 ? 0 : (uint32_t)rnd(0, 255);
        uint32_t r = (uint32_t)rnd(0, 255) * a / 255, g = (uint32_t)rnd(0, 255) * a / 255,
                 b = (uint32_t)rnd(0, 255) * a / 255;
        px[i] = a << 24 | r << 16 | g << 8 | b;
    }
    assert_int_equal(rf_layer_from_argb32((const uint8_t *)px, w, h, w * 4, tex), RF_OK);
    free(px);
}

static void
fill_frame(rf_frame *f, uint8_t v)
{
    memset(f->data[0], v, (size_t)f->linesize[0] * (size_t)f->height);
    memset(f->data[1], v, (size_t)f->linesize[1] * (size_t)(f->height / 2));
    if (f->fmt == RF_PIX_YUV420P)
        memset(f->data[2], v, (size_t)f->linesize[2] * (size_t)(f->height / 2));
}

static int
max_diff(const rf_frame *a, const rf_frame *b)
{
    int worst = 0;
    int planes = a->fmt == RF_PIX_NV12 ? 2 : 3;
    for (int p = 0; p < planes; p++) {
        int wb = p == 0 || a->fmt == RF_PIX_NV12 ? a->width : a->width / 2;
        int h = p == 0 ? a->height : a->height / 2;
        for (int y = 0; y < h; y++) {
            const uint8_t *ra = a->data[p] + (size_t)y * (size_t)a->linesize[p];
            const uint8_t *rb = b->data[p] + (size_t)y * (size_t)b->linesize[p];
            for (int x = 0; x < wb; x++) {
                int d = abs((int)ra[x] - (int)rb[x]);
                if (d > worst)
                    worst = d;
            }
        }
    }
    return worst;
}

static void
compare_once(rf_pixfmt fmt, int w, int h)
{
    rf_compositor *cpu = NULL, *gpu = NULL;
    rf_frame bg, out_cpu, out_gpu_host, dev;
    enum { N_LAYERS = 6, N_STATES = 40 };
    rf_layer_tex tex[N_LAYERS];
    rf_layer_state st[N_STATES];
    rf_rect rects[3];

    assert_int_equal(rf_comp_create("cpu", w, h, fmt, &cpu), RF_OK);
    assert_int_equal(rf_comp_create("cuda", w, h, fmt, &gpu), RF_OK);
    assert_string_equal(rf_comp_backend(gpu), "cuda");

    /* Background: a gradient-ish random frame in YUV420P (the agent's). */
    assert_int_equal(rf_frame_alloc(&bg, RF_PIX_YUV420P, w, h), RF_OK);
    for (int p = 0; p < 3; p++) {
        int pw = p ? w / 2 : w, ph = p ? h / 2 : h;
        for (int y = 0; y < ph; y++)
            for (int x = 0; x < pw; x++)
                bg.data[p][(size_t)y * (size_t)bg.linesize[p] + (size_t)x] =
                    (uint8_t)(16 + (x * 7 + y * 3 + rnd(0, 9)) % 220);
    }
    assert_int_equal(rf_comp_set_background(cpu, &bg), RF_OK);
    assert_int_equal(rf_comp_set_background(gpu, &bg), RF_OK);

    for (int i = 0; i < N_LAYERS; i++) {
        int idx_c, idx_g;
        random_layer(rnd(1, w / 2) | 1, rnd(1, h / 2) | 1, &tex[i]);
        assert_int_equal(rf_comp_add_layer(cpu, &tex[i], &idx_c), RF_OK);
        assert_int_equal(rf_comp_add_layer(gpu, &tex[i], &idx_g), RF_OK);
        assert_int_equal(idx_c, idx_g);
    }
    /* More states than one CUDA pass takes (32), layers repeated. */
    for (int i = 0; i < N_STATES; i++) {
        st[i].layer = rnd(0, N_LAYERS - 1);
        st[i].x = rnd(-w / 3, w);
        st[i].y = rnd(-h / 3, h);
        st[i].opacity = (uint8_t)(rnd(0, 2) == 0 ? 255 : rnd(0, 255));
    }
    rects[0] = (rf_rect){rnd(-10, w / 2), rnd(-10, h / 2), rnd(1, w), rnd(1, h)};
    rects[1] = (rf_rect){rnd(0, w - 2) | 1, rnd(0, h - 2) | 1, rnd(1, w / 3), rnd(1, h / 3)};
    rects[2] = (rf_rect){0, 0, w, h};
    int n_rects = rnd(1, 3);

    assert_int_equal(rf_frame_alloc(&out_cpu, fmt, w, h), RF_OK);
    assert_int_equal(rf_frame_alloc(&out_gpu_host, fmt, w, h), RF_OK);
    assert_int_equal(rf_comp_frame_alloc(gpu, &dev), RF_OK);
    fill_frame(&out_cpu, 7);
    fill_frame(&out_gpu_host, 7);

    /* A full-frame render of the background first (the device frame has no
     * defined content yet), then the dirty rects over it: outside the rects
     * both keep the background, inside both blend. */
    rf_rect all = {0, 0, w, h};
    assert_int_equal(rf_comp_render(cpu, &out_cpu, NULL, 0, &all, 1), RF_OK);
    assert_int_equal(rf_comp_render(gpu, &dev, NULL, 0, &all, 1), RF_OK);
    assert_int_equal(rf_comp_render(cpu, &out_cpu, st, N_STATES, rects, n_rects), RF_OK);
    assert_int_equal(rf_comp_render(gpu, &dev, st, N_STATES, rects, n_rects), RF_OK);
    assert_int_equal(rf_comp_download(gpu, &dev, &out_gpu_host, &all, 1), RF_OK);

    int d = max_diff(&out_cpu, &out_gpu_host);
    if (d > RF_COMPOSE_TOLERANCE)
        fail_msg("%s %dx%d: max |cuda - cpu| = %d > %d", fmt == RF_PIX_NV12 ? "nv12" : "yuv420p", w,
                 h, d, RF_COMPOSE_TOLERANCE);

    rf_comp_frame_free(gpu, &dev);
    rf_frame_release(&out_cpu);
    rf_frame_release(&out_gpu_host);
    rf_frame_release(&bg);
    for (int i = 0; i < N_LAYERS; i++)
        rf_layer_tex_release(&tex[i]);
    rf_comp_free(&cpu);
    rf_comp_free(&gpu);
}

static void
test_cuda_matches_cpu(void **state)
{
    (void)state;
    static const int sizes[][2] = {{64, 36}, {642, 362}, {1920, 1080}, {1082, 1922}, {18, 14}};
    for (int rep = 0; rep < 8; rep++)
        for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
            compare_once(RF_PIX_YUV420P, sizes[i][0], sizes[i][1]);
            compare_once(RF_PIX_NV12, sizes[i][0], sizes[i][1]);
        }
}

/* Only the rects cross to the host: samples elsewhere keep their value. */
static void
test_download_touches_only_rects(void **state)
{
    (void)state;
    rf_compositor *gpu = NULL;
    rf_frame bg, dev, host;
    int w = 256, h = 128;

    assert_int_equal(rf_comp_create("cuda", w, h, RF_PIX_YUV420P, &gpu), RF_OK);
    assert_int_equal(rf_frame_alloc(&bg, RF_PIX_YUV420P, w, h), RF_OK);
    fill_frame(&bg, 100);
    assert_int_equal(rf_comp_set_background(gpu, &bg), RF_OK);
    assert_int_equal(rf_comp_frame_alloc(gpu, &dev), RF_OK);
    rf_rect all = {0, 0, w, h}, part = {32, 16, 64, 32};
    assert_int_equal(rf_comp_render(gpu, &dev, NULL, 0, &all, 1), RF_OK);
    assert_int_equal(rf_frame_alloc(&host, RF_PIX_YUV420P, w, h), RF_OK);
    fill_frame(&host, 9);
    assert_int_equal(rf_comp_download(gpu, &dev, &host, &part, 1), RF_OK);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            int inside = x >= 32 && x < 96 && y >= 16 && y < 48;
            assert_int_equal(host.data[0][(size_t)y * (size_t)host.linesize[0] + (size_t)x],
                             inside ? 100 : 9);
        }
    rf_comp_frame_free(gpu, &dev);
    rf_frame_release(&bg);
    rf_frame_release(&host);
    rf_comp_free(&gpu);
}

/* The agent sizes its GPU work from this: real numbers, and a frame
 * allocation shows in them. */
static void
test_gpu_memory(void **state)
{
    size_t free0 = 0, total = 0, free1 = 0, total1 = 0;
    rf_compositor *c = NULL;
    rf_frame big = {0};
    (void)state;

    assert_int_equal(rf_comp_gpu_memory(&free0, &total), RF_OK);
    assert_true(total > 0 && free0 > 0 && free0 <= total);
    assert_int_equal(rf_comp_create("cuda", 3840, 2160, RF_PIX_YUV420P, &c), RF_OK);
    assert_int_equal(rf_comp_frame_alloc(c, &big), RF_OK);
    assert_int_equal(rf_comp_gpu_memory(&free1, &total1), RF_OK);
    assert_true(total1 == total && free1 < free0); /* at least the 12 MB frame */
    rf_comp_frame_free(c, &big);
    rf_comp_free(&c);
}

int
main(void)
{
    rf_compositor *probe = NULL;
    rf_err rv = rf_comp_create("cuda", 64, 64, RF_PIX_YUV420P, &probe);
    if (rv != RF_OK) {
        printf("SKIP: no usable CUDA device (%s): the CUDA compositor is compared with the CPU "
               "reference only on a GPU host\n",
               rf_strerror(rv));
        return 77;
    }
    rf_comp_free(&probe);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cuda_matches_cpu),
        cmocka_unit_test(test_download_touches_only_rects),
        cmocka_unit_test(test_gpu_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
