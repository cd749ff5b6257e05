/* Exit codes of both programs (the sysexits.h values, SPEC "Programs"). */
#ifndef WB_EXITCODES_H
#define WB_EXITCODES_H
#define WB_EXIT_OK 0
#define WB_EXIT_FAIL 1
#define WB_EXIT_USAGE 64
#define WB_EXIT_DATAERR 65
#define WB_EXIT_UNAVAILABLE 69
#define WB_EXIT_CONFIG 78
#endif
