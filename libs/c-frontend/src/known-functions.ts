/** Blocking calls wrapped by dsu-cc (DESIGN.md §4). */
export const DEFAULT_BLOCKING_FUNCTIONS = [
  'poll',
  'ppoll',
  'select',
  'pselect',
  'epoll_wait',
  'epoll_pwait',
  'accept',
  'accept4',
  'read',
  'recv',
  'recvfrom',
  'recvmsg',
  'nanosleep',
  'clock_nanosleep',
  'sleep',
  'usleep',
  'pthread_cond_wait',
  'pthread_cond_timedwait',
  'pthread_join',
  'waitpid',
  'wait',
  'sem_wait',
  'sem_timedwait',
  'sigwait',
  'sigwaitinfo',
  'sigtimedwait',
  'pause',
  'sigsuspend',
];

/** Compiler builtins: never program calls. */
export const BUILTIN = /^__(builtin|atomic|sync)_/;
/** The allocators whose call sites dsu-cc tracks. */
export const ALLOC = new Set(['malloc', 'calloc', 'realloc']);
/** Calls that move whole instances as raw bytes (layout-dependent I/O). */
export const RAW_IO_FUNCTIONS = new Set([
  'read',
  'write',
  'pread',
  'pwrite',
  'send',
  'recv',
  'sendto',
  'recvfrom',
  'fread',
  'fwrite',
  'memcpy',
  'memmove',
  'mmap',
]);
/** Outside functions that may see instance pointers without depending on the layout. */
export const LAYOUT_NEUTRAL_FUNCTIONS = new Set([
  'free',
  'memset',
  'memcmp',
  'qsort',
  'bsearch',
  'printf',
  'fprintf',
  'snprintf',
  'sprintf',
  'dprintf',
  'pthread_create',
  'pthread_mutex_lock',
  'pthread_mutex_unlock',
  'realloc',
]);
