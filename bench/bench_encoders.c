/* Encoder throughput per codec, backend and preset, through the agent's own
 * encoder module (rf_enc_open: the same settings, muxing and audio as a real
 * unit), one figure per line:
 *   bench_encoders [frames] [WxH]
 * Each row forces one backend by handing rf_enc_open a one-name list, so a
 * backend this host lacks prints "unavailable" with the reason. The picture
 * is a gradient background with a moving box and a changing caption-sized
 * band, redrawn like the compositor's dirty rects; audio is silence. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "encoder.h"
#include "rf_compose.h"
#include "rf_util.h"

typedef struct row {
    const char *codec, *backend, *preset, *container, *audio;
} row;

static const row rows[] = {
    {"h264", "libx264", "ultrafast", "mp4", "aac"},
    {"h264", "libx264", "veryfast", "mp4", "aac"},
    {"h264", "libx264", "medium", "mp4", "aac"},
    {"h264", "h264_nvenc", "ultrafast", "mp4", "aac"},
    {"h264", "h264_nvenc", "medium", "mp4", "aac"},
    {"h264", "h264_vaapi", "veryfast", "mp4", "aac"},
    {"h265", "libx265", "ultrafast", "mp4", "aac"},
    {"h265", "libx265", "veryfast", "mp4", "aac"},
    {"h265", "hevc_nvenc", "veryfast", "mp4", "aac"},
    {"h265", "hevc_vaapi", "veryfast", "mp4", "aac"},
    {"vp9", "libvpx-vp9", "ultrafast", "webm", "opus"},
    {"vp9", "libvpx-vp9", "veryfast", "webm", "opus"},
    {"vp9", "vp9_vaapi", "veryfast", "webm", "opus"},
};

/* Writes the picture of frame i into f: the background once, then only the
 * parts that move. */
static void
draw(rf_frame *f, int i, int w, int h)
{
    int bx = (i * 8) % (w - 256), by = h / 3;

    if (i == 0) {
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                f->data[0][(size_t)y * f->linesize[0] + x] =
                    (uint8_t)(16 + (x + y) * 200 / (w + h));
        for (int p = 1; p < 3; p++)
            for (int y = 0; y < h / 2; y++)
                memset(f->data[p] + (size_t)y * f->linesize[p], p == 1 ? 120 : 136, (size_t)w / 2);
    }
    for (int y = by; y < by + 256; y++) /* the moving box (leaves a trail, as text slides would) */
        memset(f->data[0] + (size_t)y * f->linesize[0] + bx, 235 - (i % 64), 256);
    for (int y = h - h / 8; y < h - h / 16; y++) /* the caption band, new words every 15 frames */
        for (int x = w / 8; x < w - w / 8; x++)
            f->data[0][(size_t)y * f->linesize[0] + x] =
                (uint8_t)(((x / 24 + i / 15) % 3) ? 40 : 220);
}

static int
bench_row(const row *r, int frames, int w, int h)
{
    char names[1][RF_NAME_MAX], path[256], err[512] = "";
    rf_enc_config cfg;
    rf_encoder *enc = NULL;
    float *silence = NULL;
    size_t per_frame = 48000 / 30;
    int64_t t0;
    rf_err rv;

    snprintf(names[0], sizeof(names[0]), "%s", r->backend);
    snprintf(path, sizeof(path), "/tmp/rf-bench-enc-%d.%s", (int)getpid(), r->container);
    memset(&cfg, 0, sizeof(cfg));
    cfg.path = path;
    cfg.container = r->container;
    cfg.video_codec = r->codec;
    cfg.audio_codec = r->audio;
    cfg.preset = r->preset;
    cfg.width = w;
    cfg.height = h;
    cfg.fps = 30;
    cfg.gop_frames = 60;
    cfg.sample_rate = 48000;
    cfg.channels = 2;
    cfg.available = (const char(*)[RF_NAME_MAX])names;
    cfg.n_available = 1;
    silence = calloc(per_frame * 2, sizeof(float));
    t0 = rf_mono_ms();
    rv = silence != NULL ? rf_enc_open(&cfg, &enc, err, sizeof(err)) : RF_ENOMEM;
    if (rv != RF_OK) {
        printf("encode %-4s %-10s %-9s %dx%d: unavailable (%s)\n", r->codec, r->backend, r->preset,
               w, h, err[0] != '\0' ? err : rf_strerror(rv));
        free(silence);
        return 0;
    }
    for (int i = 0; i < frames && rv == RF_OK; i++) {
        rf_frame f;
        rv = rf_enc_frame(enc, &f);
        if (rv == RF_OK) {
            draw(&f, i, w, h);
            rv = rf_enc_submit(enc);
        }
        if (rv == RF_OK)
            rv = rf_enc_audio(enc, silence, per_frame);
    }
    if (rv == RF_OK)
        rv = rf_enc_finish(enc, err, sizeof(err));
    double s = (double)(rf_mono_ms() - t0) / 1000.0;
    rf_enc_free(&enc);
    unlink(path);
    free(silence);
    if (rv != RF_OK) {
        printf("encode %-4s %-10s %-9s %dx%d: failed (%s)\n", r->codec, r->backend, r->preset, w, h,
               err[0] != '\0' ? err : rf_strerror(rv));
        return 1;
    }
    printf("encode %-4s %-10s %-9s %dx%d: %7.1f frames/s (%d frames in %.2f s, muxed with %s)\n",
           r->codec, r->backend, r->preset, w, h, frames / s, frames, s, r->audio);
    fflush(stdout);
    return 0;
}

int
main(int argc, char **argv)
{
    int frames = argc > 1 ? atoi(argv[1]) : 150;
    int w = 1920, h = 1080, failed = 0;

    if (argc > 2 && sscanf(argv[2], "%dx%d", &w, &h) != 2) {
        fprintf(stderr, "usage: bench_encoders [frames] [WxH]\n");
        return 2;
    }
    if (frames < 1 || w < 320 || h < 320 || (w & 1) || (h & 1)) {
        fprintf(stderr, "bench_encoders: frames >= 1, an even size of at least 320x320\n");
        return 2;
    }
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        failed += bench_row(&rows[i], frames, w, h);
    return failed > 0 ? 1 : 0;
}
