/* The one loader, defaults walker and free for config key tables. Every
 * message names the key as written, at its place in the file. */
#include "warmbench/cfkeys.h"
#include "warmbench/readfile.h"
#include "warmbench/util.h"
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void *cfk_cf_at(void *base, size_t off)
{
    return (char *)base + off;
}

#define CF_STR(base, off) (*(char **)cfk_cf_at(base, off))

void wb_cf_defaults(const struct wb_cf_key *t, void *base)
{
    for (const struct wb_cf_key *k = t; k->type != WB_CFT_END; k++) {
        if (k->type == WB_CFT_INT || k->type == WB_CFT_ENUM)
            *(int *)cfk_cf_at(base, k->off) = (int)k->dflt;
        else if (k->type == WB_CFT_BOOL)
            *(bool *)cfk_cf_at(base, k->off) = k->dflt != 0;
        else if (k->type == WB_CFT_SECTION)
            wb_cf_defaults(k->sub, cfk_cf_at(base, k->off));
        else if (k->type == WB_CFT_HOOK && k->init)
            k->init(k, base);
    }
}

char *wb_cf_resolve(const struct wb_cf_ctx *x, const char *p)
{
    if (!strchr(x->cfg_path, '/'))
        return wb_xstrdup(p);
    return wb_path_join(x->cfg_dir, p);
}

/* "host:port" with a port in 1..65535. */
static bool cfk_cf_listen_ok(const char *s)
{
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s || !colon[1] || strlen(colon + 1) > 5)
        return false;
    for (const char *p = colon + 1; *p; p++)
        if (*p < '0' || *p > '9')
            return false;
    long port = strtol(colon + 1, NULL, 10);
    return port >= 1 && port <= 65535;
}

/* Token endpoints carry client secrets and refresh tokens, so they need
 * TLS; plain http only reaches this machine (a local test server). */
static bool cfk_cf_https_ok(const char *s)
{
    if (wb_has_prefix(s, "https://"))
        return s[8] != '\0';
    static const char *const local[] = {"http://127.0.0.1", "http://localhost", "http://[::1]"};
    for (size_t i = 0; i < sizeof local / sizeof *local; i++) {
        size_t n = strlen(local[i]);
        if (strncmp(s, local[i], n))
            continue;
        /* The host must end there, before a port at most: neither
         * "http://localhost.evil.com" nor "http://127.0.0.1:x@evil.com". */
        const char *p = s + n;
        if (*p == ':')
            p += 1 + strspn(p + 1, "0123456789");
        return *p == '/' || *p == '\0';
    }
    return false;
}

/* A key the row must have: never inside an overlay (cfkeys.h). */
static bool cfk_cf_required(const struct wb_cf_ctx *x, const struct wb_cf_key *k)
{
    return (k->flags & WB_CF_REQUIRED) && !x->overlay;
}

/* A bare address: something@something, nothing that would break a header. */
static bool cfk_cf_addr_ok(const char *a)
{
    const char *at = strchr(a, '@');
    return at && at != a && at[1] && !strchr(at + 1, '@') && !strpbrk(a, " \t<>\",;");
}

static char *cfk_cf_trim_copy(const char *s, size_t n)
{
    while (n && (*s == ' ' || *s == '\t')) {
        s++;
        n--;
    }
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    /* A quoted display name ("Ruiz, Ana") loses its quotes. */
    if (n >= 2 && s[0] == '"' && s[n - 1] == '"') {
        s++;
        n -= 2;
    }
    return wb_xstrndup(s, n);
}

/* "Name <addr>" or a bare addr → name ("" when none) and addr. */
static bool cfk_cf_parse_from(const char *from, char **name, char **email)
{
    const char *lt = strchr(from, '<');
    if (!lt) {
        *name = wb_xstrdup("");
        *email = cfk_cf_trim_copy(from, strlen(from));
    } else {
        const char *gt = strchr(lt, '>');
        if (!gt || gt[1 + strspn(gt + 1, " \t")] != '\0')
            return false;
        *name = cfk_cf_trim_copy(from, (size_t)(lt - from));
        *email = wb_xstrndup(lt + 1, (size_t)(gt - lt - 1));
    }
    if (cfk_cf_addr_ok(*email))
        return true;
    free(*name);
    free(*email);
    return false;
}

/* systemd's credentials directory is private to the service whatever the
 * files' mode bits say (access may be granted by ACL, which shows as group
 * bits), so the mode check does not apply there. */
static bool cfk_cf_in_credentials_dir(const char *file)
{
    const char *dir = getenv("CREDENTIALS_DIRECTORY");
    size_t n = dir ? strlen(dir) : 0;
    return n && !strncmp(file, dir, n) && file[n] == '/' && !strstr(file + n, "/../");
}

