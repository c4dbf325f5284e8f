/* Private to kernels/: entry point of the CUDA compositor (compose_cuda.cu),
 * compiled only when RF_HAVE_CUDA is defined. */
#ifndef RF_COMPOSE_CUDA_H
#define RF_COMPOSE_CUDA_H

#include "compose_priv.h"

/* Initialises c (width, height and fmt already set and validated) as a CUDA
 * compositor: sets c->ops to the CUDA ops table and c->impl to its state.
 * Returns RF_EUNSUPPORTED when no CUDA device is usable (the caller then
 * falls back to "cpu"), RF_ENOMEM when device memory runs out. On failure
 * c->impl is left NULL and nothing needs freeing. */
#ifdef __cplusplus
extern "C" {
#endif
rf_err rf_comp_create_cuda(rf_compositor *c);
rf_err rf_comp_gpu_memory_cuda(size_t *free_bytes, size_t *total_bytes);
#ifdef __cplusplus
}
#endif

#endif
