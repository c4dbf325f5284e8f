/* Encoders and muxing through libavcodec/libavformat.
 *
 * One rf_encoder owns an output context, a video and an audio encoder, one
 * reusable video frame and an audio FIFO. The flow follows ffmpeg's
 * doc/examples/mux.c: avcodec_send_frame / avcodec_receive_packet with
 * EAGAIN and EOF as flow control, packets rescaled to the stream time base
 * and handed to av_interleaved_write_frame, a NULL frame to flush, then the
 * trailer.
 *
 * Backends sit in tables: a video backend names the libavcodec encoder for a
 * codec, the hardware it needs and sets its private options. rf_enc_open
 * walks the rows for the requested codec in order (NVENC, VAAPI, software)
 * and keeps the first that opens, logging and noting why each earlier one
 * did not. Hardware frames follow doc/examples/vaapi_encode.c: one device
 * context, a frames pool with its sw_format referenced by the codec context,
 * and one upload per picture. */
#include "encoder.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/audio_fifo.h>
#include <libavutil/channel_layout.h>
#include <libavutil/hwcontext.h>
#include <libavutil/opt.h>
#include <libavutil/pixdesc.h>
#include <libavutil/samplefmt.h>
#include <libswresample/swresample.h>

#ifdef RF_HAVE_CUDA
#include <cuda_runtime_api.h>
#include <libavutil/hwcontext_cuda.h>
#endif

#include "rf_log.h"
#include "rf_util.h"

#define RF_ENC_ERR_MAX 256
/* Audio is converted in chunks of this many input frames so one large
 * rf_enc_audio call does not need one large temporary buffer. */
#define RF_AUDIO_CHUNK 4096
#define RF_PROBE_SIZE 256
/* VAAPI encoders draw their input surfaces from a fixed pool: enough for
 * the frames in flight plus the references (as doc/examples/vaapi_encode.c). */
#define RF_VAAPI_POOL 20

/* --- backend tables ------------------------------------------------------ */

typedef rf_err (*rf_video_setup_fn)(AVCodecContext *cc, const rf_enc_config *cfg, char *err,
                                    size_t err_len);

/* The hardware a backend needs before it can open. */
typedef enum rf_hw {
    RF_HW_NONE = 0, /* software: takes the host YUV420P frame as it is */
    RF_HW_NVENC,    /* host frame (uploaded by NVENC) or a CUDA frames pool */
    RF_HW_VAAPI,    /* a VAAPI device and NV12 surface pool, one upload per frame */
} rf_hw;

typedef struct rf_video_backend {
    const char *codec;   /* our name: "h264", "h265", "vp9" */
    const char *encoder; /* libavcodec encoder name */
    rf_hw hw;
    rf_video_setup_fn setup;
} rf_video_backend;

typedef struct rf_audio_backend {
    const char *codec;   /* "aac", "opus" */
    const char *encoder; /* libavcodec encoder name */
    int64_t bit_rate;
    int profile; /* FF_PROFILE_UNKNOWN for the encoder's default */
} rf_audio_backend;

typedef struct rf_container {
    const char *name;       /* our name */
    const char *format;     /* libavformat muxer */
    bool faststart;         /* moov before mdat, so players start at once */
    const char *only_video; /* the only codecs the container accepts, or NULL */
    const char *only_audio;
    const char *never_audio; /* an audio codec the muxer cannot carry, or NULL */
} rf_container;

static rf_err rf_setup_x264(AVCodecContext *cc, const rf_enc_config *cfg, char *err,
                            size_t err_len);
static rf_err rf_setup_x265(AVCodecContext *cc, const rf_enc_config *cfg, char *err,
                            size_t err_len);
static rf_err rf_setup_vpx_vp9(AVCodecContext *cc, const rf_enc_config *cfg, char *err,
                               size_t err_len);
static rf_err rf_setup_nvenc(AVCodecContext *cc, const rf_enc_config *cfg, char *err,
                             size_t err_len);
static rf_err rf_setup_vaapi(AVCodecContext *cc, const rf_enc_config *cfg, char *err,
                             size_t err_len);

/* In preference order per codec: NVENC, VAAPI, then software. NVENC takes
 * the CUDA compositor's device frame when asked (cfg.cuda_frames), else the
 * host YUV420P frame, which it uploads itself. VAAPI gets the host frame
 * converted to NV12 and uploaded once per picture. NVENC has no VP9
 * encoder, so VP9 starts at VAAPI. */
static const rf_video_backend rf_video_backends[] = {
    {"h264", "h264_nvenc", RF_HW_NVENC, rf_setup_nvenc},
    {"h264", "h264_vaapi", RF_HW_VAAPI, rf_setup_vaapi},
    {"h264", "libx264", RF_HW_NONE, rf_setup_x264},
    {"h265", "hevc_nvenc", RF_HW_NVENC, rf_setup_nvenc},
    {"h265", "hevc_vaapi", RF_HW_VAAPI, rf_setup_vaapi},
    {"h265", "libx265", RF_HW_NONE, rf_setup_x265},
    {"vp9", "vp9_vaapi", RF_HW_VAAPI, rf_setup_vaapi},
    {"vp9", "libvpx-vp9", RF_HW_NONE, rf_setup_vpx_vp9},
};

static const rf_audio_backend rf_audio_backends[] = {
    {"aac", "aac", 160000, FF_PROFILE_AAC_LOW},
    {"opus", "libopus", 128000, FF_PROFILE_UNKNOWN},
};

static const rf_container rf_containers[] = {
    {"mp4", "mp4", true, NULL, NULL, NULL},
    {"mov", "mov", true, NULL, NULL, "opus"}, /* libavformat's mov muxer has no Opus */
    {"webm", "webm", false, "vp9", "opus", NULL},
};

#define RF_COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* The frames a video encoder is fed. */
typedef enum rf_frames {
    RF_FRAMES_HOST = 0, /* host YUV420P, sent as it is */
    RF_FRAMES_VAAPI,    /* host YUV420P -> NV12 -> uploaded VAAPI surface */
    RF_FRAMES_CUDA,     /* a device YUV420P canvas, copied on the GPU into a pool frame */
} rf_frames;

struct rf_enc_host {
    pthread_mutex_t mu;
    char vaapi_node[RF_PATH_MAX];
    int nvenc_limit, nvenc_in_use;
    /* Listed by the start-up probe, then failed to open for a file: the next
     * file re-probes them first. */
    char suspect[RF_MAX_ENCODERS][RF_NAME_MAX];
    int n_suspect;
};

struct rf_encoder {
    const rf_video_backend *vb;
    rf_enc_host *host;
    bool nvenc_held; /* one of host's NVENC sessions is ours */
    rf_frames frames;
    AVBufferRef *hw_dev, *hw_frames;
    AVFormatContext *fmt;
    AVCodecContext *vcc, *acc;
    AVStream *vst, *ast;
    AVFrame *vframe;  /* the one picture the caller draws into */
    AVFrame *nv12;    /* VAAPI: host staging copy of vframe in the surfaces' layout */
    AVFrame *hwframe; /* VAAPI, CUDA: the pool frame sent for the current picture */
    AVFrame *aframe;
    AVPacket *pkt;
    AVAudioFifo *fifo; /* encoder-format samples waiting for a full frame */
    SwrContext *swr;   /* caller's interleaved float -> encoder format/rate */
    uint8_t **abuf;    /* swr output scratch */
    int abuf_cap;
    int in_channels, in_rate;
    int64_t vpts, apts;
    bool pb_open, header_written, finished, failed;
    char err[RF_ENC_ERR_MAX];
    char note[RF_ERRMSG_MAX]; /* the backends passed over and why */
};

/* --- shared host state ------------------------------------------------------ */

