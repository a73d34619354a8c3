/* test_json.c - the JSON reader: whole documents, garbage, depth, numbers, every prefix. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "json.h"

/* Every input sits just before a guard page, so a read past its end faults. */
static int parse_guarded(const char *text, size_t len, unsigned depth, struct json_doc *doc,
                         struct json_error *err)
{
    void *copy = guard_copy(text, len);
    int ret = json_parse(copy, len, depth, doc, err);

    guard_free(copy, len);
    return ret;
}

static int parses(const char *text)
{
    struct json_doc doc;
    struct json_error err;
    int ok = parse_guarded(text, strlen(text), 0, &doc, &err) == 0;

    json_free(&doc);
    return ok;
}

/* The byte offset of the error, or -1 when the text parses. */
static long error_at(const char *text, size_t len, const char *want_msg)
{
    struct json_doc doc;
    struct json_error err;

    if (parse_guarded(text, len, 0, &doc, &err) == 0) {
        json_free(&doc);
        return -1;
    }
    if (want_msg && !strstr(err.msg, want_msg))
        fprintf(stderr, "  message for %.40s: \"%s\", want \"%s\"\n", text, err.msg, want_msg);
    CHECK(!want_msg || strstr(err.msg, want_msg));
    return (long)err.offset;
}

static void test_report_shape(void)
{
    static const char text[] =
        " {\"format\":\"ringfetch-bench/1\",\"requests\":123456,\"rps\":12345.6,\n"
        "  \"errors\":{\"connect\":0,\"read\":2},\"status\":{\"200\":123454},\n"
        "  \"histogram\":{\"buckets\":[[70,5],[300,1]],\"sumsq\":7.1e11},\n"
        "  \"ok\":true,\"no\":false,\"nothing\":null,\"empty\":[],\"none\":{}} \n";
    struct json_doc doc;
    struct json_error err;
    const struct json_value *r, *b;
    uint64_t u = 0;
    double d = 0;

    if (!CHECK(parse_guarded(text, sizeof(text) - 1, 0, &doc, &err) == 0)) {
        fprintf(stderr, "  byte %zu: %s\n", err.offset, err.msg);
        return;
    }
    r = doc.root;
    CHECK_INT(r->type, JSON_OBJECT);
    CHECK_UINT(r->n, 11);
    CHECK_STR(json_string(json_get(r, "format")), "ringfetch-bench/1");
    CHECK(json_uint(json_get(r, "requests"), &u) == 0 && u == 123456);
    CHECK(json_uint(json_get(r, "rps"), &u) == -1);
    CHECK(json_double(json_get(r, "rps"), &d) == 0 && d == 12345.6);
    CHECK(json_uint(json_get(json_get(r, "errors"), "read"), &u) == 0 && u == 2);
    CHECK(json_get(r, "missing") == NULL);
    CHECK(json_get(json_get(r, "format"), "x") == NULL);
    b = json_get(json_get(r, "histogram"), "buckets");
    CHECK(b && b->type == JSON_ARRAY && b->n == 2);
    if (b && b->child && b->child->next) {
        CHECK(json_uint(b->child->next->child, &u) == 0 && u == 300);
        CHECK(json_uint(b->child->next->child->next, &u) == 0 && u == 1);
    }
    /* integral in any notation: 7.1e11 is exactly 710000000000 */
    CHECK(json_uint(json_get(json_get(r, "histogram"), "sumsq"), &u) == 0 && u == 710000000000u);
    CHECK_INT(json_get(r, "ok")->type, JSON_TRUE);
    CHECK_INT(json_get(r, "no")->type, JSON_FALSE);
    CHECK_INT(json_get(r, "nothing")->type, JSON_NULL);
    CHECK_UINT(json_get(r, "empty")->n, 0);
    CHECK_UINT(json_get(r, "none")->n, 0);
    json_free(&doc);
}

