/*
 * resume.c - fetch --resume: the rows an earlier run of the same input left in the output.
 * Rows are written whole and in input order, so what is there is a prefix of the run's
 * rows, perhaps followed by one torn row (a crash mid-write): that one is cut off, and the
 * last complete row says which input line to go on after.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fetch.h"
#include "json.h"

#define CHUNK 65536

/* The bytes [from, to) of the file, NUL-terminated, or NULL. */
static char *read_range(int fd, uint64_t from, uint64_t to)
{
    size_t n = (size_t)(to - from), got = 0;
    char *p = malloc(n + 1);

    while (p && got < n) {
        ssize_t r = pread(fd, p + got, n - got, (off_t)(from + got));

        if (r <= 0) {
            free(p);
            return NULL;
        }
        got += (size_t)r;
    }
    if (p)
        p[n] = '\0';
    return p;
}

/* The offset of the last '\n' before `end`, or -1 (-2 on a read error). */
static int64_t last_newline(int fd, uint64_t end)
{
    char buf[CHUNK];

    while (end > 0) {
        size_t n = end < CHUNK ? (size_t)end : CHUNK;
        ssize_t r = pread(fd, buf, n, (off_t)(end - n));

        if (r != (ssize_t)n)
            return -2;
        for (size_t i = n; i-- > 0;)
            if (buf[i] == '\n')
                return (int64_t)(end - n + i);
        end -= n;
    }
    return -1;
}

static int scan_jsonl(int fd, uint64_t size, struct resume *rs, char *why, size_t why_len)
{
    int64_t end = last_newline(fd, size), start;
    struct json_doc doc;
    struct json_error err;
    char *row;
    int ret = -1;

    if (end == -2)
        goto io;
    rs->cut = size - (uint64_t)(end + 1);
    if (end < 0)
        return 0; /* not one complete row: all of it goes */
    start = last_newline(fd, (uint64_t)end) + 1;
    if (start < 0 || !(row = read_range(fd, (uint64_t)start, (uint64_t)end)))
        goto io;
    if (json_parse(row, (size_t)(end - start), 0, &doc, &err)) {
        snprintf(why, why_len, "its last row is not JSON (byte %zu: %s)", err.offset, err.msg);
    } else {
        if (json_uint(json_get(doc.root, "line"), &rs->line) ||
            json_uint(json_get(doc.root, "index"), &rs->index))
            snprintf(why, why_len,
                     "its last row has no integer \"line\" and \"index\" (not "
                     "written by this version of fetch?)");
        else
            ret = rs->has_row = 1;
        json_free(&doc);
    }
    free(row);
    return ret > 0 ? 0 : -1;
io:
    snprintf(why, why_len, "%s", strerror(errno ? errno : EIO));
    return -1;
}

/* Field `col` of a CSV record as an integer. */
static int csv_uint(const char *r, size_t len, size_t col, uint64_t *out)
{
    size_t i = 0;

    for (size_t c = 0; c < col; c++) {
        int q = 0;

        for (; i < len && (q || r[i] != ','); i++)
            q ^= r[i] == '"';
        if (i++ >= len)
            return -1;
    }
    if (i >= len || r[i] < '0' || r[i] > '9')
        return -1;
    *out = 0;
    for (; i < len && r[i] >= '0' && r[i] <= '9'; i++) {
        if (*out > (UINT64_MAX - 9) / 10)
            return -1;
        *out = *out * 10 + (uint64_t)(r[i] - '0');
    }
    return i == len || r[i] == ',' || r[i] == '\n' ? 0 : -1;
}

/*
 * CSV: a record may span lines inside a quoted field, so the file is read from its start;
 * a '"' toggles the quoted state (a doubled one toggles twice), a '\n' outside quotes ends
 * a record.
 */
static int scan_csv(int fd, uint64_t size, const char *header, struct resume *rs, char *why,
                    size_t why_len)
{
    char buf[CHUNK];
    uint64_t off = 0, rec = 0, header_end = 0, last = 0;
    int quoted = 0, records = 0;
    char *text;

    while (off < size) {
        ssize_t r = pread(fd, buf, sizeof(buf), (off_t)off);

        if (r <= 0)
            goto io;
        for (ssize_t i = 0; i < r; i++) {
            if (buf[i] == '"') {
                quoted ^= 1;
            } else if (buf[i] == '\n' && !quoted) {
                if (records++ == 0)
                    header_end = off + (uint64_t)i + 1;
                last = rec;
                rec = off + (uint64_t)i + 1;
            }
        }
        off += (uint64_t)r;
    }
    rs->cut = size - rec; /* rec: where the first incomplete record starts */
    if (!records)
        return 0;
    if (!(text = read_range(fd, 0, header_end)))
        goto io;
    if (strcmp(text, header) != 0) {
        free(text);
        snprintf(why, why_len,
                 "its CSV header is not this run's (another --keep-body, or "
                 "another version of fetch?)");
        return -1;
    }
    free(text);
    rs->has_header = 1;
    if (records == 1)
        return 0;
    if (!(text = read_range(fd, last, rec)))
        goto io;
    if (csv_uint(text, (size_t)(rec - last), CSV_COL_INDEX, &rs->index) ||
        csv_uint(text, (size_t)(rec - last), CSV_COL_LINE, &rs->line)) {
        free(text);
        snprintf(why, why_len, "its last row has no integer line and index columns");
        return -1;
    }
    free(text);
    rs->has_row = 1;
    return 0;
io:
    snprintf(why, why_len, "%s", strerror(errno ? errno : EIO));
    return -1;
}

int resume_scan(int fd, enum row_format fmt, const char *header, struct resume *rs, char *why,
                size_t why_len)
{
    struct stat st;
    int ret;

    memset(rs, 0, sizeof(*rs));
    errno = 0;
    if (fstat(fd, &st)) {
        snprintf(why, why_len, "%s", strerror(errno));
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(why, why_len, "not a regular file");
        return -1;
    }
    ret = fmt == ROWS_CSV ? scan_csv(fd, (uint64_t)st.st_size, header, rs, why, why_len)
                          : scan_jsonl(fd, (uint64_t)st.st_size, rs, why, why_len);
    if (ret == 0 && rs->cut && ftruncate(fd, (off_t)((uint64_t)st.st_size - rs->cut))) {
        snprintf(why, why_len, "cannot cut its torn last row: %s", strerror(errno));
        return -1;
    }
    return ret;
}
