/*
 * cmadam.h -- the C core of madam.
 *
 * Conventions (after OSQP, SCS and liblbfgs):
 *   - every public name starts with cm_ / CM_;
 *   - hyperparameters live in config structs that cm_<thing>_config_default() fills;
 *   - all arrays are owned by the caller; optimiser state (moments, buffers) is passed in and
 *     updated in place, so the library keeps no globals and is reentrant (the Python layer calls
 *     it with the GIL released);
 *   - every function that can fail returns an int status (CM_OK == 0), cm_strerror() names it;
 *   - nothing prints.
 *
 * Argument rules common to every kernel: a NULL exec means cm_exec_config_default(); required
 * array pointers must be non-NULL even when n == 0 (the utilities cm_all_finite and cm_triad,
 * and cm_mada_hypergrad_stored accept NULL arrays when n == 0); n == 0 is a no-op. Learning
 * rates, eps, momentum and weight decay must be finite, >= 0 and <= 1e300; every beta must lie
 * in [0, 1); SGD's dampening in [0, 1].
 * A violated rule returns its status code and leaves every array untouched.
 *
 * Every kernel exists for float (_f32) and double (_f64). Scalar coefficients (bias corrections,
 * 1 - beta, lr / bc1, ...) are computed in double and rounded once to the element type; the
 * element arithmetic then runs in the element type, in exactly the order written in the comment
 * of each kernel (the library is built with -ffp-contract=off, so no fused multiply-adds).
 * Element loops are split across OpenMP threads above cm_exec_config.min_parallel_size; each
 * element's arithmetic is independent of the split, so results are bit-identical for any thread
 * count.
 */
#ifndef CMADAM_H
#define CMADAM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CM_VERSION_MAJOR 0
#define CM_VERSION_MINOR 1
#define CM_VERSION_PATCH 0

/* Exported symbols. The library is compiled with -fvisibility=hidden; the declarations between
 * CM_CDEF_BEGIN and CM_CDEF_END of the public headers, bracketed by CM_API_BEGIN and CM_API_END,
 * are the only symbols libcmadam.so exports (`make -C cmadam check-exports` verifies it). A build
 * that compiles the sources into another module (the CFFI extension) defines CM_NO_EXPORT, so that
 * they stay hidden there too. */
#if defined(__GNUC__) && !defined(CM_NO_EXPORT)
#define CM_API_BEGIN _Pragma("GCC visibility push(default)")
#define CM_API_END _Pragma("GCC visibility pop")
#else
#define CM_API_BEGIN
#define CM_API_END
#endif

CM_API_BEGIN
/* CM_CDEF_BEGIN -- the declarations below are also read by madam/_build_cmadam.py for CFFI;
 * keep them free of preprocessor lines. */

/* ---------------------------------------------------------------- status codes */
enum cm_status {
    CM_OK = 0,
    CM_ERR_NULL = 1,      /* a required pointer is NULL */
    CM_ERR_HYPER = 2,     /* a hyperparameter is out of range or NaN */
    CM_ERR_STEP = 3,      /* the step counter is < 1 */
    CM_ERR_SIZE = 4,      /* a size argument is invalid (e.g. zero rows) */
    CM_ERR_BLAS = 5       /* a size does not fit BLAS's 32-bit integers */
};

/* A static, human-readable description of a status code (never NULL). */
const char *cm_strerror(int status);

/* Library version as "MAJOR.MINOR.PATCH". */
const char *cm_version(void);

/* ---------------------------------------------------------------- execution */
typedef struct cm_exec_config {
    int n_threads;            /* OpenMP threads for element loops; <= 0 means OpenMP's default */
    size_t min_parallel_size; /* loops with fewer elements run on one thread */
    int baseline_only;        /* 1: never use the AVX2 build of the kernels (for tests) */
} cm_exec_config;

/* n_threads = 0, min_parallel_size = 32768, baseline_only = 0. */
void cm_exec_config_default(cm_exec_config *exec);

/* Which build of the element kernels runs under exec: 2 = AVX2 (x86-64 CPUs that have it,
 * unless exec->baseline_only), 1 = the baseline build. Both give bit-identical results. */
