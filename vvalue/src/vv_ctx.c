// SPDX-License-Identifier: MIT
/*
 * The context: the allocator (every byte the library takes goes through it
 * and is counted) and the symbol table. Labels are interned once and kept
 * until the context is freed, except the newest ones, which the owner of the
 * context may roll back when nothing holds them (refused input); ids are
 * dense, in intern order. Lookups by id
 * read fixed pages without a lock; interning takes the context's mutex.
 * VV_NUMBER_KEY is never a label (vv_intern refuses it, intern_locked asserts
 * it), so no child of any value is named like a node's scalar part.
 */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vv_internal.h"

/* uthash reports a failed allocation through `oom` instead of exiting. */
#define HASH_NONFATAL_OOM        1
#define uthash_nonfatal_oom(obj) (oom = 1)
#include <uthash.h>

struct vv__label_entry {
    UT_hash_handle hh;
    vv_label id;
    int32_t dec; /* vv__label_dec */
    size_t len;
    char str[];
};

/*
 * The default allocator: malloc, with a cache of large freed blocks and
 * lists of small ones (below). An
 * image of 256 x 256 doubles is a 512 KiB block, above glibc's mmap
 * threshold, so each result image could be mapped fresh and unmapped when
 * freed, and every first touch of its pages was a page fault (712 a cycle
 * in a long `dmm run` of bench_net's images-256, 0-24 with the cache:
 * docs/performance.md). A network makes and drops
 * blocks of the same few sizes every cycle, so a freed block of at least
 * VV__CACHE_MIN bytes is kept (the oldest dropped beyond VV__CACHE_SLOTS or
 * VV__CACHE_BYTES) and given to the next allocation of exactly its size.
 * The lock is taken for large blocks only, whose cost dwarfs it. Under
 * AddressSanitizer a kept block is poisoned, so a use after free is still
 * caught.
 */
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define CACHE_POISON(p, n)   ASAN_POISON_MEMORY_REGION((p), (n))
#define CACHE_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define CACHE_POISON(p, n)   ((void)(p), (void)(n))
#define CACHE_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

static void *cache_take(vv__block_cache *k, size_t n)
{
    void *p = NULL;
    pthread_mutex_lock(&k->lock);
    for (unsigned i = k->n; i-- > 0;) /* the newest first: warm in cache */
        if (k->size[i] == n) {
            p = k->p[i];
            k->bytes -= n;
            k->n--;
            memmove(&k->p[i], &k->p[i + 1], (k->n - i) * sizeof k->p[0]);
            memmove(&k->size[i], &k->size[i + 1],
                    (k->n - i) * sizeof k->size[0]);
            break;
        }
    pthread_mutex_unlock(&k->lock);
    if (p)
        CACHE_UNPOISON(p, n);
    return p;
}

static void cache_put(vv__block_cache *k, void *p, size_t n)
{
    void *drop[VV__CACHE_SLOTS + 1];
    unsigned nd = 0;
    if (n > VV__CACHE_BYTES) {
        free(p);
        return;
    }
    CACHE_POISON(p, n);
    pthread_mutex_lock(&k->lock);
    while (k->n == VV__CACHE_SLOTS || k->bytes + n > VV__CACHE_BYTES) {
        drop[nd++] = k->p[0];
        k->bytes -= k->size[0];
        k->n--;
        memmove(&k->p[0], &k->p[1], k->n * sizeof k->p[0]);
        memmove(&k->size[0], &k->size[1], k->n * sizeof k->size[0]);
    }
    k->p[k->n] = p;
    k->size[k->n++] = n;
    k->bytes += n;
    pthread_mutex_unlock(&k->lock);
    for (unsigned i = 0; i < nd; i++)
        free(drop[i]); /* free() unpoisons what it frees */
}

/*
 * Small blocks. A cycle frees most of the small nodes it made the cycle
 * before and makes as many again (a one-entry map is 40 to 56 bytes), more
 * than glibc's per-thread cache keeps (7 a size), so most went through
 * malloc's and free's slow paths: about 200 instructions a block. The
 * context keeps them instead, a list per size (a multiple of 8 up to
 * VV__SMALL_MAX; other sizes are not kept), VV__SMALL_BYTES in all, so
 * that a pop or a push is a few instructions under a spin lock (threads of
 * one cycle allocate from the same context; the lock is held for a few
 * instructions, so spinning is cheaper than a mutex, and it yields if the
 * holder was preempted). A kept block is poisoned under AddressSanitizer,
 * its link too: it is unpoisoned only while the list is changed.
 */
static void small_lock(vv__block_cache *k)
{
    for (unsigned spins = 0;
         __atomic_exchange_n(&k->small_lock, 1, __ATOMIC_ACQUIRE); spins++)
        if (spins >= 64)
            sched_yield();
}