/* The file's contents, trailing newlines stripped; reports at jpath. */
static char *cfk_cf_secret_contents(struct wb_jv *jv, const char *jpath, const char *file,
                                size_t *len)
{
    char *data;
    int e = wb_read_file(file, &data, len);
    if (e) {
        wb_jv_err_key(jv, jpath, "cannot read secret file \"%s\": %s", file, strerror(e));
        return NULL;
    }
    while (*len && (data[*len - 1] == '\n' || data[*len - 1] == '\r'))
        data[--*len] = '\0';
    if (*len)
        return data;
    wb_jv_err_key(jv, jpath, "secret file \"%s\" is empty", file);
    free(data);
    return NULL;
}

/* Reads a secret, refusing files others can read; the contents never
 * reach a message. Errors point at the key that names the file. */
static char *cfk_cf_read_secret(struct wb_cf_ctx *x, const char *jpath, const char *name,
                            size_t *len)
{
    char *file = wb_cf_resolve(x, name);
    char *out = NULL;
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0)
        wb_jv_err_key(x->jv, jpath, "cannot read secret file \"%s\": %s", file, strerror(errno));
    else if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
        wb_jv_err_key(x->jv, jpath, "secret file \"%s\" is not a regular file", file);
    else if ((st.st_mode & 077) && !cfk_cf_in_credentials_dir(file))
        wb_jv_err_key(x->jv, jpath,
                      "secret file \"%s\" is readable by group or others (chmod 600 it)", file);
    else
        out = cfk_cf_secret_contents(x->jv, jpath, file, len);
    if (fd >= 0)
        close(fd);
    free(file);
    return out;
}

/* Checks s against the row's type; reports at p and returns false. */
static bool cfk_cf_str_valid(struct wb_jv *jv, const char *p, const struct wb_cf_key *k,
                         const char *s)
{
    const char *n = k->name;
    switch (k->type) {
    case WB_CFT_URL:
        if (wb_url_ok(s, k->str))
            return true;
        if (!strcmp(k->str, "http"))
            wb_jv_err_val(jv, p, "\"%s\" must be an http(s) URL", n);
        else
            wb_jv_err_val(jv, p, "\"%s\" must start with %s:// or %ss://", n, k->str, k->str);
        return false;
    case WB_CFT_HTTPS:
        if (cfk_cf_https_ok(s))
            return true;
        wb_jv_err_val(jv, p, "\"%s\" must be an https:// URL (http:// only to 127.0.0.1, "
                      "localhost or [::1])", n);
        return false;
    case WB_CFT_LISTEN:
        if (cfk_cf_listen_ok(s))
            return true;
        wb_jv_err_val(jv, p, "\"%s\" must be host:port, not \"%s\"", n, s);
        return false;
    case WB_CFT_DOMAIN:
        if (s[0] && !strpbrk(s, "@ /\r\n\t"))
            return true;
        wb_jv_err_val(jv, p, "\"%s\" must be a domain name", n);
        return false;
    case WB_CFT_ADDRESS:
        if (!strpbrk(s, "\r\n"))
            return true;
        wb_jv_err_val(jv, p, "\"%s\" must not contain CR or LF", n);
        return false;
    default:
        return true;
    }
}

static void cfk_cf_store_address(struct wb_jv *jv, const char *p, const struct wb_cf_key *k,
                             void *base, const char *s)
{
    char *name, *email;
    if (!cfk_cf_parse_from(s, &name, &email)) {
        wb_jv_err_val(jv, p, "bad address \"%s\" in \"%s\"%s", s, k->name, k->str ? k->str : "");
        return;
    }
    CF_STR(base, k->off) = wb_xstrdup(s);
    if (k->aux != WB_CF_NONE)
        CF_STR(base, k->aux) = name;
    else
        free(name);
    if (k->aux2 != WB_CF_NONE)
        CF_STR(base, k->aux2) = email;
    else
        free(email);
}

static void cfk_cf_store_secret(struct wb_cf_ctx *x, const char *p, const struct wb_cf_key *k,
                            void *base, const char *s)
{
    size_t len = 0;
    CF_STR(base, k->off) = k->flags & WB_CF_RESOLVE ? wb_cf_resolve(x, s) : wb_xstrdup(s);
    CF_STR(base, k->aux) = cfk_cf_read_secret(x, p, s, &len);
    /* A short key makes the tokens' MAC guessable; say how to make a good one. */
    if (CF_STR(base, k->aux) && k->min > 0 && len < (size_t)k->min)
        wb_jv_err_key(x->jv, p,
                      "secret file \"%s\" holds %zu bytes; at least %ld are needed "
                      "(make one with: head -c 32 /dev/urandom | base64 > FILE; chmod 600 FILE)",
                      s, len, k->min);
    if (k->aux2 != WB_CF_NONE)
        *(size_t *)cfk_cf_at(base, k->aux2) = len;
}

