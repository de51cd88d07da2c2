#include "chrun/progress.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "chrun/io.h"
#include "util.h"

#define REDRAW_INTERVAL_MS 100
#define BAR_WIDTH 40

struct progress_item {
    char label[16];
    char status[24];
    uint64_t done, total;
};

struct chrun_progress {
    bool enabled;
    struct progress_item *items;
    int n_items;
    size_t cap_items;
    int drawn_lines; /* lines printed by the last redraw */
    long long last_draw_ms;
    bool dirty;
};

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct chrun_progress *chrun_progress_new(bool enabled)
{
    struct chrun_progress *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    /* SPEC "Pipeline protocol": bars only on a terminal. */
    p->enabled = enabled && isatty(STDERR_FILENO);
    return p;
}

int chrun_progress_add(struct chrun_progress *p, const char *label, uint64_t total)
{
    struct progress_item *it;
    if (p == NULL || !p->enabled)
        return -1;
    if (p->n_items == INT_MAX ||
        chrun_grow(&p->items, &p->cap_items, (size_t) p->n_items + 1, sizeof(*p->items), NULL) < 0)
        return -1;
    it = &p->items[p->n_items];
    memset(it, 0, sizeof(*it));
    snprintf(it->label, sizeof(it->label), "%.12s", label);
    chrun_sanitize(it->label);
    snprintf(it->status, sizeof(it->status), "Waiting");
    it->total = total;
    p->dirty = true;
    return p->n_items++;
}

void chrun_progress_update(struct chrun_progress *p, int idx, uint64_t done, const char *status)
{
    struct progress_item *it;
    if (p == NULL || !p->enabled || idx < 0 || idx >= p->n_items)
        return;
    it = &p->items[idx];
    it->done = done;
    if (status != NULL)
        snprintf(it->status, sizeof(it->status), "%s", status);
    p->dirty = true;
}

static void human(char *buf, size_t size, uint64_t n)
{
    static const char *const units[] = {"B", "kB", "MB", "GB", "TB"};
    double v = (double) n;
    size_t u = 0;
    while (v >= 1000 && u + 1 < ARRAY_SIZE(units)) {
        v /= 1000;
        u++;
    }
    if (u == 0)
        snprintf(buf, size, "%lluB", (unsigned long long) n);
    else
        snprintf(buf, size, "%.1f%s", v, units[u]);
}

static int format_item(const struct progress_item *it, char *line, size_t size)
{
    char done[16], total[16], bar[BAR_WIDTH + 1];
    if (!streq(it->status, "Downloading") || it->total == 0)
        return snprintf(line, size, "%s: %s", it->label, it->status);
    {
        uint64_t d = it->done > it->total ? it->total : it->done;
        int fill = (int) (d * BAR_WIDTH / it->total);
        for (int i = 0; i < BAR_WIDTH; i++)
            bar[i] = i < fill ? '=' : (i == fill ? '>' : ' ');
        bar[BAR_WIDTH] = '\0';
    }
    human(done, sizeof(done), it->done);
    human(total, sizeof(total), it->total);
    return snprintf(line, size, "%s: %-17s [%s] %s/%s", it->label, it->status, bar, done, total);
}

void chrun_progress_draw(struct chrun_progress *p, bool force)
{
    long long now;
    struct winsize ws;
    size_t width = 80, cap, used = 0;
    char *frame;

    if (p == NULL || !p->enabled || !p->dirty)
        return;
    now = mono_ms();
    if (!force && now - p->last_draw_ms < REDRAW_INTERVAL_MS)
        return;
    if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 10)
        width = ws.ws_col;
    cap = (size_t) (p->n_items + 1) * (width + 16) + 32;
    frame = malloc(cap);
    if (frame == NULL)
        return;
    /* Back to the first bar line, then rewrite every line: one write(2). */
    if (p->drawn_lines > 0)
        used += (size_t) snprintf(frame + used, cap - used, "\033[%dA", p->drawn_lines);
    for (int i = 0; i < p->n_items; i++) {
        char line[256];
        int n = format_item(&p->items[i], line, sizeof(line));
        size_t len = n < 0 ? 0 : (size_t) n;
        if (len >= sizeof(line))
            len = sizeof(line) - 1;
        if (len > width - 1)
            len = width - 1;
        used += (size_t) snprintf(frame + used, cap - used, "\r\033[K%.*s\n", (int) len, line);
    }
    (void) chrun_io_write_full(STDERR_FILENO, frame, used, NULL);
    free(frame);
    p->drawn_lines = p->n_items;
    p->last_draw_ms = now;
    p->dirty = false;
}

void chrun_progress_free(struct chrun_progress *p)
{
    if (p == NULL)
        return;
    chrun_progress_draw(p, true);
    free(p->items);
    free(p);
}
