/* flipnet's thread pool for the Python bindings (_pool.c): a flipnet_runner over POSIX
 * threads, or over the calling thread alone where there are none. */
#ifndef FLIPNET_POOL_H
#define FLIPNET_POOL_H

#include "flipnet/flipnet.h"

#if defined(__unix__) || defined(__APPLE__)
#define FNP_HAVE_PTHREADS 1
#endif

typedef struct fnp_pool fnp_pool;
/* A pool running passes on `threads` threads (the caller's and threads - 1 workers); NULL when
 * threads is outside 1..FLIPNET_MAX_THREADS or memory runs out. */
fnp_pool *fnp_create(uint32_t threads);
/* Stops and joins the workers; NULL is ignored. Not while a pass runs. */
void fnp_destroy(fnp_pool *pool);
/* The runner to pass to flipnet_*_mt. */
const flipnet_runner *fnp_runner(fnp_pool *pool);
/* Threads the pool really has (fewer than asked when the OS refused some). */
uint32_t fnp_threads(fnp_pool *pool);

#endif
