/* flipnet core: the training rule of the integer (ternary / binary) layers, docs/rule.md
 * sections 2-5 and 7.1: the output error, the error passed down, the vote, top-k selection and
 * the update, with or without hysteresis counters.
 *
 * Memory: the vote is never held as an n x m array. For each layer it is computed output row
 * by output row, twice: pass 1 histograms the keys of the eligible weights, pass 2 recomputes
 * the row and applies the changes above the threshold (with hysteresis counters, rule.md 7.1,
 * pass 2 reads the counters instead of recomputing the vote). Errors are stored transposed, (m, B),
 * so the samples with a nonzero error on a row are one contiguous scan away. */
#include "fn_internal.h"

/* The vote's working memory, in the integer kinds' workspace of the scratch plan. */
typedef struct {
    int32_t *P, *N; /* narrow: S then E (int16) and A (int16) in N, P unused (may be 0 bytes);
                       wide: S then E (int32) in P, A (int32) in N */
    uint32_t *hist;
    uint8_t *rowmax;
    uint16_t *list;
    int8_t *dl;
    int16_t *wrow;
    int16_t *afull;  /* sum over the layer's error samples U of |t| (HURT, narrow only) */
    uint16_t *ulist; /* U: samples with a nonzero error somewhere in this layer */
    uint16_t *clist; /* U minus the samples of the current row */
    int8_t *hbuf;    /* one row of counters narrower than 8 bits, unpacked */
    uint32_t ucnt;   /* |U| */
    int use_afull;   /* afull is valid for this layer */
    const int16_t *e16; /* E of the current row: int16 (narrow) ... */
    const int32_t *e32; /* ... or int32 (wide) */
} fn_vote_mem;
/* Samples b with drow[b] != 0: list[c] = b, dl[c] = drow[b]; returns their count. Branch-free
 * (every sample is written at the current end, which moves on only for a nonzero error): the
 * errors' pattern is data, not something a branch predictor can learn. list and dl have room
 * for batch entries. */
static uint32_t fn_row_list(const int8_t *drow, uint32_t batch, uint16_t *list, int8_t *dl)
{
    uint32_t b, cnt = 0;
    for (b = 0; b < batch; b++) {
        list[cnt] = (uint16_t)b;
        dl[cnt] = drow[b];
        cnt += (uint32_t)(drow[b] != 0);
    }
    return cnt;
}

/*
 * docs/rule.md section 3: error at layer l's inputs from the error at its outputs, for inputs
 * [i0, i1) (a part of the layer's inputs; i0 a multiple of 32). cur (m, B) -> nxt (n, B); a_prev
 * (B, n) is layer l's input activation; g (B, n) scratch (these inputs' columns only).
 * |G| <= m, so G is int16 when m <= 32767 (fn_plan_make sizes it the same way), else int32.
 */
