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
 * codec and sets its private options. rf_enc_open walks the rows for the
 * requested codec in order and keeps the first that opens, logging why each
 * earlier one did not. */
#include "encoder.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/audio_fifo.h>
#include <libavutil/channel_layout.h>
#include <libavutil/hwcontext.h>
#include <libavutil/opt.h>
#include <libavutil/samplefmt.h>
#include <libswresample/swresample.h>

#include "rf_log.h"
#include "rf_util.h"

#define RF_ENC_ERR_MAX 256
/* Audio is converted in chunks of this many input frames so one large
 * rf_enc_audio call does not need one large temporary buffer. */
#define RF_AUDIO_CHUNK 4096
#define RF_PROBE_SIZE 256

/* --- backend tables ------------------------------------------------------ */

typedef rf_err (*rf_video_setup_fn)(AVCodecContext *cc, const rf_enc_config *cfg, char *err,
                                    size_t err_len);

typedef struct rf_video_backend {
    const char *codec;   /* our name: "h264", "h265", "vp9" */
    const char *encoder; /* libavcodec encoder name */
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

/* In preference order per codec: NVENC, then software. NVENC takes the
 * host YUV420P frame the compositor drew and uploads it itself (one copy
 * per frame; the zero-copy path with a CUDA frames pool shared with the CUDA
 * compositor is the next step). VAAPI rows (h264_vaapi, hevc_vaapi,
 * vp9_vaapi) need a device, a frames context and an upload per frame, and
 * are added with that support rather than listed here unusable. */
static const rf_video_backend rf_video_backends[] = {
    {"h264", "h264_nvenc", rf_setup_nvenc},  {"h264", "libx264", rf_setup_x264},
    {"h265", "hevc_nvenc", rf_setup_nvenc},  {"h265", "libx265", rf_setup_x265},
    {"vp9", "libvpx-vp9", rf_setup_vpx_vp9},
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

struct rf_encoder {
    const rf_video_backend *vb;
    AVFormatContext *fmt;
    AVCodecContext *vcc, *acc;
    AVStream *vst, *ast;
    AVFrame *vframe; /* the one picture the caller draws into */
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

/* Opens one video backend into e->vcc, or says why not in err. */
static rf_err
rf_open_video_backend(rf_encoder *e, const rf_video_backend *vb, const rf_enc_config *cfg,
                      char *err, size_t err_len)
{
    const AVCodec *codec = avcodec_find_encoder_by_name(vb->encoder);
    if (codec == NULL) {
        rf_errf(err, err_len, "%s is not in this libavcodec build", vb->encoder);
        return RF_EUNSUPPORTED;
    }
    AVCodecContext *cc = avcodec_alloc_context3(codec);
    if (cc == NULL)
        return RF_ENOMEM;
    rf_video_common(cc, cfg, (e->fmt->oformat->flags & AVFMT_GLOBALHEADER) != 0);
    rf_err rv = vb->setup(cc, cfg, err, err_len);
    if (rv != RF_OK) {
        avcodec_free_context(&cc);
        return rv;
    }
    int r = avcodec_open2(cc, codec, NULL);
    if (r < 0) {
        rf_errf(err, err_len, "opening %s at %dx%d: %s", vb->encoder, cfg->width, cfg->height,
                av_err2str(r));
        avcodec_free_context(&cc);
        return RF_ECODEC;
    }
    e->vcc = cc;
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

static rf_err
rf_open_video(rf_encoder *e, const rf_enc_config *cfg, const rf_container *ct, char *err,
              size_t err_len)
{
    rf_err rv = RF_EUNSUPPORTED;
    for (size_t i = 0; i < RF_COUNT(rf_video_backends); i++) {
        const rf_video_backend *vb = &rf_video_backends[i];
        if (strcmp(vb->codec, cfg->video_codec) != 0)
            continue;
        if (!rf_backend_available(cfg, vb->encoder)) {
            rv = RF_EUNSUPPORTED;
            rf_errf(err, err_len, "did not open in the start-up probe");
        } else {
            rv = rf_open_video_backend(e, vb, cfg, err, err_len);
            if (rv == RF_OK)
                break;
            if (rv == RF_ENOMEM)
                return rv;
            rf_warn("encoder: %s unusable, trying the next backend: %s", vb->encoder, err);
        }
        /* Every fallback and its reason goes with the result. */
        size_t used = strlen(e->note);
        snprintf(e->note + used, sizeof(e->note) - used, "%s%s: %s", used ? "; " : "", vb->encoder,
                 err);
    }
    if (rv != RF_OK)
        return rv;

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

    /* The reusable picture, black until the caller draws. */
    e->vframe = av_frame_alloc();
    if (e->vframe == NULL)
        return RF_ENOMEM;
    e->vframe->format = AV_PIX_FMT_YUV420P;
    e->vframe->width = cfg->width;
    e->vframe->height = cfg->height;
    e->vframe->color_primaries = AVCOL_PRI_BT709;
    e->vframe->color_trc = AVCOL_TRC_BT709;
    e->vframe->colorspace = AVCOL_SPC_BT709;
    e->vframe->color_range = AVCOL_RANGE_MPEG;
    r = av_frame_get_buffer(e->vframe, 0);
    if (r < 0) {
        rf_errf(err, err_len, "video frame buffer: %s", av_err2str(r));
        return RF_ENOMEM;
    }
    memset(e->vframe->data[0], 16, (size_t)e->vframe->linesize[0] * (size_t)cfg->height);
    memset(e->vframe->data[1], 128, (size_t)e->vframe->linesize[1] * (size_t)(cfg->height / 2));
    memset(e->vframe->data[2], 128, (size_t)e->vframe->linesize[2] * (size_t)(cfg->height / 2));
    return RF_OK;
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

rf_err
rf_enc_frame(rf_encoder *e, rf_frame *out)
{
    if (e == NULL || out == NULL || e->finished)
        return RF_EINVAL;
    if (e->failed)
        return RF_ECODEC;
    /* Copies the picture only if the encoder still holds a reference. */
    int r = av_frame_make_writable(e->vframe);
    if (r < 0)
        return rf_enc_fail(e, "making the video frame writable", r);
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
    return rf_send(e, e->vcc, e->vst, e->vframe);
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
    av_frame_free(&e->vframe);
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

/* Opens encoder `name` on a tiny picture; RF_OK if it opens, else the reason
 * in why. VAAPI needs a device and a frames pool before it can open. */
static rf_err
rf_probe_video(const char *name, char *why, size_t why_len)
{
    rf_err rv = RF_OK;
    AVCodecContext *cc = NULL;
    AVBufferRef *dev = NULL, *frames = NULL;
    const AVCodec *codec = avcodec_find_encoder_by_name(name);
    if (codec == NULL) {
        rf_errf(why, why_len, "not in this libavcodec build");
        return RF_EUNSUPPORTED;
    }
    cc = avcodec_alloc_context3(codec);
    if (cc == NULL)
        return RF_ENOMEM;
    rf_enc_config cfg = {.width = RF_PROBE_SIZE,
                         .height = RF_PROBE_SIZE,
                         .fps = 30,
                         .gop_frames = 60,
                         .preset = "ultrafast"};
    rf_video_common(cc, &cfg, false);
    cc->thread_count = 1; /* a probe must be quick, not fast */
    for (size_t i = 0; i < RF_COUNT(rf_video_backends); i++) {
        if (strcmp(rf_video_backends[i].encoder, name) == 0) {
            rv = rf_video_backends[i].setup(cc, &cfg, why, why_len);
            if (rv != RF_OK)
                goto out;
        }
    }
    if (strstr(name, "_vaapi") != NULL) {
        int r = av_hwdevice_ctx_create(&dev, AV_HWDEVICE_TYPE_VAAPI, NULL, NULL, 0);
        if (r < 0) {
            rf_errf(why, why_len, "no VAAPI device: %s", av_err2str(r));
            rv = RF_EUNSUPPORTED;
            goto out;
        }
        frames = av_hwframe_ctx_alloc(dev);
        if (frames == NULL) {
            rv = RF_ENOMEM;
            goto out;
        }
        AVHWFramesContext *fc = (AVHWFramesContext *)frames->data;
        fc->format = AV_PIX_FMT_VAAPI;
        fc->sw_format = AV_PIX_FMT_NV12;
        fc->width = RF_PROBE_SIZE;
        fc->height = RF_PROBE_SIZE;
        fc->initial_pool_size = 4;
        r = av_hwframe_ctx_init(frames);
        if (r < 0) {
            rf_errf(why, why_len, "VAAPI frames pool: %s", av_err2str(r));
            rv = RF_EUNSUPPORTED;
            goto out;
        }
        cc->pix_fmt = AV_PIX_FMT_VAAPI;
        cc->hw_frames_ctx = av_buffer_ref(frames);
        if (cc->hw_frames_ctx == NULL) {
            rv = RF_ENOMEM;
            goto out;
        }
    }
    int r = avcodec_open2(cc, codec, NULL);
    if (r < 0) {
        /* NVENC says only EPERM/ENOSYS here; the libav log has the detail. */
        rf_errf(why, why_len, "does not open: %s%s", av_err2str(r),
                strstr(name, "_nvenc") != NULL ? " (no NVIDIA driver or GPU usable)" : "");
        rv = RF_EUNSUPPORTED;
    }
out:
    avcodec_free_context(&cc);
    av_buffer_unref(&frames);
    av_buffer_unref(&dev);
    return rv;
}

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

int
rf_enc_probe(char names[][RF_NAME_MAX], int max)
{
    /* Hardware first, in the order rf_enc_open will prefer them. */
    static const char *const video[] = {"h264_nvenc", "hevc_nvenc", "h264_vaapi", "hevc_vaapi",
                                        "libx264",    "libx265",    "libvpx-vp9"};
    int n = 0;
    char why[RF_ENC_ERR_MAX];
    for (size_t i = 0; i < RF_COUNT(video); i++) {
        why[0] = '\0';
        rf_err rv = rf_probe_video(video[i], why, sizeof(why));
        if (rv != RF_OK) {
            /* Missing hardware is normal on most hosts; a missing software
             * encoder means a broken install. */
            bool hw = strstr(video[i], "_nvenc") != NULL || strstr(video[i], "_vaapi") != NULL;
            rf_log(hw ? RF_LOG_INFO : RF_LOG_WARN, "encoder probe: %s unavailable: %s", video[i],
                   why[0] ? why : rf_strerror(rv));
            continue;
        }
        rf_info("encoder probe: %s opens", video[i]);
        if (names != NULL && n < max)
            snprintf(names[n++], RF_NAME_MAX, "%s", video[i]);
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
