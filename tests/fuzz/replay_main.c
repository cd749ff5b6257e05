/* Replays a fuzz target's corpus without libFuzzer, so `make check` can run
 * every committed input through the real library with whatever compiler
 * and sanitizers the build uses. Arguments: the target's name, then files
 * or folders (each file in a folder, not recursively). Each input counts
 * as passed unless a leak is found after it (ASan builds); a crash or a
 * failed oracle (abort) ends the process, which the caller counts as a
 * failure. Prints "RESULT name passed failed". */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#define RP_LEAKS() __lsan_do_recoverable_leak_check()
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#include <sanitizer/lsan_interface.h>
#define RP_LEAKS() __lsan_do_recoverable_leak_check()
#endif
#endif
#ifndef RP_LEAKS
#define RP_LEAKS() 0
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static long rp_passed, rp_failed;

static void rp_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "%s: cannot open\n", path);
        rp_failed++;
        return;
    }
    size_t cap = 4096, n = 0, k;
    uint8_t *buf = malloc(cap);
    while (buf && (k = fread(buf + n, 1, cap - n, f)) > 0)
        if ((n += k) == cap)
            buf = realloc(buf, cap *= 2);
    fclose(f);
    if (!buf) {
        rp_failed++;
        return;
    }
    /* An exact-size copy, so ASan sees any read past the input's end. */
    uint8_t *in = malloc(n ? n : 1);
    memcpy(in, buf, n);
    free(buf);
    LLVMFuzzerTestOneInput(in, n);
    free(in);
    if (RP_LEAKS()) {
        fprintf(stderr, "%s: leak\n", path);
        rp_failed++;
    } else {
        rp_passed++;
    }
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s NAME FILE|DIR...\n", argv[0]);
        return 2;
    }
    for (int i = 2; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) {
            struct dirent **v;
            int n = scandir(argv[i], &v, NULL, alphasort);
            if (n < 0) {
                fprintf(stderr, "%s: cannot list\n", argv[i]);
                rp_failed++;
                continue;
            }
            for (int j = 0; j < n; j++) {
                char p[4096];
                snprintf(p, sizeof p, "%s/%s", argv[i], v[j]->d_name);
                if (v[j]->d_name[0] != '.' && stat(p, &st) == 0 && S_ISREG(st.st_mode))
                    rp_file(p);
                free(v[j]);
            }
            free(v);
        } else {
            rp_file(argv[i]);
        }
    }
    printf("RESULT %s %ld %ld\n", argv[1], rp_passed, rp_failed);
    fflush(stdout); /* LeakSanitizer's check at exit ends the process without flushing */
    return rp_failed != 0;
}
