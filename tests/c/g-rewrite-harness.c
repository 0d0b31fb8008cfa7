/* difftest: qmail-send's rewrite() and stripvdomprepend(), cut unchanged
   from the pristine qmail-send.c at build time, with getcontrols(). */
#include <unistd.h>
#include <stdlib.h>
#include "stralloc.h"
#include "byte.h"
#include "str.h"
#include "constmap.h"
#include "control.h"
#include "auto_qmail.h"

int lifetime = 604800;
unsigned int concurrency[2] = { 10, 20 };
stralloc percenthack = {0};
struct constmap mappercenthack;
stralloc locals = {0};
struct constmap maplocals;
stralloc vdoms = {0};
struct constmap mapvdoms;
stralloc envnoathost = {0};
stralloc bouncefrom = {0};
stralloc bouncehost = {0};
stralloc doublebounceto = {0};
stralloc doublebouncehost = {0};

@CUT@

static void put(const char *s, unsigned int n)
{
  while (n > 0) {
    int w = write(1, s, n);
    if (w <= 0) _exit(112);
    s += w; n -= w;
  }
}

int main(void)
{
  static char buf[65536];
  stralloc in = {0};
  unsigned int i, start;
  int r;
  if (chdir(auto_qmail) == -1) _exit(110);
  if (!getcontrols()) { put("!", 1); _exit(0); }
  for (;;) {
    r = read(0, buf, sizeof buf);
    if (r < 0) _exit(113);
    if (r == 0) break;
    if (!stralloc_catb(&in, buf, r)) _exit(114);
  }
  start = 0;
  for (i = 0; i < in.len; ++i) {
    if (in.s[i]) continue;
    {
      char *copy = in.s + start;
      char code;
      char *shown;
      r = rewrite(copy);
      if (!r) _exit(115);
      code = '0' + r;
      put(&code, 1);
      put(rwline.s + 1, rwline.len - 1);
      shown = stripvdomprepend(rwline.s + 1);
      put(shown, str_len(shown) + 1);
    }
    start = i + 1;
  }
  return 0;
}
