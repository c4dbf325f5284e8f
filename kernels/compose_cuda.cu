/* The CUDA twin of compose_cpu.c: the same operations behind the same
 * interface, with the same integer arithmetic (compose_priv.h), so its
 * output equals the CPU reference's (RF_COMPOSE_TOLERANCE is the contract;
 * the formula makes them identical in practice).
 *
 * Work split: the background and every layer texture are uploaded once per
 * unit; per frame only the layer states (a few dozen bytes each) cross to
 * the GPU, as kernel arguments. One kernel launch per dirty rect and plane
 * group does both the background restore and every blend: each thread owns
 * one output sample, starts from the background and applies the layers that
 * cover it in paint order, exactly the CPU's order of operations. */
extern "C" {
#include "rf_err.h"
#include "rf_log.h"
}
#include "compose_cuda.h"

#include <cuda_runtime.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_KSTATES 32 /* states per launch; more are done in further passes */
#define BLOCK_X 32
#define BLOCK_Y 8

typedef struct dev_layer {
    uint8_t *y, *a, *u, *v, *ca;
    size_t y_pitch, c_pitch;
    int w, h;
} dev_layer;

typedef struct cuda_comp {
    cudaStream_t stream;
    uint8_t *bg[3];
    size_t bg_pitch[3];
    dev_layer *layers;
    int cap;
} cuda_comp;

/* One layer state as the kernels see it: texture pointers and placement. */
typedef struct kstate {
    const uint8_t *y, *a, *u, *v, *ca;
    int y_pitch, c_pitch;
    int x, y0, w, h; /* even top-left in frame pixels, luma size */
    unsigned op;
} kstate;

typedef struct kparams {
    int n;
    kstate st[MAX_KSTATES];
} kparams;

static bool
ck(cudaError_t e, const char *what)
{
    if (e == cudaSuccess)
        return true;
    rf_error("cuda: %s: %s", what, cudaGetErrorString(e));
    return false;
}

__device__ __forceinline__ unsigned
d255(unsigned x)
{
    return (x + 128u + ((x + 128u) >> 8)) >> 8;
}

__device__ __forceinline__ unsigned
blend(unsigned d, unsigned s, unsigned a, unsigned op)
{
    unsigned eff = d255(a * op);
    return d255(s * op) + d255(d * (255u - eff));
}

/* Luma: restore from bg (restore != 0) or continue from dst, then blend. */
__global__ void
k_luma(uint8_t *dst, int dpitch, const uint8_t *bg, int bpitch, int rx, int ry, int rw, int rh,
       int restore, kparams p)
{
    int x = rx + (int)(blockIdx.x * blockDim.x + threadIdx.x);
    int y = ry + (int)(blockIdx.y * blockDim.y + threadIdx.y);
    if (x >= rx + rw || y >= ry + rh)
        return;
    unsigned d = restore ? bg[(size_t)y * bpitch + x] : dst[(size_t)y * dpitch + x];
    for (int i = 0; i < p.n; i++) {
        const kstate *s = &p.st[i];
        unsigned tx = (unsigned)(x - s->x), ty = (unsigned)(y - s->y0);
        if (tx < (unsigned)s->w && ty < (unsigned)s->h) {
            size_t o = (size_t)ty * s->y_pitch + tx;
            d = blend(d, s->y[o], s->a[o], s->op);
        }
    }
    dst[(size_t)y * dpitch + x] = (uint8_t)d;
}

