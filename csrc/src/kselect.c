/* flipnet core: which kernel set runs (docs/speed.md). The sets this build has, fastest first;
 * the first one this CPU runs is the default. x86-64 sets are checked against the CPU at run
 * time (the compiler's cpu feature builtins); the aarch64 "neon-dot" set is compiled in when the
 * build targets the dot product extension, and may be chosen by a caller that knows the CPU has
 * it (flipnet's Python bindings read it from the OS). */
#include "fn_internal.h"

static int fn_cpu_has(const fn_kernels *k)
{
#if FN_HAVE_X86
    __builtin_cpu_init();
    if (k == &fn_kernels_avx512vnni)
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
    if (k == &fn_kernels_avx2) return __builtin_cpu_supports("avx2");
#endif
    (void)k;
    return 1;
}

static const fn_kernels *const fn_sets[] = {
#if FN_HAVE_X86
    &fn_kernels_avx512vnni,
    &fn_kernels_avx2,
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
