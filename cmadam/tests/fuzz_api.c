/*
 * fuzz_api.c -- a seeded random-call driver ("fuzzer") for the whole public C API of cmadam.
 *
 *   make -C cmadam fuzz                                  30 s, seed 1 (ASan + UBSan build)
 *   make -C cmadam fuzz FUZZ_SECONDS=660 FUZZ_SEED=7     longer run, another seed
 *   cmadam/build/check/fuzz_api -s SEED -c INDEX -v      replay one call of a run
 *
 * Options: -s SEED (default 1), -t SECONDS (default 30), -n CALLS (stop after CALLS calls;
 * with -n and no -t there is no time limit), -c INDEX (run only call INDEX of the seed's
 * sequence), -k (keep going after a violation), -v (print every call).
 *
 * Every call i of a run draws its arguments from a generator seeded with (seed, i) alone, so a
 * failing call is reproduced by `-s SEED -c i` without replaying the calls before it. A call
 * picks one public function (f32 and f64 variants count separately) and builds:
 *   - sizes including 0, 1, small, a few thousand and a few ten-thousand elements (above the
 *     default OpenMP threshold), and invalid sizes the API promises to check;
 *   - configs from cm_*_config_default(), then random valid values, then (on "bad" calls) each
 *     field replaced at random by a negative, NaN, +-Inf, 0, 1, 1 + ulp, 1e300, DBL_MAX, an
 *     out-of-range enum, INT_MIN / INT_MAX, ...; steps 0, -1, INT64_MIN, INT64_MAX, ...;
 *   - an exec config that is NULL or a perturbed default (thread counts -1 .. 4, thresholds 0,
 *     1, 16, ..., SIZE_MAX, baseline_only 0/1/other), so both the serial and the OpenMP paths
 *     and both instruction-set builds run;
 *   - data that is clean (random scale 1e-3 .. 1e3, grids with ties and duplicates) or wild
 *     (NaN, -NaN, +-Inf, +-0, denormals, FLT_MAX / DBL_MAX, 1e30, ...);
 *   - NULL in place of pointers the headers say are checked (never where they say the
 *     behaviour is undefined; lengths are never lied about).
 * Every array and struct the call sees lives in its own heap block between 64-byte guards (the
 * data sometimes misaligned by a few elements), filled with a canary and poisoned for ASan, so
 * any access outside an array is reported by ASan and any stray write also by the canary check.
 * After the call the driver checks the contract of cmadam.h:
 *   - the status is one of enum cm_status and cm_strerror() names it;
 *   - an error status leaves every output and state array (and result struct) bit-for-bit
 *     unchanged (memcmp against a snapshot taken just before the call);
 *   - inputs (const arrays and configs) are unchanged whatever the status;
 *   - a required pointer passed as NULL gives an error status;
 *   - on success, cheap sanity checks (Rademacher entries are +-1, the Gramian is symmetric,
 *     a mask is 0/1, ranks lie in [0, n), hypervolume / IGD / spacing are not negative, ...).
 * The last line printed is
 *   fuzz_api: <calls> calls, <errors> error statuses, <ok> successes, seed <s>, <secs> s
 * after one line per function with its calls, error statuses and successes. The exit status is
 * 1 on any violation (the function, seed and call index are printed first).
 *
 * This file includes itself once per element type (FUZZ_TYPED_PASS) for the _f32 and _f64
 * targets; it is not one of the tests/test_*.c programs of `make check`.
 */
#ifndef FUZZ_TYPED_PASS

#define _POSIX_C_SOURCE 200809L
#include <float.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmadam.h"
#include "cmadam_amoo.h"
#include "cmadam_mada.h"
#include "cmadam_madam.h"
#include "cmadam_pareto.h"
#include "cmadam_qp.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define FZ_POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define FZ_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define FZ_POISON(p, n) ((void)(p), (void)(n))
#define FZ_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define FZ_CAT_(a, b) a##b
#define FZ_CAT(a, b) FZ_CAT_(a, b)

/* ------------------------------------------------------------------ the generator */
typedef struct {
    uint64_t s;
} fz_rng;