static void test_strings(void)
{
    static const char text[] =
        "[\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\", \"\\u00e9\\u20ac\\ud83d\\ude00\","
        "\"x\\u0000y\", \"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\", \"\"]";
    struct json_doc doc;
    struct json_error err;
    const struct json_value *s;
    char *out = NULL;
    size_t out_len = 0;
    FILE *f;

    if (!CHECK(parse_guarded(text, sizeof(text) - 1, 0, &doc, &err) == 0))
        return;
    s = doc.root->child;
    CHECK_MEM(s->str, s->len, "a\"b\\c/d\b\f\n\r\t", 12);
    s = s->next;
    CHECK_MEM(s->str, s->len, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9);
    s = s->next;
    CHECK_MEM(s->str, s->len, "x\0y", 3);
    s = s->next;
    CHECK_MEM(s->str, s->len, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9);
    CHECK_UINT(s->next->len, 0);
    /* Written back, the document reads as the same value. */
    f = open_memstream(&out, &out_len);
    json_write(f, doc.root);
    fclose(f);
    CHECK_STR(out,
              "[\"a\\\"b\\\\c/d\\u0008\\u000c\\u000a\\u000d\\u0009\",\"\xc3\xa9\xe2\x82\xac"
              "\xf0\x9f\x98\x80\",\"x\\u0000y\",\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\",\"\"]");
    {
        struct json_doc again;

        CHECK(json_parse(out, out_len, 0, &again, &err) == 0 && json_equal(again.root, doc.root));
        json_free(&again);
    }
    free(out);
    json_free(&doc);
}

static void test_numbers(void)
{
    static const struct {
        const char *text;
        int is_uint;
        uint64_t u;
        double d;
    } cases[] = {
        {"0", 1, 0, 0},
        {"18446744073709551615", 1, UINT64_MAX, 18446744073709551615.0},
        {"18446744073709551616", 0, 0, 18446744073709551616.0},
        {"-1", 0, 0, -1},
        {"1e3", 1, 1000, 1000},
        {"2.0", 1, 2, 2},
        {"2.5", 0, 0, 2.5},
        {"1796000000.123456", 0, 0, 1796000000.123456},
        {"1E-400", 1, 0, 0}, /* as a double it is 0 */
        {"123456789012345678901234567890", 0, 0, 123456789012345678901234567890.0},
    };
    static const char *bad[] = {"01", "-", "1.", ".5", "1e", "1e+", "+1", "0x10", "1e400",
                                "-1e999", "Infinity", "NaN", "1.5.2", "--1"};

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct json_doc doc;
        struct json_error err;
        uint64_t u = 0;

        if (!CHECK(parse_guarded(cases[i].text, strlen(cases[i].text), 0, &doc, &err) == 0)) {
            fprintf(stderr, "  %s: %s\n", cases[i].text, err.msg);
            continue;
        }
        CHECK_INT(json_uint(doc.root, &u) == 0, cases[i].is_uint);
        if (cases[i].is_uint)
            CHECK_UINT(u, cases[i].u);
        CHECK(doc.root->num == cases[i].d);
        json_free(&doc);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (!CHECK(!parses(bad[i])))
            fprintf(stderr, "  accepted %s\n", bad[i]);
    CHECK_INT(error_at("1e400", 5, "out of range"), 0);
    /* A number of 100,000 digits is only a large double, read without a fixed buffer. */
    {
        size_t n = 100000;
        char *big = malloc(n + 1);

        memset(big, '7', n);
        big[n] = '\0';
        CHECK_INT(error_at(big, n, "out of range"), 0);
        big[1] = '.';
        CHECK(parses(big));
        free(big);
    }
}

