/* svg.c - draws the report's charts as inline SVG elements, coordinates rounded to 0.1 px. */
#include "svg.h"

#include <math.h>
#include <string.h>

/* One size for every chart: the page stacks them, and the viewBox scales them to the width. */
#define W 760.0
#define H 300.0
#define LEFT 76.0
#define RIGHT 40.0
#define TOP 14.0
#define BOTTOM 46.0

void html_escape_mem(FILE *f, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c == '&')
            fputs("&amp;", f);
        else if (c == '<')
            fputs("&lt;", f);
        else if (c == '>')
            fputs("&gt;", f);
        else if (c == '"')
            fputs("&quot;", f);
        else if (c == '\'')
            fputs("&#39;", f);
        else if (c < 0x20 || c == 0x7f)
            fputs("\xef\xbf\xbd", f); /* control bytes are not HTML text: U+FFFD instead */
        else
            putc(c, f);
    }
}

void html_escape(FILE *f, const char *s)
{
    if (s)
        html_escape_mem(f, s, strlen(s));
}

double nice_ceil(double v)
{
    double mag;

    if (!(v > 0) || !isfinite(v))
        return 1;
    mag = pow(10, floor(log10(v)));
    /* the multiplication can land a hair below v for v itself round: compare with a margin */
    if (v <= mag * 1.000001)
        return mag;
    if (v <= 2 * mag * 1.000001)
        return 2 * mag;
    if (v <= 5 * mag * 1.000001)
        return 5 * mag;
    return 10 * mag;
}

static double px(const struct plot *p, double x)
{
    double a = p->logx ? log10(p->x0) : p->x0, b = p->logx ? log10(p->x1) : p->x1;
    double v = p->logx ? log10(x > 0 ? x : p->x0) : x;
    double t = b > a ? (v - a) / (b - a) : 0;

    t = t < 0 ? 0 : t > 1 ? 1 : t;
    return LEFT + t * (W - LEFT - RIGHT);
}

static double py(const struct plot *p, double y)
{
    double t = p->y1 > p->y0 ? (y - p->y0) / (p->y1 - p->y0) : 0;

    /* a point past the top is drawn on the frame, not outside the chart */
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    return TOP + (1 - t) * (H - TOP - BOTTOM);
}

void plot_begin(struct plot *p, FILE *f, const char *id, const char *label, double x0, double x1,
                int logx, double y0, double y1)
{
    p->f = f;
    p->x0 = x0;
    p->x1 = x1 > x0 ? x1 : x0 + 1;
    p->logx = logx;
    p->y0 = y0;
    p->y1 = y1 > y0 ? y1 : y0 + 1;
    fprintf(f, "<svg id=\"%s\" class=\"chart\" viewBox=\"0 0 %.0f %.0f\" role=\"img\" "
               "aria-label=\"", id, W, H);
    html_escape(f, label);
    fprintf(f, "\">\n<rect class=\"frame\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
               "height=\"%.1f\"/>\n", LEFT, TOP, W - LEFT - RIGHT, H - TOP - BOTTOM);
}

void plot_xtick(struct plot *p, double x, const char *label)
{
    double X = px(p, x);

    fprintf(p->f, "<line class=\"grid\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>"
                  "<text class=\"tick\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">",
            X, TOP, X, H - BOTTOM, X, H - BOTTOM + 15);
    html_escape(p->f, label);
    fputs("</text>\n", p->f);
}

void plot_ytick(struct plot *p, double y, const char *label)
{
    double Y = py(p, y);

    fprintf(p->f, "<line class=\"grid\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>"
                  "<text class=\"tick\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">",
            LEFT, Y, W - RIGHT, Y, LEFT - 5, Y + 4);
    html_escape(p->f, label);
    fputs("</text>\n", p->f);
}

void plot_yticks(struct plot *p, double div)
{
    double step = nice_ceil((p->y1 - p->y0) / 5);
    char label[32];

    /* integer steps: no tick drifts by the sum of rounding errors */
    for (int i = 0; i <= 10; i++) {
        double y = p->y0 + i * step;

        if (y > p->y1 * 1.000001)
            break;
        snprintf(label, sizeof(label), "%g", y / div);
        plot_ytick(p, y, label);
    }
}

void plot_axis_labels(struct plot *p, const char *xlabel, const char *ylabel)
{
    fprintf(p->f, "<text class=\"axis\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">",
            LEFT + (W - LEFT - RIGHT) / 2, H - 8);
    html_escape(p->f, xlabel);
    fprintf(p->f, "</text>\n<text class=\"axis\" transform=\"translate(16 %.1f) rotate(-90)\" "
                  "text-anchor=\"middle\">", TOP + (H - TOP - BOTTOM) / 2);
    html_escape(p->f, ylabel);
    fputs("</text>\n", p->f);
}

void plot_line(struct plot *p, const double *xs, const double *ys, size_t n, const char *colour,
               int dashed, int run, const char *name)
{
    if (!n)
        return;
    fprintf(p->f, "<polyline class=\"run-%d\" fill=\"none\" stroke=\"%s\" stroke-width=\"1.6\"%s "
                  "points=\"", run, colour, dashed ? " stroke-dasharray=\"6 3\"" : "");
    for (size_t i = 0; i < n; i++)
        fprintf(p->f, "%s%.1f,%.1f", i ? " " : "", px(p, xs[i]), py(p, ys[i]));
    fputs("\"><title>", p->f);
    html_escape(p->f, name);
    fputs("</title></polyline>\n", p->f);
}

void plot_note(struct plot *p, const char *text)
{
    fprintf(p->f, "<text class=\"note\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">",
            LEFT + (W - LEFT - RIGHT) / 2, TOP + (H - TOP - BOTTOM) / 2);
    html_escape(p->f, text);
    fputs("</text>\n", p->f);
}

void plot_end(struct plot *p)
{
    fputs("</svg>\n", p->f);
}
