/* flipnet core: one training step (docs/rule.md sections 2-5). */
#include "fn_internal.h"

flipnet_status flipnet_train_step(flipnet_model *model, const int8_t *x, const uint16_t *y,
                                  uint32_t batch, const flipnet_step_params *params,
                                  flipnet_step_stats *stats, void *scratch, size_t scratch_bytes)
{
    (void)model; (void)x; (void)y; (void)batch; (void)params; (void)stats; (void)scratch;
    (void)scratch_bytes;
    return FLIPNET_E_ARG; /* TODO */
}
