/* The refresh token file of one sender: tokens_dir/SENDER.json, mode 0600,
 *   {"provider": "google", "refresh_token": "...", "updated_at": "RFC 3339"}
 * read with its permissions checked and replaced atomically (a temporary
 * file of mode 0600 in the same folder, fsync, rename, fsync of the folder),
 * so a crash leaves the old token or the new one, never half of either.
 * Written by the token keeper (a rotated token) and `warmbench login`. */
#ifndef WB_OAUTH_STORE_H
#define WB_OAUTH_STORE_H
#include <stdbool.h>
#include <stdint.h>

enum wb_oauth_store_rc {
    WB_OAUTH_STORE_OK = 0,
    WB_OAUTH_STORE_MISSING,   /* no file yet: the sender needs `warmbench login` */
    WB_OAUTH_STORE_LOOSE,     /* group or others may read or write it: a configuration error */
    WB_OAUTH_STORE_ERROR,     /* unreadable, not a regular file, not our JSON */
};

/* Which version of the file was read or written: a changed file (a new
 * login) differs in one of these. */
struct wb_oauth_file_id {
    uint64_t dev, ino, size;
    int64_t mtime_ns, ctime_ns;
};

/* tokens_dir/SENDER.json (malloc'd), or NULL when sender cannot name a
 * file (empty, '/', a leading '.', control bytes, longer than 200). */
char *wb_oauth_store_path(const char *tokens_dir, const char *sender);

/* Reads the refresh token (malloc'd into *refresh, wipe it with
 * wb_oauth_wipe). On anything but OK, *err says what, naming the file
 * (malloc'd, never holding a token). id may be NULL. */
enum wb_oauth_store_rc wb_oauth_store_read(const char *path, char **refresh,
                                           struct wb_oauth_file_id *id, char **err);

/* The file's identity now; false when it cannot be stat'ed (missing). */
bool wb_oauth_store_stat(const char *path, struct wb_oauth_file_id *id);
bool wb_oauth_file_id_eq(const struct wb_oauth_file_id *a, const struct wb_oauth_file_id *b);

/* Replaces the file atomically (blocking: the keeper runs it on libuv's
 * thread pool). 0, or -1 with *err. id (may be NULL) gets the new file's
 * identity. */
int wb_oauth_store_write(const char *path, const char *provider, const char *refresh,
                         struct wb_oauth_file_id *id, char **err);

#endif