int cm_simd_level(const cm_exec_config *exec);

/* Number of threads OpenMP would use by default here (1 when built without OpenMP). */
int cm_openmp_max_threads(void);

/* Compiler flags and features the library was built with (static string). */
const char *cm_build_info(void);

/* SHA-256 (hex) of the C sources and headers this library was compiled from, as computed by
 * madam's build script (madam/_sources.py); "unknown" when built without it. Lets the Python
 * layer refuse a compiled core that does not match the sources next to it. */
const char *cm_source_hash(void);

/* ---------------------------------------------------------------- SGD
 * Per element, step t >= 1 (torch.optim.SGD's convention):
 *   if weight_decay != 0:  g = g + weight_decay * p
 *   if momentum != 0:
 *       buf = g                                         (t == 1)
 *       buf = momentum * buf + (1 - dampening) * g      (t > 1)
 *       g   = g + momentum * buf   if nesterov, else  g = buf
 *   p = p - lr * g
 * momentum_buf may be NULL only when momentum == 0. nesterov needs momentum > 0, dampening 0. */
typedef struct cm_sgd_config {
    double lr;
    double momentum;
    double dampening;
    double weight_decay;
    int nesterov;
} cm_sgd_config;

/* lr 1e-3, momentum 0, dampening 0, weight_decay 0, nesterov 0. */
void cm_sgd_config_default(cm_sgd_config *cfg);

int cm_sgd_step_f32(const cm_sgd_config *cfg, const cm_exec_config *exec, int64_t step,
                    size_t n, float *param, const float *grad, float *momentum_buf);
int cm_sgd_step_f64(const cm_sgd_config *cfg, const cm_exec_config *exec, int64_t step,
                    size_t n, double *param, const double *grad, double *momentum_buf);

/* ---------------------------------------------------------------- Adam, AdamW, AMSGrad, AVGrad
 * Per element, step t >= 1, bc1 = 1 - beta1^t, bc2 = 1 - beta2^t:
 *   if decoupled_weight_decay:  p = p * (1 - lr * weight_decay)          (AdamW)
 *   else if weight_decay != 0:  g = g + weight_decay * p                 (L2, Adam)
 *   m = beta1 * m + (1 - beta1) * g
 *   v = beta2 * v + (1 - beta2) * (g * g)
 *   CM_ADAM:     s = v
 *   CM_AMSGRAD:  aux = max(aux, v);                  s = aux   (max of the uncorrected v, as torch)
 *   CM_AVGRAD:   aux = (v + (t - 1) * aux) / t;      s = aux   (running time average of v, MADA)
 *   p = p - (lr / bc1) * (m / (sqrt(s) / sqrt(bc2) + eps))
 * aux (exp_avg_sq_aux) may be NULL for CM_ADAM; m, v and aux start at zero. */
enum cm_adam_variant { CM_ADAM = 0, CM_AMSGRAD = 1, CM_AVGRAD = 2 };

typedef struct cm_adam_config {
    double lr;
    double beta1;
    double beta2;
    double eps;
    double weight_decay;
    int decoupled_weight_decay; /* 0: L2 added to the gradient (Adam); 1: AdamW */
    int variant;                /* enum cm_adam_variant */
} cm_adam_config;

/* lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight_decay 0, L2, CM_ADAM. */
void cm_adam_config_default(cm_adam_config *cfg);

int cm_adam_step_f32(const cm_adam_config *cfg, const cm_exec_config *exec, int64_t step,
                     size_t n, float *param, const float *grad, float *exp_avg,
                     float *exp_avg_sq, float *exp_avg_sq_aux);
int cm_adam_step_f64(const cm_adam_config *cfg, const cm_exec_config *exec, int64_t step,
                     size_t n, double *param, const double *grad, double *exp_avg,
                     double *exp_avg_sq, double *exp_avg_sq_aux);

