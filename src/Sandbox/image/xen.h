/*
 * The sandbox hypervisor's internal conventions, in the shape of Xen's (xen/include/xen/{init,compiler,lib}.h,
 * asm/bug.h, livepatch_payload.h): __init code and data, __read_mostly, WARN() as a bug frame carrying its line
 * number, and the hook macros a source patch uses to give its payload hooks. Written for this project.
 */
#ifndef SANDBOX_XEN_H
#define SANDBOX_XEN_H

#include "sandbox.h"

#define __init        __attribute__((__section__(".init.text"), __cold__))
#define __initdata    __attribute__((__section__(".init.data")))
#define __read_mostly __attribute__((__section__(".data.read_mostly")))
#define noinline      __attribute__((__noinline__))
#define likely(x)     __builtin_expect(!!(x), 1)
#define unlikely(x)   __builtin_expect(!!(x), 0)

/*
 * WARN(): as on Xen, a record in .bug_frames.1 holds the displacement to the site and to __FILE__, with the
 * line number in their top 14 bits. Xen traps on a ud2 there; the sandbox has no trap handler, so the site
 * calls sandbox_warn_hit (entry.S), which counts the warning and records where it was.
 */
#define BUG_LINE_LO_BITS 7
#define WARN_AT(line)                                                          \
    asm volatile ( "1: call sandbox_warn_hit\n"                                \
                   ".pushsection .bug_frames.1, \"a\", @progbits\n"            \
                   ".p2align 2\n"                                              \
                   "2:\n"                                                      \
                   ".long (1b - 2b) + %c0\n"                                   \
                   ".long (%c1 - 2b) + %c2\n"                                  \
                   ".popsection"                                               \
                   :: "i" (((line) >> BUG_LINE_LO_BITS) << 24), "i" (__FILE__), \
                      "i" (((line) & ((1 << BUG_LINE_LO_BITS) - 1)) << 24)     \
                   : "memory" )
#define WARN() WARN_AT(__LINE__)
#define WARN_ON(cond) do { if ( unlikely(cond) ) WARN(); } while ( 0 )

/* What WARN() counts: the number of warnings and the address of the last one. */
extern volatile uint64_t sandbox_warnings;
extern volatile uint64_t sandbox_last_warn;

/* Hooks of the payload made from a patch, as Xen's livepatch_payload.h declares them. */
typedef void livepatch_loadcall_t(void);
typedef void livepatch_unloadcall_t(void);
#define LIVEPATCH_LOAD_HOOK(fn)                                                \
    livepatch_loadcall_t *__attribute__((__weak__, __used__, __section__(".livepatch.hooks.load"))) \
        const livepatch_load_data_##fn = fn
#define LIVEPATCH_UNLOAD_HOOK(fn)                                              \
    livepatch_unloadcall_t *__attribute__((__weak__, __used__, __section__(".livepatch.hooks.unload"))) \
        const livepatch_unload_data_##fn = fn

/* hypercall.c */
void sandbox_boot(void);
/* limits.c */
int sandbox_setup_limits(void);
long sandbox_query(long cmd, long arg, long unused);

#endif
