/* ISO 3166-1 alpha-2: the assigned codes (249, as tzdata's iso3166.tab
 * lists them), for window.holidays_by_country keys. */
#include "warmbench/ical.h"
#include <string.h>

/* Two letters a code, sorted: a bisection finds one. */
static const char CODES[] =
    "ADAEAFAGAIALAMAOAQARASATAUAWAXAZBABBBDBEBFBGBHBIBJBLBMBNBOBQBRBSBTBVBWBY"
    "BZCACCCDCFCGCHCICKCLCMCNCOCRCUCVCWCXCYCZDEDJDKDMDODZECEEEGEHERESETFIFJFK"
    "FMFOFRGAGBGDGEGFGGGHGIGLGMGNGPGQGRGSGTGUGWGYHKHMHNHRHTHUIDIEILIMINIOIQIR"
    "ISITJEJMJOJPKEKGKHKIKMKNKPKRKWKYKZLALBLCLILKLRLSLTLULVLYMAMCMDMEMFMGMHMK"
    "MLMMMNMOMPMQMRMSMTMUMVMWMXMYMZNANCNENFNGNINLNONPNRNUNZOMPAPEPFPGPHPKPLPM"
    "PNPRPSPTPWPYQARERORSRURWSASBSCSDSESGSHSISJSKSLSMSNSOSRSSSTSVSXSYSZTCTDTF"
    "TGTHTJTKTLTMTNTOTRTTTVTWTZUAUGUMUSUYUZVAVCVEVGVIVNVUWFWSYEYTZAZMZW"
    ;

int wb_country_valid(const char *code)
{
    if (!code || strlen(code) != 2)
        return 0;
    char c[2];
    for (int i = 0; i < 2; i++) {
        char ch = code[i];
        if (ch >= 'a' && ch <= 'z')
            ch = (char)(ch - 'a' + 'A');
        if (ch < 'A' || ch > 'Z')
            return 0;
        c[i] = ch;
    }
    size_t lo = 0, hi = (sizeof CODES - 1) / 2;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int r = memcmp(CODES + 2 * mid, c, 2);
        if (!r)
            return 1;
        if (r < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}
