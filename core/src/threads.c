/* threads.c - fork-join pool, see threads.h. */
#include "threads.h"

#include <string.h>

#ifdef TRL_THREADS
#include <pthread.h>
#include <stdatomic.h>

/* Hand-off between the caller and the workers: a run bumps `gen`; a worker that
 * sees it runs its share and decrements `pending`. Both sides first spin on
 * the atomic for up to SPIN polls (a decode step runs ~100 short matmuls, and
 * a futex wake costs tens of microseconds, more under wasm's Atomics.wait),
 * then sleep on a condition variable. Lost wake-ups are ruled out by the
 * sleeper registering itself (`sleepers` / `caller_sleeps`, under `mu`) before
 * it re-checks the atomic, while the waker bumps the atomic before it reads
 * the registration (all sequentially consistent). */
#define SPIN (1 << 15)

struct trl_pool {
    int n;
    pthread_mutex_t mu;
    pthread_cond_t work, done;
    atomic_ulong gen;     /* bumped for each run */
    atomic_int pending;   /* workers still running the current task */
    atomic_int sleepers;  /* workers asleep on `work` (or about to be) */
    atomic_int caller_sleeps; /* the caller is asleep on `done` (or about to be) */
    atomic_int stop;
    trl_task_fn fn;       /* written before `gen` is bumped, read after it is seen */
    void *arg;
    pthread_t *threads;   /* (n - 1) */
    struct trl_pool_start { struct trl_pool *p; int id; } *starts;
};

/* Wait until gen != seen (or stop); returns the new generation. */
static unsigned long wait_work(trl_pool *p, unsigned long seen) {
    for (int i = 0; i < SPIN; i++) {
        unsigned long g = atomic_load(&p->gen);
        if (g != seen || atomic_load(&p->stop)) return g;
    }
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add(&p->sleepers, 1);
    unsigned long g;
    while ((g = atomic_load(&p->gen)) == seen && !atomic_load(&p->stop)) pthread_cond_wait(&p->work, &p->mu);
    atomic_fetch_sub(&p->sleepers, 1);
    pthread_mutex_unlock(&p->mu);
    return g;
}

static void *worker(void *v) {
    struct trl_pool_start *st = v;
    trl_pool *p = st->p;
    const int id = st->id;
    unsigned long seen = 0;
    for (;;) {
        seen = wait_work(p, seen);
        if (atomic_load(&p->stop)) break;
        p->fn(p->arg, id, p->n);
        if (atomic_fetch_sub(&p->pending, 1) == 1 && atomic_load(&p->caller_sleeps)) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->done);
            pthread_mutex_unlock(&p->mu);
        }
    }
    return NULL;
}

size_t trl_pool_bytes(int n) {
    if (n < 1) n = 1;
    return sizeof(trl_pool) + (size_t)n * (sizeof(pthread_t) + sizeof(struct trl_pool_start)) + 64;
}

trl_pool *trl_pool_init(void *mem, int n) {
    if (n < 1 || n > TRL_MAX_THREADS) return NULL;
    trl_pool *p = mem;
    memset(p, 0, sizeof *p);
    p->n = n;
    atomic_init(&p->gen, 0);
    atomic_init(&p->pending, 0);
    atomic_init(&p->sleepers, 0);
    atomic_init(&p->caller_sleeps, 0);
    atomic_init(&p->stop, 0);
    p->threads = (pthread_t *)(void *)(p + 1);
    p->starts = (struct trl_pool_start *)(void *)(p->threads + n);
    if (pthread_mutex_init(&p->mu, NULL)) return NULL;
    pthread_cond_init(&p->work, NULL);
    pthread_cond_init(&p->done, NULL);
    for (int i = 1; i < n; i++) {
        p->starts[i].p = p;
        p->starts[i].id = i;
        if (pthread_create(&p->threads[i - 1], NULL, worker, &p->starts[i])) {
            p->n = i; /* stop the ones already started */
            trl_pool_destroy(p);
            return NULL;
        }
    }
    return p;
}

static void wake_workers(trl_pool *p) {
    if (atomic_load(&p->sleepers)) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->work);
        pthread_mutex_unlock(&p->mu);
    }
}

void trl_pool_run(trl_pool *p, trl_task_fn fn, void *arg) {
    if (!p || p->n == 1) {
        fn(arg, 0, 1);
        return;
    }
    p->fn = fn;
    p->arg = arg;
    atomic_store(&p->pending, p->n - 1);
    atomic_fetch_add(&p->gen, 1);
    wake_workers(p);
    fn(arg, 0, p->n);
    for (int i = 0; i < SPIN; i++)
        if (!atomic_load(&p->pending)) return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->caller_sleeps, 1);
    while (atomic_load(&p->pending)) pthread_cond_wait(&p->done, &p->mu);
    atomic_store(&p->caller_sleeps, 0);
    pthread_mutex_unlock(&p->mu);
}

int trl_pool_size(const trl_pool *p) { return p ? p->n : 1; }

void trl_pool_destroy(trl_pool *p) {
    if (!p) return;
    atomic_store(&p->stop, 1);
    pthread_mutex_lock(&p->mu);
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n; i++) pthread_join(p->threads[i - 1], NULL);
    pthread_cond_destroy(&p->work);
    pthread_cond_destroy(&p->done);
    pthread_mutex_destroy(&p->mu);
    p->n = 1;
}

int trl_threads_available(void) { return 1; }

#else /* one thread */

struct trl_pool {
    int n;
};

size_t trl_pool_bytes(int n) {
    (void)n;
    return sizeof(trl_pool);
}

trl_pool *trl_pool_init(void *mem, int n) {
    if (n != 1) return NULL;
    trl_pool *p = mem;
    p->n = 1;
    return p;
}

void trl_pool_run(trl_pool *p, trl_task_fn fn, void *arg) {
    (void)p;
    fn(arg, 0, 1);
}

int trl_pool_size(const trl_pool *p) {
    (void)p;
    return 1;
}

void trl_pool_destroy(trl_pool *p) { (void)p; }

int trl_threads_available(void) { return 0; }
#endif
