/* json.h - a small strict JSON reader: one text into a tree of values, and a writer for values. */
#ifndef RF_CLI_JSON_H
#define RF_CLI_JSON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum json_type {
    JSON_NULL,
    JSON_FALSE,
    JSON_TRUE,
    JSON_NUMBER,
    JSON_STRING,
    JSON_ARRAY,
    JSON_OBJECT,
};

/*
 * One value. Containers hold their elements (or members) as a list: `child` is the first,
 * each element's `next` the one after it, `n` how many. A member of an object has its key
 * in `key`. Strings are unescaped UTF-8 with a NUL after them (they may contain \u0000,
 * so `len` is the length). Everything lives in the document's arena.
 */
struct json_value {
    enum json_type type;
    int is_uint;   /* a number that is a non-negative integer held exactly in `u64` */
    double num;    /* a number's value (also set when is_uint) */
    uint64_t u64;
    const char *str; /* a string's bytes */
    size_t len;
    const char *key; /* the member's key inside an object, else NULL */
    size_t key_len;
    struct json_value *child;
    struct json_value *next;
    size_t n;
};

struct json_arena;

struct json_doc {
    struct json_value *root;
    struct json_arena *arena;
};

/* Where and why a text was rejected. */
#define JSON_IO_ERROR ((size_t)-1) /* the offset when json_parse_file() could not read */
struct json_error {
    size_t offset; /* byte offset in the text, or JSON_IO_ERROR */
    char msg[96];
};

#define JSON_DEFAULT_DEPTH 64

/*
 * Parse exactly one JSON value (RFC 8259, strictly: no comments, no trailing commas, no
 * byte order mark, valid UTF-8, no duplicate keys, no number that overflows a double)
 * surrounded by optional white space. Nesting deeper than max_depth (0: the default) is
 * an error. Returns 0 and fills *doc (free it with json_free) or -1 and fills *err.
 */
int json_parse(const char *text, size_t len, unsigned max_depth, struct json_doc *doc,
               struct json_error *err);
/* Read and parse a whole file (at most 1 GiB); a read error has offset JSON_IO_ERROR. */
int json_parse_file(const char *path, struct json_doc *doc, struct json_error *err);
void json_free(struct json_doc *doc);

/* The member `key` of an object, or NULL (also when v is NULL or not an object). */
const struct json_value *json_get(const struct json_value *v, const char *key);
/* The string value, or NULL when v is not a string. */
const char *json_string(const struct json_value *v);
/* 0 and the exact value when v is an integral non-negative number in range, else -1. */
int json_uint(const struct json_value *v, uint64_t *out);
/* 0 and the value when v is a number, else -1. */
int json_double(const struct json_value *v, double *out);

/* Write v as compact JSON (numbers as %.17g unless integral, strings escaped). */
void json_write(FILE *f, const struct json_value *v);
/* 1 when a and b are the same value (objects: the same members in the same order). */
int json_equal(const struct json_value *a, const struct json_value *b);

#endif