static void small_unlock(vv__block_cache *k)
{
    __atomic_store_n(&k->small_lock, 0, __ATOMIC_RELEASE);
}

static void *small_take(vv__block_cache *k, size_t n)
{
    size_t i = n / 8 - 1;
    small_lock(k);
    void *p = k->small[i];
    if (p) {
        CACHE_UNPOISON(p, n);
        memcpy(&k->small[i], p, sizeof p);
        k->small_bytes -= n;
    }
    small_unlock(k);
    return p;
}

static bool small_put(vv__block_cache *k, void *p, size_t n)
{
    size_t i = n / 8 - 1;
    small_lock(k);
    bool kept = k->small_bytes + n <= VV__SMALL_BYTES;
    if (kept) {
        memcpy(p, &k->small[i], sizeof p);
        CACHE_POISON(p, n);
        k->small[i] = p;
        k->small_bytes += n;
    }
    small_unlock(k);
    return kept;
}

static bool small_size(size_t n)
{
    return n <= VV__SMALL_MAX && n >= 8 && n % 8 == 0;
}

/* Empty the cache (vv_ctx_free). */
static void cache_clear(vv__block_cache *k)
{
    for (unsigned i = 0; i < k->n; i++)
        free(k->p[i]);
    k->n = 0;
    k->bytes = 0;
    for (size_t i = 0; i < VV__SMALL_CLASSES; i++)
        while (k->small[i]) {
            void *p = k->small[i];
            CACHE_UNPOISON(p, 8 * (i + 1));
            memcpy(&k->small[i], p, sizeof p);
            free(p);
        }
    k->small_bytes = 0;
}

static void *default_alloc(void *ud, void *p, size_t old, size_t n)
{
    vv__block_cache *k = ud; /* NULL while the context itself is made */
    if (n == 0) {
        if (k && p && small_size(old)) {
            if (!small_put(k, p, old))
                free(p);
        } else if (k && p && old >= VV__CACHE_MIN)
            cache_put(k, p, old);
        else
            free(p);
        return NULL;
    }
    if (k && !p && small_size(n)) {
        void *q = small_take(k, n);
        if (q)
            return q;
    } else if (k && !p && n >= VV__CACHE_MIN) {
        void *q = cache_take(k, n);
        if (q)
            return q;
    }
    return p ? realloc(p, n) : malloc(n);
}

void *vv__alloc(vv_ctx *c, size_t n)
{
    void *p = c->alloc(c->alloc_ud, NULL, 0, n);
    if (p)
        __atomic_fetch_add(&c->bytes, n, __ATOMIC_RELAXED);
    return p;
}

void vv__free_mem(vv_ctx *c, void *p, size_t n)
{
    if (!p)
        return;
    c->alloc(c->alloc_ud, p, n, 0);
    __atomic_fetch_sub(&c->bytes, n, __ATOMIC_RELAXED);
}

void *vv_ctx_realloc(vv_ctx *c, void *p, size_t old, size_t n)
{
    if (n == 0) {
        vv__free_mem(c, p, old);
        return NULL;
    }
    if (!p)
        return vv__alloc(c, n);
    void *q = c->alloc(c->alloc_ud, p, old, n);
    if (q) {
        __atomic_fetch_add(&c->bytes, n, __ATOMIC_RELAXED);
        __atomic_fetch_sub(&c->bytes, old, __ATOMIC_RELAXED);
    }
    return q;
}

vv_ctx *vv_ctx_new(const vv_options *opt)
{
    vv_alloc_fn alloc = opt && opt->alloc ? opt->alloc : default_alloc;
    void *ud = opt && opt->alloc ? opt->alloc_ud : NULL;
    vv_ctx *c = alloc(ud, NULL, 0, sizeof *c);
    if (!c)
        return NULL;
    memset(c, 0, sizeof *c);
    c->alloc = alloc;
    c->alloc_ud = ud;
    pthread_mutex_init(&c->cache.lock, NULL);
    if (alloc == default_alloc)
        c->alloc_ud = &c->cache;
    c->max_depth =
        opt && opt->max_depth > 0 ? opt->max_depth : VV_DEFAULT_MAX_DEPTH;
    if (c->max_depth > UINT16_MAX - 1)
        c->max_depth = UINT16_MAX - 1;
    c->max_label_len = opt && opt->max_label_len > 0 ? opt->max_label_len
                                                     : VV_DEFAULT_MAX_LABEL;
    c->bytes = sizeof *c;
    pthread_mutex_init(&c->lock, NULL);
    return c;
}

