/* qbranch.h: the decision core of the qmail-local branch patch.
 *
 * Two new .qmail line types:
 *   ?LABEL            unconditional forward jump
 *   ?LABEL COMMAND    run COMMAND like a |COMMAND line; exit 99 jumps
 *   :LABEL anything   jump target, otherwise a comment
 *
 * LABEL is the run of bytes after '?' or ':' up to the first space, tab,
 * NUL or the end of the line, and may be empty. COMMAND is the rest of the
 * line after the spaces and tabs that follow LABEL, up to the first NUL
 * (qmail-local cuts a line at a NUL byte), without trailing spaces and
 * tabs. A jump skips every following line up to and including the first
 * later ':' line with a byte-identical LABEL, and goes on after it.
 *
 * Self-contained: needs only <stddef.h>; works on byte buffers with
 * explicit lengths and never reads past them.
 */
#ifndef QBRANCH_H
#define QBRANCH_H

#include <stddef.h>

#define QBRANCH_OTHER 0  /* not a branch line: handled by qmail-local */
#define QBRANCH_JUMP 1   /* ?LABEL with no command: unconditional jump */
#define QBRANCH_COND 2   /* ?LABEL COMMAND: run COMMAND, exit 99 jumps */
#define QBRANCH_TARGET 3 /* :LABEL ...: jump target, else a comment */

struct qbranch_line {
  int kind;        /* one of QBRANCH_* */
  size_t label;    /* offset of LABEL in the line (1 for branch lines) */
  size_t labellen; /* length of LABEL, possibly 0 */
  size_t cmd;      /* QBRANCH_COND: offset of COMMAND in the line */
  size_t cmdlen;   /* QBRANCH_COND: length of COMMAND (> 0) */
};

/* Classify the LEN bytes at LINE (one line, without its '\n'). Fills OUT
 * and returns OUT->kind. Offsets are relative to LINE. */
extern int qbranch_parse(const char *line, size_t len,
                         struct qbranch_line *out);

/* Find the target of a jump with label LABEL (LABELLEN bytes) in the
 * LEN-byte buffer BUF of '\n'-separated lines (the last line need not end
 * in '\n'), searching the lines that start at offset FROM and later (FROM
 * is the start of the line after the '?' line). Returns 1 and sets *NEXT to
 * the offset of the line after the first ':' line whose label equals
 * LABEL byte for byte (LEN if it was the last line); returns 0 and sets
 * *NEXT to LEN when there is none, so that everything is skipped. */
extern int qbranch_find(const char *buf, size_t len, size_t from,
                        const char *label, size_t labellen, size_t *next);

#endif
