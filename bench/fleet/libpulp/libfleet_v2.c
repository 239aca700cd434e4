/* The v2 of reply(), built as the live patch (its descriptor maps reply to reply_v2). */
#include <stdio.h>

int reply_v2(char *buf, int len) { return snprintf(buf, len, "fleet %d", 2); }
