/* The refresh token file (see oauth_store.h). */
#include "warmbench/oauth_store.h"
#include "warmbench/oauth_parse.h"
#include "warmbench/util.h"
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define FILE_MAX 65536
#define SENDER_MAX 200

char *wb_oauth_store_path(const char *tokens_dir, const char *sender)
{
    size_t n = sender ? strlen(sender) : 0;
    if (!tokens_dir || n == 0 || n > SENDER_MAX || sender[0] == '.')
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (sender[i] == '/' || (unsigned char)sender[i] < 0x20 || sender[i] == 0x7f)
            return NULL;
    return wb_xasprintf("%s/%s.json", tokens_dir, sender);
}

static void os_id(const struct stat *st, struct wb_oauth_file_id *id)
{
    if (!id)
        return;
    *id = (struct wb_oauth_file_id){
        .dev = (uint64_t)st->st_dev, .ino = (uint64_t)st->st_ino, .size = (uint64_t)st->st_size,
        .mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec,
        .ctime_ns = (int64_t)st->st_ctim.tv_sec * 1000000000 + st->st_ctim.tv_nsec};
}

bool wb_oauth_store_stat(const char *path, struct wb_oauth_file_id *id)
{
    struct stat st;
    if (stat(path, &st) < 0)
        return false;
    os_id(&st, id);
    return true;
}

bool wb_oauth_file_id_eq(const struct wb_oauth_file_id *a, const struct wb_oauth_file_id *b)
{
    return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtime_ns == b->mtime_ns && a->ctime_ns == b->ctime_ns;
}

/* Reads at most FILE_MAX bytes of an open descriptor. */
static char *os_slurp(int fd, size_t *len)
{
    char *buf = wb_xmalloc(FILE_MAX + 1);
    size_t n = 0;
    for (;;) {
        ssize_t r = read(fd, buf + n, FILE_MAX + 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n += (size_t)r;
        if (n > FILE_MAX)
            break;
    }
    buf[n > FILE_MAX ? FILE_MAX : n] = '\0';
    *len = n;
    return buf;
}

enum wb_oauth_store_rc wb_oauth_store_read(const char *path, char **refresh,
                                           struct wb_oauth_file_id *id, char **err)
{
    *refresh = NULL;
    *err = NULL;
    /* O_NOFOLLOW: the mode checked is the token file's own, not a link's target. */
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        if (e == ENOENT) {
            *err = wb_xasprintf("%s: no token file yet", path);
            return WB_OAUTH_STORE_MISSING;
        }
        *err = wb_xasprintf("%s: %s", path, e == ELOOP ? "is a symbolic link" : strerror(e));
        return WB_OAUTH_STORE_ERROR;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        *err = wb_xasprintf("%s: not a regular file", path);
        return WB_OAUTH_STORE_ERROR;
    }
    if (st.st_mode & 077) {
        close(fd);
        *err = wb_xasprintf("%s: mode %04o is looser than 0600 (it holds a refresh token; "
                            "chmod 600 it)", path, (unsigned)(st.st_mode & 07777));
        return WB_OAUTH_STORE_LOOSE;
    }
    os_id(&st, id);
    size_t len;
    char *text = os_slurp(fd, &len);
    close(fd);
    enum wb_oauth_store_rc rc = WB_OAUTH_STORE_ERROR;
    json_t *root = len <= FILE_MAX ? json_loadb(text, len, 0, NULL) : NULL;
    json_t *rt = json_object_get(root, "refresh_token");
    if (!json_is_object(root))
        *err = wb_xasprintf("%s: not a JSON object", path);
    else if (!json_is_string(rt) || !wb_oauth_token_ok(json_string_value(rt), json_string_length(rt)))
        *err = wb_xasprintf("%s: no usable \"refresh_token\"", path);
    else {
        *refresh = wb_xstrdup(json_string_value(rt));
        OPENSSL_cleanse((char *)json_string_value(rt), json_string_length(rt));
        rc = WB_OAUTH_STORE_OK;
    }
    json_decref(root);
    OPENSSL_cleanse(text, len > FILE_MAX ? FILE_MAX : len);
    free(text);
    return rc;
}

static int os_write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int wb_oauth_store_write(const char *path, const char *provider, const char *refresh,
                         struct wb_oauth_file_id *id, char **err)
{
    *err = NULL;
    char now[32];
    time_t t = time(NULL);
    struct tm tm;
    strftime(now, sizeof now, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
    json_t *o = json_pack("{s:s, s:s, s:s}", "provider", provider ? provider : "",
                          "refresh_token", refresh, "updated_at", now);
    char *text = o ? json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(o);
    if (!text) {
        *err = wb_xasprintf("%s: could not encode the token", path);
        return -1;
    }
    char *dir = wb_dirname(path);
    char *tmp = wb_xasprintf("%s.tmp.XXXXXX", path);
    /* mkstemp creates the file 0600 whatever the umask; fchmod says it twice. */
    int fd = mkostemp(tmp, O_CLOEXEC);
    int rc = -1;
    const char *what = "creating a temporary file";
    if (fd >= 0) {
        struct stat st;
        what = "writing";
        if (fchmod(fd, 0600) == 0 && os_write_all(fd, text, strlen(text)) == 0 &&
            os_write_all(fd, "\n", 1) == 0 && (what = "syncing", fsync(fd) == 0)) {
            what = "renaming";
            if (rename(tmp, path) == 0) {
                /* After the rename: it changes the file's ctime. */
                if (stat(path, &st) == 0)
                    os_id(&st, id);
                /* The rename itself is durable once the folder is synced. */
                int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                what = "syncing the folder";
                if (dfd >= 0 && fsync(dfd) == 0)
                    rc = 0;
                if (dfd >= 0)
                    close(dfd);
            }
        }
        int e = errno;
        close(fd);
        if (rc < 0)
            unlink(tmp);
        errno = e;
    }
    if (rc < 0)
        *err = wb_xasprintf("%s: %s: %s", path, what, strerror(errno));
    OPENSSL_cleanse(text, strlen(text));
    free(text);
    free(tmp);
    free(dir);
    return rc;
}
