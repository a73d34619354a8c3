/*
 * test_dq.c - ring/dq.h, the deadline queues: entries kept in deadline order with O(1)
 * insertion at the usual delay, a head that is always the earliest, and moving an entry
 * that is already queued (a timer pushed back, an attempt timer restarted) to its new place.
 */
#include <stdint.h>
#include <stdio.h>

#include "check.h"
#include "ring/dq.h"

#define N 5

static struct dq q;
static struct dq_node node[N];

static void reset(uint64_t delay)
{
    dq_init(&q, delay);
    for (int i = 0; i < N; i++)
        dq_node_init(&node[i]);
}

/* The queue from head to tail as node numbers and due times: "2@10 0@20". Also checks
 * the back links, so a broken list shows. */
static const char *order(void)
{
    static char buf[256];
    size_t off = 0;
    const struct list *prev = &q.head;
    int n = 0;

    buf[0] = '\0';
    for (const struct list *l = q.head.next; l != &q.head && n < 2 * N; l = l->next, n++) {
        const struct dq_node *d = list_entry(l, struct dq_node, link);

        if (l->prev != prev)
            return "broken back link";
        off += (size_t)snprintf(buf + off, sizeof(buf) - off, "%s%d@%llu", off ? " " : "",
                                (int)(d - node), (unsigned long long)d->at);
        prev = l;
    }
    if (n == 2 * N || q.head.prev != prev)
        return "broken list";
    return buf;
}

/* Equal delays: first in, first due; the head is due at its time, not before. */
static void test_fifo(void)
{
    reset(100);
    CHECK_INT(dq_next(&q), -1);
    CHECK(dq_due(&q, UINT64_MAX) == NULL);
    dq_add(&q, &node[0], 10);
    dq_add(&q, &node[1], 10);
    dq_add(&q, &node[2], 15);
    CHECK_STR(order(), "0@110 1@110 2@115");
    CHECK_INT(dq_next(&q), 110);
    CHECK(dq_due(&q, 109) == NULL);
    CHECK(dq_due(&q, 110) == &node[0]);
    CHECK(dq_queued(&node[0]));
    dq_del(&node[0]);
    CHECK(!dq_queued(&node[0]));
    dq_del(&node[0]); /* twice is harmless */
    CHECK_STR(order(), "1@110 2@115");
    CHECK(dq_due(&q, 200) == &node[1]);
}

/* Other delays go to their place in deadline order, equal ones after those queued first. */
static void test_add_at(void)
{
    reset(100);
    dq_add(&q, &node[0], 0);  /* 100 */
    dq_add(&q, &node[1], 50); /* 150 */
    dq_add_at(&q, &node[2], 120);
    dq_add_at(&q, &node[3], 5);
    dq_add_at(&q, &node[4], 150);
    CHECK_STR(order(), "3@5 0@100 2@120 1@150 4@150");
    CHECK_INT(dq_next(&q), 5);
}

/* An entry already queued moves to its new place, wherever it was: head, middle or tail,
 * alone or not, earlier or later. Nothing is lost and nothing appears twice. */
static void test_requeue(void)
{
    reset(100);
    dq_add(&q, &node[0], 0);
    dq_add(&q, &node[0], 50); /* alone in the queue, moved later */
    CHECK_STR(order(), "0@150");
    CHECK_INT(dq_next(&q), 150);

    dq_add(&q, &node[1], 60);
    dq_add(&q, &node[2], 70);
    CHECK_STR(order(), "0@150 1@160 2@170");
    dq_add(&q, &node[2], 80); /* the tail, later */
    CHECK_STR(order(), "0@150 1@160 2@180");
    dq_add_at(&q, &node[2], 155); /* the tail, earlier */
    CHECK_STR(order(), "0@150 2@155 1@160");
    dq_add(&q, &node[0], 100); /* the head, to the tail */
    CHECK_STR(order(), "2@155 1@160 0@200");
    dq_add_at(&q, &node[1], 10); /* the middle, to the head */
    CHECK_STR(order(), "1@10 2@155 0@200");
    dq_add_at(&q, &node[1], 10); /* to where it is */
    CHECK_STR(order(), "1@10 2@155 0@200");
}

/* Moving an entry from one queue to another. */
static void test_other_queue(void)
{
    struct dq other;

    reset(100);
    dq_init(&other, 5);
    dq_add(&q, &node[0], 0);
    dq_add(&q, &node[1], 0);
    dq_add(&other, &node[1], 0);
    CHECK_STR(order(), "0@100");
    CHECK_INT(dq_next(&other), 5);
    dq_del(&node[1]);
    CHECK_INT(dq_next(&other), -1);
}

static void test_min(void)
{
    CHECK_INT(dq_min(-1, -1), -1);
    CHECK_INT(dq_min(-1, 7), 7);
    CHECK_INT(dq_min(7, -1), 7);
    CHECK_INT(dq_min(3, 7), 3);
    CHECK_INT(dq_min(7, 3), 3);
}

int main(void)
{
    test_fifo();
    test_add_at();
    test_requeue();
    test_other_queue();
    test_min();
    return check_finish("test_dq");
}
