/* The floor of warmbench's sending stack, for `make bench-send`: one curl
 * multi, CONNS easy handles, each reused for its next message (so its
 * connection is reused), CURLOPT_UPLOAD over one pre-rendered message held in
 * memory, curl_multi_poll as the loop. No database, no rendering, no libuv:
 * what libcurl's SMTP (one transaction at a time per connection, no
 * PIPELINING) costs on its own. Heap trimming is off, as in warmbenchd:
 * with glibc's default threshold the 64 KB upload buffer curl frees after
 * each message made the heap shrink and grow again every time, which cost
 * this loop half its CPU time; a floor should not carry that.
 *
 * Usage: raw_curl_send URL MESSAGE_FILE COUNT CONNS FROM TO
 * Prints one line: "raw-curl: N sent, F failed, S s, R msg/s". Exit 1 when
 * any message failed. Links only libcurl. */
#include <curl/curl.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct slot {
    CURL *easy;
    size_t off;
};

static const char *msg;
static size_t msg_len;

static size_t on_read(char *buf, size_t size, size_t nitems, void *ud)
{
    struct slot *s = ud;
    size_t room = size * nitems, left = msg_len - s->off;
    size_t n = left < room ? left : room;
    memcpy(buf, msg + s->off, n);
    s->off += n;
    return n;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The file as CRLF lines (a bare LF becomes CRLF), as SMTP DATA wants. */
static char *load(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    char *out = malloc(cap);
    int c, prev = 0;
    while (out && (c = getc(f)) != EOF) {
        if (n + 2 >= cap)
            out = realloc(out, cap *= 2);
        if (!out)
            break;
        if (c == '\n' && prev != '\r')
            out[n++] = '\r';
        out[n++] = (char)c;
        prev = c;
    }
    fclose(f);
    *len = n;
    return out;
}

int main(int argc, char **argv)
{
    if (argc != 7) {
        fprintf(stderr, "usage: raw_curl_send URL MESSAGE_FILE COUNT CONNS FROM TO\n");
        return 64;
    }
    const char *url = argv[1], *from = argv[5], *to = argv[6];
    long count = atol(argv[3]), conns = atol(argv[4]);
    if (count < 1 || conns < 1) {
        fprintf(stderr, "raw_curl_send: COUNT and CONNS must be positive\n");
        return 64;
    }
    mallopt(M_TRIM_THRESHOLD, 32 << 20);
    mallopt(M_MMAP_THRESHOLD, 4 << 20);
    msg = load(argv[2], &msg_len);
    if (!msg) {
        fprintf(stderr, "raw_curl_send: cannot read %s\n", argv[2]);
        return 66;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURLM *multi = curl_multi_init();
    curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, conns);
    char mail_from[512], rcpt[512];
    snprintf(mail_from, sizeof mail_from, "<%s>", from);
    snprintf(rcpt, sizeof rcpt, "<%s>", to);
    struct curl_slist *rcpts = curl_slist_append(NULL, rcpt);
    struct slot *slots = calloc((size_t)conns, sizeof *slots);
    long started = 0, sent = 0, failed = 0;
    double t0 = now_s();
    for (long i = 0; i < conns && started < count; i++, started++) {
        struct slot *s = &slots[i];
        s->easy = curl_easy_init();
        curl_easy_setopt(s->easy, CURLOPT_URL, url);
        curl_easy_setopt(s->easy, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(s->easy, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(s->easy, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(s->easy, CURLOPT_READDATA, s);
        curl_easy_setopt(s->easy, CURLOPT_MAIL_FROM, mail_from);
        curl_easy_setopt(s->easy, CURLOPT_MAIL_RCPT, rcpts);
        curl_easy_setopt(s->easy, CURLOPT_PRIVATE, s);
        curl_multi_add_handle(multi, s->easy);
    }
    int running = 1;
    while (sent + failed < count) {
        curl_multi_perform(multi, &running);
        CURLMsg *m;
        int left;
        while ((m = curl_multi_info_read(multi, &left))) {
            if (m->msg != CURLMSG_DONE)
                continue;
            struct slot *s;
            CURL *e = m->easy_handle;
            CURLcode rc = m->data.result;
            curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&s);
            if (rc == CURLE_OK) {
                sent++;
            } else {
                if (!failed)
                    fprintf(stderr, "raw_curl_send: %s\n", curl_easy_strerror(rc));
                failed++;
            }
            curl_multi_remove_handle(multi, e);
            if (started < count) {
                s->off = 0;
                curl_multi_add_handle(multi, e); /* same handle: same connection */
                started++;
            }
        }
        if (sent + failed < count)
            curl_multi_poll(multi, NULL, 0, 1000, NULL);
    }
    double dt = now_s() - t0;
    printf("raw-curl: %ld sent, %ld failed, %.3f s, %.0f msg/s, %zu bytes/msg\n", sent, failed,
           dt, (double)sent / dt, msg_len);
    for (long i = 0; i < conns; i++)
        if (slots[i].easy)
            curl_easy_cleanup(slots[i].easy);
    curl_multi_cleanup(multi);
    curl_slist_free_all(rcpts);
    free(slots);
    free((char *)msg);
    curl_global_cleanup();
    return failed ? 1 : 0;
}