/* Chroma at chroma resolution; nv12 selects interleaved UV in plane 1. */
__global__ void
k_chroma(uint8_t *du, uint8_t *dv, int dpitch, const uint8_t *bu, const uint8_t *bv, int bpitch,
         int nv12, int cx0, int cy0, int cw, int ch, int restore, kparams p)
{
    int cx = cx0 + (int)(blockIdx.x * blockDim.x + threadIdx.x);
    int cy = cy0 + (int)(blockIdx.y * blockDim.y + threadIdx.y);
    if (cx >= cx0 + cw || cy >= cy0 + ch)
        return;
    size_t di = nv12 ? (size_t)cy * dpitch + 2 * (size_t)cx : (size_t)cy * dpitch + cx;
    size_t bi = nv12 ? (size_t)cy * bpitch + 2 * (size_t)cx : (size_t)cy * bpitch + cx;
    unsigned u, v;
    if (restore) {
        u = bu[bi];
        v = nv12 ? bu[bi + 1] : bv[bi];
    } else {
        u = du[di];
        v = nv12 ? du[di + 1] : dv[di];
    }
    for (int i = 0; i < p.n; i++) {
        const kstate *s = &p.st[i];
        unsigned tx = (unsigned)(cx - s->x / 2), ty = (unsigned)(cy - s->y0 / 2);
        if (tx < (unsigned)(s->w / 2) && ty < (unsigned)(s->h / 2)) {
            size_t o = (size_t)ty * s->c_pitch + tx;
            unsigned a = s->ca[o];
            u = blend(u, s->u[o], a, s->op);
            v = blend(v, s->v[o], a, s->op);
        }
    }
    if (nv12) {
        du[di] = (uint8_t)u;
        du[di + 1] = (uint8_t)v;
    } else {
        du[di] = (uint8_t)u;
        dv[di] = (uint8_t)v;
    }
}

static int
n_planes(rf_pixfmt fmt)
{
    return fmt == RF_PIX_NV12 ? 2 : 3;
}

/* Plane p's width in bytes and height for a frame of c's size and format. */
static void
plane_size(const rf_compositor *c, int p, int *wb, int *h)
{
    if (p == 0) {
        *wb = c->width;
        *h = c->height;
    } else {
        *wb = c->fmt == RF_PIX_NV12 ? c->width : c->width / 2;
        *h = c->height / 2;
    }
}

static void
cuda_destroy(rf_compositor *c)
{
    cuda_comp *g = (cuda_comp *)c->impl;
    if (g == NULL)
        return;
    for (int i = 0; i < c->n_layers && i < g->cap; i++) {
        cudaFree(g->layers[i].y);
        cudaFree(g->layers[i].u);
    }
    free(g->layers);
    for (int p = 0; p < 3; p++)
        cudaFree(g->bg[p]);
    if (g->stream)
        cudaStreamDestroy(g->stream);
    free(g);
    c->impl = NULL;
}

static rf_err
cuda_frame_alloc(rf_compositor *c, rf_frame *f)
{
    memset(f, 0, sizeof(*f));
    f->fmt = c->fmt;
    f->width = c->width;
    f->height = c->height;
    for (int p = 0; p < n_planes(c->fmt); p++) {
        int wb, h;
        size_t pitch;
        plane_size(c, p, &wb, &h);
        if (!ck(cudaMallocPitch((void **)&f->data[p], &pitch, (size_t)wb, (size_t)h),
                "cudaMallocPitch frame")) {
            for (int q = 0; q < p; q++)
                cudaFree(f->data[q]);
            memset(f, 0, sizeof(*f));
            return RF_ENOMEM;
        }
        f->linesize[p] = (int)pitch;
    }
    return RF_OK;
}

static void
cuda_frame_free(rf_compositor *c, rf_frame *f)
{
    (void)c;
    for (int p = 0; p < 3; p++)
        cudaFree(f->data[p]);
}

static rf_err
cuda_set_background(rf_compositor *c, const rf_frame *bg)
{
    cuda_comp *g = (cuda_comp *)c->impl;
    rf_frame host;
    rf_err rv = RF_OK;

    /* Bring the background to the compositor's layout on the host once. */
    rv = rf_frame_alloc(&host, c->fmt, c->width, c->height);
    if (rv != RF_OK)
        return rv;
    rf_frame_copy_rect(&host, bg, rf_rect{0, 0, c->width, c->height});
    for (int p = 0; p < n_planes(c->fmt) && rv == RF_OK; p++) {
        int wb, h;
        plane_size(c, p, &wb, &h);
        if (!ck(cudaMemcpy2D(g->bg[p], g->bg_pitch[p], host.data[p], (size_t)host.linesize[p],
                             (size_t)wb, (size_t)h, cudaMemcpyHostToDevice),
                "upload background"))
            rv = RF_EIO;
    }
    rf_frame_release(&host);
    return rv;
}

static rf_err
cuda_create(rf_compositor *c)
{
    (void)c;
    return RF_EINVAL; /* not used: rf_comp_create_cuda is the constructor */
}