rf_err
rf_enc_host_create(const char *vaapi_node, int nvenc_sessions, rf_enc_host **out)
{
    if (out == NULL || nvenc_sessions < 0)
        return RF_EINVAL;
    *out = NULL;
    rf_enc_host *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return RF_ENOMEM;
    if (rf_strlcpy(h->vaapi_node, vaapi_node != NULL ? vaapi_node : RF_VAAPI_NODE_DEFAULT,
                   sizeof(h->vaapi_node)) != RF_OK) {
        free(h);
        return RF_EINVAL;
    }
    h->nvenc_limit = nvenc_sessions;
    pthread_mutex_init(&h->mu, NULL);
    *out = h;
    return RF_OK;
}

void
rf_enc_host_free(rf_enc_host **ph)
{
    if (ph == NULL || *ph == NULL)
        return;
    pthread_mutex_destroy(&(*ph)->mu);
    free(*ph);
    *ph = NULL;
}

bool
rf_enc_host_nvenc_acquire(rf_enc_host *h, int *limit)
{
    if (h == NULL)
        return true; /* no host: no accounting */
    pthread_mutex_lock(&h->mu);
    bool ok = h->nvenc_in_use < h->nvenc_limit;
    if (ok)
        h->nvenc_in_use++;
    if (limit != NULL)
        *limit = h->nvenc_limit;
    pthread_mutex_unlock(&h->mu);
    return ok;
}

void
rf_enc_host_nvenc_release(rf_enc_host *h)
{
    if (h == NULL)
        return;
    pthread_mutex_lock(&h->mu);
    if (h->nvenc_in_use > 0)
        h->nvenc_in_use--;
    pthread_mutex_unlock(&h->mu);
}

int
rf_enc_host_nvenc_in_use(rf_enc_host *h)
{
    if (h == NULL)
        return 0;
    pthread_mutex_lock(&h->mu);
    int n = h->nvenc_in_use;
    pthread_mutex_unlock(&h->mu);
    return n;
}

static const char *
rf_vaapi_node(const rf_enc_host *h)
{
    return h != NULL ? h->vaapi_node : RF_VAAPI_NODE_DEFAULT;
}

static bool
rf_host_suspect(rf_enc_host *h, const char *enc)
{
    bool found = false;
    if (h == NULL)
        return false;
    pthread_mutex_lock(&h->mu);
    for (int i = 0; i < h->n_suspect && !found; i++)
        found = strcmp(h->suspect[i], enc) == 0;
    pthread_mutex_unlock(&h->mu);
    return found;
}

/* Marks enc as failed since the probe (suspect) or as trusted again. */
static void
rf_host_set_suspect(rf_enc_host *h, const char *enc, bool suspect)
{
    if (h == NULL)
        return;
    pthread_mutex_lock(&h->mu);
    int at = -1;
    for (int i = 0; i < h->n_suspect; i++)
        if (strcmp(h->suspect[i], enc) == 0)
            at = i;
    if (suspect && at < 0 && h->n_suspect < RF_MAX_ENCODERS)
        snprintf(h->suspect[h->n_suspect++], RF_NAME_MAX, "%s", enc);
    else if (!suspect && at >= 0)
        memcpy(h->suspect[at], h->suspect[--h->n_suspect], RF_NAME_MAX);
    pthread_mutex_unlock(&h->mu);
}

/* Takes an NVENC session for a backend that needs one, or says why not. */
static rf_err
rf_nvenc_session(rf_enc_host *h, const rf_video_backend *vb, bool *held, char *err, size_t err_len)
{
    int limit = 0;
    *held = false;
    if (vb->hw != RF_HW_NVENC)
        return RF_OK;
    if (!rf_enc_host_nvenc_acquire(h, &limit)) {
        if (limit == 0)
            rf_errf(err, err_len, "NVENC sessions are limited to 0 on this agent");
        else
            rf_errf(err, err_len, "all %d NVENC sessions in use", limit);
        return RF_EUNSUPPORTED;
    }
    *held = h != NULL;
    return RF_OK;
}

/* --- errors ---------------------------------------------------------------- */

/* Records a libav failure on the encoder (logged once, kept for
 * rf_enc_finish) and returns RF_ECODEC. */
static rf_err
rf_enc_fail(rf_encoder *e, const char *what, int averr)
{
    snprintf(e->err, sizeof(e->err), "%s: %s", what, av_err2str(averr));
    rf_error("encoder: %s", e->err);
    e->failed = true;
    return RF_ECODEC;
}

/* --- backend setup ---------------------------------------------------------- */

static rf_err
rf_opt(AVCodecContext *cc, const char *key, const char *val, char *err, size_t err_len)
{
    int r = av_opt_set(cc->priv_data, key, val, 0);
    if (r < 0) {
        rf_errf(err, err_len, "%s: option %s=%s: %s", cc->codec->name, key, val, av_err2str(r));
        return RF_EINVAL;
    }
    return RF_OK;
}

static const char *
rf_preset(const rf_enc_config *cfg)
{
    return cfg->preset != NULL && cfg->preset[0] != '\0' ? cfg->preset : "veryfast";
}

static rf_err
rf_setup_x264(AVCodecContext *cc, const rf_enc_config *cfg, char *err, size_t err_len)
{
    char crf[16];
    snprintf(crf, sizeof(crf), "%d", cfg->crf > 0 ? cfg->crf : 21);
    rf_err rv = rf_opt(cc, "preset", rf_preset(cfg), err, err_len);
    if (rv == RF_OK)
        rv = rf_opt(cc, "profile", "high", err, err_len);
    if (rv == RF_OK)
        rv = rf_opt(cc, "crf", crf, err, err_len);
    return rv;
}

/* x264-style preset names onto NVENC's p1 (fastest) .. p7 (best). */
static const char *
rf_nvenc_preset(const rf_enc_config *cfg)
{
    static const char *const names[][2] = {
        {"ultrafast", "p1"}, {"superfast", "p1"}, {"veryfast", "p2"},
        {"faster", "p3"},    {"fast", "p3"},      {"medium", "p4"},
        {"slow", "p5"},      {"slower", "p6"},    {"veryslow", "p7"},
    };
    const char *want = rf_preset(cfg);
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(names[i][0], want) == 0)
            return names[i][1];
    return "p4";
}

static rf_err
rf_setup_nvenc(AVCodecContext *cc, const rf_enc_config *cfg, char *err, size_t err_len)
{
    char cq[16];
    /* Constant quality in VBR mode: NVENC's counterpart of x264's CRF. */
    snprintf(cq, sizeof(cq), "%d", cfg->crf > 0 ? cfg->crf + 2 : 23);
    rf_err rv = rf_opt(cc, "preset", rf_nvenc_preset(cfg), err, err_len);
    if (rv == RF_OK)
        rv = rf_opt(cc, "rc", "vbr", err, err_len);
    if (rv == RF_OK)
        rv = rf_opt(cc, "cq", cq, err, err_len);
    if (rv == RF_OK && cc->codec_id == AV_CODEC_ID_H264)
        rv = rf_opt(cc, "profile", "high", err, err_len);
    if (rv == RF_OK)
        cc->bit_rate = 0;
    return rv;
}

static rf_err
rf_setup_vaapi(AVCodecContext *cc, const rf_enc_config *cfg, char *err, size_t err_len)
{
    /* Constant QP, the one rate control every VAAPI driver offers: the QP
     * for H.264/HEVC (near x264's CRF at the same number), the quantiser
     * index 0..255 for VP9 (libvpx's crf 0..63 scaled). */
    int q;
    if (cc->codec_id == AV_CODEC_ID_VP9)
        q = (cfg->crf > 0 ? (cfg->crf > 63 ? 63 : cfg->crf) : 32) * 4;
    else
        q = cfg->crf > 0 ? cfg->crf : cc->codec_id == AV_CODEC_ID_HEVC ? 24 : 21;
    cc->global_quality = q;
    cc->bit_rate = 0;
    if (cc->codec_id == AV_CODEC_ID_H264)
        cc->profile = FF_PROFILE_H264_HIGH;
    return rf_opt(cc, "rc_mode", "CQP", err, err_len);
}

