/* `warmbench check-config`: validates warmbench.json, every sequence and
 * template, and reports every problem with its place. */
#ifndef WB_CHECK_CONFIG_H
#define WB_CHECK_CONFIG_H
#include <stdio.h>

/* Prints each diagnostic to err ("file:line:column: message", grouped by
 * file in the order files were read, then by position) and returns 78;
 * when valid prints one summary line to out and returns 0. */
int wb_check_config(const char *path, FILE *out, FILE *err);

#endif
