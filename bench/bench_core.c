/* Benchmark of the flipnet C core (not a test): ns per sample for forward and training on
 * 784-256-256-10 ternary, batch 64, plus the scratch sizes of the reference configurations.
 *
 *   bench_core [images.u8 labels.u8 [steps]]
 *
 * images.u8: N x 784 raw uint8 pixels, labels.u8: N raw uint8 labels (e.g. MNIST unpacked with
 * a Python one-liner). Without files it uses random "digit-like" inputs.
 * Training: weighted vote, margin 64, k = 0.2% per layer, p 0.3 -> 0.01 linearly, recalibrated
 * every 50 steps; "train acc" is the running accuracy of the training batches. */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "flipnet/flipnet.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts); /* CPU time: the machine is shared */
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static size_t scratch_of(const uint32_t *sizes, uint32_t L, uint32_t batch, int training,
                         size_t *weights)
{
    flipnet_arch a;
    flipnet_model m;
    size_t wb = 0, sb = 0;
    void *w;
    uint32_t l;
    memset(&a, 0, sizeof(a));
    a.n_layers = L;
    for (l = 0; l <= L; l++) a.sizes[l] = sizes[l];
    for (l = 0; l < L; l++) a.kinds[l] = FLIPNET_TERNARY;
    flipnet_model_size(&a, &wb);
    w = malloc(wb);
    flipnet_model_init(&m, &a, w, wb, 1);
    flipnet_scratch_size(&m, batch, training, &sb);
    free(w);
    if (weights) *weights = wb;
    return sb;
}

int main(int argc, char **argv)
{
    const uint32_t sizes[] = {784, 256, 256, 10}, small[] = {784, 128, 10};
    const uint32_t B = 64;
    uint32_t steps = argc > 3 ? (uint32_t)atoi(argv[3]) : 200, N = 0, l, s;
    uint8_t *img = NULL, *lab = NULL;
    int8_t *x;
    uint16_t *y, *pred;
    flipnet_arch a;
    flipnet_model m;
    flipnet_step_params pr;
    flipnet_step_stats st;
    size_t wb = 0, sb = 0, i;
    void *w, *scratch;
    double t0, t1;
    uint64_t correct = 0, errors = 0, changes = 0;

    printf("scratch bytes (training): 784-256-256-10 B=64: %zu\n", scratch_of(sizes, 3, 64, 1, NULL));
    {
        size_t s8 = scratch_of(small, 2, 8, 1, NULL), s16 = scratch_of(small, 2, 16, 1, &wb);
        printf("scratch bytes (training): 784-128-10 B=8: %zu, B=16: %zu (weights %zu)\n", s8, s16, wb);
    }
    printf("scratch bytes (forward):  784-128-10 B=1: %zu, 784-256-256-10 B=64: %zu\n",
           scratch_of(small, 2, 1, 0, NULL), scratch_of(sizes, 3, 64, 0, NULL));

    if (argc > 2) {
        FILE *f = fopen(argv[1], "rb"), *g = fopen(argv[2], "rb");
        long len;
        if (!f || !g) { fprintf(stderr, "cannot open data files\n"); return 1; }
        fseek(f, 0, SEEK_END);
        len = ftell(f);
        fseek(f, 0, SEEK_SET);
        N = (uint32_t)(len / 784);
        img = malloc((size_t)N * 784u);
        lab = malloc(N);
        if (fread(img, 784, N, f) != N || fread(lab, 1, N, g) != N) { fprintf(stderr, "short read\n"); return 1; }
        fclose(f);
        fclose(g);
    } else {
        N = 6400;
        img = malloc((size_t)N * 784u);
        lab = malloc(N);
        for (i = 0; i < (size_t)N; i++) {
            uint32_t p, c = (uint32_t)(flipnet_rand(7, 1, i) % 10u);
            lab[i] = (uint8_t)c;
            for (p = 0; p < 784u; p++) {
                uint64_t u = flipnet_rand(7, 2, i * 784u + p);
                int on = ((p * 7u + c * 131u) % 97u) < 18u && (u & 3u); /* class-dependent blobs */
                img[i * 784u + p] = on ? (uint8_t)(128u + (u >> 40) % 128u) : 0u;
            }
        }
    }
    x = malloc((size_t)N * 784u);
    y = malloc(sizeof(uint16_t) * N);
    pred = malloc(sizeof(uint16_t) * B);
    for (i = 0; i < (size_t)N * 784u; i++) {
        int v = (int)img[i] - 128;
        x[i] = (int8_t)(v < -127 ? -127 : v);
    }
    for (i = 0; i < N; i++) y[i] = lab[i];

    memset(&a, 0, sizeof(a));
    a.n_layers = 3;
    for (l = 0; l <= 3; l++) a.sizes[l] = sizes[l];
    for (l = 0; l < 3; l++) a.kinds[l] = FLIPNET_TERNARY;
    flipnet_model_size(&a, &wb);
    w = malloc(wb);
    if (flipnet_model_init(&m, &a, w, wb, 1) != FLIPNET_OK) return 1;
    m.rule.vote = FLIPNET_VOTE_WEIGHTED;
    m.rule.margin = 64;
    flipnet_scratch_size(&m, B, 1, &sb);
    scratch = malloc(sb);
    if (flipnet_calibrate(&m, x, B, scratch, sb) != FLIPNET_OK) return 1;
    printf("shifts after calibration: %u %u\n", m.layers[0].shift, m.layers[1].shift);

    /* forward */
    t0 = now_s();
    for (s = 0; s < steps; s++) {
        uint32_t b0 = (s * B) % (N - B + 1u);
        flipnet_predict(&m, x + (size_t)b0 * 784u, B, pred, scratch, sb);
    }
    t1 = now_s();
    printf("forward (predict), batch %u: %.0f ns/sample\n", B, 1e9 * (t1 - t0) / ((double)steps * B));

    /* training: k = 0.2% of each layer, p from 0.3 down to 0.01, recalibrated every 50 steps */
    memset(&pr, 0, sizeof(pr));
    for (l = 0; l < 3; l++) {
        pr.k[l] = sizes[l] * sizes[l + 1] / 500u;
        pr.p_q16[l] = 19661;
    }
    t0 = now_s();
    for (s = 0; s < steps; s++) {
        uint32_t b0 = (s * B) % (N - B + 1u);
        int rc;
        if (s % 50u == 0u) flipnet_calibrate(&m, x + (size_t)b0 * 784u, B, scratch, sb);
        for (l = 0; l < 3; l++) pr.p_q16[l] = (uint32_t)(19661u - (uint64_t)(19661u - 655u) * s / steps);
        rc = flipnet_train_step(&m, x + (size_t)b0 * 784u, y + b0, B, &pr, &st, scratch, sb);
        if (rc != FLIPNET_OK) { fprintf(stderr, "train_step: %s\n", flipnet_status_str(rc)); return 1; }
        correct += st.correct;
        errors += st.errors;
        for (l = 0; l < 3; l++) changes += st.changes[l];
    }
    t1 = now_s();
    printf("train_step, batch %u, %u steps: %.0f ns/sample (train acc %.3f, error rate %.3f, "
           "%.1f changes/step)\n",
           B, steps, 1e9 * (t1 - t0) / ((double)steps * B), (double)correct / ((double)steps * B),
           (double)errors / ((double)steps * B), (double)changes / steps);
    free(w);
    free(scratch);
    free(x);
    free(y);
    free(pred);
    free(img);
    free(lab);
    return 0;
}
