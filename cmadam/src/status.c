/* status.c -- status strings, version and the default configs. */
#include "internal.h"

#define CM_STR_(x) #x
#define CM_STR(x) CM_STR_(x)

const char *cm_strerror(int status)
{
    switch (status) {
    case CM_OK: return "success";
    case CM_ERR_NULL: return "a required pointer argument is NULL";
    case CM_ERR_HYPER: return "a hyperparameter is out of range or NaN";
    case CM_ERR_STEP: return "the step counter must be >= 1";
    case CM_ERR_SIZE: return "a size argument is invalid";
    case CM_ERR_BLAS: return "a size does not fit BLAS's 32-bit integers";
    default: return "unknown cmadam status code";
    }
}

const char *cm_version(void)
{
    return CM_STR(CM_VERSION_MAJOR) "." CM_STR(CM_VERSION_MINOR) "." CM_STR(CM_VERSION_PATCH);
}

void cm_sgd_config_default(cm_sgd_config *cfg)
{
    if (!cfg) return;
    cfg->lr = 1e-3;
    cfg->momentum = 0.0;
    cfg->dampening = 0.0;
    cfg->weight_decay = 0.0;
    cfg->nesterov = 0;
}

void cm_adam_config_default(cm_adam_config *cfg)
{
    if (!cfg) return;
    cfg->lr = 1e-3;
    cfg->beta1 = 0.9;
    cfg->beta2 = 0.999;
    cfg->eps = 1e-8;
    cfg->weight_decay = 0.0;
    cfg->decoupled_weight_decay = 0;
    cfg->variant = CM_ADAM;
}

void cm_yogi_config_default(cm_yogi_config *cfg)
{
    if (!cfg) return;
    cfg->lr = 1e-2;
    cfg->beta1 = 0.9;
    cfg->beta2 = 0.999;
    cfg->eps = 1e-3;
    cfg->weight_decay = 0.0;
}

void cm_adan_config_default(cm_adan_config *cfg)
{
    if (!cfg) return;
    cfg->lr = 1e-3;
    cfg->beta1 = 0.98;
    cfg->beta2 = 0.92;
    cfg->beta3 = 0.99;
    cfg->eps = 1e-8;
    cfg->weight_decay = 0.0;
    cfg->proximal = 1;
}

void cm_lion_config_default(cm_lion_config *cfg)
{
    if (!cfg) return;
    cfg->lr = 1e-4;
    cfg->beta1 = 0.9;
    cfg->beta2 = 0.99;
    cfg->weight_decay = 0.0;
}
