/* flipnet core: the ternary layer kind, weights in {-1, 0, +1} (two bit planes per row,
 * flipnet.h). It shares its forward pass with the binary kind (fn_int_fwd, kind_int.c) and its
 * training rule (vote.c); its own is the random init. */
#include "fn_internal.h"

/* w = ((draw >> 32) mod 3) - 1: -1, 0, +1 with probability 1/3 each (to 2^-32). */
static int32_t fn_ternary_draw(uint64_t r) { return (int32_t)((uint32_t)(r >> 32) % 3u) - 1; }

static void fn_ternary_init(flipnet_model *model, uint32_t l)
{
    fn_int_init(model, l, fn_ternary_draw);
}

const fn_kind_train fn_ternary_train = FN_INT_TRAIN_OPS(fn_ternary_init);
