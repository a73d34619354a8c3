/* outfile.h - a result file written whole or not at all: a temporary, renamed at the end. */
#ifndef RF_CLI_OUTFILE_H
#define RF_CLI_OUTFILE_H

#include <stdio.h>

struct outfile {
    FILE *f;
    const char *path;
    char *tmp; /* NULL when writing to stdout ("-") */
};

/* Open a temporary file in path's directory (or stdout for "-"). 0, or -1 with errno set. */
int outfile_open(struct outfile *o, const char *path);
/* Flush, sync and rename over path. 0, or -1 with errno set and the temporary removed. */
int outfile_commit(struct outfile *o);
/* Close and remove the temporary: a failed command leaves no half-written file. */
void outfile_abort(struct outfile *o);

#endif