static uint64_t fz_mix(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

static uint64_t fz_next(fz_rng *r)
{
    r->s += 0x9E3779B97F4A7C15ull;
    uint64_t z = r->s;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double fz_unif(fz_rng *r) { return (double)(fz_next(r) >> 11) * 0x1p-53; }
static uint64_t fz_below(fz_rng *r, uint64_t k) { return k ? fz_next(r) % k : 0; }
static int fz_chance(fz_rng *r, double p) { return fz_unif(r) < p; }

/* ------------------------------------------------------------------ guarded, tracked buffers */
#define FZ_GUARD 64
#define FZ_CANARY 0xA5
#define FZ_MAX_BUFS 48

typedef struct {
    unsigned char *raw;  /* pre guard, data, post guard */
    unsigned char *data; /* what the API sees */
    unsigned char *snap; /* copy taken just before the call */
    size_t bytes, pre;
    int output; /* 1: the API may write it (on success only) */
    const char *name;
} fz_buf;

typedef struct {
    fz_rng r;
    fz_buf bufs[FZ_MAX_BUFS];
    int nbufs;
    double bad_rate;  /* probability that a config field is replaced by a bad value */
    double wild_rate; /* probability that an array is filled with special values */
    double null_rate; /* probability that a pointer is replaced by NULL */
    int expect_fail;  /* a required pointer was NULL or an argument breaks a documented rule */
    const char *expect_why;
    int armed;
    const char *fn;
    uint64_t seed, index;
    int violations;
} fz_ctx;

static int fz_keep_going = 0, fz_verbose = 0;
static unsigned long long fz_total_violations = 0;
static const fz_ctx *fz_current = NULL; /* the call in flight, for the sanitizer's report */

/* ASan / UBSan end the process on an error: say which call it was, to replay it. */
static void fz_on_death(void)
{
    const fz_ctx *c = fz_current;
    if (!c) return;
    fprintf(stderr, "fuzz_api: sanitizer error in %s (seed %" PRIu64 ", call %" PRIu64
                    "; replay: fuzz_api -s %" PRIu64 " -c %" PRIu64 " -v)\n",
            c->fn, c->seed, c->index, c->seed, c->index);
}

static void fz_fail(fz_ctx *c, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "fuzz_api: VIOLATION in %s (seed %" PRIu64 ", call %" PRIu64
                    "; replay: fuzz_api -s %" PRIu64 " -c %" PRIu64 " -v): ",
            c->fn, c->seed, c->index, c->seed, c->index);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
    c->violations++;
    fz_total_violations++;
    if (!fz_keep_going) exit(1);
}

/* A block of `bytes` bytes between guards; data misaligned by a few elements (of `elem`
 * bytes) now and then. Output buffers may be written on success; inputs never. */
static void *fz_alloc(fz_ctx *c, size_t bytes, size_t elem, int output, const char *name)
{
    if (c->nbufs == FZ_MAX_BUFS) {
        fprintf(stderr, "fuzz_api: too many buffers in %s\n", c->fn);
        exit(2);
    }
    fz_buf *b = &c->bufs[c->nbufs++];
    size_t pre = FZ_GUARD;
    if (elem && fz_chance(&c->r, 0.25)) pre += elem * (1 + fz_below(&c->r, 7));
    b->raw = malloc(pre + bytes + FZ_GUARD);
    if (!b->raw) {
        fprintf(stderr, "fuzz_api: out of memory (%zu bytes)\n", bytes);
        exit(2);
    }
    b->data = b->raw + pre;
    b->snap = NULL;
    b->bytes = bytes;
    b->pre = pre;
    b->output = output;
    b->name = name;
    memset(b->raw, FZ_CANARY, pre);
    memset(b->data, 0, bytes);
    memset(b->data + bytes, FZ_CANARY, FZ_GUARD);
    return b->data;
}

/* Marks an already tracked buffer as an output (it aliases an output argument). */
static void fz_make_output(fz_ctx *c, const void *p)
{
    for (int i = 0; i < c->nbufs; i++)
        if (c->bufs[i].data == p) c->bufs[i].output = 1;
}

/* Snapshot every buffer and poison the guards; called right before the API call. */
static void fz_arm(fz_ctx *c)
{
    for (int i = 0; i < c->nbufs; i++) {
        fz_buf *b = &c->bufs[i];
        b->snap = malloc(b->bytes ? b->bytes : 1);
        if (!b->snap) exit(2);
        memcpy(b->snap, b->data, b->bytes);
        FZ_POISON(b->raw, b->pre);
        FZ_POISON(b->data + b->bytes, FZ_GUARD);
    }
    c->armed = 1;
}

static void fz_disarm(fz_ctx *c)
{
    if (!c->armed) return;
    for (int i = 0; i < c->nbufs; i++) {
        fz_buf *b = &c->bufs[i];
        FZ_UNPOISON(b->raw, b->pre);
        FZ_UNPOISON(b->data + b->bytes, FZ_GUARD);
    }
    c->armed = 0;
}

/* The contract checks common to every call. */
static void fz_verify(fz_ctx *c, int status)
{
    fz_disarm(c);
    if (status < CM_OK || status > CM_ERR_BLAS)
        fz_fail(c, "status %d is not a cm_status", status);
    const char *s = cm_strerror(status);
    if (!s || !*s) fz_fail(c, "cm_strerror(%d) is NULL or empty", status);
    else if (status >= CM_OK && status <= CM_ERR_BLAS && strncmp(s, "unknown", 7) == 0)
        fz_fail(c, "cm_strerror(%d) does not know a documented status", status);
    if (c->expect_fail && status == CM_OK)
        fz_fail(c, "status CM_OK although %s", c->expect_why);
    for (int i = 0; i < c->nbufs; i++) {
        fz_buf *b = &c->bufs[i];
        for (size_t k = 0; k < b->pre; k++)
            if (b->raw[k] != FZ_CANARY) {
                fz_fail(c, "write before the start of %s (%zu bytes before it)", b->name,
                        b->pre - k);
                break;
            }
        for (size_t k = 0; k < FZ_GUARD; k++)
            if (b->data[b->bytes + k] != FZ_CANARY) {
                fz_fail(c, "write past the end of %s (byte %zu after it)", b->name, k);
                break;
            }
        if (!b->snap) continue;
        if (b->output && status == CM_OK) continue;
        if (memcmp(b->snap, b->data, b->bytes) != 0) {
            size_t k = 0;
            while (k < b->bytes && b->snap[k] == b->data[k]) k++;
            if (b->output)
                fz_fail(c, "status %d (%s) but output %s changed (first at byte %zu of %zu)",
                        status, s ? s : "?", b->name, k, b->bytes);
            else
                fz_fail(c, "input %s changed (status %d, first at byte %zu of %zu)", b->name,
                        status, k, b->bytes);
        }
    }
}

static void fz_release(fz_ctx *c)
{
    fz_disarm(c);
    for (int i = 0; i < c->nbufs; i++) {
        free(c->bufs[i].raw);
        free(c->bufs[i].snap);
    }
    c->nbufs = 0;
}

/* p, or NULL now and then; a required pointer set to NULL must make the call fail. */
static void *fz_null(fz_ctx *c, void *p, int required)
{
    if (c->null_rate > 0.0 && fz_chance(&c->r, c->null_rate)) {
        if (required && !c->expect_fail) {
            c->expect_fail = 1;
            c->expect_why = "a required pointer is NULL";
        }
        return NULL;
    }
    return p;
}

/* The call must fail when `bad` (an argument breaks a rule the headers document). */
static void fz_expect(fz_ctx *c, int bad, const char *why)
{
    if (bad && !c->expect_fail) {
        c->expect_fail = 1;
        c->expect_why = why;
    }
}
/* The documented ranges: finite and >= 0, [0, 1), [0, 1]. */
static int fz_ok_nonneg(double x) { return isfinite(x) && x >= 0.0; }
static int fz_ok_unit(double x) { return x >= 0.0 && x < 1.0; }
static int fz_ok_closed(double x) { return x >= 0.0 && x <= 1.0; }
static int fz_finite_d(const double *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return 0;
    return 1;
}

/* ------------------------------------------------------------------ values */
static double fz_special(fz_rng *r, int is64)
{
    switch (fz_below(r, 16)) {
    case 0: return NAN;
    case 1: return -NAN;
    case 2: return INFINITY;
    case 3: return -INFINITY;
    case 4: return 0.0;
    case 5: return -0.0;
    case 6: return is64 ? DBL_TRUE_MIN : (double)FLT_TRUE_MIN;
    case 7: return is64 ? -DBL_TRUE_MIN * 3 : -(double)FLT_TRUE_MIN * 3;
    case 8: return is64 ? DBL_MAX : (double)FLT_MAX;
    case 9: return is64 ? -DBL_MAX : -(double)FLT_MAX;
    case 10: return 1e30;
    case 11: return -1e30;
    case 12: return is64 ? DBL_MIN : (double)FLT_MIN;
    case 13: return 1.0;
    case 14: return -1.0;
    default: return 1e-30;
    }
}

/* A "clean" value: random sign, magnitude 10^U(-3, 3) * scale. */
static double fz_clean(fz_rng *r, double scale)
{
    const double v = (fz_unif(r) * 2.0 - 1.0) * scale;
    return fz_chance(r, 0.05) ? 0.0 : v;
}

static void fz_put(void *p, size_t i, int is64, double v)
{
    if (is64) ((double *)p)[i] = v;
    else ((float *)p)[i] = (float)v;
}

enum { FZ_ANY = 0, FZ_NONNEG = 1 };

/* n elements: clean (random scale, sometimes nonnegative) or wild (specials mixed in). */
static void fz_fill(fz_ctx *c, void *p, size_t n, int is64, int profile)
{
    fz_rng *r = &c->r;
    const double scale = pow(10.0, fz_unif(r) * 6.0 - 3.0);
    const int wild = fz_chance(r, c->wild_rate);
    const double special_rate = wild ? (fz_chance(r, 0.5) ? 0.02 : 0.3) : 0.0;
    const int grid = fz_chance(r, 0.1); /* small integers: ties and exact zeros */
    for (size_t i = 0; i < n; i++) {
        double v;
        if (special_rate > 0.0 && fz_chance(r, special_rate)) v = fz_special(r, is64);
        else if (grid) v = (double)((int)fz_below(r, 7) - 3);
        else v = fz_clean(r, scale);
        if (profile == FZ_NONNEG && !wild) v = fabs(v);
        fz_put(p, i, is64, v);
    }
}

/* Config fields: the value given, or (at bad_rate) a bad one. */
static double fz_d(fz_ctx *c, double x)
{
    fz_rng *r = &c->r;
    if (!(c->bad_rate > 0.0 && fz_chance(r, c->bad_rate))) return x;
    switch (fz_below(r, 18)) {
    case 0: return NAN;
    case 1: return INFINITY;
    case 2: return -INFINITY;
    case 3: return -1.0;
    case 4: return -DBL_TRUE_MIN;
    case 5: return -0.0;
    case 6: return 0.0;
    case 7: return 1.0;
    case 8: return nextafter(1.0, 2.0);
    case 9: return nextafter(1.0, 0.0);
    case 10: return 1e300;
    case 11: return 2e300;
    case 12: return DBL_MAX;
    case 13: return DBL_TRUE_MIN;
    case 14: return fz_unif(r);
    case 15: return 10.0 * fz_unif(r);
    case 16: return -fz_unif(r);
    default: return -1e300;
    }
}

static int fz_i(fz_ctx *c, int x)
{
    fz_rng *r = &c->r;
    if (!(c->bad_rate > 0.0 && fz_chance(r, c->bad_rate))) return x;
    switch (fz_below(r, 9)) {
    case 0: return -1;
    case 1: return 0;
    case 2: return 1;
    case 3: return 2;
    case 4: return 3;
    case 5: return INT_MAX;
    case 6: return INT_MIN;
    case 7: return 7;
    default: return (int)fz_next(r);
    }
}

/* A step counter: mostly valid, sometimes 0, negative or extreme. */
static int64_t fz_step(fz_ctx *c, int64_t min_valid)
{
    fz_rng *r = &c->r;
    if (c->bad_rate > 0.0 && fz_chance(r, c->bad_rate * 0.5)) {
        switch (fz_below(r, 5)) {
        case 0: return min_valid - 1;
        case 1: return 0;
        case 2: return -1;
        case 3: return INT64_MIN;
        default: return -(int64_t)fz_below(r, 1000);
        }
    }
    switch (fz_below(r, 10)) {
    case 0: case 1: case 2: return min_valid;
    case 3: return min_valid + 1;
    case 4: return min_valid + 2;
    case 5: return INT64_MAX;
    case 6: return (int64_t)1000000000;
    default: return min_valid + (int64_t)fz_below(r, 1000);
    }
}

/* An element count: 0, 1, small, thousands, or above the default parallel threshold. */
static size_t fz_n(fz_ctx *c)
{
    fz_rng *r = &c->r;
    const uint64_t u = fz_below(r, 100);
    if (u < 8) return 0;
    if (u < 16) return 1;
    if (u < 50) return 2 + (size_t)fz_below(r, 40);
    if (u < 80) return (size_t)fz_below(r, 400);
    if (u < 96) return (size_t)fz_below(r, 5000);
    return 32768 + (size_t)fz_below(r, 20000);
}

/* NULL (the defaults) or a perturbed default exec config. */
static const cm_exec_config *fz_exec(fz_ctx *c)
{
    fz_rng *r = &c->r;
    if (fz_chance(r, 0.3)) return NULL;
    cm_exec_config *e = fz_alloc(c, sizeof *e, 0, 0, "exec");
    cm_exec_config_default(e);
    static const int threads[] = {-1, 0, 1, 2, 3, 4};
    static const size_t sizes[] = {0, 1, 2, 16, 1000, 32768, (size_t)-1};
    if (fz_chance(r, 0.7)) e->n_threads = threads[fz_below(r, 6)];
    if (fz_chance(r, 0.7)) e->min_parallel_size = sizes[fz_below(r, 7)];
    if (fz_chance(r, 0.5)) e->baseline_only = (int)fz_below(r, 3) - (fz_chance(r, 0.1) ? 5 : 0);
    return e;
}

/* ------------------------------------------------------------------ targets */
typedef int (*fz_fn)(fz_ctx *c);
typedef struct {
    const char *name;
    fz_fn fn;
    int weight;
    unsigned long long calls, errors, oks;
} fz_target;

/* Typed targets: this file again, once per element type. */
#define FUZZ_TYPED_PASS 1
#define REAL float
#define IS64 0
#define TSUF _f32
#include "fuzz_api.c"
#undef REAL
#undef IS64
#undef TSUF
#define REAL double
#define IS64 1
#define TSUF _f64
#include "fuzz_api.c"
#undef REAL
#undef IS64
#undef TSUF
#undef FUZZ_TYPED_PASS

/* ---------------------------------------------------------------- untyped targets */
static int t_strerror(fz_ctx *c)
{
    static const int codes[] = {0, 1, 2, 3, 4, 5, -1, 6, INT_MIN, INT_MAX, 100};
    const int s = fz_chance(&c->r, 0.8) ? codes[fz_below(&c->r, 11)] : (int)fz_next(&c->r);
    fz_arm(c);
    const char *m = cm_strerror(s);
    if (!m) fz_fail(c, "cm_strerror(%d) is NULL", s);
    return CM_OK;
}

static int t_version(fz_ctx *c)
{
    char want[64];
    snprintf(want, sizeof want, "%d.%d.%d", CM_VERSION_MAJOR, CM_VERSION_MINOR, CM_VERSION_PATCH);
    fz_arm(c);
    const char *v = cm_version();
    if (!v || strcmp(v, want) != 0) fz_fail(c, "cm_version() is \"%s\", not %s", v ? v : "(null)", want);
    return CM_OK;
}

static int t_static_strings(fz_ctx *c, const char *(*f)(void))
{
    fz_arm(c);
    const char *s = f();
    if (!s) fz_fail(c, "returned NULL");
    return CM_OK;
}
static int t_build_info(fz_ctx *c) { return t_static_strings(c, cm_build_info); }
static int t_source_hash(fz_ctx *c) { return t_static_strings(c, cm_source_hash); }
static int t_blas_info(fz_ctx *c) { return t_static_strings(c, cm_blas_info); }

static int t_simd_level(fz_ctx *c)
{
    const cm_exec_config *e = fz_exec(c);
    fz_arm(c);
    const int level = cm_simd_level(e);
    if (level != 1 && level != 2) fz_fail(c, "cm_simd_level = %d", level);
    if (e && e->baseline_only == 1 && level != 1) fz_fail(c, "baseline_only but level %d", level);
    return CM_OK;
}

static int t_openmp_max_threads(fz_ctx *c)
{
    fz_arm(c);
    const int t = cm_openmp_max_threads();
    if (t < 1) fz_fail(c, "cm_openmp_max_threads = %d", t);
    return CM_OK;
}

static int t_blas_get_num_threads(fz_ctx *c)
{
    fz_arm(c);
    const int t = cm_blas_get_num_threads();
    if (t < 1) fz_fail(c, "cm_blas_get_num_threads = %d", t);
    return CM_OK;
}

static int t_blas_set_num_threads(fz_ctx *c)
{
    static const int k[] = {INT_MIN, -1, 0, 1, 2};
    const int n = k[fz_below(&c->r, 5)];
    fz_arm(c);
    const int before = cm_blas_get_num_threads();
    cm_blas_set_num_threads(n);
    const int after = cm_blas_get_num_threads();
    if (n < 1 && after != before) fz_fail(c, "cm_blas_set_num_threads(%d) changed %d to %d", n, before, after);
    if (after < 1) fz_fail(c, "cm_blas_get_num_threads = %d after set(%d)", after, n);
    return CM_OK;
}

/* Each *_config_default must fill exactly its struct (the guards catch a longer write). */
#define FZ_DEFAULT_TARGET(NAME, TYPE, CHECK)                                                   \
    static int t_##NAME(fz_ctx *c)                                                             \
    {                                                                                          \
        TYPE *cfg = fz_alloc(c, sizeof(TYPE), 0, 1, #TYPE);                                    \
        memset(cfg, 0x5A, sizeof(TYPE));                                                       \
        fz_arm(c);                                                                             \
        cm_##NAME(cfg);                                                                        \
        if (!(CHECK)) fz_fail(c, "a documented default differs: %s", #CHECK);                  \
        return CM_OK;                                                                          \
    }
FZ_DEFAULT_TARGET(exec_config_default, cm_exec_config,
                  cfg->n_threads == 0 && cfg->min_parallel_size == 32768 && cfg->baseline_only == 0)
FZ_DEFAULT_TARGET(sgd_config_default, cm_sgd_config,
                  cfg->lr == 1e-3 && cfg->momentum == 0 && cfg->nesterov == 0)
FZ_DEFAULT_TARGET(adam_config_default, cm_adam_config,
                  cfg->lr == 1e-3 && cfg->beta1 == 0.9 && cfg->beta2 == 0.999 && cfg->variant == CM_ADAM)
FZ_DEFAULT_TARGET(yogi_config_default, cm_yogi_config, cfg->lr == 1e-2 && cfg->eps == 1e-3)
FZ_DEFAULT_TARGET(adan_config_default, cm_adan_config,
                  cfg->beta1 == 0.98 && cfg->beta2 == 0.92 && cfg->beta3 == 0.99 && cfg->proximal == 1)
FZ_DEFAULT_TARGET(lion_config_default, cm_lion_config, cfg->lr == 1e-4 && cfg->beta2 == 0.99)
FZ_DEFAULT_TARGET(madam_config_default, cm_madam_config, cfg->lr == 1e-3 && cfg->rampup == 1.0)
FZ_DEFAULT_TARGET(hutchinson_config_default, cm_hutchinson_config,
                  cfg->beta == 0.99 && cfg->transform == CM_HUTCH_SIGNED && cfg->clip_min == 0.0)
FZ_DEFAULT_TARGET(pu_config_default, cm_pu_config,
                  cfg->tau == 0.01 && cfg->eta == 0.0 && cfg->iters == 100 && cfg->matvec == CM_PU_FUSED)
FZ_DEFAULT_TARGET(qp_config_default, cm_qp_config,
                  cfg->tol == 1e-12 && cfg->max_iter == 0 && cfg->simplex == 1)
FZ_DEFAULT_TARGET(fw_config_default, cm_fw_config, cfg->tol == 1e-13 && cfg->max_iter == 20000)
FZ_DEFAULT_TARGET(pamoo_config_default, cm_pamoo_config,
                  cfg->lr == 3e-3 && cfg->iters == 1000 && cfg->w_min == 1e-6)
FZ_DEFAULT_TARGET(mada_config_default, cm_mada_config,
                  cfg->beta1 == 0.9 && cfg->rho == 1.0 && cfg->gamma == 1.0 && cfg->eps == 1e-6)
FZ_DEFAULT_TARGET(mada_hyper_config_default, cm_mada_hyper_config,
                  cfg->clip == 10.0 && cfg->hyper_lr[6] == 0.0 && isinf(cfg->upper[6]))
FZ_DEFAULT_TARGET(pareto_config_default, cm_pareto_config,
                  cfg->algorithm == CM_PARETO_AUTO && cfg->keep_weakly == 0 && cfg->ignore_dominated == 1)

static int t_gram_scan_workspace(fz_ctx *c)
{
    const size_t rows = (size_t)fz_below(&c->r, 70000), cols = (size_t)fz_below(&c->r, (uint64_t)1 << 40);
    fz_arm(c);
    const size_t w = cm_gram_scan_workspace(rows, cols);
    const int valid = rows > 0 && cols > 0 && rows <= 65536;
    if (valid ? w < rows * rows + 2 || w > 64 * (rows * rows + 2) : w != 0)
        fz_fail(c, "cm_gram_scan_workspace(%zu, %zu) = %zu", rows, cols, w);
    return CM_OK;
}

static int t_pu_work_size(fz_ctx *c)
{
    const size_t m = (size_t)fz_below(&c->r, (uint64_t)1 << 40), d = (size_t)fz_below(&c->r, (uint64_t)1 << 40);
    fz_arm(c);
    const size_t w = cm_pu_work_size(m, d);
    if (w != 4 * m + 3 * d) fz_fail(c, "cm_pu_work_size(%zu, %zu) = %zu", m, d, w);
    return CM_OK;
}

static int fz_obj_count(fz_ctx *c)
{
    static const int odd[] = {0, -1, 4096, 4097, INT_MIN, INT_MAX, 4095};
    if (fz_chance(&c->r, 0.2)) return odd[fz_below(&c->r, 7)];
    return 1 + (int)fz_below(&c->r, fz_chance(&c->r, 0.9) ? 6 : 100);
}

static int t_madam_n_pairs(fz_ctx *c)
{
    const int k = fz_obj_count(c);
    fz_arm(c);
    const int p = cm_madam_n_pairs(k);
    const int want = k >= 1 && k <= 4096 ? k * (k + 1) / 2 : -1;
    if (p != want) fz_fail(c, "cm_madam_n_pairs(%d) = %d, not %d", k, p, want);
    return CM_OK;
}

static int t_madam_pair_index(fz_ctx *c)
{
    const int k = fz_obj_count(c);
    const int span = k > 0 && k < 1000 ? k + 2 : 10;
    int i = (int)fz_below(&c->r, (uint64_t)span) - 1, j = (int)fz_below(&c->r, (uint64_t)span) - 1;
    if (fz_chance(&c->r, 0.05)) i = INT_MIN;
    if (fz_chance(&c->r, 0.05)) j = INT_MAX;
    fz_arm(c);
    const int p = cm_madam_pair_index(k, i, j);
    int want = -1;
    if (k >= 1 && k <= 4096 && i >= 0 && j >= 0 && i < k && j < k) {
        const int a = i < j ? i : j, b = i < j ? j : i;
        want = a * k - a * (a - 1) / 2 + b - a;
        if (p != cm_madam_pair_index(k, j, i)) fz_fail(c, "pair index not symmetric");
    }
    if (p != want) fz_fail(c, "cm_madam_pair_index(%d, %d, %d) = %d, not %d", k, i, j, p, want);
    return CM_OK;
}

static int t_madam_plan_full(fz_ctx *c)
{
    fz_rng *r = &c->r;
    const int k = fz_chance(r, 0.9) ? 1 + (int)fz_below(r, 8) : fz_obj_count(c);
    const int valid = k >= 1 && k <= 64;
    const size_t np = valid ? (size_t)k * (size_t)(k + 1) / 2 : 1;
    const size_t nl = valid ? (size_t)k : 1;
    double *lambda = fz_alloc(c, nl * sizeof(double), 8, 0, "lambda");
    fz_fill(c, lambda, nl, 1, FZ_ANY);
    int *ra = fz_alloc(c, np * sizeof(int), 4, 1, "pair_row_a");
    int *rb = fz_alloc(c, np * sizeof(int), 4, 1, "pair_row_b");
    double *dec = fz_alloc(c, np * sizeof(double), 8, 1, "pair_decay");
    double *gain = fz_alloc(c, np * sizeof(double), 8, 1, "pair_gain");
    double *w = fz_alloc(c, np * sizeof(double), 8, 1, "pair_weight");
    if (!valid && k >= 1 && k <= 4096) return -100; /* not exercised: would need huge arrays */
    const double beta2 = fz_d(c, fz_unif(r));
    const int64_t step = fz_step(c, 1);
    lambda = fz_null(c, lambda, 1);
    ra = fz_null(c, ra, 1);
    rb = fz_null(c, rb, 1);
    dec = fz_null(c, dec, 1);
    gain = fz_null(c, gain, 1);
    w = fz_null(c, w, 1);
    fz_arm(c);
    fz_expect(c, k < 1 || k > 4096, "n_obj is outside [1, 4096]");
    fz_expect(c, !fz_ok_unit(beta2), "beta2 is outside [0, 1)");
    fz_expect(c, step < 1, "step < 1");
    const int st = cm_madam_plan_full(k, beta2, step, lambda, ra, rb, dec, gain, w);
    if (st == CM_OK) {
        size_t p = 0;
        for (int i = 0; i < k; i++)
            for (int j = i; j < k; j++, p++)
                if (ra[p] != i || rb[p] != j) fz_fail(c, "plan pair %zu is (%d, %d)", p, ra[p], rb[p]);
    }
    return st;
}

/* ---------------------------------------------------------------- MADA hyper step */
static int t_mada_hyper_step(fz_ctx *c)
{
    fz_rng *r = &c->r;
    cm_mada_hyper_config *h = fz_alloc(c, sizeof *h, 0, 0, "hyper");
    cm_mada_hyper_config_default(h);
    for (int j = 0; j < CM_MADA_NHYPER; j++) {
        if (fz_chance(r, 0.3)) h->hyper_lr[j] = fz_chance(r, 0.3) ? 0.0 : fz_unif(r);
        if (fz_chance(r, 0.2)) {
            const double a = fz_clean(r, 2.0), b = fz_clean(r, 2.0);
            h->lower[j] = a < b ? a : b;
            h->upper[j] = fz_chance(r, 0.2) ? INFINITY : (a < b ? b : a);
        }
        h->hyper_lr[j] = fz_d(c, h->hyper_lr[j]);
        h->lower[j] = fz_d(c, h->lower[j]);
        h->upper[j] = fz_d(c, h->upper[j]);
    }
    if (fz_chance(r, 0.2)) h->clip = INFINITY;
    h->clip = fz_d(c, h->clip);
    const double lr = fz_d(c, fz_unif(r) * 0.01);
    double *dot = fz_alloc(c, 7 * sizeof(double), 8, 0, "dot");
    double *coef = fz_alloc(c, 7 * sizeof(double), 8, 1, "coef");
    double *hg = fz_alloc(c, 7 * sizeof(double), 8, 1, "hypergrad");
    fz_fill(c, dot, 7, 1, FZ_ANY);
    for (int j = 0; j < 7; j++) coef[j] = fz_unif(r);
    if (fz_chance(r, c->wild_rate)) coef[fz_below(r, 7)] = fz_special(r, 1);
    const cm_mada_hyper_config *hp = fz_null(c, h, 1);
    dot = fz_null(c, dot, 1);
    coef = fz_null(c, coef, 1);
    hg = fz_null(c, hg, 1);
    fz_arm(c);
    for (int j = 0; j < CM_MADA_NHYPER; j++)
        fz_expect(c, !(h->hyper_lr[j] >= 0.0) || !(h->lower[j] <= h->upper[j]),
                  "a hyper_lr is negative / NaN or a box has lower > upper / NaN");
    fz_expect(c, !(h->clip > 0.0), "clip is not > 0");
    fz_expect(c, !fz_ok_nonneg(lr), "lr is not finite and >= 0");
    const int st = cm_mada_hyper_step(hp, lr, dot, coef, hg);
    if (st == CM_OK)
        for (int j = 0; j < 7; j++)
            if (h->hyper_lr[j] > 0.0 && !(coef[j] >= h->lower[j] && coef[j] <= h->upper[j]) &&
                isfinite(hg[j]))
                fz_fail(c, "coef[%d] = %g outside [%g, %g]", j, coef[j], h->lower[j], h->upper[j]);
    return st;
}

/* ---------------------------------------------------------------- Pareto metrics */
static cm_pareto_config *fz_pareto_cfg(fz_ctx *c)
{
    fz_rng *r = &c->r;
    if (fz_chance(r, 0.3)) return NULL;
    cm_pareto_config *cfg = fz_alloc(c, sizeof *cfg, 0, 0, "pareto_cfg");
    cm_pareto_config_default(cfg);
    cfg->algorithm = (int)fz_below(r, 2);
    cfg->keep_weakly = (int)fz_below(r, 2);
    cfg->ignore_dominated = fz_chance(r, 0.7) ? 1 : 0;
    if (fz_chance(r, 0.05)) cfg->keep_weakly = fz_chance(r, 0.5) ? -3 : 2;
    if (fz_chance(r, 0.05)) cfg->ignore_dominated = fz_chance(r, 0.5) ? -3 : 2;
    cfg->algorithm = fz_i(c, cfg->algorithm);
    return cfg;
}

/* The documented rules shared by the Pareto kernels. */
static void fz_expect_pareto(fz_ctx *c, const cm_pareto_config *cfg, size_t n, size_t m,
                             const double *pts)
{
    fz_expect(c, cfg && cfg->algorithm != CM_PARETO_AUTO && cfg->algorithm != CM_PARETO_GENERIC,
              "cfg->algorithm is unknown");
    fz_expect(c, m == 0 || m > 1000000, "m is 0 or > 10^6");
    if (m >= 1 && m <= 1000000) fz_expect(c, !fz_finite_d(pts, n * m), "a point is not finite");
}

/* Objectives m (valid 1 .. 7 mostly; 0 and > 10^6 rarely). */
static size_t fz_m(fz_ctx *c)
{
    fz_rng *r = &c->r;
    if (c->bad_rate > 0.0 && fz_chance(r, 0.05)) return fz_chance(r, 0.5) ? 0 : 1000001;
    static const size_t ms[] = {1, 2, 2, 2, 3, 3, 3, 4, 4, 5, 6, 7};
    return ms[fz_below(r, 12)];
}

/* Points for m objectives, n bounded so that the exponential algorithms stay quick. */
static size_t fz_npts(fz_ctx *c, size_t m, size_t cap_low)
{
    fz_rng *r = &c->r;
    if (m > 1000000) return fz_below(r, 2);
    size_t cap = m <= 3 ? cap_low : m == 4 ? 40 : 9;
    if (fz_chance(r, 0.1)) return fz_below(r, 3);
    return (size_t)fz_below(r, cap + 1);
}

static double *fz_points(fz_ctx *c, size_t n, size_t m, int output, const char *name)
{
    fz_rng *r = &c->r;
    const size_t k = n * m;
    double *p = fz_alloc(c, k * sizeof(double), 8, output, name);
    const int mode = (int)fz_below(r, 3);
    const int grid = 2 + (int)fz_below(r, 6);
    for (size_t i = 0; i < n; i++) {
        double s = 0.0;
        for (size_t j = 0; j < m; j++) {
            double v = mode == 0 ? (double)fz_below(r, (uint64_t)grid) : fz_unif(r);
            p[i * m + j] = v;
            s += v;
        }
        if (mode == 2 && s > 0.0) /* near a simplex front: few dominated points */
            for (size_t j = 0; j < m; j++) p[i * m + j] /= s;
        if (n > 1 && fz_chance(r, 0.05)) { /* a duplicate of an earlier point */
            const size_t src = fz_below(r, i + 1);
            if (src != i) memcpy(p + i * m, p + src * m, m * sizeof(double));
        }
    }
    if (k && fz_chance(r, c->wild_rate * 0.5)) p[fz_below(r, k)] = fz_special(r, 1);
    return p;
}

static double *fz_ref(fz_ctx *c, size_t m, const double *pts, size_t n)
{
    fz_rng *r = &c->r;
    double *ref = fz_alloc(c, m * sizeof(double), 8, 0, "ref");
    const int mode = (int)fz_below(r, 4);
    for (size_t j = 0; j < m; j++) {
        double mx = 1.0;
        for (size_t i = 0; i < n; i++)
            if (pts[i * m + j] > mx) mx = pts[i * m + j];
        ref[j] = mode == 0 ? fz_unif(r) : mode == 1 ? mx : mx + 1.0 + fz_unif(r);
        if (!isfinite(ref[j])) ref[j] = 10.0;
    }
    if (m && fz_chance(r, c->wild_rate * 0.3)) ref[fz_below(r, m)] = fz_special(r, 1);
    return ref;
}

static int t_hypervolume(fz_ctx *c)
{
    cm_pareto_config *cfg = fz_pareto_cfg(c);
    const cm_exec_config *ex = fz_exec(c);
    const size_t m = fz_m(c), n = fz_npts(c, m, 400);
    double *pts = fz_points(c, n, m, 0, "points");
    double *ref = m <= 1000000 ? fz_ref(c, m, pts, n) : fz_alloc(c, m * 8, 8, 0, "ref");
    double *hv = fz_alloc(c, sizeof(double), 8, 1, "hv");
    fz_expect_pareto(c, cfg, n, m, pts);
    if (m >= 1 && m <= 1000000)
        fz_expect(c, !fz_finite_d(ref, m), "ref is not finite");
    pts = fz_null(c, pts, 1);
    ref = fz_null(c, ref, 1);
    hv = fz_null(c, hv, 1);
    fz_arm(c);
    const int st = cm_hypervolume_f64(cfg, ex, n, m, pts, ref, hv);
    if (st == CM_OK && *hv < 0.0) fz_fail(c, "hypervolume %g < 0", *hv);
    return st;
}

static int t_hv_contributions(fz_ctx *c)
{
    cm_pareto_config *cfg = fz_pareto_cfg(c);
    const cm_exec_config *ex = fz_exec(c);
    const size_t m = fz_m(c);
    const int loo = m >= 4 || (cfg && cfg->ignore_dominated == 0);
    const size_t n = fz_npts(c, m, loo ? 120 : 400);
    double *pts = fz_points(c, n, m, 0, "points");
    double *ref = m <= 1000000 ? fz_ref(c, m, pts, n) : fz_alloc(c, m * 8, 8, 0, "ref");
    double *con = fz_alloc(c, n * sizeof(double), 8, 1, "contrib");
    fz_expect_pareto(c, cfg, n, m, pts);
    if (m >= 1 && m <= 1000000)
        fz_expect(c, !fz_finite_d(ref, m), "ref is not finite");
    pts = fz_null(c, pts, 1);
    ref = fz_null(c, ref, 1);
    con = fz_null(c, con, 1);
    fz_arm(c);
    return cm_hv_contributions_f64(cfg, ex, n, m, pts, ref, con);
}

static int t_nondominated(fz_ctx *c)
{
    cm_pareto_config *cfg = fz_pareto_cfg(c);
    const cm_exec_config *ex = fz_exec(c);
    const size_t m = fz_m(c);
    const size_t n = m > 4 && m <= 1000000 ? fz_below(&c->r, 300) : fz_npts(c, m, 2000);
    double *pts = fz_points(c, n, m, 0, "points");
    unsigned char *mask = fz_alloc(c, n, 0, 1, "mask");
    fz_expect_pareto(c, cfg, n, m, pts);
    pts = fz_null(c, pts, 1);
    mask = fz_null(c, mask, 1);
    fz_arm(c);
    const int st = cm_nondominated_f64(cfg, ex, n, m, pts, mask);
    if (st == CM_OK) {
        size_t ones = 0;
        for (size_t i = 0; i < n; i++) {
            if (mask[i] > 1) fz_fail(c, "mask[%zu] = %u", i, mask[i]);
            ones += mask[i] == 1;
        }
        if (n && !ones) fz_fail(c, "no nondominated point among %zu", n);
    }
    return st;
}

static int t_pareto_rank(fz_ctx *c)
{
    cm_pareto_config *cfg = fz_pareto_cfg(c);
    const cm_exec_config *ex = fz_exec(c);
    const size_t m = fz_m(c);
    const size_t n = m > 4 && m <= 1000000 ? fz_below(&c->r, 300) : fz_npts(c, m, 2000);
    double *pts = fz_points(c, n, m, 0, "points");
    int64_t *rank = fz_alloc(c, n * sizeof(int64_t), 8, 1, "rank");
    fz_expect_pareto(c, cfg, n, m, pts);
    pts = fz_null(c, pts, 1);
    rank = fz_null(c, rank, 1);
    fz_arm(c);
    const int st = cm_pareto_rank_f64(cfg, ex, n, m, pts, rank);
    if (st == CM_OK) {
        int zero = 0;
        for (size_t i = 0; i < n; i++) {
            if (rank[i] < 0 || (uint64_t)rank[i] >= n) fz_fail(c, "rank[%zu] = %" PRId64, i, rank[i]);
            zero |= rank[i] == 0;
        }
        if (n && !zero) fz_fail(c, "no point of rank 0 among %zu", n);
    }
    return st;
}

static int t_igd_common(fz_ctx *c, int plus)
{
    const cm_exec_config *ex = fz_exec(c);
    const size_t m = fz_m(c), n = fz_npts(c, m, 300);
    const size_t nr = m > 1000000 ? fz_below(&c->r, 2) : fz_chance(&c->r, 0.1) ? 0 : fz_below(&c->r, 200);
    double *pts = fz_points(c, n, m, 0, "points");
    double *rf = fz_points(c, nr, m, 0, "ref_front");
    double *v = fz_alloc(c, sizeof(double), 8, 1, "value");
    fz_expect_pareto(c, NULL, n, m, pts);
    if (m >= 1 && m <= 1000000)
        fz_expect(c, !fz_finite_d(rf, nr * m),
                  "a reference point is not finite");
    fz_expect(c, nr == 0, "n_ref == 0");
    pts = fz_null(c, pts, 1);
    rf = fz_null(c, rf, 1);
    v = fz_null(c, v, 1);
    fz_arm(c);
    const int st = plus ? cm_igd_plus_f64(ex, n, m, pts, nr, rf, v) : cm_igd_f64(ex, n, m, pts, nr, rf, v);
    if (st == CM_OK && (*v < 0.0 || (n == 0 && !(isinf(*v) && *v > 0)))) fz_fail(c, "IGD = %g (n = %zu)", *v, n);
    return st;
}
static int t_igd(fz_ctx *c) { return t_igd_common(c, 0); }
static int t_igd_plus(fz_ctx *c) { return t_igd_common(c, 1); }

static int t_spacing(fz_ctx *c)
{
    const cm_exec_config *ex = fz_exec(c);
    const size_t m = fz_m(c), n = fz_npts(c, m, 300);
    double *pts = fz_points(c, n, m, 0, "points");
    double *v = fz_alloc(c, sizeof(double), 8, 1, "value");
    fz_expect_pareto(c, NULL, n, m, pts);
    fz_expect(c, n < 2, "n < 2");
    pts = fz_null(c, pts, 1);
    v = fz_null(c, v, 1);
    fz_arm(c);
    const int st = cm_spacing_f64(ex, n, m, pts, v);
    if (st == CM_OK && *v < 0.0) fz_fail(c, "spacing %g < 0", *v);
    return st;
}

static int t_spread(fz_ctx *c)
{
    fz_rng *r = &c->r;
    const size_t m = fz_chance(r, 0.8) ? 2 : fz_m(c), n = fz_npts(c, m, 300);
    const size_t nr = m > 1000000 ? 0 : fz_chance(r, 0.3) ? 0 : fz_below(r, 50);
    double *pts = fz_points(c, n, m, 0, "points");
    double *rf = fz_points(c, nr, m, 0, "ref_front");
    double *v = fz_alloc(c, sizeof(double), 8, 1, "value");
    fz_expect(c, m != 2 || n < 2, "m != 2 or n < 2");
    if (m == 2) {
        fz_expect_pareto(c, NULL, n, m, pts);
        fz_expect(c, !fz_finite_d(rf, nr * m),
                  "a reference point is not finite");
    }
    pts = fz_null(c, pts, 1);
    rf = fz_null(c, rf, nr > 0); /* may be NULL when n_ref == 0 */
    v = fz_null(c, v, 1);
    fz_arm(c);
    return cm_spread_f64(n, m, pts, nr, rf, v);
}

/* ---------------------------------------------------------------- the inner QP solvers */
static int t_qp_work_size(fz_ctx *c)
{
    const size_t k = fz_chance(&c->r, 0.9) ? (size_t)fz_below(&c->r, 70000) : (size_t)fz_next(&c->r);
    fz_arm(c);
    const size_t w = cm_qp_work_size(k);
    const int valid = k > 0 && k <= 65536;
    if (valid ? w < 2 * k * k + 8 * k : w != 0) fz_fail(c, "cm_qp_work_size(%zu) = %zu", k, w);
    return CM_OK;
}

/* A k x k matrix: mostly a Gramian of k random rows (positive semi-definite, singular when
 * there are fewer columns than rows), sometimes raw values with specials (fz_fill). */
static double *fz_gram(fz_ctx *c, size_t k, const char *name)
{
    fz_rng *r = &c->r;
    double *q = fz_alloc(c, k * k * sizeof(double), 8, 0, name);
    if (fz_chance(r, 0.2)) {
        fz_fill(c, q, k * k, 1, FZ_ANY);
        return q;
    }
    const size_t n = 1 + (size_t)fz_below(r, 2 * k + 2);
    const double scale = pow(10.0, fz_unif(r) * 8.0 - 4.0);
    double *jac = malloc(k * n * sizeof(double) + 1);
    if (!jac) exit(2);
    for (size_t i = 0; i < k * n; i++) jac[i] = fz_clean(r, scale);
    if (k > 1 && fz_chance(r, 0.2)) memcpy(jac + n, jac, n * sizeof(double)); /* a repeated row */
    for (size_t i = 0; i < k; i++)
        for (size_t j = 0; j < k; j++) {
            double sum = 0.0;
            for (size_t p = 0; p < n; p++) sum += jac[i * n + p] * jac[j * n + p];
            q[i * k + j] = sum;
        }
    free(jac);
    if (k && fz_chance(r, c->wild_rate * 0.3)) q[fz_below(r, k * k)] = fz_special(r, 1);
    return q;
}

/* A solver's point: x >= 0, and on the simplex sum x = 1 to rounding. */
static void fz_check_feasible(fz_ctx *c, const double *x, size_t k, int simplex)
{
    double total = 0.0;
    for (size_t i = 0; i < k; i++) {
        if (!(x[i] >= 0.0)) fz_fail(c, "x[%zu] = %g is not >= 0", i, x[i]);
        total += x[i];
    }
    if (simplex && !(fabs(total - 1.0) <= 1e-12)) fz_fail(c, "sum x = %.17g", total);
}

static size_t fz_qp_k(fz_ctx *c)
{
    fz_rng *r = &c->r;
    return fz_chance(r, 0.05) ? 0 : fz_chance(r, 0.02) ? 65537 : 1 + (size_t)fz_below(r, 40);
}

static int t_qp_active_set(fz_ctx *c)
{
    fz_rng *r = &c->r;
    cm_qp_config *cfg = fz_alloc(c, sizeof *cfg, 0, 0, "cfg");
    cm_qp_config_default(cfg);
    if (fz_chance(r, 0.5)) cfg->simplex = 0;
    if (fz_chance(r, 0.3)) cfg->max_iter = (int64_t)fz_below(r, 20);
    cfg->tol = fz_d(c, cfg->tol);
    cfg->simplex = fz_i(c, cfg->simplex);
    if (c->bad_rate > 0.0 && fz_chance(r, c->bad_rate)) cfg->max_iter = fz_chance(r, 0.5) ? -1 : INT64_MIN;
    const size_t k = fz_qp_k(c), kk = k > 65536 ? 1 : k;
    double *q = fz_gram(c, kk, "q");
    double *cv = fz_chance(r, 0.3) ? NULL : fz_alloc(c, kk * sizeof(double), 8, 0, "c");
    if (cv) fz_fill(c, cv, kk, 1, FZ_ANY);
    double *x = fz_alloc(c, kk * sizeof(double), 8, 1, "x");
    fz_fill(c, x, kk, 1, FZ_NONNEG);
    const size_t ws = cm_qp_work_size(kk);
    double *work = fz_alloc(c, ws * sizeof(double), 8, 1, "work");
    cm_qp_result *res = fz_alloc(c, sizeof *res, 0, 1, "result");
    fz_expect(c, k == 0 || k > 65536, "k is 0 or above 65536");
    fz_expect(c, !fz_ok_nonneg(cfg->tol) || cfg->max_iter < 0 || (cfg->simplex != 0 && cfg->simplex != 1),
              "a hyperparameter is outside its documented range");
    fz_expect(c, !fz_finite_d(q, kk * kk) || (cv && !fz_finite_d(cv, kk)) || !fz_finite_d(x, kk),
              "q, c or x is not finite");
    const cm_qp_config *cp = fz_null(c, cfg, 1);
    q = fz_null(c, q, 1);
    x = fz_null(c, x, 1);
    work = fz_null(c, work, 1);
    res = fz_null(c, res, 1);
    fz_arm(c);
    const int st = cm_qp_active_set(cp, k, q, cv, x, work, res);
    if (st == CM_OK) {
        fz_check_feasible(c, x, k, cp->simplex);
        if (!(res->kkt >= 0.0) || res->iterations < 0) fz_fail(c, "result kkt %g, %lld iterations",
                                                               res->kkt, (long long)res->iterations);
    }
    return st;
}

static int t_min_norm_fw(fz_ctx *c)
{
    fz_rng *r = &c->r;
    cm_fw_config *cfg = fz_alloc(c, sizeof *cfg, 0, 0, "cfg");
    cm_fw_config_default(cfg);
    cfg->max_iter = (int64_t)fz_below(r, 500);
    cfg->tol = fz_d(c, cfg->tol);
    if (c->bad_rate > 0.0 && fz_chance(r, c->bad_rate)) cfg->max_iter = fz_chance(r, 0.5) ? -1 : INT64_MIN;
    const size_t k = fz_qp_k(c), kk = k > 65536 ? 1 : k;
    double *g = fz_gram(c, kk, "g");
    double *x = fz_alloc(c, kk * sizeof(double), 8, 1, "x");
    fz_fill(c, x, kk, 1, FZ_NONNEG);
    double *work = fz_alloc(c, kk * sizeof(double), 8, 1, "work");
    cm_fw_result *res = fz_alloc(c, sizeof *res, 0, 1, "result");
    fz_expect(c, k == 0 || k > 65536, "k is 0 or above 65536");
    fz_expect(c, !fz_ok_nonneg(cfg->tol) || cfg->max_iter < 0,
              "a hyperparameter is outside its documented range");
    fz_expect(c, !fz_finite_d(g, kk * kk) || !fz_finite_d(x, kk), "g or x is not finite");
    const cm_fw_config *cp = fz_null(c, cfg, 1);
    g = fz_null(c, g, 1);
    x = fz_null(c, x, 1);
    work = fz_null(c, work, 1);
    res = fz_null(c, res, 1);
    fz_arm(c);
    const int st = cm_min_norm_fw(cp, k, g, x, work, res);
    if (st == CM_OK) {
        fz_check_feasible(c, x, k, 1);
        if (!(res->gap >= 0.0)) fz_fail(c, "gap %g", res->gap);
    }
    return st;
}

static int t_positive_definite(fz_ctx *c)
{
    const size_t k = fz_qp_k(c), kk = k > 65536 ? 1 : k;
    double *a = fz_gram(c, kk, "a");
    double *work = fz_alloc(c, kk * kk * sizeof(double), 8, 1, "work");
    int *pd = fz_alloc(c, sizeof *pd, 0, 1, "definite");
    int lower_finite = 1;
    for (size_t i = 0; i < kk; i++)
        for (size_t j = 0; j <= i; j++) lower_finite &= isfinite(a[i * kk + j]) != 0;
    fz_expect(c, k == 0 || k > 65536, "k is 0 or above 65536");
    fz_expect(c, !lower_finite, "a's lower part is not finite");
    a = fz_null(c, a, 1);
    work = fz_null(c, work, 1);
    pd = fz_null(c, pd, 1);
    fz_arm(c);
    const int st = cm_positive_definite(k, a, work, pd);
    if (st == CM_OK && *pd != 0 && *pd != 1) fz_fail(c, "definite = %d", *pd);
    return st;
}

/* ---------------------------------------------------------------- the registry */
#define FZ_T(name, w) {#name, t_##name, w, 0, 0, 0}
#define FZ_T2(name, w) {#name "_f32", t_##name##_f32, w, 0, 0, 0}, {#name "_f64", t_##name##_f64, w, 0, 0, 0}
static fz_target fz_targets[] = {
    FZ_T(strerror, 1),
    FZ_T(version, 1),
    FZ_T(build_info, 1),
    FZ_T(source_hash, 1),
    FZ_T(blas_info, 1),
    FZ_T(simd_level, 1),
    FZ_T(openmp_max_threads, 1),
    FZ_T(blas_get_num_threads, 1),
    FZ_T(blas_set_num_threads, 1),
    FZ_T(exec_config_default, 1),
    FZ_T(sgd_config_default, 1),
    FZ_T(adam_config_default, 1),
    FZ_T(yogi_config_default, 1),
    FZ_T(adan_config_default, 1),
    FZ_T(lion_config_default, 1),
    FZ_T(madam_config_default, 1),
    FZ_T(hutchinson_config_default, 1),
    FZ_T(pu_config_default, 1),
    FZ_T(qp_config_default, 1),
    FZ_T(fw_config_default, 1),
    FZ_T(qp_work_size, 1),
    FZ_T(qp_active_set, 4),
    FZ_T(min_norm_fw, 4),
    FZ_T(positive_definite, 2),
    FZ_T(pamoo_config_default, 1),
    FZ_T(mada_config_default, 1),
    FZ_T(mada_hyper_config_default, 1),
    FZ_T(pareto_config_default, 1),
    FZ_T(pu_work_size, 1),
    FZ_T(gram_scan_workspace, 1),
    FZ_T(madam_n_pairs, 1),
    FZ_T(madam_pair_index, 1),
    FZ_T2(sgd_step, 4),
    FZ_T2(adam_step, 4),
    FZ_T2(yogi_step, 4),
    FZ_T2(adan_step, 4),
    FZ_T2(lion_step, 4),
    FZ_T2(all_finite, 4),
    FZ_T2(triad, 4),
    FZ_T2(gramian, 4),
    FZ_T2(gram_scan, 4),
    FZ_T2(combine, 4),
    FZ_T2(rademacher, 4),
    FZ_T2(hutchinson_accumulate, 4),
    FZ_T2(hutchinson_update, 4),
    FZ_T2(pu_solve, 4),
    FZ_T2(pu_exp, 2),
    FZ_T2(pamoo_weights, 4),
    FZ_T2(mada_step, 4),
    FZ_T2(mada_hypergrad, 4),
    FZ_T2(mada_hypergrad_stored, 4),
    FZ_T2(mada_step_fused, 4),
    FZ_T2(madam_step, 4),
    FZ_T(madam_plan_full, 4),
    FZ_T(mada_hyper_step, 4),
    FZ_T(hypervolume, 4),
    FZ_T(hv_contributions, 4),
    FZ_T(nondominated, 4),
    FZ_T(pareto_rank, 4),
    FZ_T(igd, 4),
    FZ_T(igd_plus, 4),
    FZ_T(spacing, 4),
    FZ_T(spread, 4),
};
#define FZ_NTARGETS (sizeof fz_targets / sizeof fz_targets[0])

static double fz_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* One call of the sequence: everything it draws comes from (seed, index). */
static void fz_one(uint64_t seed, uint64_t index, unsigned long long *errors,
                   unsigned long long *oks)
{
    static int total_weight = 0;
    if (!total_weight)
        for (size_t i = 0; i < FZ_NTARGETS; i++) total_weight += fz_targets[i].weight;
    fz_ctx c;
    memset(&c, 0, sizeof c);
    c.seed = seed;
    c.index = index;
    c.r.s = fz_mix(seed ^ fz_mix(index + 0x1234567ull));
    int pick = (int)fz_below(&c.r, (uint64_t)total_weight);
    size_t t = 0;
    while (pick >= fz_targets[t].weight) pick -= fz_targets[t++].weight;
    fz_target *tg = &fz_targets[t];
    c.fn = tg->name;
    c.bad_rate = fz_chance(&c.r, 0.5) ? 0.0 : (fz_chance(&c.r, 0.5) ? 0.05 : 0.3);
    c.wild_rate = fz_chance(&c.r, 0.6) ? 0.0 : 0.5;
    c.null_rate = fz_chance(&c.r, 0.8) ? 0.0 : 0.1;
    fz_current = &c;
    const int st = tg->fn(&c);
    fz_current = NULL;
    if (st == -100) { /* the target declined these draws */
        fz_release(&c);
        return;
    }
    fz_verify(&c, st);
    fz_release(&c);
    if (fz_verbose)
        printf("call %" PRIu64 ": %s -> %d (%s)\n", index, tg->name, st, cm_strerror(st));
    tg->calls++;
    if (st == CM_OK) {
        tg->oks++;
        (*oks)++;
    } else {
        tg->errors++;
        (*errors)++;
    }
}

static void fz_usage(void)
{
    fprintf(stderr, "usage: fuzz_api [-s SEED] [-t SECONDS] [-n CALLS] [-c INDEX] [-k] [-v]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    uint64_t seed = 1, only = 0;
    double seconds = -1.0;
    unsigned long long max_calls = 0;
    int replay = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-k")) fz_keep_going = 1;
        else if (!strcmp(a, "-v")) fz_verbose = 1;
        else if (i + 1 < argc && !strcmp(a, "-s")) seed = strtoull(argv[++i], NULL, 0);
        else if (i + 1 < argc && !strcmp(a, "-t")) seconds = strtod(argv[++i], NULL);
        else if (i + 1 < argc && !strcmp(a, "-n")) max_calls = strtoull(argv[++i], NULL, 0);
        else if (i + 1 < argc && !strcmp(a, "-c")) {
            only = strtoull(argv[++i], NULL, 0);
            replay = 1;
        } else fz_usage();
    }
    if (seconds < 0.0) seconds = max_calls ? 0.0 : 30.0;
#if defined(__SANITIZE_ADDRESS__)
    __sanitizer_set_death_callback(fz_on_death);
#else
    (void)fz_on_death;
#endif

    unsigned long long calls = 0, errors = 0, oks = 0;
    const double t0 = fz_now();
    if (replay) {
        fz_verbose = 1;
        fz_one(seed, only, &errors, &oks);
        calls = 1;
    } else {
        for (uint64_t i = 0;; i++) {
            if (max_calls && i >= max_calls) break;
            if (seconds > 0.0 && (i & 7) == 0 && fz_now() - t0 >= seconds) break;
            fz_one(seed, i, &errors, &oks);
            calls = i + 1;
        }
    }
    const double secs = fz_now() - t0;
    for (size_t i = 0; i < FZ_NTARGETS; i++)
        printf("  %-34s %10llu calls %10llu errors %10llu ok\n", fz_targets[i].name,
               fz_targets[i].calls, fz_targets[i].errors, fz_targets[i].oks);
    if (fz_total_violations)
        printf("fuzz_api: %llu CONTRACT VIOLATIONS\n", fz_total_violations);
    printf("fuzz_api: %llu calls, %llu error statuses, %llu successes, seed %" PRIu64 ", %.1f s\n",
           errors + oks, errors, oks, seed, secs);
    (void)calls;
    return fz_total_violations ? 1 : 0;
}

#else /* FUZZ_TYPED_PASS: the targets for one element type (REAL, IS64, TSUF) */

#define TS(name) FZ_CAT(name, TSUF)
#define API(name) FZ_CAT(name, TSUF)

/* n elements of REAL, tracked and filled. */
static REAL *TS(fz_arr)(fz_ctx *c, size_t n, int output, const char *name, int profile)
{
    REAL *p = fz_alloc(c, n * sizeof(REAL), sizeof(REAL), output, name);
    fz_fill(c, p, n, IS64, profile);
    return p;
}
#define ARR(n, out, name) TS(fz_arr)(c, (n), (out), (name), FZ_ANY)
#define ARRP(n, out, name) TS(fz_arr)(c, (n), (out), (name), FZ_NONNEG)

static int TS(t_sgd_step)(fz_ctx *c)
{
    fz_rng *r = &c->r;
    cm_sgd_config *cfg = fz_alloc(c, sizeof *cfg, 0, 0, "cfg");
    cm_sgd_config_default(cfg);
    if (fz_chance(r, 0.6)) cfg->momentum = fz_unif(r);
    if (fz_chance(r, 0.3)) cfg->dampening = fz_unif(r);
    if (fz_chance(r, 0.3)) cfg->nesterov = 1;
    if (fz_chance(r, 0.3)) cfg->weight_decay = 0.1 * fz_unif(r);
    cfg->lr = fz_d(c, cfg->lr);
    cfg->momentum = fz_d(c, cfg->momentum);
    cfg->dampening = fz_d(c, cfg->dampening);
    cfg->weight_decay = fz_d(c, cfg->weight_decay);
    cfg->nesterov = fz_i(c, cfg->nesterov);
    const cm_exec_config *ex = fz_exec(c);
    const int64_t step = fz_step(c, 1);
    const size_t n = fz_n(c);
    REAL *p = ARR(n, 1, "param"), *g = ARR(n, 0, "grad"), *b = ARR(n, 1, "momentum_buf");
    const cm_sgd_config *cp = fz_null(c, cfg, 1);
    p = fz_null(c, p, 1);
    g = fz_null(c, g, 1);
    b = fz_null(c, b, 0); /* may be NULL when momentum == 0 */
    fz_arm(c);
    fz_expect(c, !fz_ok_nonneg(cfg->lr) || !fz_ok_nonneg(cfg->momentum) ||
                     !fz_ok_nonneg(cfg->weight_decay) || !fz_ok_closed(cfg->dampening), "a hyperparameter is outside its documented range");
    fz_expect(c, cfg->nesterov && !(cfg->momentum > 0.0 && cfg->dampening == 0.0),
              "nesterov without momentum > 0 and dampening 0");
    fz_expect(c, cfg->momentum != 0.0 && !b, "momentum_buf is NULL with momentum != 0");
    fz_expect(c, step < 1, "step < 1");
    return API(cm_sgd_step)(cp, ex, step, n, p, g, b);
}

static int TS(t_adam_step)(fz_ctx *c)
{
    fz_rng *r = &c->r;
    cm_adam_config *cfg = fz_alloc(c, sizeof *cfg, 0, 0, "cfg");
    cm_adam_config_default(cfg);
    if (fz_chance(r, 0.3)) cfg->beta1 = fz_unif(r);
    if (fz_chance(r, 0.3)) cfg->beta2 = fz_unif(r);
    if (fz_chance(r, 0.3)) cfg->weight_decay = 0.1 * fz_unif(r);
    cfg->decoupled_weight_decay = (int)fz_below(r, 2);
    cfg->variant = (int)fz_below(r, 3);
    cfg->lr = fz_d(c, cfg->lr);
    cfg->beta1 = fz_d(c, cfg->beta1);
    cfg->beta2 = fz_d(c, cfg->beta2);
    cfg->eps = fz_d(c, cfg->eps);
    cfg->weight_decay = fz_d(c, cfg->weight_decay);
    cfg->decoupled_weight_decay = fz_i(c, cfg->decoupled_weight_decay);
    cfg->variant = fz_i(c, cfg->variant);
    const cm_exec_config *ex = fz_exec(c);
    const int64_t step = fz_step(c, 1);
    const size_t n = fz_n(c);
    REAL *p = ARR(n, 1, "param"), *g = ARR(n, 0, "grad"), *m = ARR(n, 1, "exp_avg");
    REAL *v = ARRP(n, 1, "exp_avg_sq"), *aux = ARRP(n, 1, "exp_avg_sq_aux");
    const cm_adam_config *cp = fz_null(c, cfg, 1);
    p = fz_null(c, p, 1);
    g = fz_null(c, g, 1);
    m = fz_null(c, m, 1);
    v = fz_null(c, v, 1);
    aux = fz_null(c, aux, 0); /* may be NULL for CM_ADAM */
    fz_arm(c);
    fz_expect(c, !fz_ok_nonneg(cfg->lr) || !fz_ok_nonneg(cfg->eps) ||
                     !fz_ok_nonneg(cfg->weight_decay) || !fz_ok_unit(cfg->beta1) ||
                     !fz_ok_unit(cfg->beta2) || cfg->variant < CM_ADAM || cfg->variant > CM_AVGRAD,
              "a hyperparameter is outside its documented range");
    fz_expect(c, cfg->variant != CM_ADAM && !aux, "exp_avg_sq_aux is NULL for AMSGrad / AVGrad");
    fz_expect(c, step < 1, "step < 1");
    return API(cm_adam_step)(cp, ex, step, n, p, g, m, v, aux);
}

static int TS(t_yogi_step)(fz_ctx *c)
{
    fz_rng *r = &c->r;
    cm_yogi_config *cfg = fz_alloc(c, sizeof *cfg, 0, 0, "cfg");
    cm_yogi_config_default(cfg);
    if (fz_chance(r, 0.3)) cfg->beta1 = fz_unif(r);
    if (fz_chance(r, 0.3)) cfg->beta2 = fz_unif(r);
    if (fz_chance(r, 0.3)) cfg->weight_decay = 0.1 * fz_unif(r);
    cfg->lr = fz_d(c, cfg->lr);
    cfg->beta1 = fz_d(c, cfg->beta1);
    cfg->beta2 = fz_d(c, cfg->beta2);
    cfg->eps = fz_d(c, cfg->eps);
    cfg->weight_decay = fz_d(c, cfg->weight_decay);
    const cm_exec_config *ex = fz_exec(c);
    const int64_t step = fz_step(c, 1);
    const size_t n = fz_n(c);
    REAL *p = ARR(n, 1, "param"), *g = ARR(n, 0, "grad"), *m = ARR(n, 1, "exp_avg");
    REAL *v = ARRP(n, 1, "exp_avg_sq");
    const cm_yogi_config *cp = fz_null(c, cfg, 1);
    p = fz_null(c, p, 1);
    g = fz_null(c, g, 1);
    m = fz_null(c, m, 1);
    v = fz_null(c, v, 1);
    fz_arm(c);
    fz_expect(c, !fz_ok_nonneg(cfg->lr) || !fz_ok_nonneg(cfg->eps) ||
                     !fz_ok_nonneg(cfg->weight_decay) || !fz_ok_unit(cfg->beta1) ||
                     !fz_ok_unit(cfg->beta2), "a hyperparameter is outside its documented range");
    fz_expect(c, step < 1, "step < 1");
    return API(cm_yogi_step)(cp, ex, step, n, p, g, m, v);
}

static int TS(t_adan_step)(fz_ctx *c)
{
    fz_rng *r = &c->r;
    cm_adan_config *cfg = fz_alloc(c, sizeof *cfg, 0, 0, "cfg");
    cm_adan_config_default(cfg);
    if (fz_chance(r, 0.3)) cfg->beta1 = fz_unif(r);
    if (fz_chance(r, 0.3)) cfg->beta2 = fz_unif(r);
    if (fz_chance(r, 0.3)) cfg->beta3 = fz_unif(r);
    if (fz_chance(r, 0.3)) cfg->weight_decay = 0.1 * fz_unif(r);
    cfg->proximal = (int)fz_below(r, 2);
    cfg->lr = fz_d(c, cfg->lr);
    cfg->beta1 = fz_d(c, cfg->beta1);
    cfg->beta2 = fz_d(c, cfg->beta2);
    cfg->beta3 = fz_d(c, cfg->beta3);
    cfg->eps = fz_d(c, cfg->eps);
    cfg->weight_decay = fz_d(c, cfg->weight_decay);
    cfg->proximal = fz_i(c, cfg->proximal);
    const cm_exec_config *ex = fz_exec(c);
    const int64_t step = fz_step(c, 1);
    const size_t n = fz_n(c);
    REAL *p = ARR(n, 1, "param"), *g = ARR(n, 0, "grad"), *m = ARR(n, 1, "exp_avg");
    REAL *md = ARR(n, 1, "exp_avg_diff"), *v = ARRP(n, 1, "exp_avg_sq");
    REAL *pg = ARR(n, 1, "prev_grad");
    const cm_adan_config *cp = fz_null(c, cfg, 1);
    p = fz_null(c, p, 1);
    g = fz_null(c, g, 1);
    m = fz_null(c, m, 1);
    md = fz_null(c, md, 1);
    v = fz_null(c, v, 1);
    pg = fz_null(c, pg, 1);
    fz_arm(c);
    fz_expect(c, !fz_ok_nonneg(cfg->lr) || !fz_ok_nonneg(cfg->eps) ||
                     !fz_ok_nonneg(cfg->weight_decay) || !fz_ok_unit(cfg->beta1) ||
                     !fz_ok_unit(cfg->beta2) || !fz_ok_unit(cfg->beta3), "a hyperparameter is outside its documented range");
    fz_expect(c, step < 1, "step < 1");
    return API(cm_adan_step)(cp, ex, step, n, p, g, m, md, v, pg);
}

static int TS(t_lion_step)(fz_ctx *c)
{
    fz_rng *r = &c->r;
    cm_lion_config *cfg = fz_alloc(c, sizeof *cfg, 0, 0, "cfg");
    cm_lion_config_default(cfg);
    if (fz_chance(r, 0.3)) cfg->beta1 = fz_unif(r);
    if (fz_chance(r, 0.3)) cfg->beta2 = fz_unif(r);
    if (fz_chance(r, 0.3)) cfg->weight_decay = 0.1 * fz_unif(r);
    cfg->lr = fz_d(c, cfg->lr);
    cfg->beta1 = fz_d(c, cfg->beta1);
    cfg->beta2 = fz_d(c, cfg->beta2);
    cfg->weight_decay = fz_d(c, cfg->weight_decay);
    const cm_exec_config *ex = fz_exec(c);
    const size_t n = fz_n(c);
    REAL *p = ARR(n, 1, "param"), *g = ARR(n, 0, "grad"), *m = ARR(n, 1, "exp_avg");
    const cm_lion_config *cp = fz_null(c, cfg, 1);
    p = fz_null(c, p, 1);
    g = fz_null(c, g, 1);
    m = fz_null(c, m, 1);
    fz_arm(c);
    fz_expect(c, !fz_ok_nonneg(cfg->lr) || !fz_ok_nonneg(cfg->weight_decay) ||
                     !fz_ok_unit(cfg->beta1) || !fz_ok_unit(cfg->beta2), "a hyperparameter is outside its documented range");
    return API(cm_lion_step)(cp, ex, n, p, g, m);
}

static int TS(t_all_finite)(fz_ctx *c)
{
    const cm_exec_config *ex = fz_exec(c);
    const size_t n = fz_n(c);
    REAL *x = ARR(n, 0, "x");
    int *out = fz_alloc(c, sizeof(int), 4, 1, "all_finite");
    *out = 12345;
    int want = 1;
    for (size_t i = 0; i < n; i++) want &= isfinite(x[i]) != 0;
    x = fz_null(c, x, n > 0); /* NULL is accepted when n == 0 */
    out = fz_null(c, out, 1);
    fz_arm(c);
    const int st = API(cm_all_finite)(ex, n, x, out);
    if (st == CM_OK && *out != want) fz_fail(c, "all_finite = %d, not %d", *out, want);
    return st;
}

static int TS(t_triad)(fz_ctx *c)
{
    const cm_exec_config *ex = fz_exec(c);
    const size_t n = fz_n(c);
    REAL *a = ARR(n, 1, "a"), *b = ARR(n, 0, "b"), *cc = ARR(n, 0, "c");
    const double s = fz_chance(&c->r, 0.2) ? fz_special(&c->r, IS64) : fz_clean(&c->r, 3.0);
    a = fz_null(c, a, n > 0); /* NULL arrays are accepted when n == 0 */
    b = fz_null(c, b, n > 0);
    cc = fz_null(c, cc, n > 0);
    fz_arm(c);
    return API(cm_triad)(ex, n, a, b, cc, s);
}

static int TS(t_gramian)(fz_ctx *c)
{
    fz_rng *r = &c->r;
    const size_t rows = fz_chance(r, 0.05) ? 0 : (size_t)fz_below(r, 24);
    const size_t cols = fz_chance(r, 0.05) ? 0 : (size_t)fz_below(r, 300);
    REAL *j = ARR(rows * cols, 0, "jac");
    REAL *g = ARR(rows * rows, 1, "gram");
    j = fz_null(c, j, 1);
    g = fz_null(c, g, 1);
    fz_arm(c);
    fz_expect(c, rows == 0 || cols == 0, "rows or cols == 0");
    const int st = API(cm_gramian)(rows, cols, j, g);
    if (st == CM_OK)
        for (size_t a = 0; a < rows; a++)
            for (size_t b = 0; b < a; b++)
                if (memcmp(&g[a * rows + b], &g[b * rows + a], sizeof(REAL)) != 0)
                    fz_fail(c, "gram not symmetric at (%zu, %zu)", a, b);
    return st;
}

static int TS(t_gram_scan)(fz_ctx *c)
{
    fz_rng *r = &c->r;
    const cm_exec_config *ex = fz_exec(c);
    const size_t rows = fz_chance(r, 0.05) ? 0 : (size_t)fz_below(r, 20);
    const size_t cols = fz_chance(r, 0.05) ? 0 : (size_t)fz_below(r, 3000);
    const size_t need = cm_gram_scan_workspace(rows, cols);
    const size_t ws = fz_chance(r, 0.1) && need > 0 ? need - 1 : need + (size_t)fz_below(r, 3);
    REAL *j = ARR(rows * cols, 0, "jac");
    double *g = fz_alloc(c, rows * rows * sizeof(double), 8, 1, "gram");
    double *w = fz_alloc(c, ws * sizeof(double), 8, 1, "work");
    int *fin = fz_alloc(c, sizeof(int), 4, 1, "all_finite");
    double *top = fz_alloc(c, sizeof(double), 8, 1, "max_abs");
    int want = 1;
    for (size_t i = 0; i < rows * cols; i++) want &= isfinite(j[i]) != 0;
    j = fz_null(c, j, 1);
    g = fz_null(c, g, 1);
    w = fz_null(c, w, 1);
    fin = fz_null(c, fin, 1);
    top = fz_null(c, top, 1);
    fz_arm(c);
    fz_expect(c, rows == 0 || cols == 0, "rows or cols == 0");
    fz_expect(c, ws < need, "work_size below cm_gram_scan_workspace");
    const int st = API(cm_gram_scan)(ex, rows, cols, j, g, w, ws, fin, top);
    if (st == CM_OK) {
        if (*fin != want) fz_fail(c, "all_finite = %d, not %d", *fin, want);
        for (size_t a = 0; a < rows; a++)
            for (size_t b = 0; b < a; b++)
                if (memcmp(&g[a * rows + b], &g[b * rows + a], sizeof(double)) != 0)
                    fz_fail(c, "gram not symmetric at (%zu, %zu)", a, b);
    }
    return st;
}

static int TS(t_combine)(fz_ctx *c)
{
    fz_rng *r = &c->r;
    const cm_exec_config *ex = fz_exec(c);
    const size_t rows = fz_chance(r, 0.05) ? 0 : (size_t)fz_below(r, 20);
    const size_t cols = fz_chance(r, 0.05) ? 0 : (size_t)fz_below(r, 5000);
    double *lam = fz_alloc(c, rows * sizeof(double), 8, 0, "lam");
    fz_fill(c, lam, rows, 1, FZ_ANY);
    REAL *j = ARR(rows * cols, 0, "jac"), *d = ARR(cols, 1, "out");
    lam = fz_null(c, lam, 1);
    j = fz_null(c, j, 1);
    d = fz_null(c, d, 1);
    fz_arm(c);
    fz_expect(c, rows == 0 || cols == 0, "rows or cols == 0");
    return API(cm_combine)(ex, rows, cols, lam, j, d);
}

static int TS(t_rademacher)(fz_ctx *c)
{
    fz_rng *r = &c->r;
    const cm_exec_config *ex = fz_exec(c);
    const size_t n = fz_n(c);
    const uint64_t seed = fz_next(r), step = fz_chance(r, 0.5) ? fz_below(r, 10) : fz_next(r);
    const uint64_t probe = fz_chance(r, 0.5) ? fz_below(r, 4) : UINT64_MAX;
    REAL *z = ARR(n, 1, "z");
    z = fz_null(c, z, 1);
    fz_arm(c);
    const int st = API(cm_rademacher)(ex, seed, step, probe, n, z);
    if (st == CM_OK)
        for (size_t i = 0; i < n; i++)
            if (z[i] != (REAL)1 && z[i] != (REAL)-1) {
                fz_fail(c, "z[%zu] = %g", i, (double)z[i]);
                break;
            }
    return st;
}

static int TS(t_hutchinson_accumulate)(fz_ctx *c)
{
    fz_rng *r = &c->r;
    const cm_exec_config *ex = fz_exec(c);
    const size_t rows = (size_t)fz_below(r, 6), n = fz_n(c) / (rows ? rows : 1);
    REAL *z = ARR(n, 0, "z"), *hz = ARR(rows * n, 0, "hz"), *acc = ARR(rows * n, 1, "acc");
    z = fz_null(c, z, 1);
    hz = fz_null(c, hz, 1);
    acc = fz_null(c, acc, 1);
    fz_arm(c);
    return API(cm_hutchinson_accumulate)(ex, rows, n, z, hz, acc);
}

static int TS(t_hutchinson_update)(fz_ctx *c)
{
    fz_rng *r = &c->r;
    cm_hutchinson_config *cfg = fz_alloc(c, sizeof *cfg, 0, 0, "cfg");
    cm_hutchinson_config_default(cfg);
    if (fz_chance(r, 0.3)) cfg->beta = fz_chance(r, 0.5) ? 0.0 : fz_unif(r);
    cfg->transform = (int)fz_below(r, 3);
    if (fz_chance(r, 0.3)) cfg->clip_min = fz_clean(r, 1.0);
    cfg->beta = fz_d(c, cfg->beta);
    cfg->transform = fz_i(c, cfg->transform);
    cfg->clip_min = fz_d(c, cfg->clip_min);
    const cm_exec_config *ex = fz_exec(c);
    const int64_t step = fz_step(c, 1);
    int64_t ns = 1 + (int64_t)fz_below(r, 16);
    if (c->bad_rate > 0.0 && fz_chance(r, c->bad_rate)) {
        static const int64_t bad[] = {0, -1, INT64_MIN, INT64_MAX};
        ns = bad[fz_below(r, 4)];
    }
    const size_t n = fz_n(c);
    REAL *acc = ARR(n, 0, "acc"), *ema = ARR(n, 1, "ema"), *out = ARR(n, 1, "out");
    if (fz_chance(r, 0.3)) { /* out may alias acc */
        out = acc;
        fz_make_output(c, acc);
    }
    const cm_hutchinson_config *cp = fz_null(c, cfg, 1);
    acc = fz_null(c, acc, 1);
    ema = fz_null(c, ema, 0); /* may be NULL when beta == 0 */
    out = fz_null(c, out, 1);
    fz_arm(c);
    fz_expect(c, !fz_ok_unit(cfg->beta) || cfg->transform < CM_HUTCH_SIGNED ||
                     cfg->transform > CM_HUTCH_CLIP || !isfinite(cfg->clip_min), "a hyperparameter is outside its documented range");
    fz_expect(c, ns < 1, "n_samples < 1");
    fz_expect(c, cfg->beta != 0.0 && !ema, "ema is NULL with beta != 0");
    fz_expect(c, step < 1, "step < 1");
    return API(cm_hutchinson_update)(cp, ex, step, ns, n, acc, ema, out);
}

static int TS(t_pu_solve)(fz_ctx *c)
{
    fz_rng *r = &c->r;
    cm_pu_config *cfg = fz_alloc(c, sizeof *cfg, 0, 0, "cfg");
    cm_pu_config_default(cfg);
    const size_t m = fz_chance(r, 0.05) ? 0 : 1 + (size_t)fz_below(r, 8);
    const size_t d = fz_chance(r, 0.05) ? 0 : fz_chance(r, 0.1) ? 1 + (size_t)fz_below(r, 4000) : 1 + (size_t)fz_below(r, 300);
    if (fz_chance(r, 0.3)) cfg->tau = fz_chance(r, 0.3) ? 0.0 : fz_unif(r);
    if (fz_chance(r, 0.3)) cfg->eta = fz_chance(r, 0.5) ? -1.0 : 0.1 * fz_unif(r);
    cfg->iters = (int64_t)fz_below(r, m * d > 2000 ? 8 : 60);
    if (fz_chance(r, 0.3) && m) cfg->w_min = fz_unif(r) / (double)m;
    if (fz_chance(r, 0.3)) cfg->tol = fz_chance(r, 0.5) ? 1e-3 : fz_unif(r);
    cfg->warm_start = (int)fz_below(r, 2);
    cfg->matvec = (int)fz_below(r, 2);
    cfg->tau = fz_d(c, cfg->tau);
    cfg->eta = fz_d(c, cfg->eta);
    cfg->w_min = fz_d(c, cfg->w_min);
    cfg->tol = fz_d(c, cfg->tol);
    cfg->warm_start = fz_i(c, cfg->warm_start);
    cfg->matvec = fz_i(c, cfg->matvec);
    if (c->bad_rate > 0.0 && fz_chance(r, c->bad_rate)) cfg->iters = fz_chance(r, 0.5) ? -1 : INT64_MIN;
    const cm_exec_config *ex = fz_exec(c);
    REAL *a = ARR(m * d, 0, "a"), *w = ARRP(m, 1, "w"), *q = ARRP(d, 1, "q");
    REAL *work = ARR(cm_pu_work_size(m, d), 1, "work");
    cm_pu_result *res = fz_alloc(c, sizeof *res, 8, 1, "result");
    if (m && fz_chance(r, 0.1)) w[fz_below(r, m)] = fz_chance(r, 0.5) ? (REAL)-1 : (REAL)NAN;
    if (fz_chance(r, 0.05)) memset(w, 0, m * sizeof(REAL));
    if (d && fz_chance(r, 0.1)) q[fz_below(r, d)] = fz_chance(r, 0.5) ? (REAL)-1 : (REAL)INFINITY;
    fz_expect(c, !fz_ok_nonneg(cfg->tau) || cfg->iters < 0 || !(cfg->w_min >= 0.0) ||
                     !(cfg->tol >= 0.0) || (cfg->warm_start != 0 && cfg->warm_start != 1) ||
                     (cfg->matvec != CM_PU_FUSED && cfg->matvec != CM_PU_BLAS),
              "a hyperparameter is outside its documented range");
    fz_expect(c, m == 0 || d == 0, "m or d == 0");
    fz_expect(c, cfg->w_min * (double)m > 1.0, "m * w_min > 1");
    {
        const REAL *aa = a;
        const REAL *ww = w;
        const REAL *qq = q;
        if (cfg->eta <= 0.0) {
            int finite = 1, nonzero = 0;
            for (size_t i = 0; i < m * d; i++) {
                finite &= isfinite(aa[i]) != 0;
                nonzero |= aa[i] != 0;
            }
            fz_expect(c, !finite, "eta <= 0 and A holds a non-finite value");
            fz_expect(c, cfg->tau == 0.0 && !nonzero, "eta <= 0 and tau = max|A| = 0");
        }
        if (cfg->warm_start == 1) {
            double sw = 0.0, sq = 0.0;
            int okw = 1, okq = 1;
            for (size_t i = 0; i < m; i++) {
                okw &= ww[i] >= 0 && isfinite(ww[i]);
                sw += (double)ww[i];
            }
            for (size_t i = 0; i < d; i++) {
                okq &= qq[i] >= 0 && isfinite(qq[i]);
                sq += (double)qq[i];
            }
            fz_expect(c, !okw || !(sw > 0.0) || !okq || !(sq > 0.0),
                      "the warm start is negative, non-finite or sums to 0");
        }
    }
    const cm_pu_config *cp = fz_null(c, cfg, 1);
    a = fz_null(c, a, 1);
    w = fz_null(c, w, 1);
    q = fz_null(c, q, 1);
    work = fz_null(c, work, 1);
    res = fz_null(c, res, 1);
    fz_arm(c);
    const int st = API(cm_pu_solve)(cp, ex, m, d, a, w, q, work, res);
    if (st == CM_OK && (res->iters_used < 0 || res->iters_used > cfg->iters))
        fz_fail(c, "iters_used %" PRId64 " of %" PRId64, res->iters_used, cfg->iters);
    return st;
}

static int TS(t_pu_exp)(fz_ctx *c)
{
    const cm_exec_config *ex = fz_exec(c);
    const size_t n = fz_n(c);
    REAL *x = ARR(n, 0, "x"), *y = ARR(n, 1, "y");
    x = fz_null(c, x, 1);
    y = fz_null(c, y, 1);
    fz_arm(c);
    const int st = API(cm_pu_exp)(ex, n, x, y);
    /* exp is never negative, and NaN only for NaN */
    for (size_t i = 0; st == CM_OK && i < n; i++)
        if (y[i] < 0 || (isnan(y[i]) && !isnan(x[i]))) {
            fz_fail(c, "exp(%g) = %g", (double)x[i], (double)y[i]);
            break;
        }
    return st;
}

static int TS(t_pamoo_weights)(fz_ctx *c)
{
    fz_rng *r = &c->r;
    cm_pamoo_config *cfg = fz_alloc(c, sizeof *cfg, 0, 0, "cfg");
    cm_pamoo_config_default(cfg);
    const size_t m = (size_t)fz_below(r, 9);
    cfg->iters = (int64_t)fz_below(r, 300);
    if (fz_chance(r, 0.3)) cfg->lr = fz_unif(r);
    if (fz_chance(r, 0.3)) cfg->w_min = fz_chance(r, 0.5) ? 0.0 : fz_unif(r);
    cfg->lr = fz_d(c, cfg->lr);
    cfg->w_min = fz_d(c, cfg->w_min);
    if (c->bad_rate > 0.0 && fz_chance(r, c->bad_rate)) cfg->iters = fz_chance(r, 0.5) ? -1 : INT64_MIN;
    REAL *a = ARR(m * m, 0, "a"), *f = ARR(m, 0, "f"), *w = ARRP(m, 1, "w"), *work = ARR(m, 1, "work");
    const cm_pamoo_config *cp = fz_null(c, cfg, 1);
    a = fz_null(c, a, 1);
    f = fz_null(c, f, 1);
    w = fz_null(c, w, 1);
    work = fz_null(c, work, 1);
    fz_arm(c);
    fz_expect(c, !(cfg->lr > 0.0) || !isfinite(cfg->lr) || cfg->iters < 0 ||
                     !fz_ok_nonneg(cfg->w_min), "a hyperparameter is outside its documented range");
    return API(cm_pamoo_weights)(cp, m, a, f, w, work);
}

/* A MADA config: random valid coefficients, then perturbed. */
static cm_mada_config *TS(fz_mada_cfg)(fz_ctx *c, const char *name)
{
    fz_rng *r = &c->r;
    cm_mada_config *cfg = fz_alloc(c, sizeof *cfg, 0, 0, name);
    cm_mada_config_default(cfg);
    if (fz_chance(r, 0.7)) {
        cfg->beta1 = 0.99 * fz_unif(r);
        cfg->beta2 = 0.5 + 0.49 * fz_unif(r);
        cfg->beta3 = fz_chance(r, 0.3) ? 0.0 : 0.99 * fz_unif(r);
        cfg->rho = fz_chance(r, 0.3) ? (double)fz_below(r, 2) : fz_unif(r);
        cfg->c = fz_chance(r, 0.3) ? (double)fz_below(r, 2) : fz_unif(r);
        cfg->gamma = fz_chance(r, 0.3) ? (double)fz_below(r, 2) : fz_unif(r);
        cfg->lion_beta1 = fz_unif(r);
        cfg->lion_beta2 = fz_unif(r);
        cfg->first_diff = (int)fz_below(r, 2);
        cfg->n_init = (int)fz_below(r, 2);
        cfg->detach_vbar = (int)fz_below(r, 2);
    }
    cfg->lr = fz_d(c, cfg->lr);
    cfg->beta1 = fz_d(c, cfg->beta1);
    cfg->beta2 = fz_d(c, cfg->beta2);
    cfg->beta3 = fz_d(c, cfg->beta3);
    cfg->rho = fz_d(c, cfg->rho);
    cfg->c = fz_d(c, cfg->c);
    cfg->gamma = fz_d(c, cfg->gamma);
    cfg->eps = fz_d(c, cfg->eps);
    cfg->lion_beta1 = fz_d(c, cfg->lion_beta1);
    cfg->lion_beta2 = fz_d(c, cfg->lion_beta2);
    cfg->first_diff = fz_i(c, cfg->first_diff);
    cfg->n_init = fz_i(c, cfg->n_init);
    cfg->detach_vbar = fz_i(c, cfg->detach_vbar);
    fz_expect(c, !fz_ok_nonneg(cfg->lr) || !fz_ok_nonneg(cfg->eps) || !fz_ok_unit(cfg->beta1) ||
                     !fz_ok_unit(cfg->beta2) || !fz_ok_unit(cfg->beta3) ||
                     !fz_ok_closed(cfg->rho) || !fz_ok_closed(cfg->c) ||
                     !fz_ok_closed(cfg->gamma) || !fz_ok_unit(cfg->lion_beta1) ||
                     !fz_ok_unit(cfg->lion_beta2) ||
                     (cfg->first_diff != CM_MADA_DIFF_ZERO && cfg->first_diff != CM_MADA_DIFF_GRAD) ||
                     (cfg->n_init != CM_MADA_N_ZERO && cfg->n_init != CM_MADA_N_GRAD_SQ),
              "a MADA coefficient is outside its documented range");
    return cfg;
}

static int TS(t_mada_step)(fz_ctx *c)
{
    fz_rng *r = &c->r;
    cm_mada_config *cfg = TS(fz_mada_cfg)(c, "cfg");
    const cm_exec_config *ex = fz_exec(c);
    const int64_t step = fz_step(c, 1);
    const size_t n = fz_n(c) / 2;
    static const int nds[] = {0, 0, 6, 7, 1, -1, 8, INT_MIN};
    int nd = nds[fz_below(r, c->bad_rate > 0.0 ? 8 : 4)];
    REAL *p = ARR(n, 1, "param"), *g = ARR(n, 0, "grad"), *m = ARR(n, 1, "exp_avg");
    REAL *vin = ARRP(n, 0, "exp_avg_sq_in"), *vout = vin;
    if (fz_chance(r, 0.5)) vout = ARRP(n, 1, "exp_avg_sq_out");
    else fz_make_output(c, vin); /* in place */
    REAL *vbar = ARRP(n, 1, "avg_exp_avg_sq"), *nn = ARR(n, 1, "exp_avg_diff");
    REAL *ml = ARR(n, 1, "lion_exp_avg"), *gin = ARR(n, 0, "prev_grad_in"), *gout = NULL;
    const int gmode = (int)fz_below(r, 3);
    if (gmode == 1) gout = ARR(n, 1, "prev_grad_out");
    else if (gmode == 2) {
        gout = gin;
        fz_make_output(c, gin);
    }
    REAL *der = NULL;
    if (nd == 6 || nd == 7) der = ARR((size_t)nd * n, 1, "derivs");
    else if (nd != 0 || fz_chance(r, 0.2)) der = ARR(7 * n, 1, "derivs");
    const cm_mada_config *cp = fz_null(c, cfg, 1);
    p = fz_null(c, p, 1);
    g = fz_null(c, g, 1);
    m = fz_null(c, m, 1);
    vin = fz_null(c, vin, 1);
    vout = fz_null(c, vout, 1);
    vbar = fz_null(c, vbar, 1);
    nn = fz_null(c, nn, 1);
    ml = fz_null(c, ml, 1);
    gin = fz_null(c, gin, 1);
    gout = fz_null(c, gout, 0); /* may be NULL (not written) */
    der = fz_null(c, der, nd == 6 || nd == 7); /* required only when n_derivs != 0 */
    fz_arm(c);
    fz_expect(c, nd != 0 && nd != 6 && nd != 7, "n_derivs is not 0, 6 or 7");
    fz_expect(c, step < 1, "step < 1");
    return API(cm_mada_step)(cp, ex, step, n, p, g, m, vin, vout, vbar, nn, ml, gin, gout, der, nd);
}

static int TS(t_mada_hypergrad)(fz_ctx *c)
{
    fz_rng *r = &c->r;
    cm_mada_config *cfg = TS(fz_mada_cfg)(c, "cfg");
    const cm_exec_config *ex = fz_exec(c);
    const int64_t step = fz_step(c, 1);
    const size_t n = fz_n(c) / 2;
    REAL *g = ARR(n, 0, "grad"), *m = ARR(n, 0, "exp_avg"), *v = ARRP(n, 0, "exp_avg_sq");
    REAL *vp = ARRP(n, 0, "exp_avg_sq_prev"), *vbar = ARRP(n, 0, "avg_exp_avg_sq");
    REAL *nn = ARR(n, 0, "exp_avg_diff"), *ml = ARR(n, 0, "lion_exp_avg");
    REAL *pg = ARR(n, 0, "prev_grad"), *pg2 = ARR(n, 0, "prev_grad2"), *gc = NULL;
    if (fz_chance(r, 0.5)) { /* grad_copy: NULL or prev_grad2 itself */
        gc = pg2;
        fz_make_output(c, pg2);
    }
    double *dot = fz_alloc(c, 7 * sizeof(double), 8, 1, "dot");
    const cm_mada_config *cp = fz_null(c, cfg, 1);
    g = fz_null(c, g, 1);
    m = fz_null(c, m, 1);
    v = fz_null(c, v, 1);
    vp = fz_null(c, vp, 1);
    vbar = fz_null(c, vbar, 1);
    nn = fz_null(c, nn, 1);
    ml = fz_null(c, ml, 1);
    pg = fz_null(c, pg, 1);
    if (!gc) pg2 = fz_null(c, pg2, 1);
    dot = fz_null(c, dot, 1);
    fz_arm(c);
    fz_expect(c, step < 1, "step < 1");
    return API(cm_mada_hypergrad)(cp, ex, step, n, g, m, v, vp, vbar, nn, ml, pg, pg2, gc, dot);
}

static int TS(t_mada_hypergrad_stored)(fz_ctx *c)
{
    fz_rng *r = &c->r;
    const cm_exec_config *ex = fz_exec(c);
    const size_t n = fz_n(c) / 2;
    static const int nds[] = {6, 7, 0, 5, 8, -1, INT_MAX};
    const int nd = nds[fz_below(r, c->bad_rate > 0.0 ? 7 : 2)];
    REAL *g = ARR(n, 0, "grad");
    REAL *der = ARR((nd == 6 || nd == 7 ? (size_t)nd : 7) * n, 0, "derivs");
    double *dot = fz_alloc(c, 7 * sizeof(double), 8, 1, "dot");
    g = fz_null(c, g, n > 0); /* the code accepts NULL arrays when n == 0 */
    der = fz_null(c, der, n > 0);
    dot = fz_null(c, dot, 1);
    fz_arm(c);
    fz_expect(c, nd != 6 && nd != 7, "n_derivs is not 6 or 7");
    return API(cm_mada_hypergrad_stored)(ex, n, g, der, nd, dot);
}

static int TS(t_mada_step_fused)(fz_ctx *c)
{
    cm_mada_config *cfg = TS(fz_mada_cfg)(c, "cfg");
    cm_mada_config *prev = TS(fz_mada_cfg)(c, "prev");
    const cm_exec_config *ex = fz_exec(c);
    const int64_t step = fz_step(c, 2);
    const size_t n = fz_n(c) / 2;
    REAL *p = ARR(n, 1, "param"), *g = ARR(n, 0, "grad"), *m = ARR(n, 1, "exp_avg");
    REAL *vin = ARRP(n, 0, "exp_avg_sq_in"), *vout = ARRP(n, 1, "exp_avg_sq_out");
    REAL *vbar = ARRP(n, 1, "avg_exp_avg_sq"), *nn = ARR(n, 1, "exp_avg_diff");
    REAL *ml = ARR(n, 1, "lion_exp_avg"), *gin = ARR(n, 0, "prev_grad_in");
    REAL *gout = ARR(n, 1, "prev_grad_out");
    double *dot = fz_alloc(c, 7 * sizeof(double), 8, 1, "dot");
    const cm_mada_config *cp = fz_null(c, cfg, 1), *pp = fz_null(c, prev, 1);
    p = fz_null(c, p, 1);
    g = fz_null(c, g, 1);
    m = fz_null(c, m, 1);
    vin = fz_null(c, vin, 1);
    vout = fz_null(c, vout, 1);
    vbar = fz_null(c, vbar, 1);
    nn = fz_null(c, nn, 1);
    ml = fz_null(c, ml, 1);
    gin = fz_null(c, gin, 1);
    gout = fz_null(c, gout, 1);
    dot = fz_null(c, dot, 1);
    fz_arm(c);
    fz_expect(c, step < 2, "step < 2");
    return API(cm_mada_step_fused)(cp, pp, ex, step, n, p, g, m, vin, vout, vbar, nn, ml, gin,
                                   gout, dot);
}

static int TS(t_madam_step)(fz_ctx *c)
{
    fz_rng *r = &c->r;
    cm_madam_config *cfg = fz_alloc(c, sizeof *cfg, 0, 0, "cfg");
    cm_madam_config_default(cfg);
    if (fz_chance(r, 0.3)) cfg->rampup = fz_unif(r);
    if (fz_chance(r, 0.3)) cfg->weight_decay = 0.1 * fz_unif(r);
    if (fz_chance(r, 0.3)) cfg->beta1 = fz_unif(r);
    cfg->lr = fz_d(c, cfg->lr);
    cfg->beta1 = fz_d(c, cfg->beta1);
    cfg->beta2 = fz_d(c, cfg->beta2);
    cfg->eps = fz_d(c, cfg->eps);
    cfg->weight_decay = fz_d(c, cfg->weight_decay);
    cfg->rampup = fz_d(c, cfg->rampup);
    const cm_exec_config *ex = fz_exec(c);
    const int64_t step = fz_step(c, 1);
    int k = 1 + (int)fz_below(r, 5);
    if (c->bad_rate > 0.0 && fz_chance(r, c->bad_rate * 0.3)) {
        static const int bad[] = {0, -1, 4097, INT_MIN};
        k = bad[fz_below(r, 4)];
    }
    const int valid = k >= 1 && k <= 5;
    int nr = valid ? (int)fz_below(r, (uint64_t)k + 1) : 1;
    if (c->bad_rate > 0.0 && fz_chance(r, c->bad_rate * 0.3)) nr = fz_chance(r, 0.5) ? -1 : k + 1;
    const size_t np = valid ? (size_t)k * (size_t)(k + 1) / 2 : 1;
    const size_t nrows = nr > 0 ? (size_t)nr : 0;
    const size_t n = fz_n(c) / (1 + np / 2);
    REAL *p = ARR(n, 1, "param"), *rows = ARR(nrows * n, 0, "rows");
    REAL *dir = fz_chance(r, 0.4) ? ARR(n, 0, "direction") : NULL;
    double *rw = fz_alloc(c, (nrows ? nrows : 1) * sizeof(double), 8, 0, "row_weight");
    fz_fill(c, rw, nrows, 1, FZ_ANY);
    REAL *fisher = ARRP(np * n, 1, "fisher");
    int *ra = fz_alloc(c, np * sizeof(int), 4, 0, "pair_row_a");
    int *rb = fz_alloc(c, np * sizeof(int), 4, 0, "pair_row_b");
    double *dec = fz_alloc(c, np * sizeof(double), 8, 0, "pair_decay");
    double *gain = fz_alloc(c, np * sizeof(double), 8, 0, "pair_gain");
    double *wt = fz_alloc(c, np * sizeof(double), 8, 0, "pair_weight");
    for (size_t q = 0; q < np; q++) {
        if (nr > 0 && fz_chance(r, 0.8)) {
            ra[q] = (int)fz_below(r, (uint64_t)nr);
            rb[q] = (int)fz_below(r, (uint64_t)nr);
        } else ra[q] = rb[q] = -1;
        dec[q] = fz_chance(r, 0.1) ? (double)fz_below(r, 2) : fz_unif(r);
        gain[q] = fz_unif(r);
        wt[q] = fz_clean(r, 2.0);
        if (c->bad_rate > 0.0 && fz_chance(r, c->bad_rate * 0.3)) {
            switch (fz_below(r, 8)) {
            case 0: ra[q] = nr; break;
            case 1: rb[q] = -2; break;
            case 2: ra[q] = -1; rb[q] = 0; break;
            case 3: dec[q] = fz_chance(r, 0.5) ? 1.5 : NAN; break;
            case 4: gain[q] = fz_chance(r, 0.5) ? -1.0 : INFINITY; break;
            case 5: wt[q] = fz_chance(r, 0.5) ? NAN : -INFINITY; break;
            case 6: ra[q] = INT_MAX; break;
            default: dec[q] = -0.0; gain[q] = 0.0; break;
            }
        }
    }
    REAL *m = ARR(n, 1, "exp_avg"), *v = ARRP(n, 1, "exp_avg_sq");
    if (nrows && fz_chance(r, c->bad_rate)) rw[fz_below(r, nrows)] = fz_special(r, 1);
    fz_expect(c, !fz_ok_nonneg(cfg->lr) || !fz_ok_nonneg(cfg->eps) ||
                     !fz_ok_nonneg(cfg->weight_decay) || !fz_ok_unit(cfg->beta1) ||
                     !fz_ok_unit(cfg->beta2) || !fz_ok_closed(cfg->rampup),
              "a hyperparameter is outside its documented range");
    fz_expect(c, k < 1 || k > 4096, "n_obj is outside [1, 4096]");
    fz_expect(c, nr < 0 || nr > k, "n_rows is outside [0, n_obj]");
    fz_expect(c, !dir && nr < 1, "direction is NULL and n_rows < 1");
    if (valid && nr >= 0 && nr <= k) {
        for (size_t q = 0; q < np; q++) {
            fz_expect(c, ra[q] < -1 || rb[q] < -1 || ra[q] >= nr || rb[q] >= nr ||
                             (ra[q] < 0) != (rb[q] < 0), "a plan row index is out of range");
            fz_expect(c, !fz_ok_closed(dec[q]) || !fz_ok_nonneg(gain[q]) || !isfinite(wt[q]),
                      "a plan decay / gain / weight is outside its range");
        }
    }
    fz_expect(c, step < 1, "step < 1");
    const cm_madam_config *cp = fz_null(c, cfg, 1);
    p = fz_null(c, p, 1);
    rows = fz_null(c, rows, nr > 0);
    const double *rwp = fz_null(c, rw, 0); /* required only when direction == NULL */
    fisher = fz_null(c, fisher, 1);
    ra = fz_null(c, ra, 1);
    rb = fz_null(c, rb, 1);
    dec = fz_null(c, dec, 1);
    gain = fz_null(c, gain, 1);
    wt = fz_null(c, wt, 1);
    m = fz_null(c, m, 1);
    v = fz_null(c, v, 1);
    fz_expect(c, !dir && !rwp, "direction and row_weight are both NULL");
    fz_arm(c);
    return API(cm_madam_step)(cp, ex, step, n, k, nr, p, rows, dir, rwp, fisher, ra, rb, dec,
                              gain, wt, m, v);
}

#undef ARR
#undef ARRP
#undef TS
#undef API

#endif /* FUZZ_TYPED_PASS */
