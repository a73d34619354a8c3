/* rows.c - one fetch result as one JSONL or CSV row, made whole in a buffer before any write. */
#include <string.h>

#include "fetch.h"

const char *rows_csv_header(int keep_body)
{
    return keep_body ? "index,url,status,error,bytes,connect_ms,ttfb_ms,total_ms,ip,location,"
                       "content_type,tls_version,tls_ms,tls_resumed,error_detail,line,"
                       "addresses_tried,attempts,redirects,final_url,chain,body\n"
                     : "index,url,status,error,bytes,connect_ms,ttfb_ms,total_ms,ip,location,"
                       "content_type,tls_version,tls_ms,tls_resumed,error_detail,line,"
                       "addresses_tried,attempts,redirects,final_url,chain\n";
}

static void ms(struct buf *b, uint32_t us)
{
    buf_printf(b, "%.3f", us / 1000.0);
}

static void str(struct buf *b, const char *s)
{
    buf_json(b, s, strlen(s));
}

static void field(struct buf *b, const char *name, const char *s)
{
    if (s) {
        buf_printf(b, ",\"%s\":", name);
        str(b, s);
    }
}

/* [{"url":"...","status":301}, ...]: the hops before the last response. */
static void chain_json(struct buf *b, const rf_result *r)
{
    buf_putc(b, '[');
    for (size_t i = 0; i < r->n_chain; i++) {
        buf_puts(b, i ? ",{\"url\":" : "{\"url\":");
        str(b, r->chain[i].url ? r->chain[i].url : "");
        buf_printf(b, ",\"status\":%d}", r->chain[i].status);
    }
    buf_putc(b, ']');
}

static void row_jsonl(struct buf *b, const rf_result *r, const struct pending *p)
{
    buf_printf(b, "{\"index\":%llu,\"line\":%llu,\"url\":", (unsigned long long)p->index,
               (unsigned long long)p->line);
    str(b, r->url);
    if (r->status)
        buf_printf(b, ",\"status\":%d", r->status);
    else
        buf_puts(b, ",\"status\":null");
    if (r->error == RF_OK)
        buf_puts(b, ",\"error\":null");
    else
        buf_printf(b, ",\"error\":\"%s\"", rf_strerror(r->error));
    field(b, "error_detail", r->error_detail);
    buf_printf(b, ",\"bytes\":%llu,\"connect_ms\":", (unsigned long long)r->body_bytes);
    ms(b, r->connect_us);
    buf_puts(b, ",\"ttfb_ms\":");
    ms(b, r->ttfb_us);
    buf_puts(b, ",\"total_ms\":");
    ms(b, r->total_us);
    buf_puts(b, ",\"ip\":");
    if (r->ip)
        str(b, r->ip);
    else
        buf_puts(b, "null");
    buf_printf(b, ",\"addresses_tried\":%u,\"attempts\":%u,\"redirects\":%u", r->addresses_tried,
               r->attempts, r->redirects);
    field(b, "final_url", r->final_url);
    if (r->n_chain) {
        buf_puts(b, ",\"chain\":");
        chain_json(b, r);
    }
    if (r->tls_version) {
        field(b, "tls_version", r->tls_version);
        buf_puts(b, ",\"tls_ms\":");
        ms(b, r->tls_us);
        buf_printf(b, ",\"tls_resumed\":%s", r->tls_resumed ? "true" : "false");
    }
    field(b, "location", r->location);
    field(b, "content_type", r->content_type);
    if (r->body) {
        buf_puts(b, ",\"body\":");
        buf_json(b, r->body, r->body_len);
    }
    buf_puts(b, "}\n");
}

static void csv(struct buf *b, const char *s)
{
    if (s)
        buf_csv(b, s, strlen(s));
}

static void row_csv(struct buf *b, int keep_body, const rf_result *r, const struct pending *p)
{
    buf_printf(b, "%llu,", (unsigned long long)p->index);
    csv(b, r->url);
    if (r->status)
        buf_printf(b, ",%d,", r->status);
    else
        buf_puts(b, ",,");
    buf_printf(b, "%s,%llu,", r->error == RF_OK ? "" : rf_strerror(r->error),
               (unsigned long long)r->body_bytes);
    ms(b, r->connect_us);
    buf_putc(b, ',');
    ms(b, r->ttfb_us);
    buf_putc(b, ',');
    ms(b, r->total_us);
    buf_putc(b, ',');
    csv(b, r->ip);
    buf_putc(b, ',');
    csv(b, r->location);
    buf_putc(b, ',');
    csv(b, r->content_type);
    buf_putc(b, ',');
    if (r->tls_version) {
        csv(b, r->tls_version);
        buf_putc(b, ',');
        ms(b, r->tls_us);
        buf_puts(b, r->tls_resumed ? ",1," : ",0,");
    } else {
        buf_puts(b, ",,,");
    }
    csv(b, r->error_detail);
    buf_printf(b, ",%llu,%u,%u,%u,", (unsigned long long)p->line, r->addresses_tried, r->attempts,
               r->redirects);
    csv(b, r->final_url);
    buf_putc(b, ',');
    if (r->n_chain) {
        struct buf c = {0};

        chain_json(&c, r); /* the chain as JSON text in one field */
        if (c.oom)
            b->oom = 1;
        else
            buf_csv(b, c.p, c.len);
        buf_free(&c);
    }
    if (keep_body) {
        buf_putc(b, ',');
        if (r->body)
            buf_csv(b, r->body, r->body_len);
    }
    buf_putc(b, '\n');
}

void rows_format(struct buf *b, enum row_format fmt, int keep_body, const rf_result *r,
                 const struct pending *p)
{
    if (fmt == ROWS_CSV)
        row_csv(b, keep_body, r, p);
    else
        row_jsonl(b, r, p);
}
