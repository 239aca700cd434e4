/* mt v1 -> v2: work adds 2, tag says v2, slow_op prints v2. */
#include <stdio.h>
#include "instrumented.h"

int __dsu_impl_work__v2(int x) { return x + 2; }
const char *__dsu_impl_tag__v2(void) { return "v2"; }
void __dsu_impl_slow_op__v2(int n) {
    printf("slow v2 start %d\n", n);
    fflush(stdout);
    struct timespec ts = { 2, 500000000 };    /* long: the rollback test needs it active */
    dsu_nanosleep(&ts, NULL);
    printf("slow v2 end %d\n", n);
    fflush(stdout);
}

static const struct dsu_patch_fn fns[] = {
    { "work", DSU_CHANGE_BODY, (void *)&__dsu_impl_work__v2, NULL },
    { "tag", DSU_CHANGE_BODY, (void *)&__dsu_impl_tag__v2, NULL },
    { "slow_op", DSU_CHANGE_BODY, (void *)&__dsu_impl_slow_op__v2, NULL },
};
const struct dsu_patch_desc dsu_patch = {
    DSU_ABI_VERSION, "mt-v1", "mt-v2", "1", "2", 3, fns, 0, NULL
};