void vv_ctx_free(vv_ctx *c)
{
    if (!c)
        return;
    struct vv__label_entry *e, *tmp;
    /* uthash frees its bucket tables through these macros */
#undef uthash_free
#define uthash_free(ptr, sz) vv__free_mem(c, ptr, sz)
    HASH_ITER(hh, c->by_name, e, tmp)
    {
        HASH_DELETE(hh, c->by_name, e);
        vv__free_mem(c, e, sizeof *e + e->len + 1);
    }
    for (size_t p = 0; p < VV__LABEL_PAGES && c->pages[p]; p++)
        vv__free_mem(c, c->pages[p], VV__LABEL_PAGE * sizeof(void *));
    for (size_t p = 0; p < VV__DEC_PAGES; p++)
        vv__free_mem(c, c->dec[p], VV__DEC_PAGE * sizeof(vv_label));
    pthread_mutex_destroy(&c->lock);
    cache_clear(&c->cache);
    pthread_mutex_destroy(&c->cache.lock);
    /* the context holds the cache: freed past it, never into it */
    c->alloc(c->alloc == default_alloc ? NULL : c->alloc_ud, c, sizeof *c, 0);
}

int vv_ctx_max_depth(const vv_ctx *c)
{
    return c->max_depth;
}

size_t vv_ctx_bytes(const vv_ctx *c)
{
    return __atomic_load_n(&c->bytes, __ATOMIC_RELAXED);
}

static struct vv__label_entry *find_locked(vv_ctx *c, const char *s, size_t len)
{
    struct vv__label_entry *e = NULL;
    HASH_FIND(hh, c->by_name, s, len, e);
    return e;
}

int vv_label_find(vv_ctx *c, const char *s, size_t len, vv_label *out)
{
    pthread_mutex_lock(&c->lock);
    struct vv__label_entry *e = find_locked(c, s, len);
    pthread_mutex_unlock(&c->lock);
    if (!e)
        return DMM_E_NOTFOUND;
    *out = e->id;
    return 0;
}

#undef uthash_malloc
#undef uthash_free
#define uthash_malloc(sz)        vv__alloc(c, sz)
#define uthash_free(ptr, sz)     vv__free_mem(c, ptr, sz)
#define uthash_nonfatal_oom(obj) (oom = 1)

static bool is_number_key(const char *s, size_t len)
{
    return len == sizeof VV_NUMBER_KEY - 1 && !memcmp(s, VV_NUMBER_KEY, len);
}

/* The number a label spells in canonical decimal, below VV__DENSE_MAX, or
 * -1. */
int32_t vv__parse_dec(const char *s, size_t len)
{
    if (len == 0 || len > 5 || (len > 1 && s[0] == '0'))
        return -1;
    int32_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v < VV__DENSE_MAX ? v : -1;
}

/* After "v" was interned as id: record it and extend the increasing run. */
static void dec_note(vv_ctx *c, int32_t v, vv_label id)
{
    c->dec[v / VV__DEC_PAGE][v % VV__DEC_PAGE] = id;
    uint32_t m = c->dec_mono;
    vv_label prev =
        m ? c->dec[(m - 1) / VV__DEC_PAGE][(m - 1) % VV__DEC_PAGE] : 0;
    while (m < VV__DENSE_MAX) {
        const vv_label *pg = c->dec[m / VV__DEC_PAGE];
        vv_label l = pg ? pg[m % VV__DEC_PAGE] : VV__NO_LABEL;
        if (l == VV__NO_LABEL || (m && l < prev))
            break;
        prev = l;
        m++;
    }
    __atomic_store_n(&c->dec_mono, m, __ATOMIC_RELEASE);
}

static int intern_locked(vv_ctx *c, const char *s, size_t len, vv_label *out)
{
    struct vv__label_entry *e = find_locked(c, s, len);
    if (e) {
        *out = e->id;
        return 0;
    }
    if (memchr(s, '\0', len))
        return DMM_E_INVAL;
    assert(!is_number_key(s, len) && "\":number\" is not a label");
    size_t id = c->nlabels;
    size_t page = id / VV__LABEL_PAGE;
    if (page >= VV__LABEL_PAGES)
        return DMM_E_LIMIT;
    if (!c->pages[page]) {
        void *pg = vv__alloc(c, VV__LABEL_PAGE * sizeof(void *));
        if (!pg)
            return DMM_E_NOMEM;
        memset(pg, 0, VV__LABEL_PAGE * sizeof(void *));
        __atomic_store_n(&c->pages[page], pg, __ATOMIC_RELEASE);
    }
    int32_t dec = vv__parse_dec(s, len);
    if (dec >= 0 && !c->dec[dec / VV__DEC_PAGE]) {
        vv_label *pg = vv__alloc(c, VV__DEC_PAGE * sizeof *pg);
        if (!pg)
            return DMM_E_NOMEM;
        memset(pg, 0xff, VV__DEC_PAGE * sizeof *pg); /* VV__NO_LABEL */
        __atomic_store_n(&c->dec[dec / VV__DEC_PAGE], pg, __ATOMIC_RELEASE);
    }
    e = vv__alloc(c, sizeof *e + len + 1);
    if (!e)
        return DMM_E_NOMEM;
    memset(e, 0, sizeof *e);
    e->id = (vv_label)id;
    e->dec = dec;
    e->len = len;
    memcpy(e->str, s, len);
    e->str[len] = '\0';
    int oom = 0;
    HASH_ADD(hh, c->by_name, str, len, e);
    if (oom) {
        vv__free_mem(c, e, sizeof *e + len + 1);
        return DMM_E_NOMEM;
    }
    __atomic_store_n(&c->pages[page][id % VV__LABEL_PAGE], e, __ATOMIC_RELEASE);
    c->nlabels = id + 1;
    if (dec >= 0)
        dec_note(c, dec, e->id);
    *out = e->id;
    return 0;
}

