/* qbranch.c: the decision core of the qmail-local branch patch.
 * See qbranch.h. C89, libc-free apart from <stddef.h>. */
#include "qbranch.h"

static size_t line_end(const char *line, size_t len)
{
  size_t n = 0;
  while (n < len && line[n] != '\0') ++n; /* a NUL ends the line */
  while (n > 0 && (line[n - 1] == ' ' || line[n - 1] == '\t')) --n;
  return n;
}

static size_t label_end(const char *line, size_t n)
{
  size_t e = 1;
  while (e < n && line[e] != ' ' && line[e] != '\t') ++e;
  return e;
}

int qbranch_parse(const char *line, size_t len, struct qbranch_line *out)
{
  size_t n;
  size_t e;
  size_t c;

  out->kind = QBRANCH_OTHER;
  out->label = 0;
  out->labellen = 0;
  out->cmd = 0;
  out->cmdlen = 0;
  n = line_end(line, len);
  if (n == 0) return out->kind;
  if (line[0] != '?' && line[0] != ':') return out->kind;
  e = label_end(line, n);
  out->label = 1;
  out->labellen = e - 1;
  if (line[0] == ':') {
    out->kind = QBRANCH_TARGET;
    return out->kind;
  }
  c = e;
  while (c < n && (line[c] == ' ' || line[c] == '\t')) ++c;
  if (c < n) {
    out->kind = QBRANCH_COND;
    out->cmd = c;
    out->cmdlen = n - c;
  } else
    out->kind = QBRANCH_JUMP;
  return out->kind;
}

int qbranch_find(const char *buf, size_t len, size_t from,
                 const char *label, size_t labellen, size_t *next)
{
  size_t i;
  size_t j;
  size_t k;
  struct qbranch_line l;

  i = from;
  while (i < len) {
    j = i;
    while (j < len && buf[j] != '\n') ++j;
    if (qbranch_parse(buf + i, j - i, &l) == QBRANCH_TARGET &&
        l.labellen == labellen) {
      for (k = 0; k < labellen; ++k)
        if (buf[i + l.label + k] != label[k]) break;
      if (k == labellen) {
        *next = (j < len) ? j + 1 : len;
        return 1;
      }
    }
    i = j + 1;
  }
  *next = len;
  return 0;
}
