/* flipnet's thread pool for the Python bindings: a flipnet_runner (flipnet.h) over POSIX
 * threads. The core starts no threads; this pool runs the parts of its passes. Thread t (0: the
 * caller, 1..: the workers) first claims part t, so that the same rows stay with the same
 * core's caches pass after pass, then takes parts from a shared counter, then claims any first
 * part whose thread has not come (a worker the OS has not scheduled, on a busy machine or with
 * more threads than cores, delays nobody). A pass is over when all its parts are done, whoever
 * ran them. Workers spin briefly for the next pass (a training step makes a dozen passes less
 * than a millisecond apart), not at all when there are more threads than cores, then sleep on
 * a condition variable.
 *
 * Passes are published like a sequence lock: gen is odd while the caller writes a pass's
 * fields, even when a pass is open. A worker announces itself (active + 1), then checks that
 * gen is still the even value it saw; the caller closes a pass (gen odd) and waits for
 * active == 0 before it writes the next one. Both sides use sequentially consistent atomics, so
 * either the caller sees the worker's announcement and waits, or the worker sees the closed
 * pass and backs off: no worker reads half-written fields or runs a part of a stale pass. */
#define _POSIX_C_SOURCE 200809L
#include "_pool.h"

#include <stdlib.h>
#include <string.h>

#if defined(FNP_HAVE_PTHREADS)
#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#define FNP_SPIN 20000     /* polls (each a pause) before a worker sleeps: tens of microseconds */
#define FNP_SPIN_MAIN 2000 /* polls before the caller, waiting for parts, yields its core */

typedef struct fnp_worker fnp_worker;
struct fnp_pool {
    flipnet_runner runner;
    uint32_t workers; /* threads - 1 */
    uint32_t spin;    /* FNP_SPIN, or 0 with more threads than online cores */
    pthread_t *tid;
    fnp_worker *records; /* one per worker */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* the pass: written by the caller while gen is odd */
    flipnet_part_fn fn;
    void *arg;
    uint32_t parts;
    uint32_t first;                          /* min(parts, threads): the claimable parts */
    uint32_t claimed[FLIPNET_MAX_THREADS];   /* atomic: first part t taken */
    uint32_t next;                           /* atomic: the next part >= first to take */
    uint32_t done;                           /* atomic: parts finished */
    uint32_t gen;                            /* atomic: 2 x passes (+1 while writing) */
    uint32_t active;                         /* atomic: workers inside the current pass */
    uint32_t sleepers;                       /* atomic: workers waiting on cv */
    uint32_t quit;                           /* atomic */
};

struct fnp_worker {
    fnp_pool *pool;
    uint32_t index; /* 1..workers: the thread number it passes to the parts */
};

