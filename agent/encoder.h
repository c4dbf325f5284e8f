/* Encoders and muxing through libavcodec/libavformat. One rf_encoder writes
 * one file: video from frames the compositor fills in place, audio from
 * float PCM. Backends (NVENC, VAAPI, then libx264 / libx265 / libvpx-vp9)
 * sit in one table in encoder.c, chosen per file by rf_enc_open from what
 * opens here; docs/RENDERING.md describes the fallback. */
#ifndef RF_ENCODER_H
#define RF_ENCODER_H

#include <stdbool.h>
#include <stddef.h>

#include "rf_compose.h"
#include "rf_err.h"
#include "rf_proto.h"

/* The render node VAAPI encoders use when the host names none. */
#define RF_VAAPI_NODE_DEFAULT "/dev/dri/renderD128"

/* Concurrent NVENC sessions an agent allows by default. GeForce drivers cap
 * the sessions of the whole system (3 for years, 5 or 8 in newer drivers)
 * and refuse the next one; 3 is safe on every driver and leaves room for a
 * desktop's own use. Data-centre cards have no cap, but each session holds
 * GPU memory and they share one encoder engine, so more rarely pays.
 * Agents on such cards raise it (--nvenc-sessions). */
#define RF_NVENC_SESSIONS_DEFAULT 3

/* What the encoders of one process share, for all its slots at once: the
 * VAAPI render node, the count of NVENC sessions in use against a limit, and
 * the backends the start-up probe listed that later failed to open (the next
 * file re-probes them before trusting them again). Thread-safe. */
typedef struct rf_enc_host rf_enc_host;

/* vaapi_node NULL = RF_VAAPI_NODE_DEFAULT; nvenc_sessions >= 0 (0: NVENC is
 * never used). Returns RF_EINVAL or RF_ENOMEM on failure. */
rf_err rf_enc_host_create(const char *vaapi_node, int nvenc_sessions, rf_enc_host **out);
void rf_enc_host_free(rf_enc_host **h);

/* Takes one NVENC session if fewer than the limit are in use; false (and
 * *limit set, if not NULL) when all are taken. rf_enc_open does this itself;
 * it is public so the accounting can be checked and shared. */
bool rf_enc_host_nvenc_acquire(rf_enc_host *h, int *limit);
void rf_enc_host_nvenc_release(rf_enc_host *h);
int rf_enc_host_nvenc_in_use(rf_enc_host *h);

typedef struct rf_enc_config {
    const char *path;        /* output file, written in place */
    const char *container;   /* "mp4" (faststart), "mov", "webm" */
    const char *video_codec; /* "h264", "h265", "vp9" */
    const char *audio_codec; /* "aac", "opus" */
    const char *preset;      /* e.g. "veryfast"; NULL = backend default */
    int width, height, fps;
    int gop_frames; /* max frames between keyframes */
    int crf;        /* quality, 0 = backend default */
    int sample_rate, channels;
    /* Encoders the start-up probe opened (rf_enc_probe); a backend not in
     * the list is passed over with that reason. NULL: try every backend. */
    const char (*available)[RF_NAME_MAX];
    int n_available;
    /* Shared host state (session limit, VAAPI node, re-probes); NULL: no
     * limit, the default node, no memory of earlier failures. */
    rf_enc_host *host;
    /* The caller composites with CUDA: NVENC then takes frames from a CUDA
     * pool on the CUDA runtime's own context, and rf_enc_frame gives a
     * device frame (rf_enc_device_frames says which was set up). */
    bool cuda_frames;
} rf_enc_config;

typedef struct rf_encoder rf_encoder;

/* Opens the encoders and the muxer and writes the header. err gets the reason
 * for a failure (the libav message with context). */
rf_err rf_enc_open(const rf_enc_config *cfg, rf_encoder **out, char *err, size_t err_len);

/* libavcodec name of the video encoder in use, e.g. "libx264". */
const char *rf_enc_video_name(const rf_encoder *e);

/* The faster backends passed over for this file and why ("h264_nvenc: ...;
 * ..."), or "" when the first choice opened. Valid until rf_enc_free. */
const char *rf_enc_note(const rf_encoder *e);

/* True when rf_enc_frame gives device memory (cfg.cuda_frames was asked and
 * NVENC opened with a CUDA frames pool); false: host memory. */
bool rf_enc_device_frames(const rf_encoder *e);

/* Gives the frame to draw the next picture into (YUV420P, in host memory or,
 * see rf_enc_device_frames, device memory). It is the same frame every time
 * and keeps the previous picture, so a caller only redraws what changed. */
rf_err rf_enc_frame(rf_encoder *e, rf_frame *out);

/* Encodes the frame's current contents as the next picture (pts = count). */
rf_err rf_enc_submit(rf_encoder *e);

/* Queues interleaved float audio (cfg.channels) for encoding. */
rf_err rf_enc_audio(rf_encoder *e, const float *pcm, size_t frames);

/* Flushes encoders, writes the trailer (and moves moov first for mp4). */
rf_err rf_enc_finish(rf_encoder *e, char *err, size_t err_len);

void rf_enc_free(rf_encoder **e);

/* Tries each known encoder on this host with a tiny picture and lists those
 * that open (names as libavcodec spells them). Each one that does not open is
 * logged with the reason. host (may be NULL) gives the VAAPI node and the
 * NVENC session limit. Returns the count written to names. */
int rf_enc_probe(rf_enc_host *host, char names[][RF_NAME_MAX], int max);

#endif