#define FN_BACKPROP(NAME, T)                                                                       \
    FN_HOT static void NAME(const flipnet_model *model, uint32_t l, const int8_t *cur,            \
                            uint32_t batch, uint32_t i0, uint32_t i1, const int8_t *a_prev,        \
                            int8_t *nxt, T *g, uint16_t *list, int8_t *dl, int16_t *wrow)          \
    {                                                                                              \
        const flipnet_layer *L = &model->layers[l];                                                \
        uint32_t n = L->n, m = L->m, w = i1 - i0, j, c, b, i;                                      \
        for (b = 0; b < batch; b++) memset(g + (size_t)b * n + i0, 0, sizeof(T) * w);              \
        for (j = 0; j < m; j++) {                                                                  \
            uint32_t cnt = fn_row_list(cur + (size_t)j * batch, batch, list, dl);                 \
            if (cnt == 0) continue;                                                                \
            fn_unpack_row_s16(fn_row(model, L, j) + i0 / 8u, L->kind, w, L->bpr, wrow);           \
            for (c = 0; c < cnt; c++) {                                                            \
                T *restrict gb = g + (size_t)list[c] * n + i0;                                     \
                const int16_t *restrict wr = wrow;                                                 \
                if (dl[c] > 0) {                                                                   \
                    for (i = 0; i < w; i++) gb[i] = (T)(gb[i] + wr[i]);                            \
                } else {                                                                           \
                    for (i = 0; i < w; i++) gb[i] = (T)(gb[i] - wr[i]);                            \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
        for (b = 0; b < batch; b++) {                                                              \
            const T *gb = g + (size_t)b * n;                                                       \
            const int8_t *ab = a_prev + (size_t)b * n;                                             \
            for (i = i0; i < i1; i++) {                                                            \
                int32_t v = gb[i];                                                                 \
                int8_t sg = (int8_t)((v > 0) - (v < 0));                                           \
                nxt[(size_t)i * batch + b] = (ab[i] != 127 && ab[i] != -127) ? sg : 0;             \
            }                                                                                      \
        }                                                                                          \
    }
FN_BACKPROP(fn_backprop16, int16_t)
FN_BACKPROP(fn_backprop32, int32_t)
#undef FN_BACKPROP

/*
 * Vote of one output row (docs/rule.md section 4) over the cnt samples with a nonzero error,
 * kept as two sums instead of P and N: with t = sign(x) (SIGN) or x (WEIGHTED),
 *   S[i] = sum_b d_b t_bi = P + N   and   A[i] = sum_b |t_bi| = P - N,
 * so P = (A + S) / 2 and N = (S - A) / 2 (exact: S and A have the same parity).
 * Narrow form: int16 sums when cnt * max|t| <= 32767 (always for batches up to 258), which
 * vectorizes twice as wide; wide form: int32. A is only needed by the HURT filter.
 */
FN_HOT static void fn_vote_sa16(const int8_t *x, uint32_t n, const uint16_t *list, const int8_t *dl,
                         uint32_t cnt, int weighted, int need_a, int16_t *restrict S,
                         int16_t *restrict A)
{
    uint32_t c = 0, i;
    memset(S, 0, sizeof(int16_t) * n);
    if (need_a) memset(A, 0, sizeof(int16_t) * n);
#if FN_DOT_DSP
    if (weighted && !need_a) { /* errors are +-1 (fn_int_output_error, BP_SIGN) */
        for (c = 0; c < cnt && (dl[c] == 1 || dl[c] == -1); c++) {}
        if (c == cnt) {
            fn_rows_acc16_dsp(S, x, n, list, dl, cnt);
            return;
        }
        c = 0;
    }
#endif
    /* two samples per pass over S and A: half the accumulator loads and stores */
    for (; c + 1u < cnt; c += 2u) {
        const int8_t *restrict x0 = x + (size_t)list[c] * n;
        const int8_t *restrict x1 = x + (size_t)list[c + 1u] * n;
        int16_t d0 = dl[c], d1 = dl[c + 1u];
        if (weighted) {
            for (i = 0; i < n; i++) S[i] = (int16_t)(S[i] + d0 * x0[i] + d1 * x1[i]);
            if (need_a) {
                for (i = 0; i < n; i++) {
                    int16_t v0 = x0[i], v1 = x1[i];
                    A[i] = (int16_t)(A[i] + (v0 < 0 ? -v0 : v0) + (v1 < 0 ? -v1 : v1));
                }
            }
        } else {
            for (i = 0; i < n; i++) {
                int16_t v0 = x0[i], v1 = x1[i];
                S[i] = (int16_t)(S[i] + d0 * ((v0 > 0) - (v0 < 0)) + d1 * ((v1 > 0) - (v1 < 0)));
            }
            if (need_a) {
                for (i = 0; i < n; i++) A[i] = (int16_t)(A[i] + (x0[i] != 0) + (x1[i] != 0));
            }
        }
    }
    for (; c < cnt; c++) {
        const int8_t *restrict xb = x + (size_t)list[c] * n;
        int16_t d = dl[c];
        if (weighted) {
            for (i = 0; i < n; i++) S[i] = (int16_t)(S[i] + d * xb[i]);
            if (need_a) {
                for (i = 0; i < n; i++) {
                    int16_t v = xb[i];
                    A[i] = (int16_t)(A[i] + (v < 0 ? -v : v));
                }
            }
        } else {
            for (i = 0; i < n; i++) {
                int16_t v = xb[i];
                S[i] = (int16_t)(S[i] + d * ((v > 0) - (v < 0)));
            }
            if (need_a) {
                for (i = 0; i < n; i++) A[i] = (int16_t)(A[i] + (xb[i] != 0));
            }
        }
    }
}

static void fn_vote_sa32(const int8_t *x, uint32_t n, const uint16_t *list, const int8_t *dl,
                         uint32_t cnt, int weighted, int need_a, int32_t *restrict S,
                         int32_t *restrict A)
{
    uint32_t c, i;
    memset(S, 0, sizeof(int32_t) * n);
    if (need_a) memset(A, 0, sizeof(int32_t) * n);
    for (c = 0; c < cnt; c++) {
        const int8_t *restrict xb = x + (size_t)list[c] * n;
        int32_t d = dl[c];
        for (i = 0; i < n; i++) {
            int32_t v = xb[i], t = weighted ? v : (v > 0) - (v < 0);
            S[i] += d * t;
            if (need_a) A[i] += t < 0 ? -t : t;
        }
    }
}

/* E of one row, kept only where the weight is eligible: E (or 0) overwrites S in place, with
 * P = (A + S) / 2, N = (S - A) / 2; HURT: E = N (w = +1), P (w = -1), S = P + N (w = 0);
 * NET: E = S. Eligible: E != 0 and ternary w != sign(E), binary w == -sign(E).
 * |E| <= max(|S|, (|S| + A) / 2), so E fits int16 when S and A do.
 * One straight-line loop per (filter, kind), so each vectorizes. */
#define FN_VOTE_E(NAME, T, HURT, TERNARY)                                                         \
    FN_HOT static void NAME(T *s, const T *restrict a, const int16_t *restrict w, uint32_t n)            \
    {                                                                                              \
        uint32_t i;                                                                                \
        (void)a;                                                                                   \
        for (i = 0; i < n; i++) {                                                                  \
            int32_t sv = s[i], wi = w[i], ev, d, elig;                                             \
            if (HURT) {                                                                            \
                int32_t av = a[i], pv = (av + sv) / 2, nv = (sv - av) / 2;                         \
                ev = wi > 0 ? nv : (wi < 0 ? pv : sv);                                             \
            } else {                                                                               \
                ev = sv;                                                                           \
            }                                                                                      \
            d = (ev > 0) - (ev < 0);                                                               \
            elig = TERNARY ? (ev != 0) & (wi != d) : (ev != 0) & (wi == -d);                       \
            s[i] = (T)(elig ? ev : 0);                                                             \
        }                                                                                          \
    }
FN_VOTE_E(fn_vote_e16_ht, int16_t, 1, 1)
FN_VOTE_E(fn_vote_e16_hb, int16_t, 1, 0)
FN_VOTE_E(fn_vote_e16_nt, int16_t, 0, 1)
FN_VOTE_E(fn_vote_e16_nb, int16_t, 0, 0)
#undef FN_VOTE_E

static void fn_vote_e32_inplace(int32_t *s, const int32_t *a, const int16_t *w, uint32_t n,
                                int hurt, int ternary)
{
    uint32_t i;
    for (i = 0; i < n; i++) {
        int32_t sv = s[i], wi = w[i], ev = sv, d, elig;
        if (hurt && wi != 0) ev = wi > 0 ? (sv - a[i]) / 2 : (sv + a[i]) / 2;
        d = (ev > 0) - (ev < 0);
        elig = ternary ? (ev != 0) & (wi != d) : (ev != 0) & (wi == -d);
        s[i] = elig ? ev : 0;
    }
}

/* A[i] = afull[i] - sum over U \ list_j of |t|: cheaper than summing list_j when the row's
 * error samples are most of U (hidden layers: nearly every error sample errs on every unit). */
FN_HOT static void fn_vote_a16_complement(const int8_t *x, uint32_t n, const int8_t *drow,
                                   int weighted, const fn_vote_mem *mem, int16_t *restrict A)
{
    uint32_t c, i, ccnt = 0;
    const int16_t *restrict af = mem->afull;
    for (c = 0; c < mem->ucnt; c++) {
        if (drow[mem->ulist[c]] == 0) mem->clist[ccnt++] = mem->ulist[c];
    }
    for (i = 0; i < n; i++) A[i] = af[i];
    for (c = 0; c < ccnt; c++) {
        const int8_t *restrict xb = x + (size_t)mem->clist[c] * n;
        if (weighted) {
            for (i = 0; i < n; i++) {
                int16_t v = xb[i];
                A[i] = (int16_t)(A[i] - (v < 0 ? -v : v));
            }
        } else {
            for (i = 0; i < n; i++) A[i] = (int16_t)(A[i] - (xb[i] != 0));
        }
    }
}

/* E (eligible only) of row j of layer L, at mem->e16 or mem->e32; drow: the row's errors (B). */
/*
 * docs/rule.md section 5: the threshold key K of a layer's histogram, 0 when every eligible
 * weight is selected (eligible <= k). The t = hist[K] tied weights fill the r remaining slots
 * with probability *p_tie = p_big * r / t each (1 <= r <= t).
 */
static uint32_t fn_threshold(const uint32_t *hist, uint64_t eligible, uint64_t k, uint64_t p_big,
                             uint64_t *p_tie)
{
    uint64_t cum = 0;
    uint32_t key;
    *p_tie = 0;
    if (eligible <= k) return 0;
    for (key = FN_KEY_BINS - 1u; key >= 1u; key--) {
        uint64_t h = hist[key];
        if (cum + h >= k) {
            *p_tie = p_big * (k - cum) / h;
            return key;
        }
        cum += h;
    }
    return 0; /* not reached: eligible > k means the loop finds K */
}

/* After pass 1 (docs/rule.md 5): the eligible count from the histogram, no changes yet, and
 * the threshold K with its tie probability; returns 0 when nothing can change (k = 0, p = 0
 * or no eligible weight). */
static int fn_select_start(const uint32_t *hist, uint32_t k, uint64_t p_big,
                           uint32_t *eligible_out, uint32_t *changes_out, uint32_t *K,
                           uint64_t *p_tie)
{
    uint64_t eligible = 0;
    uint32_t key;
    for (key = 1; key < FN_KEY_BINS; key++) eligible += hist[key];
    *eligible_out = (uint32_t)eligible;
    *changes_out = 0;
    if (k == 0 || eligible == 0 || p_big == 0) return 0;
    *K = fn_threshold(hist, eligible, k, p_big, p_tie);
    return 1;
}

/* Change weight i of a packed row (planes pos, neg) one step in direction dir (+1 / -1):
 * ternary w -> w + dir (eligibility guarantees w != dir), binary: flip the sign. */
static inline void fn_move_weight(uint8_t *pos, uint8_t *neg, uint32_t i, int32_t w, int32_t dir,
                                  int ternary)
{
    uint8_t bit = (uint8_t)(1u << (i & 7u));
    uint32_t wd = i >> 3;
    if (ternary) {
        int32_t nw = w + dir;
        pos[wd] &= (uint8_t)~bit;
        neg[wd] &= (uint8_t)~bit;
        if (nw > 0) pos[wd] |= bit;
        else if (nw < 0) neg[wd] |= bit;
    } else {
        neg[wd] ^= bit;
    }
}

static void fn_vote_row(const flipnet_model *model, const flipnet_layer *L, uint32_t j,
                        const int8_t *x, const int8_t *drow, uint32_t cnt, fn_vote_mem *mem)
{
    int weighted = model->rule.vote == FLIPNET_VOTE_WEIGHTED;
    int hurt = model->rule.filter == FLIPNET_FILTER_HURT;
    int ternary = L->kind == FLIPNET_TERNARY;
    uint32_t n = L->n;
    fn_unpack_row_s16(fn_row(model, L, j), L->kind, n, L->bpr, mem->wrow);
    if ((uint64_t)cnt * (weighted ? 127u : 1u) <= 32767u) {
        int16_t *s16 = (int16_t *)mem->N, *a16 = (int16_t *)mem->N + n; /* both fit in N */
        if (hurt && mem->use_afull && 2u * cnt > mem->ucnt) {
            fn_vote_sa16(x, n, mem->list, mem->dl, cnt, weighted, 0, s16, a16);
            fn_vote_a16_complement(x, n, drow, weighted, mem, a16);
        } else {
            fn_vote_sa16(x, n, mem->list, mem->dl, cnt, weighted, hurt, s16, a16);
        }
        if (hurt) {
            if (ternary) fn_vote_e16_ht(s16, a16, mem->wrow, n);
            else fn_vote_e16_hb(s16, a16, mem->wrow, n);
        } else {
            if (ternary) fn_vote_e16_nt(s16, a16, mem->wrow, n);
            else fn_vote_e16_nb(s16, a16, mem->wrow, n);
        }
        mem->e16 = s16;
        mem->e32 = NULL;
    } else {
        /* wide (rare: batches over 258 with the weighted vote): S int32 in P, A in N, and E
         * overwrites S in place (no restrict: same index read before written) */
        fn_vote_sa32(x, n, mem->list, mem->dl, cnt, weighted, hurt, mem->P, mem->N);
        fn_vote_e32_inplace(mem->P, mem->N, mem->wrow, n, hurt, ternary);
        mem->e16 = NULL;
        mem->e32 = mem->P;
    }
}

/* Histogram the keys of one row's nonzero (eligible) E; returns the row's largest key. */
static uint32_t fn_hist_row16(const int16_t *e, uint32_t n, uint32_t *hist)
{
    uint32_t i, key, mx = 0;
    for (i = 0; i < n; i++) {
        int32_t v = e[i];
        if (v != 0) {
            key = fn_key((uint32_t)(v < 0 ? -v : v));
            hist[key]++;
            mx = key > mx ? key : mx;
        }
    }
    return mx;
}

/* ---- the update of a layer, in parts by output rows (docs/speed.md) ------------------------ */
/* What every part of a layer's update shares: the layer, its input and errors, the vote's
 * memory of the whole layer (rowmax, U, afull) and the selection; each part has its own
 * workspace (fn_ws: sample lists, row sums, histogram, unpacked row). */
typedef struct {
    flipnet_model *model;
    uint32_t l, batch, parts;
    const int8_t *x, *d;
    const fn_ctx *c;
    uint8_t *rowmax;
    int16_t *afull;
    uint16_t *ulist;
    uint32_t ucnt;
    int use_afull, ternary, weighted, stochastic;
    /* counters (rule.md 7.1): shift, width, decay, threshold, largest value, RNG bases */
    uint32_t cshift, bits, decay;
    int32_t tau, hmax;
    uint64_t cbase;
    /* selection (rule.md 5): threshold key, smallest selected key and value, probabilities */
    uint32_t K, kmin, vmin;
    uint64_t p_big, p_tie, fbase;
    uint64_t res0[2]; /* thread 0's results (threads 1..: their fn_ws.res) */
} fn_upd;

static void fn_upd_mem(const fn_upd *u, uint32_t thread, fn_vote_mem *mem, uint64_t **res)
{
    fn_ws ws;
    fn_ws_get(u->c, thread, &ws);
    mem->P = ws.P;
    mem->N = ws.N;
    mem->hist = ws.hist;
    mem->rowmax = u->rowmax;
    mem->list = ws.list;
    mem->dl = ws.dl;
    mem->wrow = ws.wrow;
    mem->afull = u->afull;
    mem->ulist = u->ulist;
    mem->clist = ws.clist;
    mem->hbuf = ws.hbuf;
    mem->ucnt = u->ucnt;
    mem->use_afull = u->use_afull;
    mem->e16 = NULL;
    mem->e32 = NULL;
    *res = fn_res(u->c, thread, (uint64_t *)u->res0);
}

/* Every thread's histogram zeroed (before pass 1). */
static void fn_upd_clear_hist(const fn_upd *u)
{
    fn_vote_mem mp;
    uint64_t *r;
    uint32_t t, nt = fn_threads(u->c);
    for (t = 0; t < nt; t++) {
        fn_upd_mem(u, t, &mp, &r);
        memset(mp.hist, 0, sizeof(uint32_t) * FN_KEY_BINS);
    }
}

/* Sum of the threads' histograms into thread 0's; the sum of their res[0] (fixed order;
 * integer sums are the same in any order). */
static uint32_t *fn_upd_merge_hist(const fn_upd *u)
{
    fn_vote_mem m0, mp;
    uint64_t *r;
    uint32_t t, key, nt = fn_threads(u->c);
    fn_upd_mem(u, 0, &m0, &r);
    for (t = 1; t < nt; t++) {
        fn_upd_mem(u, t, &mp, &r);
        for (key = 0; key < FN_KEY_BINS; key++) m0.hist[key] += mp.hist[key];
    }
    return m0.hist;
}
static uint32_t fn_upd_sum_res(const fn_upd *u)
{
    uint64_t total = 0;
    uint32_t t, nt = fn_threads(u->c);
    for (t = 0; t < nt; t++) total += fn_res(u->c, t, (uint64_t *)u->res0)[0];
    return (uint32_t)total;
}

/* rule.md 4-5, pass 1 for rows of part `part`: the part's histogram of key(|E|) of the eligible
 * weights, and each row's largest key. */
static void fn_vote_pass1(void *arg, uint32_t part, uint32_t thread)
{
    const fn_upd *u = (const fn_upd *)arg;
    const flipnet_model *model = u->model;
    const flipnet_layer *L = &model->layers[u->l];
    uint32_t n = L->n, batch = u->batch, j, j0, j1, i, key;
    fn_vote_mem mem;
    uint64_t *res;
    fn_upd_mem(u, thread, &mem, &res);
    fn_part_range(L->m, part, u->parts, &j0, &j1);
    for (j = j0; j < j1; j++) {
        const int8_t *drow = u->d + (size_t)j * batch;
        uint32_t cnt = fn_row_list(drow, batch, mem.list, mem.dl), mx = 0;
        if (cnt != 0) {
            fn_vote_row(model, L, j, u->x, drow, cnt, &mem);
            if (mem.e16 != NULL) {
                mx = fn_hist_row16(mem.e16, n, mem.hist);
            } else {
                for (i = 0; i < n; i++) {
                    int32_t e = mem.e32[i];
                    if (e != 0) {
                        key = fn_key(e > 0 ? (uint32_t)e : (uint32_t)(-e));
                        mem.hist[key]++;
                        mx = key > mx ? key : mx;
                    }
                }
            }
        }
        u->rowmax[j] = (uint8_t)mx;
    }
}

/* Pass 2 for the part's rows: recompute the rows that reach the threshold and apply the
 * changes; res[0] = the part's changes. */
static void fn_vote_pass2(void *arg, uint32_t part, uint32_t thread)
{
    const fn_upd *u = (const fn_upd *)arg;
    flipnet_model *model = u->model;
    const flipnet_layer *L = &model->layers[u->l];
    uint32_t n = L->n, batch = u->batch, j, j0, j1, i, changes = 0;
    int ternary = u->ternary;
    fn_vote_mem mem;
    uint64_t *res;
    fn_upd_mem(u, thread, &mem, &res);
    fn_part_range(L->m, part, u->parts, &j0, &j1);
    for (j = j0; j < j1; j++) {
        uint32_t cnt;
        uint8_t *row, *pos, *neg;
        const int16_t *e16, *wr;
        const int32_t *e32;
        if (u->rowmax[j] < u->kmin) continue;
        cnt = fn_row_list(u->d + (size_t)j * batch, batch, mem.list, mem.dl);
        fn_vote_row(model, L, j, u->x, u->d + (size_t)j * batch, cnt, &mem);
        /* locals: the byte stores into the row may alias anything, so loads through mem
         * would be repeated on every input */
        e16 = mem.e16;
        e32 = mem.e32;
        wr = mem.wrow;
        row = fn_row_w(model, L, j);
        pos = row;
        neg = ternary ? row + L->bpr : row;
        for (i = 0; i < n; i++) {
            int32_t e = e16 != NULL ? e16[i] : e32[i];
            uint32_t v = e > 0 ? (uint32_t)e : (uint32_t)(-e);
            uint64_t thr, rnd;
            if (v < u->vmin) continue; /* also skips e == 0 (vmin >= 1) */
            thr = fn_key(v) > u->K ? u->p_big : u->p_tie;
            rnd = fn_rand_at(u->fbase, (uint64_t)j * n + i) >> 32;
            if (rnd < thr) {
                fn_move_weight(pos, neg, i, wr[i], e > 0 ? 1 : -1, ternary);
                changes++;
            }
        }
    }
    res[0] += changes;
}

/* docs/rule.md sections 4-5 for layer l: the layer's error samples U (and, for the HURT
 * filter, sum |t| over U), then pass 1 (histogram), selection, pass 2 (changes). */
static void fn_vote_update(fn_upd *u, uint32_t k, uint32_t *changes_out, uint32_t *eligible_out)
{
    const flipnet_layer *L = &u->model->layers[u->l];
    uint32_t n = L->n, m = L->m, batch = u->batch, b, j, c, i;
    uint32_t *hist;
    {
        u->ucnt = 0;
        for (b = 0; b < batch; b++) {
            for (j = 0; j < m; j++) {
                if (u->d[(size_t)j * batch + b] != 0) {
                    u->ulist[u->ucnt++] = (uint16_t)b;
                    break;
                }
            }
        }
        u->use_afull = u->model->rule.filter == FLIPNET_FILTER_HURT && u->ucnt >= 4u &&
                       (uint64_t)u->ucnt * (u->weighted ? 127u : 1u) <= 32767u;
        if (u->use_afull) {
            int16_t *restrict af = u->afull;
            memset(af, 0, sizeof(int16_t) * n);
            for (c = 0; c < u->ucnt; c++) {
                const int8_t *restrict xb = u->x + (size_t)u->ulist[c] * n;
                if (u->weighted) {
                    for (i = 0; i < n; i++) {
                        int16_t v = xb[i];
                        af[i] = (int16_t)(af[i] + (v < 0 ? -v : v));
                    }
                } else {
                    for (i = 0; i < n; i++) af[i] = (int16_t)(af[i] + (xb[i] != 0));
                }
            }
        }
    }
    fn_upd_clear_hist(u);
    fn_run_parts(u->c, fn_vote_pass1, u, u->parts);
    hist = fn_upd_merge_hist(u);
    if (!fn_select_start(hist, k, u->p_big, eligible_out, changes_out, &u->K, &u->p_tie)) return;
    u->kmin = u->K == 0 ? 1u : u->K;
    u->vmin = fn_key_min(u->kmin); /* key(|E|) >= kmin  <=>  |E| >= vmin */
    u->fbase = fn_rand_base(u->model->seed, fn_stream(FN_PURPOSE_FLIP, u->l, u->model->steps));
    fn_res_clear(u->c, u->res0);
    fn_run_parts(u->c, fn_vote_pass2, u, u->parts);
    *changes_out = fn_upd_sum_res(u);
}

/* H = clamp(H + inc, -hmax, hmax) for the n counters of one row (docs/rule.md 7.1, 7.2):
 * NEAREST inc = (E + 2^(c-1)) >> c for c >= 1, E for c = 0; STOCHASTIC inc = q, plus 1 when
 * f != 0 and u < f 2^(32-c), where q = E >> c (floor), f = E - q 2^c (the low c bits of E) and
 * u the top 32 bits of the COUNTER stream's draw at idx0 + i (drawn only when f != 0), so that
 * the mean of inc is E / 2^c exactly. |E| <= 65535 * 127 < 2^23: E + 2^30 fits int32. */
#define FN_COUNTER_ADD_NEAREST(NAME, T)                                                            \
    FN_HOT static void NAME(int8_t *restrict h, const T *restrict e, uint32_t n, uint32_t c,        \
                            int32_t hmax)                                                          \
    {                                                                                              \
        uint32_t i;                                                                                \
        int32_t half = c != 0u ? (int32_t)1 << (c - 1u) : 0;                                       \
        for (i = 0; i < n; i++) {                                                                  \
            int32_t v = h[i] + fn_floor_shift((int32_t)e[i] + half, c);                            \
            h[i] = (int8_t)(v > hmax ? hmax : (v < -hmax ? -hmax : v));                            \
        }                                                                                          \
    }
FN_COUNTER_ADD_NEAREST(fn_counter_add_near16, int16_t)
FN_COUNTER_ADD_NEAREST(fn_counter_add_near32, int32_t)
#undef FN_COUNTER_ADD_NEAREST

/* The top 32 bits of fn_mix64(z) (fn_internal.h): the last xor-shift's low half is not needed. */
static inline uint32_t fn_mix64_top(uint64_t z)
{
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return (uint32_t)(z >> 32) ^ (uint32_t)(z >> 63);
}

/* STOCHASTIC: the draws' arguments base + (idx0 + i + 1) gamma advance by gamma (fn_rand_at),
 * and only their top 32 bits are compared: f 2^(32-c) < 2^32 for f < 2^c. */
#define FN_COUNTER_ADD_STOCH(NAME, T)                                                              \
    FN_HOT static void NAME(int8_t *restrict h, const T *restrict e, uint32_t n, uint32_t c,        \
                            int32_t hmax, uint64_t base, uint64_t idx0)                            \
    {                                                                                              \
        const uint64_t gamma = UINT64_C(0x9E3779B97F4A7C15);                                       \
        uint64_t z = base + (idx0 + 1u) * gamma;                                                   \
        uint32_t i, low = (1u << c) - 1u;                                                          \
        for (i = 0; i < n; i++, z += gamma) {                                                      \
            int32_t ev = e[i], inc = fn_floor_shift(ev, c), v;                                     \
            uint32_t f = (uint32_t)ev & low;                                                       \
            if (f != 0u && fn_mix64_top(z) < (f << (32u - c))) inc++;                              \
            v = h[i] + inc;                                                                        \
            h[i] = (int8_t)(v > hmax ? hmax : (v < -hmax ? -hmax : v));                            \
        }                                                                                          \
    }
FN_COUNTER_ADD_STOCH(fn_counter_add_stoch16, int16_t)
FN_COUNTER_ADD_STOCH(fn_counter_add_stoch32, int32_t)
#undef FN_COUNTER_ADD_STOCH

static void fn_counter_add(int8_t *h, const int16_t *e16, const int32_t *e32, uint32_t n,
                           uint32_t c, int32_t hmax, int stochastic, uint64_t base, uint64_t idx0)
{
    if (!stochastic || c == 0u) { /* straight loops that vectorize (c = 0: inc = E, half = 0) */
        if (e16 != NULL) fn_counter_add_near16(h, e16, n, c, hmax);
        else fn_counter_add_near32(h, e32, n, c, hmax);
    } else if (e16 != NULL) {
        fn_counter_add_stoch16(h, e16, n, c, hmax, base, idx0);
    } else {
        fn_counter_add_stoch32(h, e32, n, c, hmax, base, idx0);
    }
}

/* Decay of one row's counters (docs/rule.md 7.1, counter_decay = r > 0): |H| -= |H| >> r. */
static void fn_counter_decay(int8_t *h, uint32_t n, uint32_t r)
{
    uint32_t i;
    for (i = 0; i < n; i++) {
        int32_t v = h[i], a = v < 0 ? -v : v;
        a -= a >> r;
        h[i] = (int8_t)(v < 0 ? -a : a);
    }
}

/* A row's counters as int8: in place for 8-bit counters, else unpacked into buf (and packed
 * back by fn_counter_row_done). */
static int8_t *fn_counter_row(uint8_t *area, uint32_t bits, uint32_t n, uint32_t j, int8_t *buf)
{
    uint8_t *row = area + (size_t)j * fn_counter_row_bytes(n, bits);
    if (bits == 8u) return (int8_t *)row;
    fn_counters_unpack(row, bits, n, buf);
    return buf;
}
static void fn_counter_row_done(uint8_t *area, uint32_t bits, uint32_t n, uint32_t j,
                                const int8_t *h)
{
    if (bits != 8u) fn_counters_pack(area + (size_t)j * fn_counter_row_bytes(n, bits), bits, n, h);
}

/* Eligibility of 32 weights from their counters' masks (up: H >= t, dn: H <= -t) and their
 * plane words: ternary p (+1 plane), q (-1 plane): up where w != +1, dn where w != -1; binary p
 * (the -1 plane): up where w = -1, dn where w = +1. */
static inline uint32_t fn_elig_word(uint32_t up, uint32_t dn, uint32_t p, uint32_t q, int ternary)
{
    return ternary ? (up & ~p) | (dn & ~q) : (up & p) | (dn & ~p);
}

/* docs/rule.md 7.1 (counters), pass 1 for the rows of part `part`: per row the net vote E
 * (same vote kernels, no n x m buffer) into the row's counters once, the decay, and the
 * histogram of key(|H|) of the eligible weights (threshold masks, 32 weights a word). */
static void fn_counter_pass1(void *arg, uint32_t part, uint32_t thread)
{
    const fn_upd *u = (const fn_upd *)arg;
    const flipnet_model *model = u->model;
    const flipnet_layer *L = &model->layers[u->l];
    const fn_kernels *kern = fn_kern();
    uint32_t n = L->n, batch = u->batch, bits = u->bits, j, j0, j1, wi, key;
    uint32_t words = (n + 31u) / 32u, *up, *dn;
    uint8_t *hl = (uint8_t *)model->counters + fn_counter_offset(model, u->l);
    fn_vote_mem mem;
    uint64_t *res;
    fn_upd_mem(u, thread, &mem, &res);
    up = (uint32_t *)(void *)mem.wrow;
    dn = up + words;
    fn_part_range(L->m, part, u->parts, &j0, &j1);
    for (j = j0; j < j1; j++) {
        int8_t *hrow = fn_counter_row(hl, bits, n, j, mem.hbuf);
        uint32_t cnt = fn_row_list(u->d + (size_t)j * batch, batch, mem.list, mem.dl), mx = 0;
        const uint8_t *row;
        if (cnt != 0) { /* E = 0 on a row without errors: H unchanged (inc(0) = 0) */
            uint64_t idx0 = (uint64_t)j * n;
            if ((uint64_t)cnt * (u->weighted ? 127u : 1u) <= 32767u) {
                int16_t *s16 = (int16_t *)mem.N;
                fn_vote_sa16(u->x, n, mem.list, mem.dl, cnt, u->weighted, 0, s16, s16 + n);
                fn_counter_add(hrow, s16, NULL, n, u->cshift, u->hmax, u->stochastic, u->cbase,
                               idx0);
            } else {
                fn_vote_sa32(u->x, n, mem.list, mem.dl, cnt, u->weighted, 0, mem.P, mem.N);
                fn_counter_add(hrow, NULL, mem.P, n, u->cshift, u->hmax, u->stochastic, u->cbase,
                               idx0);
            }
        }
        if (u->decay != 0u) fn_counter_decay(hrow, n, u->decay);
        /* eligible: |H| >= tau and the weight can move H's way */
        kern->thresh_masks(hrow, n, u->tau, up, dn);
        row = fn_row(model, L, j);
        for (wi = 0; wi < words; wi++) {
            uint32_t e = fn_elig_word(up[wi], dn[wi], fn_plane_word(row, L->bpr, wi),
                                      u->ternary ? fn_plane_word(row + L->bpr, L->bpr, wi) : 0u,
                                      u->ternary);
            while (e != 0u) {
                int32_t h = hrow[32u * wi + fn_ctz32(e)];
                key = fn_key((uint32_t)(h < 0 ? -h : h));
                mem.hist[key]++;
                mx = key > mx ? key : mx;
                e &= e - 1u;
            }
        }
        u->rowmax[j] = (uint8_t)mx;
        fn_counter_row_done(hl, bits, n, j, hrow);
    }
}

/* Pass 2 for the part's rows: the changes from H (masks at vmin = max(tau, the smallest value
 * of key kmin): exactly the eligible weights at or above the threshold key), the counters of
 * the changed weights reset; res[0] = the part's changes. */
static void fn_counter_pass2(void *arg, uint32_t part, uint32_t thread)
{
    const fn_upd *u = (const fn_upd *)arg;
    flipnet_model *model = u->model;
    const flipnet_layer *L = &model->layers[u->l];
    const fn_kernels *kern = fn_kern();
    uint32_t n = L->n, bits = u->bits, j, j0, j1, wi, changes = 0;
    uint32_t words = (n + 31u) / 32u, *up, *dn;
    int ternary = u->ternary;
    uint8_t *hl = (uint8_t *)model->counters + fn_counter_offset(model, u->l);
    fn_vote_mem mem;
    uint64_t *res;
    fn_upd_mem(u, thread, &mem, &res);
    up = (uint32_t *)(void *)mem.wrow;
    dn = up + words;
    fn_part_range(L->m, part, u->parts, &j0, &j1);
    for (j = j0; j < j1; j++) {
        int8_t *hrow;
        uint8_t *roww, *pos, *neg;
        if (u->rowmax[j] < u->kmin) continue;
        hrow = fn_counter_row(hl, bits, n, j, mem.hbuf);
        roww = fn_row_w(model, L, j);
        pos = roww;
        neg = ternary ? roww + L->bpr : roww;
        kern->thresh_masks(hrow, n, (int32_t)u->vmin, up, dn);
        for (wi = 0; wi < words; wi++) {
            uint32_t pw = fn_plane_word(pos, L->bpr, wi);
            uint32_t qw = ternary ? fn_plane_word(neg, L->bpr, wi) : pw;
            uint32_t e = fn_elig_word(up[wi], dn[wi], pw, qw, ternary);
            while (e != 0u) {
                uint32_t b = fn_ctz32(e), i = 32u * wi + b;
                int32_t h = hrow[i];
                uint64_t thr = fn_key((uint32_t)(h < 0 ? -h : h)) > u->K ? u->p_big : u->p_tie;
                uint64_t rnd = fn_rand_at(u->fbase, (uint64_t)j * n + i) >> 32;
                e &= e - 1u;
                if (rnd < thr) {
                    int32_t w = ternary ? (int32_t)((pw >> b) & 1u) - (int32_t)((qw >> b) & 1u)
                                        : 1 - 2 * (int32_t)((pw >> b) & 1u);
                    fn_move_weight(pos, neg, i, w, h > 0 ? 1 : -1, ternary);
                    hrow[i] = 0;
                    changes++;
                }
            }
        }
        fn_counter_row_done(hl, bits, n, j, hrow);
    }
    res[0] += changes;
}

/* docs/rule.md 7.1 for layer l (counters): pass 1 adds each row's vote into its counters and
 * histograms key(|H|) of the eligible weights; pass 2 reads H (no vote recompute), selects as
 * section 5 and resets the counters of the weights that change. Runs even when the step has
 * no error (H alone can make weights eligible). Counters narrower than 8 bits are unpacked a
 * row at a time into the part's hbuf; the layer's threshold is min(tau, the width's largest
 * value). */
static void fn_counter_vote_update(fn_upd *u, uint32_t k, uint32_t *changes_out,
                                   uint32_t *eligible_out)
{
    const flipnet_rule *rule = &u->model->rule;
    uint32_t *hist;
    u->bits = u->model->counter_bits[u->l];
    u->hmax = fn_counter_max(u->bits);
    u->tau = rule->counter_threshold < u->hmax ? rule->counter_threshold : u->hmax;
    u->cshift = rule->counter_shift;
    u->decay = rule->counter_decay;
    /* a counter that cannot reach the rule's threshold counts coarser steps: its shift grows by
     * o, the largest with tau_l 2^o <= tau, so it moves its weight on the same evidence */
    while (u->cshift < 31u && ((uint32_t)u->tau << (u->cshift - rule->counter_shift + 1u)) <=
                                  (uint32_t)rule->counter_threshold)
        u->cshift++;
    u->stochastic = rule->counter_round == FLIPNET_ROUND_STOCHASTIC;
    u->cbase = fn_rand_base(u->model->seed, fn_stream(FN_PURPOSE_COUNTER, u->l, u->model->steps));
    fn_upd_clear_hist(u);
    fn_run_parts(u->c, fn_counter_pass1, u, u->parts);
    hist = fn_upd_merge_hist(u);
    if (!fn_select_start(hist, k, u->p_big, eligible_out, changes_out, &u->K, &u->p_tie)) return;
    u->kmin = u->K == 0 ? 1u : u->K;
    /* key(|H|) >= kmin  <=>  |H| >= fn_key_min(kmin); with tau: the masks' threshold */
    u->vmin = fn_key_min(u->kmin);
    if (u->vmin < (uint32_t)u->tau) u->vmin = (uint32_t)u->tau;
    if (u->vmin > (uint32_t)u->hmax) return; /* no counter reaches it (the histogram agrees) */
    u->fbase = fn_rand_base(u->model->seed, fn_stream(FN_PURPOSE_FLIP, u->l, u->model->steps));
    fn_res_clear(u->c, u->res0);
    fn_run_parts(u->c, fn_counter_pass2, u, u->parts);
    *changes_out = fn_upd_sum_res(u);
}

/* docs/rule.md section 3 for layer l: d (m, B) -> out (n, B), masked where a_prev is clamped;
 * in parts by inputs, 32-aligned (each part its own columns of the shared accumulator g and
 * its own rows of out). */
typedef struct {
    const flipnet_model *model;
    uint32_t l, parts;
    const int8_t *d, *a_prev;
    int8_t *out;
    const fn_ctx *c;
} fn_down;

static void fn_down_part(void *arg, uint32_t part, uint32_t thread)
{
    const fn_down *dn = (const fn_down *)arg;
    const fn_ctx *c = dn->c;
    uint32_t n = dn->model->layers[dn->l].n, blocks = (n + 31u) / 32u, i0, i1;
    fn_ws ws;
    fn_ws_get(c, thread, &ws);
    fn_part_range(blocks, part, dn->parts, &i0, &i1);
    i0 *= 32u;
    i1 = 32u * i1 < n ? 32u * i1 : n;
    if (i0 >= i1) return;
    if (dn->model->layers[dn->l].m <= 32767u) {
        fn_backprop16(dn->model, dn->l, dn->d, c->batch, i0, i1, dn->a_prev, dn->out,
                      (int16_t *)(void *)(c->sc + c->plan->g), ws.list, ws.dl, ws.wrow);
    } else {
        fn_backprop32(dn->model, dn->l, dn->d, c->batch, i0, i1, dn->a_prev, dn->out,
                      (int32_t *)(void *)(c->sc + c->plan->g), ws.list, ws.dl, ws.wrow);
    }
}

void fn_int_error_down(const flipnet_model *model, uint32_t l, const int8_t *d,
                       const int8_t *a_prev, int8_t *out, const fn_ctx *c)
{
    const flipnet_layer *L = &model->layers[l];
    fn_down dn;
    dn.model = model;
    dn.l = l;
    dn.d = d;
    dn.a_prev = a_prev;
    dn.out = out;
    dn.c = c;
    dn.parts = fn_parts(c, (uint64_t)L->n * L->m * c->batch, (L->n + 31u) / 32u);
    fn_run_parts(c, fn_down_part, &dn, dn.parts);
}

/* docs/rule.md section 2: the integer output error of int32 logits (B, C) into d8 (C, B),
 * transposed; counts correct and errors. */
void fn_int_output_error(const flipnet_model *model, const void *logits, const uint16_t *y,
                         uint32_t batch, int8_t *d8, float *df, flipnet_step_stats *s)
{
    uint32_t b, j, C = model->layers[model->n_layers - 1u].m;
    (void)df;
    memset(d8, 0, (size_t)C * batch);
    for (b = 0; b < batch; b++) {
        const int32_t *z = (const int32_t *)logits + (size_t)b * C;
        uint32_t yb = y[b], pred = 0, w = yb == 0 ? 1u : 0u;
        for (j = 1; j < C; j++) {
            if (z[j] > z[pred]) pred = j;
            if (j != yb && z[j] > z[w]) w = j;
        }
        s->correct += (uint32_t)(pred == yb);
        if ((int64_t)z[yb] <= (int64_t)z[w] + model->rule.margin) {
            s->errors++;
            d8[(size_t)yb * batch + b] = 1;
            d8[(size_t)w * batch + b] = -1;
        }
    }
}

/* docs/rule.md sections 4-5 (or 7.1 with counters) for layer l, input in->x8 (B, n), error
 * d8 (m, B): vote, select, update in place, in parts by output rows. */
void fn_int_update(flipnet_model *model, uint32_t l, const fn_io *in, const int8_t *d8,
                   const float *df, const fn_ctx *c, uint32_t *changes, uint32_t *eligible)
{
    const flipnet_layer *L = &model->layers[l];
    const fn_plan *plan = c->plan;
    fn_upd u;
    (void)df;
    memset(&u, 0, sizeof(u));
    u.model = model;
    u.l = l;
    u.batch = c->batch;
    u.x = in->x8;
    u.d = d8;
    u.c = c;
    u.rowmax = c->sc + plan->rowmax;
    u.afull = (int16_t *)(void *)(c->sc + plan->afull);
    u.ulist = (uint16_t *)(void *)(c->sc + plan->ulist);
    u.ternary = L->kind == FLIPNET_TERNARY;
    u.weighted = model->rule.vote == FLIPNET_VOTE_WEIGHTED;
    u.p_big = (uint64_t)c->params->p_q16[l] << 16;
    u.parts = fn_parts(c, (uint64_t)L->n * L->m * c->batch, L->m);
    if (model->rule.counter_threshold != 0u)
        fn_counter_vote_update(&u, c->params->k[l], changes, eligible);
    else
        fn_vote_update(&u, c->params->k[l], changes, eligible);
}