static rf_err
rf_setup_x265(AVCodecContext *cc, const rf_enc_config *cfg, char *err, size_t err_len)
{
    char crf[16];
    /* x265's own default (28) looks clearly worse than x264 at 21. */
    snprintf(crf, sizeof(crf), "%d", cfg->crf > 0 ? cfg->crf : 24);
    rf_err rv = rf_opt(cc, "preset", rf_preset(cfg), err, err_len);
    if (rv == RF_OK)
        rv = rf_opt(cc, "crf", crf, err, err_len);
    /* x265 prints its banner and stats straight to stderr otherwise. */
    if (rv == RF_OK)
        rv = rf_opt(cc, "x265-params", "log-level=error", err, err_len);
    return rv;
}

static rf_err
rf_setup_vpx_vp9(AVCodecContext *cc, const rf_enc_config *cfg, char *err, size_t err_len)
{
    /* libvpx has no x264-style presets: map the name onto its deadline and
     * cpu-used speed knobs. */
    const char *p = rf_preset(cfg);
    const char *deadline = "good", *cpu_used = "2";
    if (strcmp(p, "ultrafast") == 0 || strcmp(p, "superfast") == 0 || strcmp(p, "veryfast") == 0) {
        deadline = "realtime";
        cpu_used = "8";
    } else if (strcmp(p, "faster") == 0 || strcmp(p, "fast") == 0) {
        cpu_used = "4";
    }
    char crf[16];
    snprintf(crf, sizeof(crf), "%d", cfg->crf > 0 ? (cfg->crf > 63 ? 63 : cfg->crf) : 32);
    cc->bit_rate = 0; /* constant quality: crf alone decides */
    rf_err rv = rf_opt(cc, "deadline", deadline, err, err_len);
    if (rv == RF_OK)
        rv = rf_opt(cc, "cpu-used", cpu_used, err, err_len);
    if (rv == RF_OK)
        rv = rf_opt(cc, "crf", crf, err, err_len);
    if (rv == RF_OK)
        rv = rf_opt(cc, "row-mt", "1", err, err_len);
    return rv;
}

/* Fields every video backend shares: size, constant frame rate, GOP, and
 * BT.709 limited range, which is what the compositor writes. */
static void
rf_video_common(AVCodecContext *cc, const rf_enc_config *cfg, bool global_header)
{
    cc->width = cfg->width;
    cc->height = cfg->height;
    cc->time_base = (AVRational){1, cfg->fps};
    cc->framerate = (AVRational){cfg->fps, 1};
    cc->pix_fmt = AV_PIX_FMT_YUV420P;
    cc->gop_size = cfg->gop_frames;
    cc->keyint_min = cfg->gop_frames < cfg->fps ? cfg->gop_frames : cfg->fps;
    cc->color_primaries = AVCOL_PRI_BT709;
    cc->color_trc = AVCOL_TRC_BT709;
    cc->colorspace = AVCOL_SPC_BT709;
    cc->color_range = AVCOL_RANGE_MPEG;
    cc->thread_count = 0; /* auto */
    if (global_header)
        cc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
}

/* Picks the sample format to encode in: planar or packed float if the
 * encoder takes it (no precision loss), else its first choice. */
static enum AVSampleFormat
rf_pick_sample_fmt(const AVCodec *c)
{
    if (c->sample_fmts == NULL)
        return AV_SAMPLE_FMT_FLTP;
    for (const enum AVSampleFormat *f = c->sample_fmts; *f != AV_SAMPLE_FMT_NONE; f++)
        if (*f == AV_SAMPLE_FMT_FLTP || *f == AV_SAMPLE_FMT_FLT)
            return *f;
    return c->sample_fmts[0];
}

/* The requested rate if the encoder supports it, else 48 kHz, else its
 * first choice (the resampler bridges the difference). */
static int
rf_pick_sample_rate(const AVCodec *c, int want)
{
    if (c->supported_samplerates == NULL)
        return want;
    bool has48 = false;
    for (const int *r = c->supported_samplerates; *r != 0; r++) {
        if (*r == want)
            return want;
        has48 = has48 || *r == 48000;
    }
    return has48 ? 48000 : c->supported_samplerates[0];
}

static rf_err
rf_audio_common(AVCodecContext *cc, const rf_audio_backend *ab, int rate, int channels,
                bool global_header)
{
    cc->sample_fmt = rf_pick_sample_fmt(cc->codec);
    cc->sample_rate = rf_pick_sample_rate(cc->codec, rate);
    av_channel_layout_uninit(&cc->ch_layout);
    av_channel_layout_default(&cc->ch_layout, channels);
    cc->bit_rate = ab->bit_rate;
    cc->profile = ab->profile;
    cc->time_base = (AVRational){1, cc->sample_rate};
    if (global_header)
        cc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    return RF_OK;
}

static const rf_container *
rf_find_container(const char *name)
{
    for (size_t i = 0; name != NULL && i < RF_COUNT(rf_containers); i++)
        if (strcmp(rf_containers[i].name, name) == 0)
            return &rf_containers[i];
    return NULL;
}

static const rf_audio_backend *
rf_find_audio(const char *codec)
{
    for (size_t i = 0; codec != NULL && i < RF_COUNT(rf_audio_backends); i++)
        if (strcmp(rf_audio_backends[i].codec, codec) == 0)
            return &rf_audio_backends[i];
    return NULL;
}

static bool
rf_known_video(const char *codec)
{
    for (size_t i = 0; codec != NULL && i < RF_COUNT(rf_video_backends); i++)
        if (strcmp(rf_video_backends[i].codec, codec) == 0)
            return true;
    return false;
}

/* --- open ------------------------------------------------------------------- */

static rf_err
rf_check_config(const rf_enc_config *cfg, const rf_container **ct, const rf_audio_backend **ab,
                char *err, size_t err_len)
{
    if (cfg->path == NULL || cfg->path[0] == '\0') {
        rf_errf(err, err_len, "no output path");
        return RF_EINVAL;
    }
    *ct = rf_find_container(cfg->container);
    if (*ct == NULL) {
        rf_errf(err, err_len, "unknown container \"%s\" (mp4, mov, webm)",
                cfg->container ? cfg->container : "(null)");
        return RF_EINVAL;
    }
    if (!rf_known_video(cfg->video_codec)) {
        rf_errf(err, err_len, "unknown video codec \"%s\" (h264, h265, vp9)",
                cfg->video_codec ? cfg->video_codec : "(null)");
        return RF_EINVAL;
    }
    *ab = rf_find_audio(cfg->audio_codec);
    if (*ab == NULL) {
        rf_errf(err, err_len, "unknown audio codec \"%s\" (aac, opus)",
                cfg->audio_codec ? cfg->audio_codec : "(null)");
        return RF_EINVAL;
    }
    if (((*ct)->only_video != NULL && strcmp((*ct)->only_video, cfg->video_codec) != 0) ||
        ((*ct)->only_audio != NULL && strcmp((*ct)->only_audio, cfg->audio_codec) != 0)) {
        rf_errf(err, err_len, "container %s takes only %s video with %s audio, not %s + %s",
                (*ct)->name, (*ct)->only_video, (*ct)->only_audio, cfg->video_codec,
                cfg->audio_codec);
        return RF_EINVAL;
    }
    if ((*ct)->never_audio != NULL && strcmp((*ct)->never_audio, cfg->audio_codec) == 0) {
        rf_errf(err, err_len, "container %s cannot carry %s audio", (*ct)->name, cfg->audio_codec);
        return RF_EINVAL;
    }
    if (cfg->width < 16 || cfg->height < 16 || cfg->width > 8192 || cfg->height > 8192 ||
        cfg->width % 2 != 0 || cfg->height % 2 != 0) {
        rf_errf(err, err_len, "bad frame size %dx%d (even, 16..8192)", cfg->width, cfg->height);
        return RF_EINVAL;
    }
    if (cfg->fps < 1 || cfg->fps > 240 || cfg->gop_frames < 1) {
        rf_errf(err, err_len, "bad frame rate %d or GOP %d", cfg->fps, cfg->gop_frames);
        return RF_EINVAL;
    }
    if (cfg->sample_rate < 8000 || cfg->sample_rate > 192000 || cfg->channels < 1 ||
        cfg->channels > 8) {
        rf_errf(err, err_len, "bad audio format %d Hz x %d channels", cfg->sample_rate,
                cfg->channels);
        return RF_EINVAL;
    }
    return RF_OK;
}