/* ---------------------------------------------------------------- Yogi (Zaheer et al. 2018)
 * Per element, step t >= 1, bc1 = 1 - beta1^t, bc2 = 1 - beta2^t, sign(0) = 0:
 *   if weight_decay != 0:  g = g + weight_decay * p
 *   m  = beta1 * m + (1 - beta1) * g
 *   g2 = g * g
 *   v  = v - ((1 - beta2) * sign(v - g2)) * g2
 *   p  = p - (lr / bc1) * (m / (sqrt(v) / sqrt(bc2) + eps))
 * The caller initialises m and v to the initial accumulator (1e-6 in the reference code). */
typedef struct cm_yogi_config {
    double lr;
    double beta1;
    double beta2;
    double eps;
    double weight_decay;
} cm_yogi_config;

/* lr 1e-2, betas (0.9, 0.999), eps 1e-3, weight_decay 0. */
void cm_yogi_config_default(cm_yogi_config *cfg);

int cm_yogi_step_f32(const cm_yogi_config *cfg, const cm_exec_config *exec, int64_t step,
                     size_t n, float *param, const float *grad, float *exp_avg,
                     float *exp_avg_sq);
int cm_yogi_step_f64(const cm_yogi_config *cfg, const cm_exec_config *exec, int64_t step,
                     size_t n, double *param, const double *grad, double *exp_avg,
                     double *exp_avg_sq);

/* ---------------------------------------------------------------- Adan (Xie et al. 2022)
 * Betas in the official code's convention (0.98, 0.92, 0.99), i.e. the paper's 1 - beta.
 * Per element, step t >= 1, bc_k = 1 - beta_k^t:
 *   D  = 0 (t == 1),  g - prev (t > 1)
 *   m  = beta1 * m + (1 - beta1) * g
 *   md = beta2 * md + (1 - beta2) * D
 *   u  = g + beta2 * D
 *   nn = beta3 * nn + (1 - beta3) * (u * u)
 *   r  = (m / bc1 + (beta2 / bc2) * md) / (sqrt(nn) / sqrt(bc3) + eps)
 *   proximal:  p = (p - lr * r) / (1 + lr * weight_decay)      (official default)
 *   else:      p = p * (1 - lr * weight_decay) - lr * r
 *   prev = g
 * prev is not read at t == 1. m, md, nn start at zero. */
typedef struct cm_adan_config {
    double lr;
    double beta1;
    double beta2;
    double beta3;
    double eps;
    double weight_decay;
    int proximal;
} cm_adan_config;

/* lr 1e-3, betas (0.98, 0.92, 0.99), eps 1e-8, weight_decay 0, proximal 1. */
void cm_adan_config_default(cm_adan_config *cfg);

int cm_adan_step_f32(const cm_adan_config *cfg, const cm_exec_config *exec, int64_t step,
                     size_t n, float *param, const float *grad, float *exp_avg,
                     float *exp_avg_diff, float *exp_avg_sq, float *prev_grad);
int cm_adan_step_f64(const cm_adan_config *cfg, const cm_exec_config *exec, int64_t step,
                     size_t n, double *param, const double *grad, double *exp_avg,
                     double *exp_avg_diff, double *exp_avg_sq, double *prev_grad);

/* ---------------------------------------------------------------- Lion (Chen et al. 2023)
 * Per element, sign(0) = 0:
 *   p = p * (1 - lr * weight_decay)
 *   c = beta1 * m + (1 - beta1) * g
 *   p = p - lr * sign(c)
 *   m = beta2 * m + (1 - beta2) * g
 * m starts at zero. Lion keeps no step counter. */
typedef struct cm_lion_config {
    double lr;
    double beta1;
    double beta2;
    double weight_decay;
} cm_lion_config;

/* lr 1e-4, betas (0.9, 0.99), weight_decay 0. */
void cm_lion_config_default(cm_lion_config *cfg);

int cm_lion_step_f32(const cm_lion_config *cfg, const cm_exec_config *exec, size_t n,
                     float *param, const float *grad, float *exp_avg);
int cm_lion_step_f64(const cm_lion_config *cfg, const cm_exec_config *exec, size_t n,
                     double *param, const double *grad, double *exp_avg);

/* ---------------------------------------------------------------- element utilities */
/* *all_finite = 1 if no element of x is NaN or +-Inf, else 0. */
int cm_all_finite_f32(const cm_exec_config *exec, size_t n, const float *x, int *all_finite);
int cm_all_finite_f64(const cm_exec_config *exec, size_t n, const double *x, int *all_finite);

