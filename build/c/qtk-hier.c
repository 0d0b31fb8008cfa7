/*
 * qtk-hier.c: print what an upstream hier() would install.
 *
 * netqmail's and mess822's install and instcheck programs are hier.c
 * linked with an implementation of h(), d(), c(), z() and p().  This file
 * is a third implementation: it performs nothing and prints one line per
 * call, so that the qmail-build installer can do the installing itself
 * while upstream hier.c stays the single source of truth.
 *
 * Output, one record per line, fields separated by a TAB:
 *   h  home  -       -     -    uid gid mode
 *   d  home  subdir  -     -    uid gid mode
 *   c  home  subdir  file  -    uid gid mode
 *   z  home  -       file  len  uid gid mode
 *   p  home  -       fifo  -    uid gid mode
 * uid and gid are printed in decimal as passed (-1 = leave unchanged),
 * mode in octal.  A path field that contains a TAB or a newline cannot be
 * represented; the program then exits 100 without output.
 *
 * Self-contained C89; written for this project (not upstream code).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern void hier();

static void field(const char *s)
{
  if (strchr(s, '\t') || strchr(s, '\n')) {
    fputs("qtk-hier: fatal: path contains a TAB or newline\n", stderr);
    exit(100);
  }
  fputs(s, stdout);
  putchar('\t');
}

static void record(const char *kind, const char *home, const char *subdir,
                   const char *file, long len, int uid, int gid, int mode)
{
  field(kind);
  field(home);
  field(subdir ? subdir : "-");
  field(file ? file : "-");
  if (len >= 0)
    printf("%ld\t", len);
  else
    fputs("-\t", stdout);
  printf("%d\t%d\t%o\n", uid, gid, (unsigned int) mode);
}

void h(char *home, int uid, int gid, int mode)
{
  record("h", home, 0, 0, -1L, uid, gid, mode);
}

void d(char *home, char *subdir, int uid, int gid, int mode)
{
  record("d", home, subdir, 0, -1L, uid, gid, mode);
}

void c(char *home, char *subdir, char *file, int uid, int gid, int mode)
{
  record("c", home, subdir, file, -1L, uid, gid, mode);
}

void z(char *home, char *file, int len, int uid, int gid, int mode)
{
  record("z", home, 0, file, (long) len, uid, gid, mode);
}

void p(char *home, char *fifo, int uid, int gid, int mode)
{
  record("p", home, 0, fifo, -1L, uid, gid, mode);
}

int main(void)
{
  hier();
  if (fflush(stdout) != 0 || ferror(stdout)) {
    fputs("qtk-hier: fatal: unable to write output\n", stderr);
    return 111;
  }
  return 0;
}
