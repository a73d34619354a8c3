/*
 * input.c - the fetch command's input: URL arguments and files in command-line order, read
 * only when poll() finds them readable (standard input may be shared: it is never made
 * non-blocking), taken into lines only when the engine has room for a request.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fetch.h"

#define RAW_BYTES 65536 /* one read(): what is in memory besides the line being taken */

static const char *name_of(const struct source *s)
{
    return strcmp(s->arg, "-") == 0 ? "standard input" : s->arg;
}

int input_open(struct input *in, struct source *src, size_t n)
{
    memset(in, 0, sizeof(*in));
    pthread_mutex_init(&in->mu, NULL);
    in->src = src;
    in->n_src = n;
    for (size_t i = 0; i < n; i++)
        src[i].fd = -1;
    in->raw = malloc(RAW_BYTES);
    if (!in->raw || !(in->ls.buf = malloc(LINE_MAX_BYTES + 2))) {
        fputs("ringfetch fetch: out of memory\n", stderr);
        return -1;
    }
    lines_init(&in->ls, in->ls.buf, LINE_MAX_BYTES);
    /* Every file is opened now: a typo is an error before the first row, not after. */
    for (size_t i = 0; i < n; i++) {
        struct source *s = &src[i];
        struct stat st;

        if (!s->is_file)
            continue;
        s->fd = strcmp(s->arg, "-") == 0 ? 0 : open(s->arg, O_RDONLY | O_CLOEXEC);
        if (s->fd < 0 || fstat(s->fd, &st)) {
            fprintf(stderr, "ringfetch fetch: cannot read %s: %s\n", name_of(s), strerror(errno));
            return -1;
        }
        if (S_ISDIR(st.st_mode)) {
            fprintf(stderr, "ringfetch fetch: cannot read %s: %s\n", name_of(s), strerror(EISDIR));
            return -1;
        }
    }
    return 0;
}

void input_close(struct input *in)
{
    for (size_t i = 0; i < in->n_src; i++)
        if (in->src[i].fd > 0)
            close(in->src[i].fd);
    free(in->raw);
    free(in->ls.buf);
    free(in->q);
    pthread_mutex_destroy(&in->mu);
}

int input_poll_fd(struct input *in)
{
    int fd = -1;

    pthread_mutex_lock(&in->mu);
    if (!in->ended && in->cur < in->n_src && in->src[in->cur].is_file && !in->src[in->cur].eof &&
        in->pos == in->len)
        fd = in->src[in->cur].fd;
    pthread_mutex_unlock(&in->mu);
    return fd;
}

void input_read(struct input *in)
{
    struct source *s;
    ssize_t n;

    pthread_mutex_lock(&in->mu);
    if (in->ended || in->cur == in->n_src || !in->src[in->cur].is_file || in->src[in->cur].eof ||
        in->pos < in->len) {
        pthread_mutex_unlock(&in->mu);
        return;
    }
    s = &in->src[in->cur];
    in->pos = in->len = 0;
    pthread_mutex_unlock(&in->mu);
    /* Outside the lock: a pull meanwhile finds nothing buffered and says "again". */
    n = read(s->fd, in->raw, RAW_BYTES);
    pthread_mutex_lock(&in->mu);
    if (n > 0) {
        in->len = (size_t)n;
    } else if (n == 0) {
        s->eof = 1;
    } else if (errno != EINTR && errno != EAGAIN) {
        /* The lines before it stand: their requests finish, and the run fails after them. */
        in->err = errno;
        in->ended = 1;
        snprintf(in->why, sizeof(in->why), "cannot read %s: %s", name_of(s), strerror(errno));
    }
    pthread_mutex_unlock(&in->mu);
}

static void next_source(struct input *in)
{
    struct source *s = &in->src[in->cur++];

    if (s->is_file && s->fd > 0) {
        close(s->fd);
        s->fd = -1;
    }
    in->pos = in->len = 0;
}

static int push(struct input *in, uint64_t line, uint64_t index)
{
    if (in->q_len == in->q_cap) {
        size_t cap = in->q_cap ? 2 * in->q_cap : 1024;
        struct pending *q = malloc(cap * sizeof(*q));

        if (!q)
            return -1;
        for (size_t i = 0; i < in->q_len; i++)
            q[i] = in->q[(in->q_head + i) % in->q_cap];
        free(in->q);
        in->q = q;
        in->q_cap = cap;
        in->q_head = 0;
    }
    in->q[(in->q_head + in->q_len++) % in->q_cap] = (struct pending){line, index};
    return 0;
}