/* Valid s into the row's storage. */
static void cfk_cf_store(struct wb_cf_ctx *x, const char *p, const struct wb_cf_key *k, void *base,
                     const char *s)
{
    if (k->type == WB_CFT_ADDRESS) {
        cfk_cf_store_address(x->jv, p, k, base, s);
    } else if (k->type == WB_CFT_SECRET) {
        cfk_cf_store_secret(x, p, k, base, s);
    } else if (k->flags & WB_CF_RESOLVE || k->type == WB_CFT_DIR) {
        CF_STR(base, k->off) = wb_cf_resolve(x, s);
    } else {
        char *v = wb_xstrdup(s);
        /* Links are built as public_url + "/c/TOKEN". */
        for (size_t n = strlen(v); k->flags & WB_CF_TRIM_SLASH && n && v[n - 1] == '/'; n--)
            v[n - 1] = '\0';
        CF_STR(base, k->off) = v;
    }
}

/* The string-valued rows; a folder row falls back to its default. */
static void cfk_cf_string_row(struct wb_cf_ctx *x, json_t *obj, const char *path,
                          const struct wb_cf_key *k, void *base)
{
    const char *s;
    bool dir = k->type == WB_CFT_DIR;
    if (!wb_jv_string(x->jv, obj, path, k->name, cfk_cf_required(x, k), &s)) {
        if (dir)
            cfk_cf_store(x, "", k, base, k->str);
        return;
    }
    if (!s[0] && k->flags & WB_CF_EMPTY_NULL)
        return;
    char *p = wb_jsonpos_child(path, k->name);
    if (!s[0] && (dir || k->flags & WB_CF_NONEMPTY)) {
        wb_jv_err_val(x->jv, p, "\"%s\" must not be empty", k->name);
        if (!dir) {
            free(p);
            return;
        }
        s = k->str;
    }
    if (cfk_cf_str_valid(x->jv, p, k, s))
        cfk_cf_store(x, p, k, base, s);
    free(p);
}

/* "a", "b" or "c" (quoted) / a, b or c (bare). */
static char *cfk_cf_names_list(const char *const *names, bool quoted)
{
    char *out = wb_xstrdup("");
    const char *q = quoted ? "\"" : "";
    for (size_t i = 0; names[i]; i++) {
        const char *sep = !i ? "" : names[i + 1] ? ", " : " or ";
        char *next = wb_xasprintf("%s%s%s%s%s", out, sep, q, names[i], q);
        free(out);
        out = next;
    }
    return out;
}

static int cfk_cf_enum_value(const struct wb_cf_key *k, const char *s)
{
    if (k->parse)
        return k->parse(s);
    for (int i = 0; k->names[i]; i++)
        if (!strcmp(s, k->names[i]))
            return i;
    return -1;
}

static void cfk_cf_enum_row(struct wb_cf_ctx *x, json_t *obj, const char *path,
                        const struct wb_cf_key *k, void *base)
{
    const char *s;
    if (!wb_jv_string(x->jv, obj, path, k->name, cfk_cf_required(x, k), &s))
        return;
    int v = cfk_cf_enum_value(k, s);
    if (v >= 0) {
        *(int *)cfk_cf_at(base, k->off) = v;
        return;
    }
    /* With a noun: "unknown log level "x" (use a, b or c)". */
    char *p = wb_jsonpos_child(path, k->name);
    char *list = cfk_cf_names_list(k->names, !k->str);
    if (k->str)
        wb_jv_err_val(x->jv, p, "unknown %s \"%s\" (use %s)", k->str, s, list);
    else
        wb_jv_err_val(x->jv, p, "\"%s\" must be %s", k->name, list);
    free(list);
    free(p);
}

static void cfk_cf_section_row(struct wb_cf_ctx *x, json_t *obj, const char *path,
                           const struct wb_cf_key *k, void *base)
{
    json_t *o = wb_jv_object(x->jv, obj, path, k->name, cfk_cf_required(x, k));
    if (!o)
        return;
    if (k->aux != WB_CF_NONE)
        *(bool *)cfk_cf_at(base, k->aux) = true;
    char *p = wb_jsonpos_child(path, k->name);
    struct wb_cf_ctx y = *x;
    y.overlay = x->overlay || (k->flags & WB_CF_OVERLAY);
    wb_cf_load(&y, o, p, k->sub, cfk_cf_at(base, k->off));
    free(p);
}

