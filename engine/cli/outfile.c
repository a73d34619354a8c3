/* outfile.c - writes report, bench-merge and merge results through a temporary and rename(2). */
#include "outfile.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int outfile_open(struct outfile *o, const char *path)
{
    size_t n = strlen(path);
    mode_t mask;
    int fd;

    o->path = path;
    o->tmp = NULL;
    if (strcmp(path, "-") == 0) {
        o->f = stdout;
        return 0;
    }
    /* Beside the target, so that rename() stays inside one file system. */
    o->tmp = malloc(n + sizeof(".tmp.XXXXXX"));
    if (!o->tmp)
        return -1;
    memcpy(o->tmp, path, n);
    memcpy(o->tmp + n, ".tmp.XXXXXX", sizeof(".tmp.XXXXXX"));
    fd = mkstemp(o->tmp);
    if (fd < 0)
        goto fail;
    /* mkstemp makes the file 0600; the result gets the mode any new file would get */
    mask = umask(0);
    umask(mask);
    if (fchmod(fd, 0666 & ~mask) || !(o->f = fdopen(fd, "w"))) {
        int e = errno;

        close(fd);
        unlink(o->tmp);
        errno = e;
        goto fail;
    }
    return 0;
fail:
    free(o->tmp);
    o->tmp = NULL;
    o->f = NULL;
    return -1;
}

int outfile_commit(struct outfile *o)
{
    int e;

    if (!o->tmp)
        return fflush(o->f) || ferror(o->f) ? -1 : 0;
    if (fflush(o->f) || ferror(o->f) || fsync(fileno(o->f)))
        goto fail;
    if (fclose(o->f)) {
        o->f = NULL;
        goto fail;
    }
    o->f = NULL;
    if (rename(o->tmp, o->path))
        goto fail;
    free(o->tmp);
    o->tmp = NULL;
    return 0;
fail:
    e = errno ? errno : EIO;
    outfile_abort(o);
    errno = e;
    return -1;
}

void outfile_abort(struct outfile *o)
{
    if (o->tmp) {
        if (o->f)
            fclose(o->f);
        unlink(o->tmp);
        free(o->tmp);
        o->tmp = NULL;
    }
    o->f = NULL;
}