/* --- video backends: hardware, probe, open --------------------------------- */

/* Appends one "what: why" entry to the note that goes with the result. */
static void __attribute__((format(printf, 2, 3))) rf_note(rf_encoder *e, const char *fmt, ...)
{
    size_t used = strlen(e->note);
    if (used + 2 >= sizeof(e->note))
        return;
    if (used > 0) {
        memcpy(e->note + used, "; ", 3);
        used += 2;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->note + used, sizeof(e->note) - used, fmt, ap);
    va_end(ap);
}

/* A pool of hw_fmt frames holding sw_fmt pictures on dev, referenced by cc,
 * which then takes hw_fmt frames. pool 0: the pool grows as needed. */
static rf_err
rf_hw_frames(AVCodecContext *cc, AVBufferRef *dev, enum AVPixelFormat hw_fmt,
             enum AVPixelFormat sw_fmt, int pool, AVBufferRef **frames, char *err, size_t err_len)
{
    *frames = av_hwframe_ctx_alloc(dev);
    if (*frames == NULL)
        return RF_ENOMEM;
    AVHWFramesContext *fc = (AVHWFramesContext *)(*frames)->data;
    fc->format = hw_fmt;
    fc->sw_format = sw_fmt;
    fc->width = cc->width;
    fc->height = cc->height;
    fc->initial_pool_size = pool;
    int r = av_hwframe_ctx_init(*frames);
    if (r < 0) {
        rf_errf(err, err_len, "%s frames pool: %s", av_get_pix_fmt_name(hw_fmt), av_err2str(r));
        return RF_EUNSUPPORTED;
    }
    cc->pix_fmt = hw_fmt;
    cc->hw_frames_ctx = av_buffer_ref(*frames);
    return cc->hw_frames_ctx != NULL ? RF_OK : RF_ENOMEM;
}

/* A VAAPI device on render node `node`, or why there is none. */
static rf_err
rf_vaapi_device(const char *node, AVBufferRef **dev, char *err, size_t err_len)
{
    if (access(node, R_OK | W_OK) != 0) {
        if (errno == ENOENT)
            rf_errf(err, err_len, "no VAAPI render node %s", node);
        else
            rf_errf(err, err_len, "VAAPI render node %s: %s", node, strerror(errno));
        return RF_EUNSUPPORTED;
    }
    int r = av_hwdevice_ctx_create(dev, AV_HWDEVICE_TYPE_VAAPI, node, NULL, 0);
    if (r < 0) {
        rf_errf(err, err_len, "VAAPI driver does not open on %s: %s", node, av_err2str(r));
        return RF_EUNSUPPORTED;
    }
    return RF_OK;
}

/* A libav CUDA device on the primary context of the device the CUDA runtime
 * (and so the CUDA compositor) works on: the compositor's device pointers
 * are then valid in NVENC's context as they are. */
static rf_err
rf_cuda_device(AVBufferRef **dev, char *err, size_t err_len)
{
#ifdef RF_HAVE_CUDA
    int d = 0;
    cudaError_t ce = cudaGetDevice(&d);
    if (ce != cudaSuccess) {
        rf_errf(err, err_len, "no CUDA device: %s", cudaGetErrorString(ce));
        cudaGetLastError(); /* clear the sticky error */
        return RF_EUNSUPPORTED;
    }
    char idx[16];
    snprintf(idx, sizeof(idx), "%d", d);
    int r =
        av_hwdevice_ctx_create(dev, AV_HWDEVICE_TYPE_CUDA, idx, NULL, AV_CUDA_USE_PRIMARY_CONTEXT);
    if (r < 0) {
        rf_errf(err, err_len, "libav CUDA device %s: %s", idx, av_err2str(r));
        return RF_EUNSUPPORTED;
    }
    return RF_OK;
#else
    (void)dev;
    rf_errf(err, err_len, "built without CUDA");
    return RF_EUNSUPPORTED;
#endif
}

/* An opened video codec context and the hardware contexts it was given. */
typedef struct rf_vctx {
    AVCodecContext *cc;
    AVBufferRef *dev, *pool; /* NULL for host frames */
} rf_vctx;

static void
rf_vctx_free(rf_vctx *v)
{
    avcodec_free_context(&v->cc);
    av_buffer_unref(&v->pool);
    av_buffer_unref(&v->dev);
}

/* Opens backend vb fed with `frames` (threads 0: libav's choice). The probe
 * and rf_enc_open both come here, so a probe tries exactly what a file will.
 * On failure v is left empty and err says why. */
static rf_err
rf_vctx_open(const rf_video_backend *vb, const rf_enc_config *cfg, const char *vaapi_node,
             bool global_header, int threads, rf_frames frames, rf_vctx *v, char *err,
             size_t err_len)
{
    rf_err rv = RF_OK;
    memset(v, 0, sizeof(*v));
    const AVCodec *codec = avcodec_find_encoder_by_name(vb->encoder);
    if (codec == NULL) {
        rf_errf(err, err_len, "not in this libavcodec build");
        return RF_EUNSUPPORTED;
    }
    v->cc = avcodec_alloc_context3(codec);
    if (v->cc == NULL)
        return RF_ENOMEM;
    rf_video_common(v->cc, cfg, global_header);
    v->cc->thread_count = threads;
    /* The device first, so a host without one hears exactly that. */
    if (frames == RF_FRAMES_VAAPI) {
        rv = rf_vaapi_device(vaapi_node, &v->dev, err, err_len);
        if (rv == RF_OK)
            rv = rf_hw_frames(v->cc, v->dev, AV_PIX_FMT_VAAPI, AV_PIX_FMT_NV12, RF_VAAPI_POOL,
                              &v->pool, err, err_len);
    } else if (frames == RF_FRAMES_CUDA) {
        rv = rf_cuda_device(&v->dev, err, err_len);
        if (rv == RF_OK)
            rv = rf_hw_frames(v->cc, v->dev, AV_PIX_FMT_CUDA, AV_PIX_FMT_YUV420P, 0, &v->pool, err,
                              err_len);
    }
    if (rv == RF_OK)
        rv = vb->setup(v->cc, cfg, err, err_len);
    if (rv == RF_OK) {
        int r = avcodec_open2(v->cc, codec, NULL);
        if (r < 0) {
            /* NVENC says only EPERM/ENOSYS/ENOMEM here; the libav log has
             * the detail. */
            rf_errf(err, err_len, "does not open at %dx%d: %s%s", cfg->width, cfg->height,
                    av_err2str(r),
                    vb->hw == RF_HW_NVENC ? " (no NVIDIA driver, GPU or free session)" : "");
            rv = vb->hw != RF_HW_NONE ? RF_EUNSUPPORTED : RF_ECODEC;
        }
    }
    if (rv != RF_OK)
        rf_vctx_free(v);
    return rv;
}

/* The frames a backend is fed unless the CUDA pool is asked for. */
static rf_frames
rf_default_frames(const rf_video_backend *vb)
{
    return vb->hw == RF_HW_VAAPI ? RF_FRAMES_VAAPI : RF_FRAMES_HOST;
}

/* Opens backend vb on a tiny picture and closes it: RF_OK if it opens, else
 * the reason in why. Takes no NVENC session: the caller holds one. */
static rf_err
rf_probe_backend(const rf_video_backend *vb, const char *vaapi_node, char *why, size_t why_len)
{
    rf_enc_config cfg = {.width = RF_PROBE_SIZE,
                         .height = RF_PROBE_SIZE,
                         .fps = 30,
                         .gop_frames = 60,
                         .preset = "ultrafast"};
    rf_vctx v;
    /* One thread: a probe must be quick, not fast. */
    rf_err rv =
        rf_vctx_open(vb, &cfg, vaapi_node, false, 1, rf_default_frames(vb), &v, why, why_len);
    rf_vctx_free(&v);
    return rv;
}

