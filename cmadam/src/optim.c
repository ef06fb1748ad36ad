/* optim.c -- instantiates optim_impl.h for float and double. */
#include <math.h>

#include "internal.h"

#define REAL float
#define SFX(name) CM_CAT(name, _f32)
#define SQRT sqrtf
#include "optim_impl.h"
#undef REAL
#undef SFX
#undef SQRT

#define REAL double
#define SFX(name) CM_CAT(name, _f64)
#define SQRT sqrt
#include "optim_impl.h"
#undef REAL
#undef SFX
#undef SQRT