static void cfk_cf_map_row(struct wb_cf_ctx *x, json_t *obj, const char *path,
                       const struct wb_cf_key *k, void *base)
{
    json_t *o = wb_jv_object(x->jv, obj, path, k->name, cfk_cf_required(x, k));
    char *mp = wb_jsonpos_child(path, k->name);
    if (o && !json_object_size(o) && k->flags & WB_CF_NONEMPTY) {
        wb_jv_err_val(x->jv, mp, "\"%s\" must name at least one %s", k->name, k->str);
        o = NULL;
    }
    char *items = o ? wb_xcalloc(json_object_size(o), k->size) : NULL;
    size_t *n = cfk_cf_at(base, k->aux);
    const char *id;
    json_t *v;
    json_object_foreach(o, id, v) {
        char *p = wb_jsonpos_child(mp, id);
        if (json_is_object(v)) {
            char *item = items + (*n)++ * k->size;
            CF_STR(item, k->aux2) = wb_xstrdup(id);
            wb_cf_defaults(k->sub, item);
            wb_cf_load(x, v, p, k->sub, item);
        } else {
            wb_jv_err_val(x->jv, p, "%s \"%s\" must be an object", k->str, id);
        }
        free(p);
    }
    if (items)
        *(char **)cfk_cf_at(base, k->off) = items;
    free(mp);
}

static void cfk_cf_row(struct wb_cf_ctx *x, json_t *obj, const char *path,
                   const struct wb_cf_key *k, void *base)
{
    struct wb_jv *jv = x->jv;
    bool req = cfk_cf_required(x, k);
    void *f = cfk_cf_at(base, k->off);
    switch (k->type) {
    case WB_CFT_INT:
        if (wb_jv_int(jv, obj, path, k->name, req, k->min, f) && k->max &&
            *(int *)f > k->max) {
            char *p = wb_jsonpos_child(path, k->name);
            wb_jv_err_val(jv, p, "\"%s\" must be between %ld and %ld", k->name, k->min, k->max);
            free(p);
            *(int *)f = (int)k->dflt;
        }
        break;
    case WB_CFT_BOOL:
        wb_jv_bool(jv, obj, path, k->name, req, f);
        break;
    case WB_CFT_NUMBER: {
        bool given = wb_jv_number(jv, obj, path, k->name, req, f);
        if (k->aux != WB_CF_NONE)
            *(bool *)cfk_cf_at(base, k->aux) = given;
        break;
    }
    case WB_CFT_ENUM: cfk_cf_enum_row(x, obj, path, k, base); break;
    case WB_CFT_STRINGS:
        wb_jv_strings(jv, obj, path, k->name, f, cfk_cf_at(base, k->aux));
        break;
    case WB_CFT_SECTION: cfk_cf_section_row(x, obj, path, k, base); break;
    case WB_CFT_MAP: cfk_cf_map_row(x, obj, path, k, base); break;
    case WB_CFT_HOOK: k->load(x, obj, path, k, base); break;
    default: cfk_cf_string_row(x, obj, path, k, base); break;
    }
}

/* The table's names are the object's allowed keys. */
static void cfk_cf_keys(struct wb_jv *jv, json_t *obj, const char *path, const struct wb_cf_key *t)
{
    size_t n = 0;
    while (t[n].type != WB_CFT_END)
        n++;
    const char **names = wb_xcalloc(n + 1, sizeof *names);
    for (size_t i = 0; i < n; i++)
        names[i] = t[i].name;
    wb_jv_keys(jv, obj, path, names);
    free(names);
}

void wb_cf_load(struct wb_cf_ctx *x, json_t *obj, const char *path,
                const struct wb_cf_key *t, void *base)
{
    cfk_cf_keys(x->jv, obj, path, t);
    for (const struct wb_cf_key *k = t; k->type != WB_CFT_END; k++)
        cfk_cf_row(x, obj, path, k, base);
}

/* Secrets are wiped before their memory goes back to the allocator. */
static void cfk_cf_free_secret(const struct wb_cf_key *k, void *base)
{
    char *data = CF_STR(base, k->aux);
    if (!data)
        return;
    size_t n = k->aux2 != WB_CF_NONE ? *(size_t *)cfk_cf_at(base, k->aux2) : strlen(data);
    explicit_bzero(data, n);
    free(data);
}

