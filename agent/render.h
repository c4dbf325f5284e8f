/* Renders one work unit into a finished file: narration, timing, scene,
 * per-frame compositing (only what changed), encoding, atomic placement.
 * Independent of the network: the agent loop and the benchmarks both call it. */
#ifndef RF_RENDER_H
#define RF_RENDER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "encoder.h"
#include "rf_err.h"
#include "rf_proto.h"

/* Live counters the heartbeat reads while the unit renders. */
typedef struct rf_render_progress {
    _Atomic uint32_t frames_done;
    _Atomic uint32_t frames_total;
    _Atomic int stage;  /* rf_render_stage */
    atomic_bool cancel; /* set by the caller to stop the render */
} rf_render_progress;

typedef enum rf_render_stage {
    RF_STAGE_QUEUED = 0,
    RF_STAGE_AUDIO = 1,
    RF_STAGE_SCENE = 2,
    RF_STAGE_ENCODE = 3,
    RF_STAGE_FINISH = 4,
} rf_render_stage;

/* Wire name of a stage ("audio", "render", ...). */
const char *rf_render_stage_name(int stage);

typedef struct rf_render_opts {
    const char *compositor;       /* "auto", "cpu" or "cuda" */
    rf_render_progress *progress; /* may be NULL */
    /* Asked just before the finished files are moved into place: false
     * means the unit is no longer ours (lease lost), so nothing is placed
     * and the render ends with RF_ECANCELED. NULL: always place. */
    bool (*may_place)(void *ctx);
    void *may_place_ctx;
    /* Encoders the host's start-up probe opened (NULL: try them all). */
    const char (*encoders)[RF_NAME_MAX];
    int n_encoders;
    /* Encoder state the agent's slots share (NVENC sessions, VAAPI node,
     * re-probes); NULL: none. */
    rf_enc_host *enc_host;
} rf_render_opts;

typedef struct rf_render_result {
    char output_path[RF_PATH_MAX];
    uint64_t size_bytes;
    char sha256[65];
    uint32_t duration_ms; /* media duration actually written */
    uint32_t frames;
    char encoder[RF_NAME_MAX];
    char encoder_note[RF_ERRMSG_MAX]; /* faster encoders passed over and why */
    char compositor[RF_NAME_MAX];
    char poster_path[RF_PATH_MAX];          /* JPEG poster beside the video */
    char captions_path[RF_PATH_MAX];        /* WebVTT captions beside the video */
    uint32_t render_ms;                     /* wall time of the whole unit */
    uint32_t audio_ms, scene_ms, encode_ms; /* wall time of each stage */
    uint32_t frames_composited;             /* frames on which something had to be redrawn */
    double lufs, true_peak_db;
    /* On failure: the user-facing video error code (BRIEF: asset_download_failed,
     * template_render_error, audio_generation_failed, video_encoding_error,
     * storage_upload_failed), a message, and whether a retry may help. */
    char error_code[RF_NAME_MAX];
    char error_message[RF_ERRMSG_MAX];
    bool retryable;
} rf_render_result;

/* The timing rule (docs/RENDERING.md): the video lasts the requested
 * duration; the narration starts after the title card and must end before
 * the end card. If it would not fit it is spoken up to RF_MAX_SPEEDUP times
 * faster, and if it still does not fit the video is lengthened to fit it:
 * narration is never cut. */
#define RF_MAX_SPEEDUP 1.25

/* Renders u to u->output_path (written as a ".part-<lease>" file and renamed
 * into place when complete), with a JPEG poster frame (the title card) and
 * WebVTT captions beside it: same name, extensions .jpg and .vtt. Returns RF_OK and fills res, or
 * an error with res->error_code/error_message set; RF_ECANCELED if progress->cancel was set. Leaves
 * no partial file behind on failure. */
rf_err rf_render_unit(const rf_unit *u, const rf_render_opts *o, rf_render_result *res);

#endif
