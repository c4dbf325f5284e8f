/* The compositor: blends pre-rasterised layers over a background into a frame
 * in the encoder's own pixel format (8-bit YUV 4:2:0, BT.709 limited range),
 * touching only the rectangles it is asked to. One interface, two
 * implementations: the CPU reference (compose_cpu.c), which is the oracle,
 * and a CUDA twin (compose_cuda.cu) with the same results within
 * RF_COMPOSE_TOLERANCE per 8-bit sample.
 *
 * Work split: text, shapes and images are rasterised ONCE per layer (per
 * unit) into an rf_layer_tex; per frame only rf_comp_render() runs, with one
 * rf_layer_state per visible layer. */
#ifndef RF_COMPOSE_H
#define RF_COMPOSE_H

#include <stdbool.h>
#include <stdint.h>

#include "rf_err.h"

#ifdef __cplusplus
extern "C" {
#endif

#define RF_COMPOSE_TOLERANCE 2 /* max |cuda - cpu| per 8-bit sample */

typedef enum rf_pixfmt {
    RF_PIX_YUV420P = 0, /* planes Y, U, V */
    RF_PIX_NV12 = 1,    /* planes Y, interleaved UV */
} rf_pixfmt;

/* A frame whose planes the caller owns. width and height are even.
 * data[] are host pointers for the CPU backend, device pointers for CUDA. */
typedef struct rf_frame {
    rf_pixfmt fmt;
    int width, height;
    uint8_t *data[3];
    int linesize[3]; /* bytes per row of each plane (pitch) */
} rf_frame;

/* A layer texture: premultiplied YUVA 4:2:0 at the layer's own size.
 *   y[i]  = Y  * a / 255 (luma, full resolution), a[i] alpha 0..255
 *   u, v  = (U, V) * ca / 255 at chroma resolution ((w+1)/2 x (h+1)/2),
 *   ca    = mean alpha of the 2x2 luma block
 * Premultiplied so that blending is dst = src + dst * (255 - alpha) / 255. */
typedef struct rf_layer_tex {
    int width, height;   /* luma size, even */
    uint8_t *y, *a;      /* pitch = y_pitch */
    uint8_t *u, *v, *ca; /* pitch = c_pitch */
    int y_pitch, c_pitch;
} rf_layer_tex;

typedef struct rf_rect {
    int x, y, w, h;
} rf_rect;

/* Where and how a layer appears on one frame. x and y are the layer's
 * top-left in frame pixels and are rounded down to even by the compositor so
 * chroma stays aligned; the layer is clipped to the frame. opacity 0..255
 * multiplies the layer's own alpha. */
typedef struct rf_layer_state {
    int layer; /* index returned by rf_comp_add_layer */
    int x, y;
    uint8_t opacity;
} rf_layer_state;

typedef struct rf_compositor rf_compositor;

/* Creates a compositor for frames of width x height in fmt. backend is
 * "cpu" or "cuda" ("cuda" returns RF_EUNSUPPORTED when not compiled in or
 * no device is usable; the caller falls back to "cpu"). */
rf_err rf_comp_create(const char *backend, int width, int height, rf_pixfmt fmt,
                      rf_compositor **out);

/* Free and total memory of the CUDA device the compositor uses, in bytes.
 * RF_EUNSUPPORTED when built without CUDA or no device is usable. */
rf_err rf_comp_gpu_memory(size_t *free_bytes, size_t *total_bytes);

/* Name of the backend actually in use: "cpu" or "cuda". */
const char *rf_comp_backend(const rf_compositor *c);

/* Copies the background (a full frame, host memory) into the compositor. */
rf_err rf_comp_set_background(rf_compositor *c, const rf_frame *bg);

/* Copies a layer texture (host memory) into the compositor (uploaded once for
 * CUDA); *index receives its handle. The caller keeps ownership of tex. */
rf_err rf_comp_add_layer(rf_compositor *c, const rf_layer_tex *tex, int *index);

/* Renders into dst: for each rect in dirty[0..n_dirty), restores the
 * background there and blends, in order, every state in states[0..n_states)
 * that intersects it. Rects are clipped to the frame and expanded to even
 * coordinates. Pixels outside the rects are left untouched, which is what
 * lets the caller reuse the previous frame. dst must be a frame of the
 * compositor's size and format (host memory for "cpu", device for "cuda"). */
rf_err rf_comp_render(rf_compositor *c, rf_frame *dst, const rf_layer_state *states, int n_states,
                      const rf_rect *dirty, int n_dirty);

/* A frame in the compositor's own memory (device memory for "cuda", host
 * for "cpu"), of its size and format, to render into. */
rf_err rf_comp_frame_alloc(rf_compositor *c, rf_frame *f);
void rf_comp_frame_free(rf_compositor *c, rf_frame *f);

/* Copies the given rects of src (a frame from rf_comp_frame_alloc) into a
 * host frame of the same size and format: after rendering on the GPU, only
 * what changed crosses to host memory for a software encoder. */
rf_err rf_comp_download(rf_compositor *c, const rf_frame *src, rf_frame *host, const rf_rect *rects,
                        int n_rects);

void rf_comp_free(rf_compositor **c);

/* --- conversions, done once per unit/layer on the CPU ---------------- */

/* Allocates tex planes for a width x height layer (zeroed = transparent). */
rf_err rf_layer_tex_alloc(rf_layer_tex *tex, int width, int height);
void rf_layer_tex_release(rf_layer_tex *tex);

/* Converts a premultiplied-ARGB32 image (Cairo's CAIRO_FORMAT_ARGB32,
 * native-endian uint32 per pixel) into a layer texture. Odd sizes are padded
 * to even with transparent pixels. */
rf_err rf_layer_from_argb32(const uint8_t *argb, int width, int height, int stride,
                            rf_layer_tex *tex);

/* Converts an opaque ARGB32 image of exactly dst's size into dst (host). */
rf_err rf_frame_from_argb32(const uint8_t *argb, int stride, rf_frame *dst);

/* Allocates / frees a host frame (planes in one block, 64-byte aligned rows). */
rf_err rf_frame_alloc(rf_frame *f, rf_pixfmt fmt, int width, int height);
void rf_frame_release(rf_frame *f);

/* BT.709 limited range, 8-bit: RGB (0..255, non-premultiplied) -> Y'CbCr. */
void rf_rgb_to_yuv709(uint8_t r, uint8_t g, uint8_t b, uint8_t *y, uint8_t *u, uint8_t *v);

/* Rect helpers. */
bool rf_rect_intersect(rf_rect a, rf_rect b, rf_rect *out);
rf_rect rf_rect_union(rf_rect a, rf_rect b);

#ifdef __cplusplus
}
#endif

#endif