static inline void fnp_pause(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static void fnp_part(fnp_pool *pool, uint32_t part, uint32_t thread)
{
    pool->fn(pool->arg, part, thread);
    __atomic_fetch_add(&pool->done, 1u, __ATOMIC_ACQ_REL);
}

static int fnp_claim(fnp_pool *pool, uint32_t part)
{
    return __atomic_exchange_n(&pool->claimed[part], 1u, __ATOMIC_ACQ_REL) == 0u;
}

/* Thread `thread`'s share of the open pass. */
static void fnp_work(fnp_pool *pool, uint32_t thread)
{
    uint32_t part;
    if (thread < pool->first && fnp_claim(pool, thread)) fnp_part(pool, thread, thread);
    while ((part = __atomic_fetch_add(&pool->next, 1u, __ATOMIC_ACQ_REL)) < pool->parts)
        fnp_part(pool, part, thread);
    for (part = 0; part < pool->first; part++)
        if (__atomic_load_n(&pool->claimed[part], __ATOMIC_ACQUIRE) == 0u && fnp_claim(pool, part))
            fnp_part(pool, part, thread);
}

static void *fnp_main(void *p)
{
    fnp_worker *w = (fnp_worker *)p;
    fnp_pool *pool = w->pool;
    uint32_t seen = 0;
    for (;;) {
        uint32_t g = __atomic_load_n(&pool->gen, __ATOMIC_SEQ_CST);
        uint32_t spins = 0;
        while ((g == seen || (g & 1u)) && !__atomic_load_n(&pool->quit, __ATOMIC_SEQ_CST)) {
            if (++spins < pool->spin) {
                fnp_pause();
            } else {
                pthread_mutex_lock(&pool->mu);
                __atomic_fetch_add(&pool->sleepers, 1u, __ATOMIC_SEQ_CST);
                for (;;) {
                    uint32_t h = __atomic_load_n(&pool->gen, __ATOMIC_SEQ_CST);
                    if ((h != seen && !(h & 1u)) || __atomic_load_n(&pool->quit, __ATOMIC_SEQ_CST))
                        break;
                    pthread_cond_wait(&pool->cv, &pool->mu);
                }
                __atomic_fetch_sub(&pool->sleepers, 1u, __ATOMIC_SEQ_CST);
                pthread_mutex_unlock(&pool->mu);
                spins = 0;
            }
            g = __atomic_load_n(&pool->gen, __ATOMIC_SEQ_CST);
        }
        if (__atomic_load_n(&pool->quit, __ATOMIC_SEQ_CST)) break;
        __atomic_fetch_add(&pool->active, 1u, __ATOMIC_SEQ_CST);
        if (__atomic_load_n(&pool->gen, __ATOMIC_SEQ_CST) == g) fnp_work(pool, w->index);
        __atomic_fetch_sub(&pool->active, 1u, __ATOMIC_SEQ_CST);
        seen = g; /* a pass closed before this worker came needs nothing from it */
    }
    return NULL;
}

static void fnp_run(void *ctx, flipnet_part_fn fn, void *arg, uint32_t parts)
{
    fnp_pool *pool = (fnp_pool *)ctx;
    uint32_t part, spins;
    if (parts <= 1u || pool->workers == 0u) {
        for (part = 0; part < parts; part++) fn(arg, part, 0);
        return;
    }
    /* close: gen odd, then wait for workers still inside the previous pass */
    __atomic_fetch_add(&pool->gen, 1u, __ATOMIC_SEQ_CST);
    for (spins = 0; __atomic_load_n(&pool->active, __ATOMIC_SEQ_CST) != 0u; spins++) {
        if (spins < FNP_SPIN_MAIN) fnp_pause();
        else sched_yield();
    }
    pool->fn = fn;
    pool->arg = arg;
    pool->parts = parts;
    pool->first = parts < pool->workers + 1u ? parts : pool->workers + 1u;
    memset(pool->claimed, 0, sizeof(pool->claimed));
    __atomic_store_n(&pool->next, pool->first, __ATOMIC_RELAXED);
    __atomic_store_n(&pool->done, 0u, __ATOMIC_RELAXED);
    __atomic_fetch_add(&pool->gen, 1u, __ATOMIC_SEQ_CST); /* open: publishes the fields above */
    if (__atomic_load_n(&pool->sleepers, __ATOMIC_SEQ_CST) != 0u) {
        pthread_mutex_lock(&pool->mu);
        pthread_cond_broadcast(&pool->cv);
        pthread_mutex_unlock(&pool->mu);
    }
    fnp_work(pool, 0);
    /* wait for parts other threads are running: spin, then yield the core (on a machine with
     * more threads than cores a worker may be waiting for this very core) */
    for (spins = 0; __atomic_load_n(&pool->done, __ATOMIC_ACQUIRE) != parts; spins++) {
        if (spins < FNP_SPIN_MAIN) fnp_pause();
        else sched_yield();
    }
}

fnp_pool *fnp_create(uint32_t threads)
{
    fnp_pool *pool;
    uint32_t i;
    if (threads < 1u || threads > FLIPNET_MAX_THREADS) return NULL;
    pool = (fnp_pool *)calloc(1, sizeof(*pool));
    if (pool == NULL) return NULL;
    pool->runner.threads = 1;
    pool->runner.run = fnp_run;
    pool->runner.ctx = pool;
    {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        pool->spin = (cores > 0 && (long)threads > cores) ? 0u : FNP_SPIN;
    }
    if (pthread_mutex_init(&pool->mu, NULL) != 0) {
        free(pool);
        return NULL;
    }
    if (pthread_cond_init(&pool->cv, NULL) != 0) {
        pthread_mutex_destroy(&pool->mu);
        free(pool);
        return NULL;
    }
    if (threads > 1u) {
        pool->tid = (pthread_t *)calloc(threads - 1u, sizeof(pthread_t));
        pool->records = (fnp_worker *)calloc(threads - 1u, sizeof(fnp_worker));
        if (pool->tid == NULL || pool->records == NULL) {
            fnp_destroy(pool);
            return NULL;
        }
        for (i = 0; i + 1u < threads; i++) {
            pool->records[i].pool = pool;
            pool->records[i].index = i + 1u;
            if (pthread_create(&pool->tid[i], NULL, fnp_main, &pool->records[i]) != 0)
                break; /* fewer threads than asked: the pool runs with those that started */
            pool->workers = i + 1u;
        }
    }
    pool->runner.threads = pool->workers + 1u;
    return pool;
}

void fnp_destroy(fnp_pool *pool)
{
    uint32_t i;
    if (pool == NULL) return;
    __atomic_store_n(&pool->quit, 1u, __ATOMIC_SEQ_CST);
    pthread_mutex_lock(&pool->mu);
    pthread_cond_broadcast(&pool->cv);
    pthread_mutex_unlock(&pool->mu);
    for (i = 0; i < pool->workers; i++) pthread_join(pool->tid[i], NULL);
    pthread_cond_destroy(&pool->cv);
    pthread_mutex_destroy(&pool->mu);
    free(pool->records);
    free(pool->tid);
    free(pool);
}

#else /* no POSIX threads: a pool of one thread (the caller's) */
struct fnp_pool {
    flipnet_runner runner;
};

static void fnp_run(void *ctx, flipnet_part_fn fn, void *arg, uint32_t parts)
{
    uint32_t p;
    (void)ctx;
    for (p = 0; p < parts; p++) fn(arg, p, 0);
}

fnp_pool *fnp_create(uint32_t threads)
{
    fnp_pool *pool;
    if (threads < 1u || threads > FLIPNET_MAX_THREADS) return NULL;
    pool = (fnp_pool *)calloc(1, sizeof(*pool));
    if (pool == NULL) return NULL;
    pool->runner.threads = 1;
    pool->runner.run = fnp_run;
    pool->runner.ctx = pool;
    return pool;
}

void fnp_destroy(fnp_pool *pool) { free(pool); }
#endif

const flipnet_runner *fnp_runner(fnp_pool *pool) { return pool != NULL ? &pool->runner : NULL; }

uint32_t fnp_threads(fnp_pool *pool) { return pool != NULL ? pool->runner.threads : 0u; }
