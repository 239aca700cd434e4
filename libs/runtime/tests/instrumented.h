/* instrumented.h -- hand-written equivalent of what dsu-cc emits for each
 * program function (see ABI.md section 1), so tests read like plain C.
 *
 *   DSU_FN(int, compute, "compute", "loop.c", (int x)) { return x * 2; }
 *
 * defines __dsu_impl_compute (the body), the slot __dsu_slot_compute, the
 * stub `compute` (jmp *slot) and the registry entry.  DSU_FN_M takes an
 * explicit mangled name and key, e.g. for a static function
 * DSU_FN_M(int, helper, loop_c__helper, "loop.c::helper", "loop.c", (void)).
 * Program code calls through the slot with DSU_CALL(M)(args). */
#ifndef DSU_TEST_INSTRUMENTED_H
#define DSU_TEST_INSTRUMENTED_H
#include "dsu.h"

#define DSU_FN_M(ret, F, M, KEY, UNIT, params)                                  \
    ret F params;                                                               \
    ret __dsu_impl_##M params;                                                  \
    void *__dsu_slot_##M = (void *)&__dsu_impl_##M;                             \
    __asm__(".text\n\t.globl " #F "\n\t.type " #F ", @function\n"               \
            #F ":\n\tjmp *__dsu_slot_" #M "(%rip)\n\t.size " #F ", .-" #F       \
            "\n\t.previous\n");                                                 \
    static const struct dsu_fn_entry                                            \
        __attribute__((used, section("dsu_fn"), aligned(8)))                    \
        __dsu_entry_##M = { DSU_ABI_VERSION, KEY, &__dsu_slot_##M,              \
                            (void *)&__dsu_impl_##M, UNIT };                    \
    ret __dsu_impl_##M params

#define DSU_FN(ret, F, KEY, UNIT, params) DSU_FN_M(ret, F, F, KEY, UNIT, params)

/* Call through the slot (what dsu-cc turns direct calls into). */
#define DSU_CALL(M)                                                             \
    ((__typeof__(&__dsu_impl_##M))__atomic_load_n(&__dsu_slot_##M, __ATOMIC_RELAXED))

/* In patches: call program function M of type `fntype` (a pointer type)
 * through its slot, which lives in the executable or an earlier patch. */
#define DSU_SLOT_DECL(M) extern void *__dsu_slot_##M
#define DSU_CALL_T(M, fntype)                                                   \
    ((fntype)__atomic_load_n(&__dsu_slot_##M, __ATOMIC_RELAXED))

/* A function with a slot and registry entry but no stub: `main` when it is
 * resumable gets a real entry instead (dsu__run_main, ABI.md section 11). */
#define DSU_FN_NOSTUB(ret, M, KEY, UNIT, params)                                \
    ret __dsu_impl_##M params;                                                  \
    void *__dsu_slot_##M = (void *)&__dsu_impl_##M;                             \
    static const struct dsu_fn_entry                                            \
        __attribute__((used, section("dsu_fn"), aligned(8)))                    \
        __dsu_entry_##M = { DSU_ABI_VERSION, KEY, &__dsu_slot_##M,              \
                            (void *)&__dsu_impl_##M, UNIT };                    \
    ret __dsu_impl_##M params

/* The resumable-function entry dsu-cc emits (section "dsu_frame", static:
 * a patch must never bind to the program's entry of the same name); IMPL is
 * the implementation, SITES a static array of site names. */
#define DSU_FRAME_ENTRY(NAME, KEY, IMPL, SITES)                                 \
    static const struct dsu_frame_fn NAME                                       \
        __attribute__((used, section("dsu_frame"), aligned(8))) =               \
        { DSU_FRAME_ABI_VERSION, sizeof(SITES) / sizeof(SITES[0]), KEY,         \
          (void *)&IMPL, SITES }

/* Program identity, emitted once per program by the link step. */
#define DSU_PROGRAM(name, build_id)                                             \
    const char dsu_program_name[] = name;                                       \
    const char dsu_build_id[] = build_id

#endif
