// The AMX GEMM's body, included twice by amx.c: with the tile instructions (GEMM_NAME amx_gemm_tiles) and with
// them emulated in C (amx_gemm_emulated). See amx.c for the layouts.
#ifndef STORE_TILE
/// Stores accumulator tile `t` (a macro argument: tile numbers are immediates) to y at (row, col − ycol0), clipped
/// to m × n; SiLU (ACTIVATE_ROWS) in place after the store, into y or, when clipped, into `part` before its rows are
/// copied.
#define STORE_TILE(t, row, col)                                                                              \
    do {                                                                                                     \
        float *at_ = y + (row) * ldy + (col) - ycol0;                                                        \
        if ((row) + 16 <= m && (col) + 16 <= n) {                                                            \
            TILE_STORE(t, at_, ldy * 4);                                                                     \
            if (activation) ACTIVATE_ROWS(at_, ldy);                                                         \
        } else if ((row) < m && (col) < n) {                                                                 \
            TILE_STORE(t, part, 64);                                                                         \
            if (activation) ACTIVATE_ROWS(part, 16);                                                         \
            long rows_ = m - (row) < 16 ? m - (row) : 16, cols_ = n - (col) < 16 ? n - (col) : 16;           \
            for (long i_ = 0; i_ < rows_; i_++) memcpy(at_ + i_ * ldy, part + i_ * 16, (size_t)cols_ * 4);   \
        }                                                                                                    \
    } while (0)
#endif

// Column `col` of the product is stored at column `col − ycol0` of y (0 for y [m, n]; a block's first column to
// write one block into a narrow buffer). `pf_next`: the column block whose weights to prefetch during the last
// block's last pass (the caller's next call), or −1.
GEMM_ATTRIBUTES static void GEMM_NAME(const uint16_t *a, long m, long k, const uint16_t *w, long n, const float *bias,
                                      float *y, long ldy, long ycol0, long nb0, long nb1, int activation, long pf_next) {
    long kp = round_up(k, TILE_K), kb_count = kp / TILE_K, mp = round_up(m, 32);
    TILE_STATE
    TILE_CONFIGURE();
    // Rows per pass: the bf16 rows of x stay in L2 (2 MiB per core on every CPU with AMX) while every column
    // block streams past them. 1.5 MiB rather than 0.75, with the prefetch below, took the DiT's shapes from
    // 1.8–2.3 to 2.0–2.7 TFLOP/s on two Emerald Rapids cores, weights cold (one pass over the weights instead of
    // two for 512 rows of 1152).
    long mc = (1536L * 1024 / (kp * 2)) / 32 * 32;
    if (mc < 32) mc = 32;
    float bias_tile[2][256] __attribute__((aligned(64)));
    float part[256] __attribute__((aligned(64)));
    for (long m0 = 0; m0 < mp; m0 += mc) {
        long m1 = m0 + mc < mp ? m0 + mc : mp;
        for (long nb = nb0; nb < nb1; nb++) {
            const uint16_t *wb = w + nb * kb_count * 2 * TILE_ELEMENTS;
            long col = nb * BLOCK_N;
            // The next column block's weights (the first one's, for the next pass) go to L2 a few lines per k
            // step, so that no block waits on memory at its start; at most 8 lines a step, as more slowed passes
            // of 32 rows (Gemma's 9216-deep MLP output) by a third.
            const char *pf = NULL, *pf_end = NULL;
            long pf_lines = 0, next = nb + 1 < nb1 ? nb + 1 : m1 < mp ? nb0 : pf_next;
            if (next >= 0 && kb_count > 0) {
                pf = (const char *)(w + next * kb_count * 2 * TILE_ELEMENTS);
                pf_end = pf + kb_count * 2 * TILE_ELEMENTS * 2;
                long steps = (m1 - m0) / 32 * kb_count;
                pf_lines = (kb_count * 64 + steps - 1) / steps;
                if (pf_lines > 8) pf_lines = 8;
            }
            if (bias)
                for (int h = 0; h < 2; h++)
                    for (int c = 0; c < 16; c++) {
                        float v = col + h * 16 + c < n ? bias[col + h * 16 + c] : 0;
                        for (int r = 0; r < 16; r++) bias_tile[h][r * 16 + c] = v;
                    }
            for (long mb = m0; mb < m1; mb += 32) {
                if (bias) {
                    TILE_LOAD(0, bias_tile[0], 64); TILE_LOAD(1, bias_tile[1], 64);
                    TILE_LOAD(2, bias_tile[0], 64); TILE_LOAD(3, bias_tile[1], 64);
                } else {
                    TILE_ZERO(0); TILE_ZERO(1); TILE_ZERO(2); TILE_ZERO(3);
                }
                const uint16_t *a0 = a + mb * kp, *a1 = a0 + 16 * kp;
                for (long kb = 0; kb < kb_count; kb++) {
                    TILE_LOAD(4, a0 + kb * TILE_K, kp * 2);
                    TILE_LOAD(5, a1 + kb * TILE_K, kp * 2);
                    TILE_LOAD(6, wb + kb * 2 * TILE_ELEMENTS, 64);
                    TILE_LOAD(7, wb + kb * 2 * TILE_ELEMENTS + TILE_ELEMENTS, 64);
                    TILE_DP(0, 4, 6);
                    TILE_DP(1, 4, 7);
                    TILE_DP(2, 5, 6);
                    TILE_DP(3, 5, 7);
                    for (long l = 0; l < pf_lines && pf < pf_end; l++, pf += 64) __builtin_prefetch(pf, 0, 2);
                }
                STORE_TILE(0, mb, col);
                STORE_TILE(1, mb, col + 16);
                STORE_TILE(2, mb + 16, col);
                STORE_TILE(3, mb + 16, col + 16);
            }
        }
    }
    TILE_RELEASE();
}

