/*
 * fuzz-qbranch: a libFuzzer harness for the qmail-local branch core
 * (patches/c/qbranch.c). The input is a .qmail file; every line goes
 * through qbranch_parse, and every jump through qbranch_find, each on an
 * exact-size copy (so that ASan sees a read past the end), and the answers
 * are checked against the rules of qbranch.h.
 *
 * Build (cargo xtask fuzz does this):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
 *     -Ipatches/c tests/c/fuzz-qbranch.c patches/c/qbranch.c
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "qbranch.h"

static int blank(char c) { return c == ' ' || c == '\t'; }

/* the usable length of a line: up to the first NUL, without trailing
   blanks */
static size_t usable(const char *l, size_t n)
{
  size_t k = 0;
  while (k < n && l[k]) ++k;
  while (k > 0 && blank(l[k - 1])) --k;
  return k;
}

/* check one parse against the rules of qbranch.h; abort on a violation */
static void check_parse(const char *l, size_t n, const struct qbranch_line *b)
{
  size_t u = usable(l, n);
  size_t i;
  if (u == 0 || (l[0] != '?' && l[0] != ':')) {
    if (b->kind != QBRANCH_OTHER) abort();
    return;
  }
  if (b->label != 1 || b->label + b->labellen > u) abort();
  for (i = 1; i < 1 + b->labellen; ++i) if (blank(l[i]) || !l[i]) abort();
  if (1 + b->labellen < u && !blank(l[1 + b->labellen])) abort();
  if (l[0] == ':') {
    if (b->kind != QBRANCH_TARGET) abort();
    return;
  }
  if (b->kind == QBRANCH_JUMP) {
    for (i = 1 + b->labellen; i < u; ++i) if (!blank(l[i])) abort();
    return;
  }
  if (b->kind != QBRANCH_COND) abort();
  if (b->cmdlen == 0 || b->cmd < 1 + b->labellen || b->cmd + b->cmdlen != u) abort();
  if (blank(l[b->cmd])) abort();
  for (i = 1 + b->labellen; i < b->cmd; ++i) if (!blank(l[i])) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  char *buf;
  size_t i = 0;
  int lines = 0;

  buf = (char *) malloc(size ? size : 1);
  if (!buf) return 0;
  if (size) memcpy(buf, data, size);
  while (i < size && lines < 4096) {
    size_t j = i;
    char *l;
    struct qbranch_line b;
    int kind;
    while (j < size && buf[j] != '\n') ++j;
    l = (char *) malloc(j - i ? j - i : 1);
    if (!l) break;
    memcpy(l, buf + i, j - i);
    kind = qbranch_parse(l, j - i, &b);
    if (kind != b.kind) abort();
    check_parse(l, j - i, &b);
    if (kind == QBRANCH_JUMP || kind == QBRANCH_COND) {
      size_t next = (size_t) -1;
      size_t from = j < size ? j + 1 : size;
      char *label = (char *) malloc(b.labellen ? b.labellen : 1);
      int found;
      if (!label) { free(l); break; }
      memcpy(label, l + b.label, b.labellen);
      found = qbranch_find(buf, size, from, label, b.labellen, &next);
      if (next > size) abort();
      if (!found && next != size) abort();
      if (found) {
        /* the line just before next is a ':' line with the same label,
           and no line between from and it is one */
        size_t s = next;
        size_t e;
        struct qbranch_line t;
        size_t p;
        if (next < size && (next == 0 || buf[next - 1] != '\n')) abort();
        e = (next < size || (size && buf[size - 1] == '\n')) ? next - 1 : next;
        s = e;
        while (s > from && buf[s - 1] != '\n') --s;
        if (s < from) abort();
        if (qbranch_parse(buf + s, e - s, &t) != QBRANCH_TARGET) abort();
        if (t.labellen != b.labellen || memcmp(buf + s + t.label, label, b.labellen)) abort();
        for (p = from; p < s;) {
          size_t q = p;
          while (q < size && buf[q] != '\n') ++q;
          if (qbranch_parse(buf + p, q - p, &t) == QBRANCH_TARGET
              && t.labellen == b.labellen && !memcmp(buf + p + t.label, label, b.labellen))
            abort();
          p = q + 1;
        }
      }
      free(label);
    }
    free(l);
    ++lines;
    i = j + 1;
  }
  free(buf);
  return 0;
}