static void test_garbage(void)
{
    static const struct {
        const char *text;
        long offset;
        const char *msg;
    } cases[] = {
        {"", 0, "empty input"},
        {"   \n", 4, "empty input"},
        {"{", 1, "object key"},
        {"{\"a\"", 4, "':' expected"},
        {"{\"a\":", 5, "a value expected"},
        {"{\"a\":1", 6, "'}' or ','"},
        {"{\"a\":1,}", 7, "object key"},
        {"[1,]", 3, "unexpected character ']'"},
        {"[1 2]", 3, "']' or ','"},
        {"{\"a\":1} x", 8, "garbage after"},
        {"{} {}", 3, "garbage after"},
        {"{\"a\":1,\"a\":2}", 0, "duplicate key \"a\""},
        {"[{\"k\":1,\"b\":2,\"k\":3}]", 1, "duplicate key \"k\""},
        {"\"abc", 0, "unterminated string"},
        {"\"a\\\"", 0, "unterminated string"},
        {"\"a\tb\"", 2, "control character 0x09"},
        {"\"\\x\"", 1, "invalid escape"},
        {"\"\\u12\"", 1, "invalid \\u"},
        {"\"\\udc00\"", 1, "lone low surrogate"},
        {"\"\\ud800x\"", 1, "high surrogate"},
        {"\"\\ud800\\u0041\"", 1, "high surrogate"},
        {"\"\xff\"", 1, "invalid UTF-8"},
        {"\"\xc0\xaf\"", 1, "invalid UTF-8"},        /* overlong '/' */
        {"\"\xed\xa0\x80\"", 1, "invalid UTF-8"},    /* an encoded surrogate */
        {"\"\xf4\x90\x80\x80\"", 1, "invalid UTF-8"}, /* past U+10FFFF */
        {"\"\xe2\x82\"", 1, "invalid UTF-8"},        /* cut short */
        {"\xef\xbb\xbf{}", 0, "byte order mark"},
        {"tru", 0, "invalid literal"},
        {"nul", 0, "invalid literal"},
        {"True", 0, "unexpected character 'T'"},
        {"{'a':1}", 1, "object key"},
        {"/* c */ 1", 0, "unexpected character '/'"},
        {"\x01", 0, "unexpected byte 0x01"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        long at = error_at(cases[i].text, strlen(cases[i].text), cases[i].msg);

        if (!CHECK_INT(at, cases[i].offset))
            fprintf(stderr, "  case %zu: %s\n", i, cases[i].text);
    }
    /* A NUL byte inside the text is a byte like any other, not its end. */
    CHECK_INT(error_at("[1]\0", 4, "garbage after"), 3);
    CHECK_INT(error_at("\"a\0b\"", 5, "control character 0x00"), 2);
}

static void test_depth(void)
{
    size_t n = 100000;
    char *deep = malloc(2 * n + 1);
    struct json_doc doc;
    struct json_error err;

    for (size_t i = 0; i < n; i++) {
        deep[i] = '[';
        deep[2 * n - 1 - i] = ']';
    }
    deep[2 * n] = '\0';
    /* 100,000 levels: refused at the 65th without recursing further. */
    CHECK_INT(error_at(deep, 2 * n, "nesting deeper than 64"), 64);
    /* 64 levels are accepted, and a smaller bound is honoured. */
    CHECK(json_parse(deep + n - 64, 128, 0, &doc, &err) == 0);
    json_free(&doc);
    CHECK(json_parse(deep + n - 4, 8, 3, &doc, &err) == -1 && err.offset == 3);
    CHECK(json_parse(deep + n - 3, 6, 3, &doc, &err) == 0);
    json_free(&doc);
    free(deep);
}

/* Every proper prefix of a document that ends in a bracket is an error (a torn write). */
static void test_truncated(void)
{
    static const char text[] =
        "{\"line\":12,\"index\":9,\"url\":\"http://127.0.0.1/\\u00e9\xc3\xa9\",\"status\":200,"
        "\"error\":null,\"ok\":true,\"total_ms\":1.25e1,\"a\":[1,{\"b\":[]},-0.5]}";
    size_t len = sizeof(text) - 1;
    int bad = 0;

    for (size_t n = 0; n < len; n++) {
        struct json_doc doc;
        struct json_error err;

        if (parse_guarded(text, n, 0, &doc, &err) == 0) {
            json_free(&doc);
            bad++;
        } else {
            bad += err.offset > n;
        }
    }
    CHECK_INT(bad, 0);
    CHECK(parses(text));
}

/* Nothing is kept between calls: a million members, then a tiny text, in one process. */
static void test_large(void)
{
    size_t n = 1000000, cap = n * 24 + 16, len = 0;
    char *text = malloc(cap);
    struct json_doc doc;
    struct json_error err;
    uint64_t u = 0;

    text[len++] = '{';
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(text + len, cap - len, "%s\"k%zu\":%zu", i ? "," : "", i, i);
    text[len++] = '}';
    CHECK(json_parse(text, len, 0, &doc, &err) == 0);
    CHECK_UINT(doc.root ? doc.root->n : 0, n);
    CHECK(json_uint(json_get(doc.root, "k999999"), &u) == 0 && u == 999999);
    json_free(&doc);
    /* the same key twice, far apart, is still found */
    memcpy(text + len - 17, "\"k0\":0          ", 16);
    CHECK(json_parse(text, len, 0, &doc, &err) == -1 && strstr(err.msg, "duplicate key"));
    free(text);
}

int main(void)
{
    test_report_shape();
    test_strings();
    test_numbers();
    test_garbage();
    test_depth();
    test_truncated();
    test_large();
    return check_finish("test_json");
}