static void cfk_cf_free_map(const struct wb_cf_key *k, void *base)
{
    char *items = *(char **)cfk_cf_at(base, k->off);
    size_t n = *(size_t *)cfk_cf_at(base, k->aux);
    for (size_t i = 0; i < n; i++) {
        wb_cf_free(k->sub, items + i * k->size);
        free(CF_STR(items + i * k->size, k->aux2));
    }
    free(items);
}

static void cfk_cf_free_row(const struct wb_cf_key *k, void *base)
{
    switch (k->type) {
    case WB_CFT_INT: case WB_CFT_BOOL: case WB_CFT_NUMBER: case WB_CFT_ENUM: case WB_CFT_END:
        break;
    case WB_CFT_STRINGS:
        wb_strings_free(*(char ***)cfk_cf_at(base, k->off), *(size_t *)cfk_cf_at(base, k->aux));
        break;
    case WB_CFT_SECTION: wb_cf_free(k->sub, cfk_cf_at(base, k->off)); break;
    case WB_CFT_MAP: cfk_cf_free_map(k, base); break;
    case WB_CFT_HOOK:
        if (k->release)
            k->release(k, base);
        break;
    case WB_CFT_SECRET:
        cfk_cf_free_secret(k, base);
        free(CF_STR(base, k->off));
        break;
    case WB_CFT_ADDRESS:
        if (k->aux != WB_CF_NONE)
            free(CF_STR(base, k->aux));
        if (k->aux2 != WB_CF_NONE)
            free(CF_STR(base, k->aux2));
        free(CF_STR(base, k->off));
        break;
    default: free(CF_STR(base, k->off)); break;
    }
}

void wb_cf_free(const struct wb_cf_key *t, void *base)
{
    for (const struct wb_cf_key *k = t; k->type != WB_CFT_END; k++)
        cfk_cf_free_row(k, base);
}

static bool cfk_cf_named(const char *const *names, const char *name)
{
    for (size_t i = 0; names && names[i]; i++)
        if (!strcmp(names[i], name))
            return true;
    return false;
}

static char *cfk_cf_dup_or_null(const char *s)
{
    return s ? wb_xstrdup(s) : NULL;
}

/* src's value of one row, copied into dst. */
static void cfk_cf_copy_row(const struct wb_cf_key *k, void *dst, const void *src)
{
    void *s = (void *)src;
    switch (k->type) {
    case WB_CFT_INT: case WB_CFT_ENUM:
        *(int *)cfk_cf_at(dst, k->off) = *(int *)cfk_cf_at(s, k->off);
        break;
    case WB_CFT_BOOL:
        *(bool *)cfk_cf_at(dst, k->off) = *(bool *)cfk_cf_at(s, k->off);
        break;
    case WB_CFT_SECRET: {
        const char *data = CF_STR(s, k->aux);
        size_t n = k->aux2 != WB_CF_NONE ? *(size_t *)cfk_cf_at(s, k->aux2)
                   : data ? strlen(data) : 0;
        CF_STR(dst, k->off) = cfk_cf_dup_or_null(CF_STR(s, k->off));
        /* Secrets may hold any byte: copied by length, kept NUL-terminated. */
        if (data) {
            char *copy = wb_xcalloc(n + 1, 1);
            memcpy(copy, data, n);
            CF_STR(dst, k->aux) = copy;
        }
        if (k->aux2 != WB_CF_NONE)
            *(size_t *)cfk_cf_at(dst, k->aux2) = n;
        break;
    }
    case WB_CFT_ADDRESS:
        if (k->aux != WB_CF_NONE)
            CF_STR(dst, k->aux) = cfk_cf_dup_or_null(CF_STR(s, k->aux));
        if (k->aux2 != WB_CF_NONE)
            CF_STR(dst, k->aux2) = cfk_cf_dup_or_null(CF_STR(s, k->aux2));
        CF_STR(dst, k->off) = cfk_cf_dup_or_null(CF_STR(s, k->off));
        break;
    case WB_CFT_STRING: case WB_CFT_URL: case WB_CFT_HTTPS: case WB_CFT_LISTEN:
    case WB_CFT_DOMAIN: case WB_CFT_DIR:
        CF_STR(dst, k->off) = cfk_cf_dup_or_null(CF_STR(s, k->off));
        break;
    default:
        /* Sections, maps, lists and hooks have no key-by-key meaning. */
        abort();
    }
}

void wb_cf_inherit(const struct wb_cf_key *t, void *dst, const void *src, json_t *own,
                   const char *const *skip)
{
    for (const struct wb_cf_key *k = t; k->type != WB_CFT_END; k++)
        if (!json_object_get(own, k->name) && !cfk_cf_named(skip, k->name))
            cfk_cf_copy_row(k, dst, src);
}
