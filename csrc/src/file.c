/* flipnet core: model file format v1 (docs/format.md). */
#include "fn_internal.h"

flipnet_status flipnet_file_size(const flipnet_model *model, size_t meta_bytes, size_t *bytes)
{ (void)model; (void)meta_bytes; (void)bytes; return FLIPNET_E_ARG; }
flipnet_status flipnet_file_write(const flipnet_model *model, const uint8_t *meta,
                                  size_t meta_bytes, uint8_t *buf, size_t buf_bytes,
                                  size_t *written)
{ (void)model; (void)meta; (void)meta_bytes; (void)buf; (void)buf_bytes; (void)written; return FLIPNET_E_ARG; }
flipnet_status flipnet_file_peek(const uint8_t *buf, size_t len, flipnet_arch *arch)
{ (void)buf; (void)len; (void)arch; return FLIPNET_E_ARG; }
flipnet_status flipnet_file_meta(const uint8_t *buf, size_t len, const uint8_t **meta,
                                 size_t *meta_bytes)
{ (void)buf; (void)len; (void)meta; (void)meta_bytes; return FLIPNET_E_ARG; }
flipnet_status flipnet_file_read(flipnet_model *model, const uint8_t *buf, size_t len,
                                 void *weights, size_t weights_bytes)
{ (void)model; (void)buf; (void)len; (void)weights; (void)weights_bytes; return FLIPNET_E_ARG; }
