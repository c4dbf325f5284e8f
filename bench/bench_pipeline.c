/* Whole-pipeline throughput of one 1080p30 row beside x264's own encode-only
 * speed on the same frames, in the same run on the same machine.
 *
 *   bench_pipeline [seconds] [preset] [WxH]
 *
 * 1. renders a row through rf_render_unit (narration, scene, compositing,
 *    x264 + AAC, mp4 faststart) and reports frames/s of the whole unit;
 * 2. decodes that output back to raw YUV frames in memory and times libx264
 *    alone encoding exactly those frames with the same settings (no audio,
 *    no muxing, no compositing): the ceiling the pipeline is compared with;
 * 3. the same encode-only figure for a flat picture, for reference.
 * Output lines are "name: value unit" so a later run can be compared. */
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/log.h>
#include <libavutil/opt.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "render.h"
#include "rf_log.h"
#include "rf_util.h"

static const char *script =
    "Most of us lose an hour a day to small tasks. Let software draft your emails, summarise "
    "long threads, and plan your week. Start with one tool, measure the time it saves, then "
    "add the next. Small changes, repeated every day, add up to whole weeks every year.";

typedef struct frames {
    AVFrame **f;
    int n, cap;
} frames;

static int
decode_all(const char *path, frames *out)
{
    AVFormatContext *fmt = NULL;
    AVCodecContext *dec = NULL;
    AVPacket *pkt = av_packet_alloc();
    int vs, rc = -1;

    if (avformat_open_input(&fmt, path, NULL, NULL) < 0 || avformat_find_stream_info(fmt, NULL) < 0)
        goto out;
    vs = av_find_best_stream(fmt, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0);
    if (vs < 0)
        goto out;
    const AVCodec *codec = avcodec_find_decoder(fmt->streams[vs]->codecpar->codec_id);
    dec = avcodec_alloc_context3(codec);
    avcodec_parameters_to_context(dec, fmt->streams[vs]->codecpar);
    if (avcodec_open2(dec, codec, NULL) < 0)
        goto out;
    for (int eof = 0; !eof;) {
        int r = av_read_frame(fmt, pkt);
        if (r < 0) {
            eof = 1;
            avcodec_send_packet(dec, NULL);
        } else if (pkt->stream_index == vs) {
            avcodec_send_packet(dec, pkt);
        }
        av_packet_unref(pkt);
        for (;;) {
            AVFrame *f = av_frame_alloc();
            if (avcodec_receive_frame(dec, f) < 0) {
                av_frame_free(&f);
                break;
            }
            if (out->n == out->cap) {
                out->cap = out->cap ? out->cap * 2 : 256;
                out->f = realloc(out->f, sizeof(*out->f) * (size_t)out->cap);
            }
            out->f[out->n++] = f;
        }
    }
    rc = 0;
out:
    av_packet_free(&pkt);
    avcodec_free_context(&dec);
    avformat_close_input(&fmt);
    return rc;
}

/* libx264 alone, same settings as the agent's encoder: frames/s. */
static double
encode_only(const frames *fr, int w, int h, const char *preset)
{
    const AVCodec *codec = avcodec_find_encoder_by_name("libx264");
    AVCodecContext *c = avcodec_alloc_context3(codec);
    AVPacket *pkt = av_packet_alloc();
    int64_t t0;

    c->width = w;
    c->height = h;
    c->pix_fmt = AV_PIX_FMT_YUV420P;
    c->time_base = (AVRational){1, 30};
    c->framerate = (AVRational){30, 1};
    c->gop_size = 60;
    c->color_primaries = AVCOL_PRI_BT709;
    c->color_trc = AVCOL_TRC_BT709;
    c->colorspace = AVCOL_SPC_BT709;
    c->color_range = AVCOL_RANGE_MPEG;
    av_opt_set(c->priv_data, "preset", preset, 0);
    av_opt_set(c->priv_data, "profile", "high", 0);
    av_opt_set(c->priv_data, "crf", "21", 0);
    if (avcodec_open2(c, codec, NULL) < 0)
        return 0;
    t0 = rf_mono_ns();
    for (int i = 0; i <= fr->n; i++) {
        if (i < fr->n) {
            fr->f[i]->pts = i;
            fr->f[i]->pict_type = AV_PICTURE_TYPE_NONE;
            avcodec_send_frame(c, fr->f[i]);
        } else {
            avcodec_send_frame(c, NULL);
        }
        while (avcodec_receive_packet(c, pkt) == 0)
            av_packet_unref(pkt);
    }
    double secs = (double)(rf_mono_ns() - t0) / 1e9;
    av_packet_free(&pkt);
    avcodec_free_context(&c);
    return fr->n / secs;
}

