/* Encoders and muxing through libavcodec/libavformat. One rf_encoder writes
 * one file: video from frames the compositor fills in place, audio from
 * float PCM. Backends (libx264 now; NVENC, VAAPI, x265, VP9 later) sit behind
 * one ops table in encoder.c, chosen by rf_enc_open from what opens here. */
#ifndef RF_ENCODER_H
#define RF_ENCODER_H

#include <stddef.h>

#include "rf_compose.h"
#include "rf_err.h"
#include "rf_proto.h"

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

/* Gives the frame to draw the next picture into (host memory, the encoder's
 * own pixel format). It is the same frame every time and keeps the previous
 * picture, so a caller only redraws what changed. */
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
 * logged with the reason. Returns the count written to names. */
int rf_enc_probe(char names[][RF_NAME_MAX], int max);

#endif
