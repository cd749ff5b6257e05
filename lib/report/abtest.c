/* Pooled two-proportion z-test (see abtest.h). */
#include "warmbench/abtest.h"
#include <math.h>

double wb_ztest_two_prop_p(long x1, long n1, long x2, long n2)
{
    if (n1 <= 0 || n2 <= 0 || x1 < 0 || x2 < 0 || x1 > n1 || x2 > n2)
        return WB_ZTEST_NONE;
    /* Sums as double: two longs near LONG_MAX must not overflow. */
    double p = ((double)x1 + (double)x2) / ((double)n1 + (double)n2);
    if (p <= 0.0 || p >= 1.0)
        return 1.0;
    double se = sqrt(p * (1.0 - p) * (1.0 / (double)n1 + 1.0 / (double)n2));
    double z = ((double)x1 / (double)n1 - (double)x2 / (double)n2) / se;
    /* erfc keeps precision in the far tail, where 1 - erf would round to 0. */
    double pv = erfc(fabs(z) / sqrt(2.0));
    return pv > 1.0 ? 1.0 : pv;
}
