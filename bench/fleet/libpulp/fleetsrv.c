/* A patchable process for bench/fleet's libpulp side: idle like an idle poll server (blocked in a
 * system call); on SIGUSR1 it calls the library's reply() and prints "<pid> <reply>" (how the bench
 * checks a sample of processes runs v2 after the patch). Prints "ready <pid>" once started. */
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

int reply(char *buf, int len);

static volatile sig_atomic_t asked;
static void on_usr1(int sig) { (void)sig; asked = 1; }

int main(void) {
  char out[64];
  signal(SIGUSR1, on_usr1);
  printf("ready %d\n", (int)getpid());
  fflush(stdout);
  for (;;) {
    pause();
    if (asked) {
      asked = 0;
      reply(out, sizeof out);
      printf("%d %s\n", (int)getpid(), out);
      fflush(stdout);
    }
  }
}