static double
median3(const double *v)
{
    double a = v[0], b = v[1], c = v[2];
    if ((a <= b && b <= c) || (c <= b && b <= a))
        return b;
    if ((b <= a && a <= c) || (c <= a && a <= b))
        return a;
    return c;
}

int
main(int argc, char **argv)
{
    int seconds = argc > 1 ? atoi(argv[1]) : 20;
    const char *preset = argc > 2 ? argv[2] : "veryfast";
    int w = 1920, h = 1080;
    char dir[] = "/tmp/rf-bench-XXXXXX";
    rf_unit u = {0};
    rf_render_result res;
    frames fr = {0};

    if (argc > 3 && sscanf(argv[3], "%dx%d", &w, &h) != 2) {
        fprintf(stderr, "usage: bench_pipeline [seconds] [preset] [WxH]\n");
        return 2;
    }
    rf_log_init("bench", RF_LOG_WARN);
    /* Frame-sized buffers (x264's, libav's) come and go every frame: keep
     * them in the heap rather than mmap/munmap, which made the kernel zero
     * fresh pages for about 6 % of a 1080p unit's CPU time. */
    mallopt(M_MMAP_THRESHOLD, 64 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
    av_log_set_level(AV_LOG_ERROR);
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(u.unit_id, sizeof(u.unit_id), "bench");
    snprintf(u.rendition, sizeof(u.rendition), "youtube");
    u.width = (uint32_t)w;
    u.height = (uint32_t)h;
    u.fps = 30;
    u.duration_ms = (uint32_t)seconds * 1000;
    snprintf(u.container, sizeof(u.container), "mp4");
    snprintf(u.video_codec, sizeof(u.video_codec), "h264");
    snprintf(u.audio_codec, sizeof(u.audio_codec), "aac");
    snprintf(u.preset, sizeof(u.preset), "%s", preset);
    snprintf(u.output_path, sizeof(u.output_path), "%s/bench.mp4", dir);
    u.title = "How to improve productivity";
    u.description = "Learn about AI tools that save an hour a day";
    u.script = (char *)script;
    snprintf(u.style, sizeof(u.style), "modern");
    snprintf(u.voice, sizeof(u.voice), "female");
    u.voice_speed = 1.0;

    /* This machine's timings wander by 10-20 % from run to run (shared
     * cores): alternate the two measurements and report medians. */
    enum { RUNS = 3 };
    double pipe[RUNS], only[RUNS];
    rf_render_opts o = {.compositor = "cpu"};
    for (int run = 0; run < RUNS; run++) {
        if (rf_render_unit(&u, &o, &res) != RF_OK) {
            fprintf(stderr, "render failed: %s: %s\n", res.error_code, res.error_message);
            return 1;
        }
        pipe[run] = res.frames * 1000.0 / res.render_ms;
        printf("pipeline %dx%d %s run %d: %u frames in %u ms: %.1f frames/s (audio %u ms, scene "
               "%u ms, encode %u ms; %u frames composited, %s)\n",
               w, h, preset, run + 1, res.frames, res.render_ms, pipe[run], res.audio_ms,
               res.scene_ms, res.encode_ms, res.frames_composited, res.encoder);
        if (fr.n == 0 && (decode_all(u.output_path, &fr) != 0 || fr.n == 0)) {
            fprintf(stderr, "cannot decode %s\n", u.output_path);
            return 1;
        }
        only[run] = encode_only(&fr, w, h, preset);
        printf("x264 encode-only, same frames, run %d: %.1f frames/s\n", run + 1, only[run]);
    }
    double pipe_fps = median3(pipe), enc_fps = median3(only);
    printf("pipeline %dx%d %s (median): %.1f frames/s\n", w, h, preset, pipe_fps);
    printf("x264 encode-only, same frames %dx%d %s (median): %.1f frames/s\n", w, h, preset,
           enc_fps);
    printf("pipeline / encode-only: %.1f %%\n", 100.0 * pipe_fps / enc_fps);

    /* A flat picture: every frame the first one. */
    frames flat = {.f = malloc(sizeof(AVFrame *) * (size_t)fr.n), .n = fr.n};
    for (int i = 0; i < fr.n; i++)
        flat.f[i] = fr.f[0];
    printf("x264 encode-only, flat picture %dx%d %s: %.1f frames/s\n", w, h, preset,
           encode_only(&flat, w, h, preset));
    free(flat.f);

    for (int i = 0; i < fr.n; i++)
        av_frame_free(&fr.f[i]);
    free(fr.f);
    unlink(u.output_path);
    rmdir(dir);
    return 0;
}
