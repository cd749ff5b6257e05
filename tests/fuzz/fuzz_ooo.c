/* libFuzzer target for out-of-office return dates (lib/engage/ooo.c): an
 * automatic reply's subject and text, and a Date field. Input: bytes 0-1
 * move "today" up to ±32767 days from 2027-01-01; the rest up to the first
 * newline is the subject (also tried as a Date field), the rest the text.
 * Oracles: a return date found lies within [today, today + horizon]; a
 * Date field read is a real day of 1900..2199. */
#include "warmbench/ical.h"
#include "warmbench/ooo.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    int32_t today = wb_day_from_civil(2027, 1, 1) + (int16_t)(data[0] | data[1] << 8);
    char *all = strndup((const char *)data + 2, size - 2);
    char *nl = strchr(all, '\n');
    const char *text = "";
    if (nl) {
        *nl = '\0';
        text = nl + 1;
    }
    int32_t back;
    if (wb_ooo_return_day(all, text, today, &back) == 0 &&
        (back < today || back - today > WB_OOO_HORIZON_DAYS))
        abort();
    int32_t day;
    if (wb_ooo_mail_day(all, &day) == 0) {
        int y, m, d;
        wb_day_to_civil(day, &y, &m, &d);
        if (y < 1900 || y > 2199 || wb_day_from_civil(y, m, d) != day)
            abort();
    }
    free(all);
    return 0;
}