void vv_label_rollback(vv_ctx *c, size_t mark)
{
    pthread_mutex_lock(&c->lock);
    while (c->nlabels > mark) {
        size_t id = c->nlabels - 1;
        struct vv__label_entry **pg = c->pages[id / VV__LABEL_PAGE];
        struct vv__label_entry *e = pg[id % VV__LABEL_PAGE];
        __atomic_store_n(&pg[id % VV__LABEL_PAGE], NULL, __ATOMIC_RELEASE);
        HASH_DELETE(hh, c->by_name, e);
        if (e->dec >= 0) {
            /* A decimal label goes from the table, and the run of
             * increasing ids that dense levels rely on ends before it. */
            c->dec[e->dec / VV__DEC_PAGE][e->dec % VV__DEC_PAGE] = VV__NO_LABEL;
            if ((uint32_t)e->dec < c->dec_mono)
                __atomic_store_n(&c->dec_mono, (uint32_t)e->dec,
                                 __ATOMIC_RELEASE);
        }
        vv__free_mem(c, e, sizeof *e + e->len + 1);
        c->nlabels = id;
    }
    pthread_mutex_unlock(&c->lock);
}

int vv_intern(vv_ctx *c, const char *s, size_t len, vv_label *out)
{
    if (len > c->max_label_len)
        return DMM_E_LIMIT;
    if (is_number_key(s, len))
        return DMM_E_INVAL;
    pthread_mutex_lock(&c->lock);
    int rc = intern_locked(c, s, len, out);
    pthread_mutex_unlock(&c->lock);
    return rc;
}

int vv_intern_cstr(vv_ctx *c, const char *s, vv_label *out)
{
    return vv_intern(c, s, strlen(s), out);
}

const char *vv_label_str(const vv_ctx *c, vv_label l, size_t *len)
{
    struct vv__label_entry **pg =
        __atomic_load_n(&c->pages[l / VV__LABEL_PAGE], __ATOMIC_ACQUIRE);
    assert(pg && "label from another context");
    struct vv__label_entry *e =
        __atomic_load_n(&pg[l % VV__LABEL_PAGE], __ATOMIC_ACQUIRE);
    assert(e && "label from another context");
    if (len)
        *len = e->len;
    return e->str;
}

int32_t vv_label_dec(const vv_ctx *c, vv_label l)
{
    return vv__label_dec(c, l);
}

int32_t vv__label_dec(const vv_ctx *c, vv_label l)
{
    struct vv__label_entry **pg =
        __atomic_load_n(&c->pages[l / VV__LABEL_PAGE], __ATOMIC_ACQUIRE);
    assert(pg && "label from another context");
    struct vv__label_entry *e =
        __atomic_load_n(&pg[l % VV__LABEL_PAGE], __ATOMIC_ACQUIRE);
    assert(e && "label from another context");
    return e->dec;
}

int vv__dec_reserve(vv_ctx *c, uint32_t n)
{
    assert(n <= VV__DENSE_MAX);
    if (vv__dec_mono(c) >= n)
        return 0;
    int rc = 0;
    pthread_mutex_lock(&c->lock);
    for (uint32_t i = 0; i < n && !rc; i++) {
        const vv_label *pg = c->dec[i / VV__DEC_PAGE];
        if (pg && pg[i % VV__DEC_PAGE] != VV__NO_LABEL)
            continue;
        char s[8];
        int len = snprintf(s, sizeof s, "%u", (unsigned)i);
        vv_label l;
        rc = intern_locked(c, s, (size_t)len, &l);
    }
    pthread_mutex_unlock(&c->lock);
    return rc;
}

size_t vv_label_count(const vv_ctx *c)
{
    pthread_mutex_t *lk = (pthread_mutex_t *)&c->lock;
    pthread_mutex_lock(lk);
    size_t n = c->nlabels;
    pthread_mutex_unlock(lk);
    return n;
}
