/* The library the libpulp side of bench/fleet patches: reply() is what the v1 -> v2 patch replaces
 * (libpulp patches functions of shared libraries loaded by processes run with LD_PRELOAD=libpulp.so). */
#include <stdio.h>

int reply(char *buf, int len) { return snprintf(buf, len, "fleet %d", 1); }
