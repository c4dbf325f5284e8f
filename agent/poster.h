/* Per-rendition side files: a JPEG poster frame and a WebVTT caption track. */
#ifndef RF_POSTER_H
#define RF_POSTER_H

#include <stddef.h>

#include "rf_compose.h"
#include "rf_err.h"
#include "scene.h"

/* Writes frame f (host, YUV420P or NV12, BT.709 limited range) as a baseline
 * JPEG (full range, as JPEG expects) at path, scaled down to at most
 * max_width pixels wide keeping the aspect ratio. err gets the libav reason
 * on failure (RF_ECODEC, RF_EIO). */
rf_err rf_poster_write_jpeg(const rf_frame *f, const char *path, int max_width, char *err,
                            size_t err_len);

/* Writes captions as a WebVTT file (cue times on the video's timeline; text
 * escaped so it can never end a cue or open a tag). */
rf_err rf_captions_write_vtt(const rf_caption *caps, int n, const char *path);

#endif