/* Opens backend vb into e: NVENC asked for CUDA frames tries the CUDA pool
 * first and, noting why, falls back to host frames. */
static rf_err
rf_open_video_backend(rf_encoder *e, const rf_video_backend *vb, const rf_enc_config *cfg,
                      char *err, size_t err_len)
{
    const bool gh = (e->fmt->oformat->flags & AVFMT_GLOBALHEADER) != 0;
    const char *node = rf_vaapi_node(cfg->host);
    rf_vctx v;
    rf_err rv;
    if (vb->hw == RF_HW_NVENC && cfg->cuda_frames) {
        char why[RF_ENC_ERR_MAX] = "";
        rv = rf_vctx_open(vb, cfg, node, gh, 0, RF_FRAMES_CUDA, &v, why, sizeof(why));
        if (rv == RF_OK) {
            e->frames = RF_FRAMES_CUDA;
            goto opened;
        }
        if (rv == RF_ENOMEM)
            return rv;
        rf_warn("encoder: %s takes host frames, no CUDA frames pool: %s", vb->encoder, why);
        rf_note(e, "%s CUDA frames: %s", vb->encoder, why);
    }
    rv = rf_vctx_open(vb, cfg, node, gh, 0, rf_default_frames(vb), &v, err, err_len);
    if (rv != RF_OK)
        return rv;
    e->frames = rf_default_frames(vb);
opened:
    e->vcc = v.cc;
    e->hw_dev = v.dev;
    e->hw_frames = v.pool;
    e->vb = vb;
    return RF_OK;
}

/* True when the caller's start-up probe found enc usable (no list: try it). */
static bool
rf_backend_available(const rf_enc_config *cfg, const char *enc)
{
    if (cfg->available == NULL)
        return true;
    for (int i = 0; i < cfg->n_available; i++)
        if (strcmp(cfg->available[i], enc) == 0)
            return true;
    return false;
}

/* One row of the table: the start-up probe's word, the NVENC session limit,
 * a re-probe if it failed for an earlier file, then the real open. On
 * failure err says why it was passed over. */
static rf_err
rf_try_video_backend(rf_encoder *e, const rf_video_backend *vb, const rf_enc_config *cfg, char *err,
                     size_t err_len)
{
    bool held = false;
    if (!rf_backend_available(cfg, vb->encoder)) {
        rf_errf(err, err_len, "did not open in the start-up probe");
        return RF_EUNSUPPORTED;
    }
    rf_err rv = rf_nvenc_session(cfg->host, vb, &held, err, err_len);
    if (rv != RF_OK) {
        rf_info("encoder: %s passed over: %s", vb->encoder, err);
        return rv;
    }
    if (rf_host_suspect(cfg->host, vb->encoder)) {
        char why[RF_ENC_ERR_MAX] = "";
        rv = rf_probe_backend(vb, rf_vaapi_node(cfg->host), why, sizeof(why));
        if (rv != RF_OK) {
            rf_errf(err, err_len, "failed for an earlier file, and again in a re-probe: %s", why);
            rf_info("encoder: %s passed over: %s", vb->encoder, err);
            goto out;
        }
        rf_info("encoder: %s opens again in a re-probe", vb->encoder);
        rf_host_set_suspect(cfg->host, vb->encoder, false);
    }
    rv = rf_open_video_backend(e, vb, cfg, err, err_len);
    if (rv == RF_OK) {
        e->nvenc_held = held;
        held = false;
    } else if (rv != RF_ENOMEM) {
        rf_warn("encoder: %s unusable, trying the next backend: %s", vb->encoder, err);
        /* The probe said it opens; a driver can go away or a GPU fill up
         * since. Later files re-probe it before trusting it again. */
        if (cfg->host != NULL && cfg->available != NULL) {
            rf_host_set_suspect(cfg->host, vb->encoder, true);
            size_t used = strlen(err);
            snprintf(err + used, err_len - used, " (re-probed before the next file uses it)");
        }
    }
out:
    if (held)
        rf_enc_host_nvenc_release(cfg->host);
    return rv;
}

/* Paints f black (BT.709 limited range), in host or device memory. */
static rf_err
rf_clear_canvas(AVFrame *f, bool on_device, char *err, size_t err_len)
{
    static const uint8_t fill[3] = {16, 128, 128};
    for (int p = 0; p < 3; p++) {
        size_t w = (size_t)(p ? f->width / 2 : f->width);
        size_t h = (size_t)(p ? f->height / 2 : f->height);
        if (!on_device) {
            memset(f->data[p], fill[p], (size_t)f->linesize[p] * h);
            continue;
        }
#ifdef RF_HAVE_CUDA
        cudaError_t ce = cudaMemset2D(f->data[p], (size_t)f->linesize[p], fill[p], w, h);
        /* Before the compositor's own stream writes to it. */
        if (ce == cudaSuccess)
            ce = cudaStreamSynchronize(0);
        if (ce != cudaSuccess) {
            rf_errf(err, err_len, "clearing the device frame: %s", cudaGetErrorString(ce));
            return RF_EIO;
        }
#else
        (void)w;
        rf_errf(err, err_len, "device frame without CUDA");
        return RF_EUNSUPPORTED;
#endif
    }
    return RF_OK;
}

/* The picture the caller draws into: host YUV420P, or for CUDA frames a
 * device frame from the pool that the encoder keeps and never sends (it is
 * copied on the GPU per picture, so it keeps the previous picture). Black
 * until the caller draws. */
static rf_err
rf_alloc_canvas(rf_encoder *e, const rf_enc_config *cfg, char *err, size_t err_len)
{
    e->vframe = av_frame_alloc();
    if (e->vframe == NULL)
        return RF_ENOMEM;
    int r;
    if (e->frames == RF_FRAMES_CUDA) {
        r = av_hwframe_get_buffer(e->hw_frames, e->vframe, 0);
    } else {
        e->vframe->format = AV_PIX_FMT_YUV420P;
        e->vframe->width = cfg->width;
        e->vframe->height = cfg->height;
        r = av_frame_get_buffer(e->vframe, 0);
    }
    if (r < 0) {
        rf_errf(err, err_len, "video frame buffer: %s", av_err2str(r));
        return RF_ENOMEM;
    }
    e->vframe->color_primaries = AVCOL_PRI_BT709;
    e->vframe->color_trc = AVCOL_TRC_BT709;
    e->vframe->colorspace = AVCOL_SPC_BT709;
    e->vframe->color_range = AVCOL_RANGE_MPEG;
    rf_err rv = rf_clear_canvas(e->vframe, e->frames == RF_FRAMES_CUDA, err, err_len);
    if (rv != RF_OK)
        return rv;
    if (e->frames == RF_FRAMES_HOST)
        return RF_OK;
    /* Hardware frames: the frame sent per picture, and for VAAPI the NV12
     * staging copy the upload reads. */
    e->hwframe = av_frame_alloc();
    if (e->hwframe == NULL)
        return RF_ENOMEM;
    if (e->frames != RF_FRAMES_VAAPI)
        return RF_OK;
    e->nv12 = av_frame_alloc();
    if (e->nv12 == NULL)
        return RF_ENOMEM;
    e->nv12->format = AV_PIX_FMT_NV12;
    e->nv12->width = cfg->width;
    e->nv12->height = cfg->height;
    r = av_frame_get_buffer(e->nv12, 0);
    if (r < 0) {
        rf_errf(err, err_len, "NV12 staging frame: %s", av_err2str(r));
        return RF_ENOMEM;
    }
    return RF_OK;
}

