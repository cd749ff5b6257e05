/* Reading a whole file into memory. */
#ifndef WB_READFILE_H
#define WB_READFILE_H
#include <stddef.h>

/* Reads path into *out (malloc'd, NUL-terminated; *len excludes the NUL).
 * Returns 0, or an errno value (EISDIR for a folder). */
int wb_read_file(const char *path, char **out, size_t *len);

#endif
