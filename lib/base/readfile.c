/* Whole-file reads for configuration, sequences and templates: all small. */
#include "warmbench/readfile.h"
#include "warmbench/buf.h"
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

int wb_read_file(const char *path, char **out, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno;
    struct stat st;
    int e = 0;
    if (fstat(fd, &st) < 0)
        e = errno;
    else if (!S_ISREG(st.st_mode))
        e = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
    if (e) {
        close(fd);
        return e;
    }
    struct wb_buf b;
    wb_buf_init(&b);
    wb_buf_reserve(&b, (size_t)st.st_size);
    char chunk[8192];
    ssize_t n;
    while ((n = read(fd, chunk, sizeof chunk)) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            close(fd);
            wb_buf_free(&b);
            return e;
        }
        wb_buf_append(&b, chunk, (size_t)n);
    }
    close(fd);
    *len = b.len;
    *out = wb_buf_steal(&b);
    return 0;
}