static rf_err
rf_open_video(rf_encoder *e, const rf_enc_config *cfg, const rf_container *ct, char *err,
              size_t err_len)
{
    rf_err rv = RF_EUNSUPPORTED;
    for (size_t i = 0; i < RF_COUNT(rf_video_backends); i++) {
        const rf_video_backend *vb = &rf_video_backends[i];
        if (strcmp(vb->codec, cfg->video_codec) != 0)
            continue;
        rv = rf_try_video_backend(e, vb, cfg, err, err_len);
        if (rv == RF_OK)
            break;
        if (rv == RF_ENOMEM)
            return rv;
        /* Every fallback and its reason goes with the result. */
        rf_note(e, "%s: %s", vb->encoder, err);
    }
    if (rv != RF_OK) {
        /* None opened: the unit's error names every backend and its reason. */
        rf_errf(err, err_len, "no %s encoder opened (%s)", cfg->video_codec, e->note);
        return rv;
    }

    e->vst = avformat_new_stream(e->fmt, NULL);
    if (e->vst == NULL)
        return RF_ENOMEM;
    e->vst->time_base = e->vcc->time_base;
    e->vst->avg_frame_rate = e->vcc->framerate;
    int r = avcodec_parameters_from_context(e->vst->codecpar, e->vcc);
    if (r < 0) {
        rf_errf(err, err_len, "video stream parameters: %s", av_err2str(r));
        return RF_ECODEC;
    }
    /* Apple players and the mp4 brand checks want HEVC tagged hvc1. */
    if (e->vcc->codec_id == AV_CODEC_ID_HEVC &&
        (strcmp(ct->name, "mp4") == 0 || strcmp(ct->name, "mov") == 0))
        e->vst->codecpar->codec_tag = MKTAG('h', 'v', 'c', '1');
    return rf_alloc_canvas(e, cfg, err, err_len);
}

static rf_err
rf_open_audio(rf_encoder *e, const rf_enc_config *cfg, const rf_audio_backend *ab, char *err,
              size_t err_len)
{
    const AVCodec *codec = avcodec_find_encoder_by_name(ab->encoder);
    if (codec == NULL) {
        rf_errf(err, err_len, "%s is not in this libavcodec build", ab->encoder);
        return RF_EUNSUPPORTED;
    }
    e->acc = avcodec_alloc_context3(codec);
    if (e->acc == NULL)
        return RF_ENOMEM;
    rf_audio_common(e->acc, ab, cfg->sample_rate, cfg->channels,
                    (e->fmt->oformat->flags & AVFMT_GLOBALHEADER) != 0);
    /* The native AAC encoder's default "twoloop" search costs about twice
     * the CPU of "fast" on speech for no audible gain at 160 kb/s, and
     * every cycle here is taken from x264. */
    if (strcmp(ab->encoder, "aac") == 0 &&
        av_opt_set(e->acc->priv_data, "aac_coder", "fast", 0) < 0)
        rf_warn("encoder: aac_coder=fast not accepted; using the default coder");
    int r = avcodec_open2(e->acc, codec, NULL);
    if (r < 0) {
        rf_errf(err, err_len, "opening %s at %d Hz x %d: %s", ab->encoder, e->acc->sample_rate,
                cfg->channels, av_err2str(r));
        return RF_ECODEC;
    }
    e->ast = avformat_new_stream(e->fmt, NULL);
    if (e->ast == NULL)
        return RF_ENOMEM;
    e->ast->time_base = e->acc->time_base;
    r = avcodec_parameters_from_context(e->ast->codecpar, e->acc);
    if (r < 0) {
        rf_errf(err, err_len, "audio stream parameters: %s", av_err2str(r));
        return RF_ECODEC;
    }

    AVChannelLayout in_layout = {0};
    av_channel_layout_default(&in_layout, cfg->channels);
    r = swr_alloc_set_opts2(&e->swr, &e->acc->ch_layout, e->acc->sample_fmt, e->acc->sample_rate,
                            &in_layout, AV_SAMPLE_FMT_FLT, cfg->sample_rate, 0, NULL);
    av_channel_layout_uninit(&in_layout);
    if (r >= 0)
        r = swr_init(e->swr);
    if (r < 0) {
        rf_errf(err, err_len, "audio converter: %s", av_err2str(r));
        return RF_ECODEC;
    }
    e->in_channels = cfg->channels;
    e->in_rate = cfg->sample_rate;

    int frame_size = e->acc->frame_size > 0 ? e->acc->frame_size : 1024;
    e->fifo =
        av_audio_fifo_alloc(e->acc->sample_fmt, e->acc->ch_layout.nb_channels, frame_size * 4);
    e->aframe = av_frame_alloc();
    if (e->fifo == NULL || e->aframe == NULL)
        return RF_ENOMEM;
    e->aframe->format = e->acc->sample_fmt;
    e->aframe->sample_rate = e->acc->sample_rate;
    e->aframe->nb_samples = frame_size;
    r = av_channel_layout_copy(&e->aframe->ch_layout, &e->acc->ch_layout);
    if (r >= 0)
        r = av_frame_get_buffer(e->aframe, 0);
    if (r < 0) {
        rf_errf(err, err_len, "audio frame buffer: %s", av_err2str(r));
        return RF_ENOMEM;
    }
    return RF_OK;
}

rf_err
rf_enc_open(const rf_enc_config *cfg, rf_encoder **out, char *err, size_t err_len)
{
    rf_err rv = RF_OK;
    rf_encoder *e = NULL;
    AVDictionary *opts = NULL;
    const rf_container *ct = NULL;
    const rf_audio_backend *ab = NULL;

    if (err != NULL && err_len > 0)
        err[0] = '\0';
    if (cfg == NULL || out == NULL) {
        rf_errf(err, err_len, "no config");
        return RF_EINVAL;
    }
    *out = NULL;
    rv = rf_check_config(cfg, &ct, &ab, err, err_len);
    if (rv != RF_OK)
        goto out;

    e = calloc(1, sizeof(*e));
    if (e == NULL) {
        rv = RF_ENOMEM;
        goto out;
    }
    e->host = cfg->host;
    int r = avformat_alloc_output_context2(&e->fmt, NULL, ct->format, cfg->path);
    if (r < 0 || e->fmt == NULL) {
        rf_errf(err, err_len, "muxer %s: %s", ct->format, av_err2str(r < 0 ? r : AVERROR_BUG));
        rv = RF_ECODEC;
        goto out;
    }
    e->pkt = av_packet_alloc();
    if (e->pkt == NULL) {
        rv = RF_ENOMEM;
        goto out;
    }
    rv = rf_open_video(e, cfg, ct, err, err_len);
    if (rv != RF_OK)
        goto out;
    rv = rf_open_audio(e, cfg, ab, err, err_len);
    if (rv != RF_OK)
        goto out;

    if (!(e->fmt->oformat->flags & AVFMT_NOFILE)) {
        r = avio_open(&e->fmt->pb, cfg->path, AVIO_FLAG_WRITE);
        if (r < 0) {
            rf_errf(err, err_len, "creating %s: %s", cfg->path, av_err2str(r));
            rv = RF_EIO;
            goto out;
        }
        e->pb_open = true;
    }
    if (ct->faststart)
        av_dict_set(&opts, "movflags", "+faststart", 0);
    r = avformat_write_header(e->fmt, &opts);
    if (r < 0) {
        rf_errf(err, err_len, "writing %s header of %s (%s + %s): %s", ct->format, cfg->path,
                e->vb->encoder, ab->encoder, av_err2str(r));
        rv = RF_ECODEC;
        goto out;
    }
    e->header_written = true;
    rf_debug("encoder: %s %dx%d@%d %s + %s -> %s", ct->name, cfg->width, cfg->height, cfg->fps,
             e->vb->encoder, ab->encoder, cfg->path);
    *out = e;
    e = NULL;
out:
    if (rv == RF_ENOMEM && err != NULL && err_len > 0 && err[0] == '\0')
        rf_errf(err, err_len, "out of memory opening the encoder");
    av_dict_free(&opts);
    rf_enc_free(&e);
    return rv;
}

const char *
rf_enc_note(const rf_encoder *e)
{
    return e != NULL ? e->note : "";
}

const char *
rf_enc_video_name(const rf_encoder *e)
{
    return e != NULL && e->vb != NULL ? e->vb->encoder : "";
}