static rf_err
cuda_add_layer(rf_compositor *c, const rf_layer_tex *t, int index)
{
    cuda_comp *g = (cuda_comp *)c->impl;
    if (index >= g->cap) {
        int cap = g->cap ? g->cap * 2 : 16;
        dev_layer *nl = (dev_layer *)realloc(g->layers, (size_t)cap * sizeof(*nl));
        if (nl == NULL)
            return RF_ENOMEM;
        g->layers = nl;
        g->cap = cap;
    }
    dev_layer *l = &g->layers[index];
    memset(l, 0, sizeof(*l));
    int w = t->width, h = t->height, cw = w / 2, chh = h / 2;
    size_t yp, cp;
    /* Y and A share one pitched allocation (2h rows); U, V, CA another. */
    if (!ck(cudaMallocPitch((void **)&l->y, &yp, (size_t)w, (size_t)h * 2), "layer luma") ||
        !ck(cudaMallocPitch((void **)&l->u, &cp, (size_t)(cw > 0 ? cw : 1), (size_t)chh * 3),
            "layer chroma")) {
        cudaFree(l->y);
        memset(l, 0, sizeof(*l));
        return RF_ENOMEM;
    }
    l->a = l->y + yp * (size_t)h;
    l->v = l->u + cp * (size_t)chh;
    l->ca = l->v + cp * (size_t)chh;
    l->y_pitch = yp;
    l->c_pitch = cp;
    l->w = w;
    l->h = h;
    bool ok = ck(cudaMemcpy2D(l->y, yp, t->y, (size_t)t->y_pitch, (size_t)w, (size_t)h,
                              cudaMemcpyHostToDevice),
                 "upload layer") &&
              ck(cudaMemcpy2D(l->a, yp, t->a, (size_t)t->y_pitch, (size_t)w, (size_t)h,
                              cudaMemcpyHostToDevice),
                 "upload layer") &&
              ck(cudaMemcpy2D(l->u, cp, t->u, (size_t)t->c_pitch, (size_t)cw, (size_t)chh,
                              cudaMemcpyHostToDevice),
                 "upload layer") &&
              ck(cudaMemcpy2D(l->v, cp, t->v, (size_t)t->c_pitch, (size_t)cw, (size_t)chh,
                              cudaMemcpyHostToDevice),
                 "upload layer") &&
              ck(cudaMemcpy2D(l->ca, cp, t->ca, (size_t)t->c_pitch, (size_t)cw, (size_t)chh,
                              cudaMemcpyHostToDevice),
                 "upload layer");
    if (!ok) {
        cudaFree(l->y);
        cudaFree(l->u);
        memset(l, 0, sizeof(*l));
        return RF_EIO;
    }
    return RF_OK;
}

static rf_err
cuda_render(rf_compositor *c, rf_frame *dst, const rf_layer_state *states, int n_states,
            const rf_rect *rects, int n_rects)
{
    cuda_comp *g = (cuda_comp *)c->impl;
    int nv12 = c->fmt == RF_PIX_NV12;

    for (int r = 0; r < n_rects; r++) {
        rf_rect rc = rects[r];
        int k = 0;
        int restore = 1;
        do {
            /* The states touching this rect, up to MAX_KSTATES per pass. */
            kparams p;
            p.n = 0;
            for (; k < n_states && p.n < MAX_KSTATES; k++) {
                const rf_layer_state *st = &states[k];
                rf_rect part;
                if (st->opacity == 0 || !rf_comp_layer_clip(c, st, rc, &part))
                    continue;
                const dev_layer *l = &g->layers[st->layer];
                kstate *ks = &p.st[p.n++];
                ks->y = l->y;
                ks->a = l->a;
                ks->u = l->u;
                ks->v = l->v;
                ks->ca = l->ca;
                ks->y_pitch = (int)l->y_pitch;
                ks->c_pitch = (int)l->c_pitch;
                ks->x = rf_even_floor(st->x);
                ks->y0 = rf_even_floor(st->y);
                ks->w = l->w;
                ks->h = l->h;
                ks->op = st->opacity;
            }
            dim3 blk(BLOCK_X, BLOCK_Y);
            dim3 gl((unsigned)((rc.w + BLOCK_X - 1) / BLOCK_X),
                    (unsigned)((rc.h + BLOCK_Y - 1) / BLOCK_Y));
            k_luma<<<gl, blk, 0, g->stream>>>(dst->data[0], dst->linesize[0], g->bg[0],
                                              (int)g->bg_pitch[0], rc.x, rc.y, rc.w, rc.h, restore,
                                              p);
            if (!ck(cudaGetLastError(), "launch k_luma"))
                return RF_EIO;
            int cw = rc.w / 2, chh = rc.h / 2;
            dim3 gc((unsigned)((cw + BLOCK_X - 1) / BLOCK_X),
                    (unsigned)((chh + BLOCK_Y - 1) / BLOCK_Y));
            k_chroma<<<gc, blk, 0, g->stream>>>(dst->data[1], nv12 ? NULL : dst->data[2],
                                                dst->linesize[1], g->bg[1], nv12 ? NULL : g->bg[2],
                                                (int)g->bg_pitch[1], nv12, rc.x / 2, rc.y / 2, cw,
                                                chh, restore, p);
            if (!ck(cudaGetLastError(), "launch k_chroma"))
                return RF_EIO;
            restore = 0;
        } while (k < n_states);
    }
    /* The frame is complete when render returns: the encoder (or a
     * download) may read it from another stream. */
    if (!ck(cudaStreamSynchronize(g->stream), "render"))
        return RF_EIO;
    return RF_OK;
}

