/* flipnet core: which kernel set runs (docs/speed.md). The sets this build has, fastest first;
 * the first one this CPU runs is the default. Sets are checked against the CPU at run time:
 * x86-64 with cpuid (and xgetbv for the registers the OS saves), aarch64's "neon-dot" with the
 * ID register the OS exposes; "neon" runs on any aarch64, the portable C anywhere. */
#include "fn_internal.h"

#if FN_HAVE_X86
/* The CPU's feature bits straight from cpuid, and the register state the OS saves (xgetbv):
 * a set runs only when the CPU has its instructions and the OS preserves the registers they
 * use (YMM for AVX2; YMM, ZMM and the mask registers for AVX-512). */
static void fn_cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4])
{
    __asm__ __volatile__("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3])
                         : "a"(leaf), "c"(sub));
}

static uint32_t fn_x86_features(void)
{
    enum { AVX2 = 1, AVX512 = 2 };
    uint32_t r[4], out = 0, lo, hi;
    uint64_t xcr0;
    fn_cpuid(0, 0, r);
    if (r[0] < 7u) return 0;
    fn_cpuid(1, 0, r);
    if (!(r[2] & (1u << 27)) || !(r[2] & (1u << 28)) || !(r[2] & (1u << 23)))
        return 0; /* no OSXSAVE, AVX or POPCNT */
    __asm__ __volatile__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0u));
    xcr0 = ((uint64_t)hi << 32) | lo;
    if ((xcr0 & 0x6u) != 0x6u) return 0; /* XMM and YMM state */
    fn_cpuid(7, 0, r);
    if (r[1] & (1u << 5)) out |= AVX2;
    if ((out & AVX2) && (xcr0 & 0xE6u) == 0xE6u && (r[1] & (1u << 16)) && (r[1] & (1u << 30)) &&
        (r[1] & (1u << 31)) && (r[2] & (1u << 11)))
        out |= AVX512; /* F, BW, VL, VNNI; opmask, ZMM 0-15 upper halves, ZMM 16-31 */
    return out;
}
#endif

#if FN_HAVE_NEON
/* The dot product extension (SDOT): field DP, bits 47:44, of ID_AA64ISAR0_EL1. User code may
 * read the ID registers on Linux (the kernel emulates the access, with the values it
 * supports, since 4.11; so does qemu-aarch64); elsewhere the set is not used. */
static int fn_arm_dotprod(void)
{
#if defined(__linux__)
    uint64_t isar0;
    __asm__ __volatile__("mrs %0, ID_AA64ISAR0_EL1" : "=r"(isar0));
    return ((isar0 >> 44) & 0xFu) >= 1u;
#else
    return 0;
#endif
}
#endif

static int fn_cpu_has(const fn_kernels *k)
{
#if FN_HAVE_X86
    uint32_t f = fn_x86_features();
    if (k == &fn_kernels_avx512vnni) return (f & 2u) != 0u;
    if (k == &fn_kernels_avx2) return (f & 1u) != 0u;
#endif
#if FN_HAVE_NEON
    if (k == &fn_kernels_neon_dot) return fn_arm_dotprod();
#endif
    (void)k;
    return 1;
}

static const fn_kernels *const fn_sets[] = {
#if FN_HAVE_X86
    &fn_kernels_avx512vnni,
    &fn_kernels_avx2,
#endif
#if FN_HAVE_NEON
    &fn_kernels_neon_dot,
    &fn_kernels_neon,
#endif
    &fn_kernels_portable,
};
#define FN_NSETS (sizeof(fn_sets) / sizeof(fn_sets[0]))

static const fn_kernels *fn_current;

static int fn_streq(const char *a, const char *b)
{
    while (*a != '\0' && *a == *b) {
        a++;
        b++;
    }
    return *a == *b;
}

static const fn_kernels *fn_best(void)
{
    uint32_t i;
    for (i = 0; i + 1u < FN_NSETS; i++) {
        if (fn_cpu_has(fn_sets[i])) return fn_sets[i];
    }
    return fn_sets[FN_NSETS - 1u];
}

const fn_kernels *fn_kern(void)
{
    const fn_kernels *k = fn_current;
    if (k == NULL) fn_current = k = fn_best(); /* the same value from any thread */
    return k;
}

const char *flipnet_kernels(void) { return fn_kern()->name; }

const char *flipnet_kernels_available(uint32_t i)
{
    uint32_t q, seen = 0;
    for (q = 0; q < FN_NSETS; q++) {
        if (!fn_cpu_has(fn_sets[q])) continue;
        if (seen++ == i) return fn_sets[q]->name;
    }
    return NULL;
}

flipnet_status flipnet_use_kernels(const char *name)
{
    uint32_t q;
    if (name == NULL) return FLIPNET_E_NULL;
    if (fn_streq(name, "auto")) {
        fn_current = fn_best();
        return FLIPNET_OK;
    }
    for (q = 0; q < FN_NSETS; q++) {
        if (fn_streq(name, fn_sets[q]->name)) {
            if (!fn_cpu_has(fn_sets[q])) return FLIPNET_E_ARG;
            fn_current = fn_sets[q];
            return FLIPNET_OK;
        }
    }
    return FLIPNET_E_ARG;
}
