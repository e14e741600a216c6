/*
 * Xen-like definitions for the diff tests: the sections and special-section entries Xen 4.17's headers make
 * on x86 (bug frames, exception table with .fixup, alternatives, __init, per-CPU data, livepatch hooks), written
 * here in their own words so that the objects carry what a hypervisor object carries.
 */
#ifndef DIFF_XEN_H
#define DIFF_XEN_H

#pragma GCC visibility push(hidden)

#define __init        __attribute__((__section__(".init.text"), __cold__))
#define __initdata    __attribute__((__section__(".init.data")))
#define __read_mostly __attribute__((__section__(".data.read_mostly")))
#define noinline      __attribute__((__noinline__))
#define unlikely(x)   __builtin_expect(!!(x), 0)

#define DEFINE_PER_CPU(type, name) \
    __attribute__((__section__(".bss.percpu"))) __typeof__(type) per_cpu__##name
#define this_cpu(name) per_cpu__##name

void printk(const char *fmt, ...) __attribute__((__cold__));
void do_crash(const char *file, int line) __attribute__((__cold__, __noreturn__));
#define crash() do_crash(__FILE__, __LINE__)

/* A bug frame: ud2 in the code, and in .bug_frames.<type> the displacements to it and to the file name,
 * with the line number in their top bits (7 + 7 bits above a 24-bit displacement). */
#define BUG_FRAME(type, line)                                                  \
    asm volatile ( "1: ud2\n"                                                  \
                   ".pushsection .bug_frames." #type ", \"a\", @progbits\n"    \
                   ".p2align 2\n"                                              \
                   "2:\n"                                                      \
                   ".long (1b - 2b) + %c0\n"                                   \
                   ".long (%c1 - 2b) + %c2\n"                                  \
                   ".popsection"                                               \
                   :: "i" (((line) >> 7) << 24), "i" (__FILE__),               \
                      "i" (((line) & 127) << 24) )
#define WARN() BUG_FRAME(1, __LINE__)

/* Reads *p; a fault lands in .fixup, which returns -14 (the exception table pairs the two). */
static inline int read_safe(const int *p, int *val)
{
    int rc = 0;
    asm volatile ( "1: movl %2, %1\n"
                   "2:\n"
                   ".pushsection .fixup, \"ax\", @progbits\n"
                   "3: movl $-14, %0\n"
                   "   jmp 2b\n"
                   ".popsection\n"
                   ".pushsection .ex_table, \"a\", @progbits\n"
                   ".balign 4\n"
                   ".long 1b - ., 3b - .\n"
                   ".popsection"
                   : "+r" (rc), "=r" (*val) : "m" (*p) );
    return rc;
}

/* An alternative: the old instructions, and a record telling the loader what may replace them. */
#define ALTERNATIVE(oldinstr, newinstr, feature)                               \
    "661:\n\t" oldinstr "\n662:\n"                                             \
    ".pushsection .altinstructions, \"a\", @progbits\n"                        \
    ".long 661b - .\n"                                                         \
    ".long 663f - .\n"                                                         \
    ".word " #feature "\n"                                                     \
    ".byte 662b - 661b\n"                                                      \
    ".byte 664f - 663f\n"                                                      \
    ".byte 0\n"                                                                \
    ".byte 0\n"                                                                \
    ".popsection\n"                                                            \
    ".pushsection .altinstr_replacement, \"ax\", @progbits\n"                  \
    "663:\n\t" newinstr "\n664:\n"                                             \
    ".popsection\n"

/* Xen's livepatch_payload.h hooks: a pointer to the function in .livepatch.hooks.<kind>. */
#define LIVEPATCH_LOAD_HOOK(fn)                                                \
    void (*const livepatch_load_data_##fn)(void)                               \
        __attribute__((__weak__, __used__, __section__(".livepatch.hooks.load"))) = fn

#endif
