/* threads.h - a small fork-join pool owned by one context (no global state).
 * trl_pool_run calls fn(arg, i, n) for i in [0, n) with i = 0 on the calling
 * thread and returns when every call has returned. Built with TRL_THREADS
 * (native builds and the pthreads wasm build); without it n is always 1. */
#ifndef TRL_THREADS_H
#define TRL_THREADS_H

#include <stddef.h>

#define TRL_MAX_THREADS 64

typedef void (*trl_task_fn)(void *arg, int ith, int nth);
typedef struct trl_pool trl_pool;

/* Bytes a pool of n threads needs (its struct and worker handles). */
size_t trl_pool_bytes(int n_threads);
/* Start n-1 workers in `mem` (trl_pool_bytes(n) bytes). Returns the pool, or
 * NULL if a thread could not be started (nothing is left running then). */
trl_pool *trl_pool_init(void *mem, int n_threads);
void trl_pool_run(trl_pool *p, trl_task_fn fn, void *arg);
int trl_pool_size(const trl_pool *p);
/* Stop and join the workers (the memory stays the caller's). */
void trl_pool_destroy(trl_pool *p);
/* 1 if this build can run more than one thread. */
int trl_threads_available(void);

#endif