static void mismatch(struct input *in, const char *what)
{
    in->err = -1;
    in->ended = 1;
    snprintf(in->why, sizeof(in->why),
             "the output's last row is input line %llu with index %llu, but %s: not the input "
             "that output was made from",
             (unsigned long long)in->done_line, (unsigned long long)in->done_index, what);
}

/*
 * The line just taken (number in->line): 1 when it is a request of this run (req->url set),
 * 0 to go on to the next line, -1 when the input has to end (an error, said in in->why).
 */
static int take(struct input *in, enum line_kind kind, rf_request *req)
{
    uint64_t line = in->line, index = in->requests;
    char what[96];
    size_t len;

    if (kind == LINE_REQUEST)
        in->requests++; /* every request line counts, also those of other shards */
    if (in->resuming) {
        if (line < in->done_line)
            return 0;
        in->resuming = 0;
        if (kind != LINE_REQUEST) {
            mismatch(in, "that line makes no request");
            return -1;
        }
        if (index != in->done_index) {
            snprintf(what, sizeof(what), "it is request %llu here", (unsigned long long)index);
            mismatch(in, what);
            return -1;
        }
        if (in->shard_n > 1 && (line - 1) % in->shard_n != in->shard_k) {
            snprintf(what, sizeof(what), "that line is shard %llu/%llu's, not this one's",
                     (unsigned long long)((line - 1) % in->shard_n),
                     (unsigned long long)in->shard_n);
            mismatch(in, what);
            return -1;
        }
        return 0;
    }
    if (kind != LINE_REQUEST || (in->shard_n > 1 && (line - 1) % in->shard_n != in->shard_k))
        return 0;
    if (push(in, line, index)) {
        in->err = ENOMEM;
        in->ended = 1;
        snprintf(in->why, sizeof(in->why), "out of memory");
        return -1;
    }
    req->url = lines_text(&in->ls, &len);
    req->userdata = (void *)(uintptr_t)line;
    return 1;
}

static int next_request(struct input *in, rf_request *req)
{
    for (;;) {
        enum line_kind kind = LINE_NONE;
        struct source *s;
        int r;

        if (in->ended)
            return 0;
        if (in->cur == in->n_src) {
            in->ended = 1;
            if (in->resuming) {
                char what[96];

                snprintf(what, sizeof(what), "the input has %llu lines",
                         (unsigned long long)in->line);
                mismatch(in, what);
            }
            return 0;
        }
        s = &in->src[in->cur];
        if (!s->is_file) {
            kind = lines_one(&in->ls, s->arg, strlen(s->arg)); /* an argument is one line */
            next_source(in);
        } else if (in->pos < in->len) {
            in->pos += lines_feed(&in->ls, in->raw + in->pos, in->len - in->pos, &kind);
            if (kind == LINE_NONE)
                continue;
        } else if (s->eof) {
            kind = lines_end(&in->ls);
            next_source(in);
            if (kind == LINE_NONE)
                continue;
        } else {
            return RF_PULL_AGAIN; /* the main loop reads when poll() says there is more */
        }
        in->line++;
        r = take(in, kind, req);
        if (r)
            return r > 0 ? 1 : 0;
    }
}

int input_pull(void *userp, rf_request *req)
{
    struct input *in = userp;
    int ret;

    pthread_mutex_lock(&in->mu);
    ret = next_request(in, req);
    pthread_mutex_unlock(&in->mu);
    return ret;
}

int input_pop(struct input *in, void *userdata, struct pending *p)
{
    int ret = -1;

    pthread_mutex_lock(&in->mu);
    if (in->q_len) {
        *p = in->q[in->q_head];
        in->q_head = (in->q_head + 1) % in->q_cap;
        in->q_len--;
        ret = p->line == (uintptr_t)userdata ? 0 : -1;
    }
    pthread_mutex_unlock(&in->mu);
    return ret;
}

uint64_t input_lines(struct input *in)
{
    uint64_t n;

    pthread_mutex_lock(&in->mu);
    n = in->line;
    pthread_mutex_unlock(&in->mu);
    return n;
}
