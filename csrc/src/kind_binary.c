/* flipnet core: the binary layer kind, weights in {-1, +1} (one bit plane per row, set = -1,
 * flipnet.h). It shares its forward pass with the ternary kind (fn_int_fwd, kind_int.c) and its
 * training rule (vote.c); its own is the random init. */
#include "fn_internal.h"

/* w = -1 when the draw's top bit is set, else +1. */
static int32_t fn_binary_draw(uint64_t r) { return (r >> 63) ? -1 : 1; }

static void fn_binary_init(flipnet_model *model, uint32_t l)
{
    fn_int_init(model, l, fn_binary_draw);
}

const fn_kind_train fn_binary_train = FN_INT_TRAIN_OPS(fn_binary_init);
