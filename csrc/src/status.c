/* flipnet core: status strings, version and ABI check, RNG, CRC-32. */
#include "fn_internal.h"

const char *flipnet_status_str(int status)
{
    switch (status) {
    case FLIPNET_OK: return "ok";
    case FLIPNET_E_NULL: return "a required pointer is NULL";
    case FLIPNET_E_ARG: return "an argument is out of range";
    case FLIPNET_E_SHAPE: return "invalid layer sizes";
    case FLIPNET_E_NOMEM: return "memory area too small";
    case FLIPNET_E_ALIGN: return "memory area not 4-byte aligned";
    case FLIPNET_E_LABEL: return "a label is >= the number of classes";
    case FLIPNET_E_INPUT: return "an input value is -128 (inputs must be in [-127, 127])";
    case FLIPNET_E_ABI: return "built against another flipnet.h (ABI or struct sizes differ)";
    case FLIPNET_E_FMT_MAGIC: return "not a flipnet model file (wrong magic)";
    case FLIPNET_E_FMT_VERSION: return "unknown model file format version";
    case FLIPNET_E_FMT_TRUNCATED: return "model file truncated";
    case FLIPNET_E_FMT_SIZE: return "model file size fields inconsistent";
    case FLIPNET_E_FMT_CRC: return "model file CRC-32 mismatch (corrupted)";
    case FLIPNET_E_FMT_VALUE: return "model file field has an invalid value";
    default: return "unknown status";
    }
}

uint32_t flipnet_version(void)
{
    return ((uint32_t)FLIPNET_VERSION_MAJOR << 16) | ((uint32_t)FLIPNET_VERSION_MINOR << 8) |
           (uint32_t)FLIPNET_VERSION_PATCH;
}

flipnet_status flipnet_abi_check(uint32_t abi, size_t model_size, size_t arch_size,
                                 size_t params_size, size_t stats_size, size_t view_size)
{
    if (abi != FLIPNET_ABI || model_size != sizeof(flipnet_model) ||
        arch_size != sizeof(flipnet_arch) || params_size != sizeof(flipnet_step_params) ||
        stats_size != sizeof(flipnet_step_stats) || view_size != sizeof(flipnet_model_view))
        return FLIPNET_E_ABI;
    return FLIPNET_OK;
}

uint64_t flipnet_rand(uint64_t seed, uint64_t stream, uint64_t index)
{
    return fn_rand_at(fn_rand_base(seed, stream), index);
}

/* Reflected CRC-32 (poly 0xEDB88320), as zlib.crc32, one nibble at a time (64-byte table). */
static const uint32_t fn_crc_nibble[16] = {
    0x00000000u, 0x1DB71064u, 0x3B6E20C8u, 0x26D930ACu, 0x76DC4190u, 0x6B6B51F4u,
    0x4DB26158u, 0x5005713Cu, 0xEDB88320u, 0xF00F9344u, 0xD6D6A3E8u, 0xCB61B38Cu,
    0x9B64C2B0u, 0x86D3D2D4u, 0xA00AE278u, 0xBDBDF21Cu};

uint32_t flipnet_crc32(uint32_t crc, const uint8_t *data, size_t len)
{
    size_t i;
    if (data == NULL) return crc;
    crc = ~crc;
    for (i = 0; i < len; i++) {
        crc ^= data[i];
        crc = (crc >> 4) ^ fn_crc_nibble[crc & 15u];
        crc = (crc >> 4) ^ fn_crc_nibble[crc & 15u];
    }
    return ~crc;
}
