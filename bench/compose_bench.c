/* Compositor throughput: frames per second of rf_comp_render on the CPU
 * backend at 1080p and 2160p (NV12, the encoders' format), for
 *   full:    the whole frame dirty, an image-sized layer under 4 text layers
 *   typical: one caption-sized dirty rect (what most frames of a video are)
 * Textures are synthetic but shaped like real ones (text with and without a
 * box, an opaque picture): blending cost depends on the area and on how much
 * of it has non-zero alpha, not on what the glyphs look like.
 * Usage: bench_compose [seconds per figure, default 1.5] */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rf_compose.h"

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void
put(uint8_t *img, int stride, int x, int y, uint32_t px)
{
    memcpy(img + (size_t)y * (size_t)stride + 4 * (size_t)x, &px, 4);
}

/* Premultiplied ARGB32: text-like strokes (white, antialiased edges) on a
 * translucent rounded box or on nothing, or an opaque picture. */
enum kind { TEXT_PLAIN, TEXT_BOXED, PICTURE };

static rf_err
make_layer(rf_compositor *c, enum kind k, int w, int h, int *index)
{
    int stride = 4 * w;
    uint8_t *img = calloc((size_t)stride, (size_t)h);
    if (img == NULL)
        return RF_ENOMEM;
    int line_h = h / 2 > 8 ? h / 2 : 8; /* two text lines */
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint32_t px = 0;
            if (k == PICTURE) {
                uint32_t r = (uint32_t)(x * 255 / w), g = (uint32_t)(y * 255 / h);
                px = 0xFF000000u | r << 16 | g << 8 | ((r ^ g) & 255);
            } else {
                int ly = y % line_h, cx = x % 23;
                bool glyph_row = ly > line_h / 5 && ly < line_h * 4 / 5;
                bool stroke = glyph_row && (cx < 3 || (cx > 9 && cx < 12) || ly % 7 < 2) &&
                              (x / 23) % 6 != 5; /* word gaps */
                uint32_t a = stroke ? (cx == 0 || cx == 11 ? 128u : 255u) : 0u;
                if (k == TEXT_BOXED && a < 160) {
                    px = 0xA0000000u; /* translucent black box */
                    if (a > 0)
                        px = 0xFF000000u | 0x808080u;
                } else if (a > 0) {
                    px = a << 24 | a << 16 | a << 8 | a;
                }
            }
            put(img, stride, x, y, px);
        }
    rf_layer_tex tex;
    rf_err rv = rf_layer_from_argb32(img, w, h, stride, &tex);
    free(img);
    if (rv != RF_OK)
        return rv;
    rv = rf_comp_add_layer(c, &tex, index);
    rf_layer_tex_release(&tex);
    return rv;
}

static double
measure(rf_compositor *c, rf_frame *dst, const rf_layer_state *st, int n, const rf_rect *dirty,
        double seconds, rf_err *rv)
{
    int frames = 0;
    double t0 = now_s(), t;
    do {
        *rv = rf_comp_render(c, dst, st, n, dirty, 1);
        if (*rv != RF_OK)
            return 0;
        frames++;
        t = now_s();
    } while (t - t0 < seconds || frames < 3);
    return frames / (t - t0);
}

static int
run(const char *backend, const char *name, int scale, double seconds)
{
    const int W = 1920 * scale, H = 1080 * scale;
    rf_compositor *c = NULL;
    rf_frame bg = {0}, dst = {0};
    int rc = 1;
    rf_err rv = rf_comp_create(backend, W, H, RF_PIX_NV12, &c);
    if (rv == RF_EUNSUPPORTED) {
        printf("compose %s %s: unavailable on this host\n", backend, name);
        return 0;
    }
    if (rv != RF_OK)
        goto out;
    rv = rf_frame_alloc(&bg, RF_PIX_YUV420P, W, H);
    if (rv != RF_OK)
        goto out;
    rv = rf_comp_set_background(c, &bg);
    if (rv != RF_OK)
        goto out;
    /* The destination lives where the backend renders: device memory for
     * CUDA (kernel time, synchronised per frame), host memory for the CPU. */
    rv = rf_comp_frame_alloc(c, &dst);
    if (rv != RF_OK)
        goto out;
    /* paint order: picture, title, description, caption, corner label */
    static const struct {
        enum kind k;
        int x, y, w, h;
    } spec[5] = {
        {PICTURE, 320, 180, 1280, 720},    {TEXT_PLAIN, 260, 280, 1400, 220},
        {TEXT_PLAIN, 210, 540, 1500, 160}, {TEXT_BOXED, 210, 820, 1500, 200},
        {TEXT_PLAIN, 1480, 40, 400, 80},
    };
    rf_layer_state st[5];
    for (int i = 0; i < 5; i++) {
        rv = make_layer(c, spec[i].k, spec[i].w * scale, spec[i].h * scale, &st[i].layer);
        if (rv != RF_OK)
            goto out;
        st[i].x = spec[i].x * scale;
        st[i].y = spec[i].y * scale;
        st[i].opacity = i == 1 ? 200 : 255; /* one layer mid-fade */
    }
    rf_rect full = {0, 0, W, H};
    double fps = measure(c, &dst, st, 5, &full, seconds, &rv);
    if (rv != RF_OK)
        goto out;
    printf("compose %s %s full: %.1f frames/s (%.3f ms/frame)\n", backend, name, fps, 1000.0 / fps);
    rf_rect cap = {st[3].x, st[3].y, spec[3].w * scale, spec[3].h * scale};
    fps = measure(c, &dst, st, 5, &cap, seconds, &rv);
    if (rv != RF_OK)
        goto out;
    printf("compose %s %s typical: %.1f frames/s (%.3f ms/frame)\n", backend, name, fps,
           1000.0 / fps);
    rc = 0;
out:
    if (rv != RF_OK)
        fprintf(stderr, "bench_compose: %s: error %d\n", name, (int)rv);
    rf_frame_release(&bg);
    rf_comp_frame_free(c, &dst);
    rf_comp_free(&c);
    return rc;
}

int
main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 1.5;
    if (!(seconds > 0) || seconds > 60)
        seconds = 1.5;
    int rc = 0;
    static const char *const backends[] = {"cpu", "cuda"};
    for (int b = 0; b < 2; b++) {
        rc |= run(backends[b], "1080p", 1, seconds);
        rc |= run(backends[b], "2160p", 2, seconds);
    }
    return rc;
}