static rf_err
cuda_download(rf_compositor *c, const rf_frame *src, rf_frame *host, const rf_rect *rects,
              int n_rects)
{
    cuda_comp *g = (cuda_comp *)c->impl;
    int nv12 = c->fmt == RF_PIX_NV12;

    for (int i = 0; i < n_rects; i++) {
        rf_rect r = rects[i];
        for (int p = 0; p < n_planes(c->fmt); p++) {
            int x = p == 0 ? r.x : (nv12 ? r.x : r.x / 2);
            int y = p == 0 ? r.y : r.y / 2;
            int wb = p == 0 ? r.w : (nv12 ? r.w : r.w / 2);
            int h = p == 0 ? r.h : r.h / 2;
            if (wb <= 0 || h <= 0)
                continue;
            const uint8_t *s = src->data[p] + (size_t)y * src->linesize[p] + x;
            uint8_t *d = host->data[p] + (size_t)y * host->linesize[p] + x;
            if (!ck(cudaMemcpy2DAsync(d, (size_t)host->linesize[p], s, (size_t)src->linesize[p],
                                      (size_t)wb, (size_t)h, cudaMemcpyDeviceToHost, g->stream),
                    "download"))
                return RF_EIO;
        }
    }
    if (!ck(cudaStreamSynchronize(g->stream), "download"))
        return RF_EIO;
    return RF_OK;
}

static const rf_comp_ops cuda_ops = {
    "cuda",       cuda_create,      cuda_set_background, cuda_add_layer, cuda_render,
    cuda_destroy, cuda_frame_alloc, cuda_frame_free,     cuda_download,
};

extern "C" rf_err
rf_comp_gpu_memory_cuda(size_t *free_bytes, size_t *total_bytes)
{
    size_t f = 0, t = 0;
    cudaError_t e = cudaMemGetInfo(&f, &t);
    if (e != cudaSuccess) {
        cudaGetLastError(); /* not sticky: the next call may find a device */
        return RF_EUNSUPPORTED;
    }
    *free_bytes = f;
    *total_bytes = t;
    return RF_OK;
}

extern "C" rf_err
rf_comp_create_cuda(rf_compositor *c)
{
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n == 0) {
        rf_info("CUDA compositor unavailable: %s",
                e != cudaSuccess ? cudaGetErrorString(e) : "no CUDA device");
        cudaGetLastError(); /* clear the sticky "no device" error */
        return RF_EUNSUPPORTED;
    }
    cuda_comp *g = (cuda_comp *)calloc(1, sizeof(*g));
    if (g == NULL)
        return RF_ENOMEM;
    c->ops = &cuda_ops;
    c->impl = g;
    if (!ck(cudaStreamCreateWithFlags(&g->stream, cudaStreamNonBlocking), "stream")) {
        cuda_destroy(c);
        return RF_EUNSUPPORTED;
    }
    for (int p = 0; p < n_planes(c->fmt); p++) {
        int wb, h;
        plane_size(c, p, &wb, &h);
        if (!ck(cudaMallocPitch((void **)&g->bg[p], &g->bg_pitch[p], (size_t)wb, (size_t)h),
                "background")) {
            cuda_destroy(c);
            return RF_ENOMEM;
        }
    }
    return RF_OK;
}