bool
rf_enc_device_frames(const rf_encoder *e)
{
    return e != NULL && e->frames == RF_FRAMES_CUDA;
}

/* --- encode ------------------------------------------------------------------ */

/* Moves every packet the encoder has ready into the muxer. */
static rf_err
rf_drain(rf_encoder *e, AVCodecContext *cc, AVStream *st)
{
    for (;;) {
        int r = avcodec_receive_packet(cc, e->pkt);
        if (r == AVERROR(EAGAIN) || r == AVERROR_EOF)
            return RF_OK;
        if (r < 0)
            return rf_enc_fail(e, cc == e->vcc ? "video encoder" : "audio encoder", r);
        av_packet_rescale_ts(e->pkt, cc->time_base, st->time_base);
        e->pkt->stream_index = st->index;
        /* Takes the packet's reference, leaving pkt blank for reuse. */
        r = av_interleaved_write_frame(e->fmt, e->pkt);
        if (r < 0)
            return rf_enc_fail(e, "writing packet", r);
    }
}

/* Sends frame (NULL = flush) and drains what comes out. */
static rf_err
rf_send(rf_encoder *e, AVCodecContext *cc, AVStream *st, const AVFrame *frame)
{
    int r = avcodec_send_frame(cc, frame);
    if (r == AVERROR(EAGAIN)) {
        /* Output must be taken first; then the frame goes in. */
        rf_err rv = rf_drain(e, cc, st);
        if (rv != RF_OK)
            return rv;
        r = avcodec_send_frame(cc, frame);
    }
    if (r < 0 && !(frame == NULL && r == AVERROR_EOF))
        return rf_enc_fail(e, cc == e->vcc ? "sending video frame" : "sending audio frame", r);
    return rf_drain(e, cc, st);
}

/* Host YUV420P -> host NV12, the layout of the VAAPI surfaces. */
static void
rf_to_nv12(const AVFrame *src, AVFrame *dst)
{
    for (int y = 0; y < src->height; y++)
        memcpy(dst->data[0] + (size_t)y * (size_t)dst->linesize[0],
               src->data[0] + (size_t)y * (size_t)src->linesize[0], (size_t)src->width);
    for (int y = 0; y < src->height / 2; y++) {
        const uint8_t *u = src->data[1] + (size_t)y * (size_t)src->linesize[1];
        const uint8_t *v = src->data[2] + (size_t)y * (size_t)src->linesize[2];
        uint8_t *uv = dst->data[1] + (size_t)y * (size_t)dst->linesize[1];
        for (int x = 0; x < src->width / 2; x++) {
            uv[2 * x] = u[x];
            uv[2 * x + 1] = v[x];
        }
    }
}

/* Copies the device canvas into a pool frame on the GPU. */
static rf_err
rf_cuda_copy(rf_encoder *e, AVFrame *dst, const AVFrame *src)
{
#ifdef RF_HAVE_CUDA
    cudaError_t ce = cudaSuccess;
    for (int p = 0; p < 3 && ce == cudaSuccess; p++) {
        int w = p ? src->width / 2 : src->width, h = p ? src->height / 2 : src->height;
        ce = cudaMemcpy2DAsync(dst->data[p], (size_t)dst->linesize[p], src->data[p],
                               (size_t)src->linesize[p], (size_t)w, (size_t)h,
                               cudaMemcpyDeviceToDevice, 0);
    }
    /* NVENC reads its input outside our streams: the copy must be done. */
    if (ce == cudaSuccess)
        ce = cudaStreamSynchronize(0);
    if (ce != cudaSuccess) {
        snprintf(e->err, sizeof(e->err), "copying the picture on the GPU: %s",
                 cudaGetErrorString(ce));
        rf_error("encoder: %s", e->err);
        e->failed = true;
        return RF_ECODEC;
    }
    return RF_OK;
#else
    (void)dst;
    (void)src;
    return rf_enc_fail(e, "CUDA frames without CUDA", AVERROR_BUG);
#endif
}

/* Fills e->hwframe, a fresh pool frame, with the canvas's picture: one
 * upload per picture for VAAPI (after the NV12 conversion), one copy on the
 * GPU for CUDA frames. */
static rf_err
rf_upload(rf_encoder *e)
{
    av_frame_unref(e->hwframe);
    int r = av_hwframe_get_buffer(e->hw_frames, e->hwframe, 0);
    if (r < 0)
        return rf_enc_fail(e, "hardware frame from the pool", r);
    if (e->frames == RF_FRAMES_VAAPI) {
        rf_to_nv12(e->vframe, e->nv12);
        r = av_hwframe_transfer_data(e->hwframe, e->nv12, 0);
        if (r < 0)
            return rf_enc_fail(e, "uploading the picture to VAAPI", r);
    } else {
        rf_err rv = rf_cuda_copy(e, e->hwframe, e->vframe);
        if (rv != RF_OK)
            return rv;
    }
    r = av_frame_copy_props(e->hwframe, e->vframe);
    if (r < 0)
        return rf_enc_fail(e, "hardware frame properties", r);
    return RF_OK;
}

rf_err
rf_enc_frame(rf_encoder *e, rf_frame *out)
{
    if (e == NULL || out == NULL || e->finished)
        return RF_EINVAL;
    if (e->failed)
        return RF_ECODEC;
    /* Host frames go to the encoder as they are: copy the picture only if
     * it still holds a reference. The other canvases are never sent. */
    if (e->frames == RF_FRAMES_HOST) {
        int r = av_frame_make_writable(e->vframe);
        if (r < 0)
            return rf_enc_fail(e, "making the video frame writable", r);
    }
    memset(out, 0, sizeof(*out));
    out->fmt = RF_PIX_YUV420P;
    out->width = e->vframe->width;
    out->height = e->vframe->height;
    for (int i = 0; i < 3; i++) {
        out->data[i] = e->vframe->data[i];
        out->linesize[i] = e->vframe->linesize[i];
    }
    return RF_OK;
}

rf_err
rf_enc_submit(rf_encoder *e)
{
    if (e == NULL || e->finished)
        return RF_EINVAL;
    if (e->failed)
        return RF_ECODEC;
    e->vframe->pts = e->vpts++;
    e->vframe->pict_type = AV_PICTURE_TYPE_NONE;
    if (e->frames == RF_FRAMES_HOST)
        return rf_send(e, e->vcc, e->vst, e->vframe);
    rf_err rv = rf_upload(e);
    if (rv != RF_OK)
        return rv;
    return rf_send(e, e->vcc, e->vst, e->hwframe);
}

/* Encodes whole frames from the FIFO; with final, also the last partial one
 * (short if the encoder allows it, else padded with silence). */
static rf_err
rf_encode_fifo(rf_encoder *e, bool final)
{
    const int fs = e->acc->frame_size > 0 ? e->acc->frame_size : 1024;
    const bool small_ok = (e->acc->codec->capabilities & AV_CODEC_CAP_SMALL_LAST_FRAME) != 0 ||
                          (e->acc->codec->capabilities & AV_CODEC_CAP_VARIABLE_FRAME_SIZE) != 0;
    for (;;) {
        int avail = av_audio_fifo_size(e->fifo);
        if (avail == 0 || (avail < fs && !final))
            return RF_OK;
        int n = avail < fs ? avail : fs;
        int r = av_frame_make_writable(e->aframe);
        if (r < 0)
            return rf_enc_fail(e, "making the audio frame writable", r);
        e->aframe->nb_samples = fs;
        r = av_audio_fifo_read(e->fifo, (void **)e->aframe->data, n);
        if (r < n)
            return rf_enc_fail(e, "reading the audio FIFO", r < 0 ? r : AVERROR_BUG);
        if (n < fs) {
            if (small_ok)
                e->aframe->nb_samples = n;
            else
                av_samples_set_silence(e->aframe->data, n, fs - n, e->acc->ch_layout.nb_channels,
                                       e->acc->sample_fmt);
        }
        e->aframe->pts = e->apts;
        e->apts += e->aframe->nb_samples;
        rf_err rv = rf_send(e, e->acc, e->ast, e->aframe);
        e->aframe->nb_samples = fs;
        if (rv != RF_OK)
            return rv;
    }
}

