/* flipnet core: the layer kinds this build knows, by flipnet_kind code. A new kind is one file
 * with its tables (fn_kind_fwd, fn_kind_train in fn_internal.h) and one line in each lookup. */
#include "fn_internal.h"

extern const fn_kind_train fn_ternary_train, fn_binary_train;
#ifndef FLIPNET_NO_FLOAT
extern const fn_kind_fwd fn_fp32_fwd;
extern const fn_kind_train fn_fp32_train;
#endif

const fn_kind_fwd *fn_kind_fwd_ops(uint8_t kind)
{
    switch (kind) {
    case FLIPNET_TERNARY:
    case FLIPNET_BINARY: return &fn_int_fwd;
#ifndef FLIPNET_NO_FLOAT
    case FLIPNET_FP32: return &fn_fp32_fwd;
#endif
    default: return NULL;
    }
}

const fn_kind_train *fn_kind_train_ops(uint8_t kind)
{
    switch (kind) {
    case FLIPNET_TERNARY: return &fn_ternary_train;
    case FLIPNET_BINARY: return &fn_binary_train;
#ifndef FLIPNET_NO_FLOAT
    case FLIPNET_FP32: return &fn_fp32_train;
#endif
    default: return NULL;
    }
}
