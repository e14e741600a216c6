/*
 * Functions the quiesce benchmark patches: 1,000 small functions (ENDBR64, mov, ret: room for a jump after
 * the ENDBR64), and one the patched-call benchmark calls through call_loop().
 */
#include "sandbox.h"

#define BENCH_FN(n) __attribute__((noinline)) int sandbox_bench_##n(void) { return n; }
#define BENCH_FN10(n) BENCH_FN(n##0) BENCH_FN(n##1) BENCH_FN(n##2) BENCH_FN(n##3) BENCH_FN(n##4) \
                      BENCH_FN(n##5) BENCH_FN(n##6) BENCH_FN(n##7) BENCH_FN(n##8) BENCH_FN(n##9)
#define BENCH_FN100(n) BENCH_FN10(n##0) BENCH_FN10(n##1) BENCH_FN10(n##2) BENCH_FN10(n##3) BENCH_FN10(n##4) \
                       BENCH_FN10(n##5) BENCH_FN10(n##6) BENCH_FN10(n##7) BENCH_FN10(n##8) BENCH_FN10(n##9)

/* sandbox_bench_1000 .. sandbox_bench_1999 */
BENCH_FN100(10) BENCH_FN100(11) BENCH_FN100(12) BENCH_FN100(13) BENCH_FN100(14)
BENCH_FN100(15) BENCH_FN100(16) BENCH_FN100(17) BENCH_FN100(18) BENCH_FN100(19)
