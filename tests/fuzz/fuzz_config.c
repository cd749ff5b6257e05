/* libFuzzer target for the files an operator or sourcer writes:
 * warmbench.json, a sequence file and a template, loaded by wb_config_load
 * as the daemon and check-config do (JSON shape checks with positions,
 * every key's rules, senders, sequences, templates, the notice). Input:
 * up to three parts separated by NUL bytes: warmbench.json, then
 * sequences/s.json, then templates/t.txt. They are written into a private
 * folder that also holds secret.key and the shipped templates.
 * Oracles: a load either returns a configuration and no diagnostic, or
 * NULL and at least one, each with a file and a message; a loaded
 * configuration's senders and sequences are complete; freeing is clean. */
#include "warmbench/config.h"
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char fc_dir[256];

static void fc_write(const char *name, const void *p, size_t n)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", fc_dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n || fclose(f))
        abort();
}

static void fc_cleanup(void)
{
    static const char *const sub[] = {"templates", "sequences"};
    for (size_t i = 0; i < 2; i++) {
        char d[512];
        snprintf(d, sizeof d, "%s/%s", fc_dir, sub[i]);
        DIR *dir = opendir(d);
        struct dirent *e;
        while (dir && (e = readdir(dir)))
            if (e->d_name[0] != '.') {
                char p[1024];
                snprintf(p, sizeof p, "%s/%s", d, e->d_name);
                unlink(p);
            }
        if (dir)
            closedir(dir);
        rmdir(d);
    }
    char p[512];
    snprintf(p, sizeof p, "%s/secret.key", fc_dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/warmbench.json", fc_dir);
    unlink(p);
    rmdir(fc_dir);
}

/* The folder, with the secret and the shipped templates, made once. */
static void fc_setup(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(fc_dir, sizeof fc_dir, "%s/wb-fuzz-config-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(fc_dir))
        abort();
    atexit(fc_cleanup);
    char d[512];
    snprintf(d, sizeof d, "%s/templates", fc_dir);
    mkdir(d, 0700);
    snprintf(d, sizeof d, "%s/sequences", fc_dir);
    mkdir(d, 0700);
    fc_write("secret.key", "fuzz-config-secret-0123456789abcdef-0123456789\n", 47);
    snprintf(d, sizeof d, "%s/secret.key", fc_dir);
    chmod(d, 0600);
    DIR *dir = opendir(WB_SHARE_DIR "/templates");
    struct dirent *e;
    while (dir && (e = readdir(dir))) {
        if (e->d_name[0] == '.')
            continue;
        char src[1024], name[512];
        snprintf(src, sizeof src, "%s/templates/%s", WB_SHARE_DIR, e->d_name);
        FILE *f = fopen(src, "rb");
        char buf[65536];
        size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
        if (f)
            fclose(f);
        snprintf(name, sizeof name, "templates/%s", e->d_name);
        fc_write(name, buf, n);
    }
    if (dir)
        closedir(dir);
}

static void fc_part(const char *name, const uint8_t **p, size_t *n)
{
    const uint8_t *z = *n ? memchr(*p, 0, *n) : NULL;
    size_t k = z ? (size_t)(z - *p) : *n;
    char path[512];
    snprintf(path, sizeof path, "%s/%s", fc_dir, name);
    if (*n || !strcmp(name, "warmbench.json"))
        fc_write(name, *p, k);
    else
        unlink(path);
    *p += z ? k + 1 : k;
    *n -= z ? k + 1 : k;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!fc_dir[0])
        fc_setup();
    const uint8_t *p = data;
    size_t n = size;
    fc_part("warmbench.json", &p, &n);
    fc_part("sequences/s.json", &p, &n);
    fc_part("templates/t.txt", &p, &n);
    char path[512];
    snprintf(path, sizeof path, "%s/warmbench.json", fc_dir);
    struct wb_diags d;
    wb_diags_init(&d);
    struct wb_config *c = wb_config_load(path, &d);
    if (!c != (d.n > 0))
        abort();
    for (size_t i = 0; i < d.n; i++)
        if (!d.v[i].file || !d.v[i].msg || !d.v[i].msg[0])
            abort();
    if (c) {
        if (!c->secret || !c->secret_len)
            abort();
        for (size_t i = 0; i < c->n_senders; i++)
            if (!c->senders[i].id || !c->senders[i].from_email)
                abort();
        for (size_t i = 0; i < c->n_sequences; i++)
            if (!c->sequences[i].id || !wb_config_sequence(c, c->sequences[i].id))
                abort();
    }
    wb_diags_free(&d);
    wb_config_free(c);
    return 0;
}
