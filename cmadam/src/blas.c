/* blas.c -- the BLAS-backed kernels. OpenBLAS comes from the scipy-openblas32 wheel, whose
 * symbols carry a prefix; CM_BLAS_PREFIX is the one place that knows it. */
#include <limits.h>

#include "internal.h"

#ifndef CM_BLAS_PREFIX
#define CM_BLAS_PREFIX scipy_
#endif
#define CM_BLAS(name) CM_CAT(CM_BLAS_PREFIX, name)

/* The few CBLAS/OpenBLAS declarations used here (enum values as in cblas.h). */
enum { CM_CBLAS_ROW_MAJOR = 101, CM_CBLAS_NO_TRANS = 111, CM_CBLAS_UPPER = 121 };
void CM_BLAS(cblas_ssyrk)(int order, int uplo, int trans, int n, int k, float alpha,
                          const float *a, int lda, float beta, float *c, int ldc);
void CM_BLAS(cblas_dsyrk)(int order, int uplo, int trans, int n, int k, double alpha,
                          const double *a, int lda, double beta, double *c, int ldc);
char *CM_BLAS(openblas_get_config)(void);
int CM_BLAS(openblas_get_num_threads)(void);
void CM_BLAS(openblas_set_num_threads)(int n);

static int cm_gram_args(size_t rows, size_t cols, const void *jac, const void *gram)
{
    if (!jac || !gram) return CM_ERR_NULL;
    if (rows == 0 || cols == 0) return CM_ERR_SIZE;
    if (rows > INT_MAX || cols > INT_MAX) return CM_ERR_BLAS;
    return CM_OK;
}

/* syrk fills the upper triangle; mirror it so callers get the full symmetric matrix. */
#define CM_DEFINE_GRAMIAN(SUFFIX, REAL, SYRK)                                                  \
    int CM_CAT(cm_gramian_, SUFFIX)(size_t rows, size_t cols, const REAL *jac, REAL *gram)      \
    {                                                                                          \
        int status = cm_gram_args(rows, cols, jac, gram);                                      \
        if (status != CM_OK) return status;                                                    \
        const int r = (int)rows, c = (int)cols;                                                \
        CM_BLAS(SYRK)(CM_CBLAS_ROW_MAJOR, CM_CBLAS_UPPER, CM_CBLAS_NO_TRANS, r, c, (REAL)1,     \
                      jac, c, (REAL)0, gram, r);                                               \
        for (size_t i = 0; i < rows; i++)                                                      \
            for (size_t j = 0; j < i; j++) gram[i * rows + j] = gram[j * rows + i];            \
        return CM_OK;                                                                          \
    }

CM_DEFINE_GRAMIAN(f32, float, cblas_ssyrk)
CM_DEFINE_GRAMIAN(f64, double, cblas_dsyrk)

const char *cm_blas_info(void) { return CM_BLAS(openblas_get_config)(); }

int cm_blas_get_num_threads(void) { return CM_BLAS(openblas_get_num_threads)(); }

void cm_blas_set_num_threads(int n_threads)
{
    if (n_threads >= 1) CM_BLAS(openblas_set_num_threads)(n_threads);
}
