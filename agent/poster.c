/* Poster frames and WebVTT: small files written once per rendition, so
 * simplicity beats speed here; the one colour conversion per poster is
 * swscale's (limited-range BT.709 in, full-range JPEG out). */
#include "poster.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavutil/imgutils.h>
#include <libswscale/swscale.h>

#include "rf_log.h"
#include "rf_util.h"

rf_err
rf_poster_write_jpeg(const rf_frame *f, const char *path, int max_width, char *err, size_t err_len)
{
    const AVCodec *codec = avcodec_find_encoder(AV_CODEC_ID_MJPEG);
    AVCodecContext *cc = NULL;
    AVFrame *out = NULL;
    AVPacket *pkt = NULL;
    struct SwsContext *sws = NULL;
    FILE *fp = NULL;
    rf_err rv = RF_ECODEC;
    int r;

    if (f == NULL || path == NULL || f->width <= 0 || f->height <= 0 || max_width < 16) {
        rf_errf(err, err_len, "bad poster arguments");
        return RF_EINVAL;
    }
    int w = f->width > max_width ? max_width : f->width;
    int h = (int)((int64_t)f->height * w / f->width) & ~1;
    if (h < 2)
        h = 2;
    if (codec == NULL) {
        rf_errf(err, err_len, "no MJPEG encoder in this libavcodec");
        return RF_EUNSUPPORTED;
    }
    cc = avcodec_alloc_context3(codec);
    out = av_frame_alloc();
    pkt = av_packet_alloc();
    if (cc == NULL || out == NULL || pkt == NULL) {
        rv = RF_ENOMEM;
        goto out;
    }
    cc->width = w;
    cc->height = h;
    cc->pix_fmt = AV_PIX_FMT_YUVJ420P;
    cc->color_range = AVCOL_RANGE_JPEG;
    cc->colorspace = AVCOL_SPC_BT709;
    cc->time_base = (AVRational){1, 25};
    cc->flags |= AV_CODEC_FLAG_QSCALE;
    cc->global_quality = FF_QP2LAMBDA * 3; /* high quality, small file */
    r = avcodec_open2(cc, codec, NULL);
    if (r < 0) {
        rf_errf(err, err_len, "mjpeg: %s", av_err2str(r));
        goto out;
    }
    out->format = AV_PIX_FMT_YUVJ420P;
    out->width = w;
    out->height = h;
    out->color_range = AVCOL_RANGE_JPEG;
    r = av_frame_get_buffer(out, 0);
    if (r < 0) {
        rv = RF_ENOMEM;
        goto out;
    }
    enum AVPixelFormat in_fmt = f->fmt == RF_PIX_NV12 ? AV_PIX_FMT_NV12 : AV_PIX_FMT_YUV420P;
    sws = sws_getContext(f->width, f->height, in_fmt, w, h, AV_PIX_FMT_YUVJ420P,
                         SWS_BICUBIC | SWS_ACCURATE_RND, NULL, NULL, NULL);
    if (sws == NULL) {
        rf_errf(err, err_len, "swscale context");
        goto out;
    }
    /* Limited-range BT.709 in, full-range BT.709 out. */
    const int *coef = sws_getCoefficients(SWS_CS_ITU709);
    sws_setColorspaceDetails(sws, coef, 0, coef, 1, 0, 1 << 16, 1 << 16);
    const uint8_t *src[4] = {f->data[0], f->data[1], f->data[2], NULL};
    int src_ls[4] = {f->linesize[0], f->linesize[1], f->linesize[2], 0};
    sws_scale(sws, src, src_ls, 0, f->height, out->data, out->linesize);

    r = avcodec_send_frame(cc, out);
    if (r >= 0)
        r = avcodec_send_frame(cc, NULL);
    if (r >= 0)
        r = avcodec_receive_packet(cc, pkt);
    if (r < 0) {
        rf_errf(err, err_len, "mjpeg encode: %s", av_err2str(r));
        goto out;
    }
    fp = fopen(path, "wb");
    if (fp == NULL || fwrite(pkt->data, 1, (size_t)pkt->size, fp) != (size_t)pkt->size) {
        rf_errf(err, err_len, "writing %s: %s", path, strerror(errno));
        rv = RF_EIO;
        goto out;
    }
    rv = RF_OK;
out:
    if (fp != NULL && fclose(fp) != 0 && rv == RF_OK) {
        rf_errf(err, err_len, "closing %s: %s", path, strerror(errno));
        rv = RF_EIO;
    }
    sws_freeContext(sws);
    av_packet_free(&pkt);
    av_frame_free(&out);
    avcodec_free_context(&cc);
    return rv;
}

static void
vtt_time(FILE *fp, int64_t ms)
{
    if (ms < 0)
        ms = 0;
    fprintf(fp, "%02" PRId64 ":%02" PRId64 ":%02" PRId64 ".%03" PRId64, ms / 3600000,
            ms / 60000 % 60, ms / 1000 % 60, ms % 1000);
}

/* Cue text: &, < and > escaped (so nothing opens a tag or ends the cue with
 * "-->"), line breaks folded to spaces (a blank line would end the cue). */
static void
vtt_text(FILE *fp, const char *s)
{
    for (; *s != '\0'; s++) {
        switch (*s) {
        case '&':
            fputs("&amp;", fp);
            break;
        case '<':
            fputs("&lt;", fp);
            break;
        case '>':
            fputs("&gt;", fp);
            break;
        case '\r':
        case '\n':
            fputc(' ', fp);
            break;
        default:
            fputc(*s, fp);
        }
    }
}

rf_err
rf_captions_write_vtt(const rf_caption *caps, int n, const char *path)
{
    FILE *fp = fopen(path, "w");

    if (fp == NULL)
        return RF_EIO;
    fputs("WEBVTT\n", fp);
    for (int i = 0, cue = 1; i < n; i++) {
        if (caps[i].text == NULL || caps[i].text[0] == '\0' || caps[i].end_ms <= caps[i].start_ms)
            continue;
        fprintf(fp, "\n%d\n", cue++);
        vtt_time(fp, caps[i].start_ms);
        fputs(" --> ", fp);
        vtt_time(fp, caps[i].end_ms);
        fputc('\n', fp);
        vtt_text(fp, caps[i].text);
        fputc('\n', fp);
    }
    if (ferror(fp)) {
        fclose(fp);
        return RF_EIO;
    }
    return fclose(fp) == 0 ? RF_OK : RF_EIO;
}