/* Runs frames of input (NULL = flush the resampler) through swr into the
 * FIFO. */
static rf_err
rf_convert_audio(rf_encoder *e, const float *pcm, int frames)
{
    int need = swr_get_out_samples(e->swr, frames);
    if (need < 0)
        return rf_enc_fail(e, "audio converter", need);
    if (need == 0)
        return RF_OK;
    if (need > e->abuf_cap) {
        if (e->abuf != NULL)
            av_freep(&e->abuf[0]);
        av_freep(&e->abuf);
        e->abuf_cap = 0;
        int r = av_samples_alloc_array_and_samples(&e->abuf, NULL, e->acc->ch_layout.nb_channels,
                                                   need, e->acc->sample_fmt, 0);
        if (r < 0)
            return rf_enc_fail(e, "audio buffer", r);
        e->abuf_cap = need;
    }
    const uint8_t *in = (const uint8_t *)pcm;
    int got = swr_convert(e->swr, e->abuf, e->abuf_cap, pcm ? &in : NULL, pcm ? frames : 0);
    if (got < 0)
        return rf_enc_fail(e, "converting audio", got);
    if (got > 0) {
        int r = av_audio_fifo_write(e->fifo, (void **)e->abuf, got);
        if (r < got)
            return rf_enc_fail(e, "queueing audio", r < 0 ? r : AVERROR(ENOMEM));
    }
    return RF_OK;
}

rf_err
rf_enc_audio(rf_encoder *e, const float *pcm, size_t frames)
{
    if (e == NULL || (pcm == NULL && frames > 0) || e->finished)
        return RF_EINVAL;
    if (e->failed)
        return RF_ECODEC;
    for (size_t done = 0; done < frames;) {
        int n = frames - done > RF_AUDIO_CHUNK ? RF_AUDIO_CHUNK : (int)(frames - done);
        rf_err rv = rf_convert_audio(e, pcm + done * (size_t)e->in_channels, n);
        if (rv == RF_OK)
            rv = rf_encode_fifo(e, false);
        if (rv != RF_OK)
            return rv;
        done += (size_t)n;
    }
    return RF_OK;
}

rf_err
rf_enc_finish(rf_encoder *e, char *err, size_t err_len)
{
    rf_err rv = RF_OK;
    if (err != NULL && err_len > 0)
        err[0] = '\0';
    if (e == NULL || e->finished) {
        rf_errf(err, err_len, "encoder already finished");
        return RF_EINVAL;
    }
    e->finished = true;
    if (e->failed) {
        rv = RF_ECODEC;
        goto out;
    }
    /* The resampler's tail, the last partial frame, then both flushes. */
    rv = rf_convert_audio(e, NULL, 0);
    if (rv == RF_OK)
        rv = rf_encode_fifo(e, true);
    if (rv == RF_OK)
        rv = rf_send(e, e->acc, e->ast, NULL);
    if (rv == RF_OK)
        rv = rf_send(e, e->vcc, e->vst, NULL);
    if (rv != RF_OK)
        goto out;
    int r = av_write_trailer(e->fmt);
    if (r < 0) {
        rv = rf_enc_fail(e, "writing trailer", r);
        goto out;
    }
    if (e->pb_open) {
        e->pb_open = false;
        r = avio_closep(&e->fmt->pb);
        if (r < 0) {
            rv = rf_enc_fail(e, "closing output", r);
            goto out;
        }
    }
out:
    if (rv != RF_OK)
        rf_errf(err, err_len, "%s", e->err[0] ? e->err : "encoder failed");
    return rv;
}

void
rf_enc_free(rf_encoder **pe)
{
    if (pe == NULL || *pe == NULL)
        return;
    rf_encoder *e = *pe;
    /* An unfinished file is left as is (no trailer): the caller owns the
     * path and deletes what it does not want. */
    if (e->fmt != NULL && e->pb_open)
        avio_closep(&e->fmt->pb);
    avformat_free_context(e->fmt);
    avcodec_free_context(&e->vcc);
    avcodec_free_context(&e->acc);
    /* The NVENC session closed with its codec context. */
    if (e->nvenc_held)
        rf_enc_host_nvenc_release(e->host);
    av_frame_free(&e->vframe);
    av_frame_free(&e->nv12);
    av_frame_free(&e->hwframe);
    av_buffer_unref(&e->hw_frames);
    av_buffer_unref(&e->hw_dev);
    av_frame_free(&e->aframe);
    av_packet_free(&e->pkt);
    if (e->fifo != NULL)
        av_audio_fifo_free(e->fifo);
    swr_free(&e->swr);
    if (e->abuf != NULL)
        av_freep(&e->abuf[0]);
    av_freep(&e->abuf);
    free(e);
    *pe = NULL;
}

/* --- probe ------------------------------------------------------------------- */

static rf_err
rf_probe_audio(const rf_audio_backend *ab, char *why, size_t why_len)
{
    const AVCodec *codec = avcodec_find_encoder_by_name(ab->encoder);
    if (codec == NULL) {
        rf_errf(why, why_len, "not in this libavcodec build");
        return RF_EUNSUPPORTED;
    }
    AVCodecContext *cc = avcodec_alloc_context3(codec);
    if (cc == NULL)
        return RF_ENOMEM;
    rf_audio_common(cc, ab, 48000, 2, false);
    rf_err rv = RF_OK;
    int r = avcodec_open2(cc, codec, NULL);
    if (r < 0) {
        rf_errf(why, why_len, "does not open: %s", av_err2str(r));
        rv = RF_EUNSUPPORTED;
    }
    avcodec_free_context(&cc);
    return rv;
}

/* Probes one video backend, holding an NVENC session for it if it needs
 * one; logs the outcome. */
static bool
rf_probe_logged(rf_enc_host *host, const rf_video_backend *vb)
{
    char why[RF_ENC_ERR_MAX] = "";
    bool held = false;
    rf_err rv = rf_nvenc_session(host, vb, &held, why, sizeof(why));
    if (rv == RF_OK)
        rv = rf_probe_backend(vb, rf_vaapi_node(host), why, sizeof(why));
    if (held)
        rf_enc_host_nvenc_release(host);
    if (rv != RF_OK) {
        /* Missing hardware is normal on most hosts; a missing software
         * encoder means a broken install. */
        rf_log(vb->hw != RF_HW_NONE ? RF_LOG_INFO : RF_LOG_WARN,
               "encoder probe: %s unavailable: %s", vb->encoder, why[0] ? why : rf_strerror(rv));
        return false;
    }
    rf_info("encoder probe: %s opens", vb->encoder);
    return true;
}

int
rf_enc_probe(rf_enc_host *host, char names[][RF_NAME_MAX], int max)
{
    int n = 0;
    char why[RF_ENC_ERR_MAX];
    /* Hardware first, in the order rf_enc_open will prefer them. */
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < RF_COUNT(rf_video_backends); i++) {
            const rf_video_backend *vb = &rf_video_backends[i];
            if ((vb->hw != RF_HW_NONE) != (pass == 0))
                continue;
            if (rf_probe_logged(host, vb) && names != NULL && n < max)
                snprintf(names[n++], RF_NAME_MAX, "%s", vb->encoder);
        }
    }
    for (size_t i = 0; i < RF_COUNT(rf_audio_backends); i++) {
        why[0] = '\0';
        rf_err rv = rf_probe_audio(&rf_audio_backends[i], why, sizeof(why));
        if (rv != RF_OK) {
            rf_warn("encoder probe: %s unavailable: %s", rf_audio_backends[i].encoder,
                    why[0] ? why : rf_strerror(rv));
            continue;
        }
        if (names != NULL && n < max)
            snprintf(names[n++], RF_NAME_MAX, "%s", rf_audio_backends[i].encoder);
    }
    return n;
}