/* STREAM triad a = b + scalar * c, the bandwidth yardstick the benchmarks run beside kernels. */
int cm_triad_f32(const cm_exec_config *exec, size_t n, float *a, const float *b, const float *c,
                 double scalar);
int cm_triad_f64(const cm_exec_config *exec, size_t n, double *a, const double *b,
                 const double *c, double scalar);

/* ---------------------------------------------------------------- BLAS-backed
 * Gramian G = J J^T of a row-major (rows x cols) matrix J, G row-major (rows x rows), full
 * (both triangles written). One ?syrk call. rows or cols == 0: CM_ERR_SIZE. */
int cm_gramian_f32(size_t rows, size_t cols, const float *jac, float *gram);
int cm_gramian_f64(size_t rows, size_t cols, const double *jac, double *gram);

/* ---------------------------------------------------------------- Gramian with a scan
 * One read of a row-major (rows x cols) J gives G = J J^T in double precision (row-major,
 * rows x rows, both triangles), *all_finite (1 iff no element of J is NaN or +-Inf) and
 * *max_abs (max |J_ij| over the finite elements; +Inf if one is infinite). float elements are
 * widened to double before they are multiplied (exact products). No BLAS: the columns are taken
 * in cache-sized blocks, and the summation order depends only on (rows, cols), so the result is
 * the same bits for any thread count and instruction set. The products can overflow (|J| above
 * ~1e154) or underflow to subnormals (below ~1e-154) in double; callers that need G then
 * rescale J by a power of two (max_abs says when). With a non-finite J, gram holds NaN or Inf.
 * work: caller-owned scratch of work_size >= cm_gram_scan_workspace(rows, cols) doubles. For
 * float with 128 to 512 rows each thread may also malloc a scratch of at most 256 KiB (freed
 * before returning; if it cannot, the call runs without it and gives the same result).
 * rows or cols == 0, rows > 65536, or work_size too small: CM_ERR_SIZE. */
size_t cm_gram_scan_workspace(size_t rows, size_t cols);
int cm_gram_scan_f32(const cm_exec_config *exec, size_t rows, size_t cols, const float *jac,
                     double *gram, double *work, size_t work_size, int *all_finite,
                     double *max_abs);
int cm_gram_scan_f64(const cm_exec_config *exec, size_t rows, size_t cols, const double *jac,
                     double *gram, double *work, size_t work_size, int *all_finite,
                     double *max_abs);

/* ---------------------------------------------------------------- combination of the rows
 * d = lam @ J for a row-major (rows x cols) J and rows weights lam (double): for each column j,
 *   d_j = (...((lam_0 J_0j + lam_1 J_1j) + lam_2 J_2j) ... + lam_{rows-1} J_{rows-1,j}),
 * each product and sum in double (float elements widened first, so a float J's products are
 * exact), rounded once to the element type. The order is fixed, so the result is the same bits
 * for any thread count and instruction set. This is the solvers' direction; in float it is
 * within half an ulp of the exact combination plus the double sums' rounding (rows eps64 |lam|
 * |J|), where a float gemv errs by eps32. Partial sums can overflow in double where d does not
 * (float64 rows near 1e308 that cancel); callers then rescale J by a power of two.
 * rows or cols == 0: CM_ERR_SIZE. */
int cm_combine_f32(const cm_exec_config *exec, size_t rows, size_t cols, const double *lam,
                   const float *jac, float *out);
int cm_combine_f64(const cm_exec_config *exec, size_t rows, size_t cols, const double *lam,
                   const double *jac, double *out);

/* OpenBLAS's configuration string (version, target core, threading). */
const char *cm_blas_info(void);
/* OpenBLAS's own thread pool: its size now, and a setter (this one is process-wide, because
 * OpenBLAS's pool is). */
int cm_blas_get_num_threads(void);
void cm_blas_set_num_threads(int n_threads);

/* CM_CDEF_END */
CM_API_END

#ifdef __cplusplus
}
#endif

#endif /* CMADAM_H */
