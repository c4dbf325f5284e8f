/* Private to kernels/: the compositor object and the backend ops table that
 * compose_cpu.c (the reference) and compose_cuda.cu (its twin) implement.
 * Nothing outside kernels/ includes this; the public API is rf_compose.h.
 *
 * Shared arithmetic (both backends MUST use exactly this, so that the CPU
 * result is the oracle for the CUDA one):
 *
 *   D(x) = (x + 128 + ((x + 128) >> 8)) >> 8
 *        = round(x / 255), exact for every integer 0 <= x <= 65535
 *          (x / 255 is never a tie because 255 is odd).
 *
 *   Per 8-bit sample, with s the premultiplied layer sample (y, u or v),
 *   a its alpha (a for luma, ca for chroma), op the state's opacity and d the
 *   destination sample (already holding the background):
 *
 *     eff = D(a * op)                 effective alpha
 *     src = D(s * op)                 source scaled by opacity
 *     out = src + D(d * (255 - eff))
 *
 *   When op == 255 this reduces exactly to eff = a, src = s (D(255 * k) = k),
 *   which the CPU backend uses as a fast path. out never exceeds 255 because
 *   textures keep s <= a (rf_layer_from_argb32 guarantees it: Y <= 235,
 *   U, V <= 240 before premultiplication; rf_comp_add_layer clamps any
 *   hand-made texture that does not), hence src <= eff. A sample with a = 0
 *   leaves d exactly unchanged, so backends may skip transparent spans.
 */
#ifndef RF_COMPOSE_PRIV_H
#define RF_COMPOSE_PRIV_H

#include "rf_compose.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One backend. create() receives a compositor whose width, height, fmt and
 * ops are already set and fills c->impl; destroy() frees c->impl (called
 * only after a successful create). Argument checks common to every backend
 * (sizes, formats, layer indices) are done in compose_cpu.c before the ops
 * are called, so backends may assume valid input. */
typedef struct rf_comp_ops {
    const char *name; /* "cpu", "cuda" */
    rf_err (*create)(rf_compositor *c);
    rf_err (*set_background)(rf_compositor *c, const rf_frame *bg);
    rf_err (*add_layer)(rf_compositor *c, const rf_layer_tex *tex, int index);
    /* rects are already clipped to the frame, made even and non-empty;
     * states reference existing layers; states with opacity 0 are skipped. */
    rf_err (*render)(rf_compositor *c, rf_frame *dst, const rf_layer_state *states, int n_states,
                     const rf_rect *rects, int n_rects);
    void (*destroy)(rf_compositor *c);
    /* A frame of the compositor's size and format in its own memory. */
    rf_err (*frame_alloc)(rf_compositor *c, rf_frame *f);
    void (*frame_free)(rf_compositor *c, rf_frame *f);
    /* Copies rects (normalised as for render) of src into the host frame. */
    rf_err (*download)(rf_compositor *c, const rf_frame *src, rf_frame *host, const rf_rect *rects,
                       int n_rects);
} rf_comp_ops;

struct rf_compositor {
    const rf_comp_ops *ops;
    int width, height;
    rf_pixfmt fmt;
    int n_layers;           /* layers added so far (indices 0..n_layers-1) */
    int *layer_w, *layer_h; /* sizes of each layer, for validation/clipping */
    int layer_cap;
    void *impl; /* backend state */
};

/* Exact round(x / 255) for 0 <= x <= 65535; see the formula above. */
static inline unsigned
rf_div255(unsigned x)
{
    return (x + 128u + ((x + 128u) >> 8)) >> 8;
}

/* The blend of one sample, exactly as documented above. */
static inline unsigned
rf_blend_sample(unsigned d, unsigned s, unsigned a, unsigned op)
{
    unsigned eff = rf_div255(a * op);
    return rf_div255(s * op) + rf_div255(d * (255u - eff));
}

/* floor to even, valid for every int (negative ones and INT_MIN too) */
static inline int
rf_even_floor(int v)
{
    return v % 2 != 0 ? v - 1 : v;
}

/* The part of a layer placed by st (position rounded down to even) that
 * falls inside rect; false when empty. Both backends use it so they blend
 * exactly the same pixels. */
bool rf_comp_layer_clip(const rf_compositor *c, const rf_layer_state *st, rf_rect rect,
                        rf_rect *out);

/* Copies rect r (even, inside both) from src to dst, host frames of the same
 * size in either 4:2:0 layout (YUV420P <-> NV12 converts). */
void rf_frame_copy_rect(rf_frame *dst, const rf_frame *src, rf_rect r);

#ifdef __cplusplus
}
#endif

#endif
