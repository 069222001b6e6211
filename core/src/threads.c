/* threads.c - fork-join pool, see threads.h. */
#include "threads.h"

#include <string.h>

#ifdef TRL_THREADS
#include <pthread.h>

struct trl_pool {
    int n;
    pthread_mutex_t mu;
    pthread_cond_t work, done;
    unsigned long gen;  /* bumped for each run */
    int pending;        /* workers still running the current task */
    int stop;
    trl_task_fn fn;
    void *arg;
    pthread_t *threads; /* (n - 1) */
    int *ids;           /* (n - 1) */
    struct trl_pool_start { struct trl_pool *p; int id; } *starts;
};

static void *worker(void *v) {
    struct trl_pool_start *st = v;
    trl_pool *p = st->p;
    const int id = st->id;
    unsigned long seen = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (p->gen == seen && !p->stop) pthread_cond_wait(&p->work, &p->mu);
        if (p->stop) break;
        seen = p->gen;
        trl_task_fn fn = p->fn;
        void *arg = p->arg;
        pthread_mutex_unlock(&p->mu);
        fn(arg, id, p->n);
        pthread_mutex_lock(&p->mu);
        if (--p->pending == 0) pthread_cond_signal(&p->done);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

size_t trl_pool_bytes(int n) {
    if (n < 1) n = 1;
    return sizeof(trl_pool) + (size_t)n * (sizeof(pthread_t) + sizeof(int) + sizeof(struct trl_pool_start)) + 64;
}

trl_pool *trl_pool_init(void *mem, int n) {
    if (n < 1 || n > TRL_MAX_THREADS) return NULL;
    trl_pool *p = mem;
    memset(p, 0, sizeof *p);
    p->n = n;
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

void trl_pool_run(trl_pool *p, trl_task_fn fn, void *arg) {
    if (!p || p->n == 1) {
        fn(arg, 0, 1);
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->arg = arg;
    p->pending = p->n - 1;
    p->gen++;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->mu);
    fn(arg, 0, p->n);
    pthread_mutex_lock(&p->mu);
    while (p->pending) pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

int trl_pool_size(const trl_pool *p) { return p ? p->n : 1; }

void trl_pool_destroy(trl_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
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
