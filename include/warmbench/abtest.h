/* Significance of an A/B difference in rates: the pooled two-proportion
 * z-test, as used by `warmbench stats` and the HTML report. Pure C. */
#ifndef WB_ABTEST_H
#define WB_ABTEST_H

/* Returned when no test is possible: a group with no one in it, or counts
 * out of range (negative, or more successes than trials). */
#define WB_ZTEST_NONE (-1.0)

/* Two-sided p-value in [0, 1] of H0 "both groups share one rate", given x1
 * successes out of n1 and x2 out of n2:
 *   p = (x1 + x2) / (n1 + n2),  z = (x1/n1 - x2/n2) / sqrt(p(1-p)(1/n1 + 1/n2)),
 *   p-value = erfc(|z| / sqrt 2).
 * When the pooled rate is 0 or 1 both observed rates are equal (all 0% or
 * all 100%): there is no evidence of a difference and the result is 1.
 * WB_ZTEST_NONE (negative) when n1 or n2 is 0 or the counts are invalid. */
double wb_ztest_two_prop_p(long x1, long n1, long x2, long n2);

#endif
