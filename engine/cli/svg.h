/* svg.h - the report's charts as inline SVG: axes, ticks, one polyline per series. */
#ifndef RF_CLI_SVG_H
#define RF_CLI_SVG_H

#include <stddef.h>
#include <stdio.h>

/* A chart in the coordinates of its data; x may be logarithmic (base 10). */
struct plot {
    FILE *f;
    double x0, x1, y0, y1;
    int logx;
};

/* Write s (or len bytes of s) as HTML text or an attribute value: & < > " ' escaped. */
void html_escape(FILE *f, const char *s);
void html_escape_mem(FILE *f, const char *s, size_t len);

/* The smallest 1, 2 or 5 times a power of ten that is >= v (v > 0); 1 otherwise. */
double nice_ceil(double v);

/* Open <svg id=ID> with a frame; `label` is what a screen reader says of the chart. */
void plot_begin(struct plot *p, FILE *f, const char *id, const char *label, double x0, double x1,
                int logx, double y0, double y1);
/* A grid line at x (or y) with a label under (beside) the axis. */
void plot_xtick(struct plot *p, double x, const char *label);
void plot_ytick(struct plot *p, double y, const char *label);
/* About five y ticks at round values, each labelled with the value divided by `div`. */
void plot_yticks(struct plot *p, double div);
void plot_axis_labels(struct plot *p, const char *xlabel, const char *ylabel);
/*
 * One series: n points, drawn in `colour`, dashed or not, with class "run-RUN" (the
 * legend's switch) and a tooltip `name`.
 */
void plot_line(struct plot *p, const double *xs, const double *ys, size_t n, const char *colour,
               int dashed, int run, const char *name);
/* A sentence in the middle of an empty chart. */
void plot_note(struct plot *p, const char *text);
void plot_end(struct plot *p);

#endif
