/*
 * The payload side of Xen 4.17's livepatch ABI for the sample payloads that run on a real hypervisor (LP64:
 * arm64 here, x86-64 alike): the hook sections, the part of Xen's struct payload that hooks read, and the
 * hypervisor's printk. Written for this project from the ABI's description (the seed design, Xen 4.17's
 * public/sysctl.h and xen/livepatch_payload.h); the function entries are written by `xen-livepatch build`.
 */
#ifndef LIVEPATCH_H
#define LIVEPATCH_H

#include <stddef.h>
#include <stdint.h>

/* The hypervisor's console (a hypervisor symbol the payload's relocations resolve). */
void printk(const char *format, ...);

struct livepatch_func;

/* Per-function state Xen keeps beside the payload (struct livepatch_fstate). */
struct livepatch_fstate {
    unsigned int patch_offset;
    unsigned int applied;          /* LIVEPATCH_FUNC_NOT_APPLIED 0, LIVEPATCH_FUNC_APPLIED 1 */
    uint8_t insn_buffer[31];
};
#define LIVEPATCH_FUNC_NOT_APPLIED 0
#define LIVEPATCH_FUNC_APPLIED 1

/* The leading members of Xen 4.17's struct payload, which hooks receive; only read up to nfuncs. */
typedef struct payload {
    uint32_t state;
    int32_t rc;                    /* the action's result, for post hooks */
    _Bool reverted;
    _Bool safe_to_reapply;
    void *list[2];
    const void *text_addr;
    size_t text_size;
    const void *rw_addr;
    size_t rw_size;
    const void *ro_addr;
    size_t ro_size;
    unsigned int pages;
    void *applied_list[2];
    const struct livepatch_func *funcs;
    struct livepatch_fstate *fstate;
    unsigned int nfuncs;
} livepatch_payload_t;

typedef void (*livepatch_loadcall_t)(void);
typedef int (*livepatch_precall_t)(livepatch_payload_t *payload);
typedef void (*livepatch_postcall_t)(livepatch_payload_t *payload);
typedef int (*livepatch_actioncall_t)(livepatch_payload_t *payload);

#define LIVEPATCH_LOAD_HOOK(f) \
    static livepatch_loadcall_t __attribute__((section(".livepatch.hooks.load"), used)) f##_load_hook = f
#define LIVEPATCH_UNLOAD_HOOK(f) \
    static livepatch_loadcall_t __attribute__((section(".livepatch.hooks.unload"), used)) f##_unload_hook = f
#define LIVEPATCH_HOOK(sec, type, f) \
    static type __attribute__((section(sec), used)) f##_hook = f
#define LIVEPATCH_PREAPPLY_HOOK(f) LIVEPATCH_HOOK(".livepatch.hooks.preapply", livepatch_precall_t, f)
#define LIVEPATCH_APPLY_HOOK(f) LIVEPATCH_HOOK(".livepatch.hooks.apply", livepatch_actioncall_t, f)
#define LIVEPATCH_POSTAPPLY_HOOK(f) LIVEPATCH_HOOK(".livepatch.hooks.postapply", livepatch_postcall_t, f)
#define LIVEPATCH_PREREVERT_HOOK(f) LIVEPATCH_HOOK(".livepatch.hooks.prerevert", livepatch_precall_t, f)
#define LIVEPATCH_REVERT_HOOK(f) LIVEPATCH_HOOK(".livepatch.hooks.revert", livepatch_actioncall_t, f)
#define LIVEPATCH_POSTREVERT_HOOK(f) LIVEPATCH_HOOK(".livepatch.hooks.postrevert", livepatch_postcall_t, f)

#endif
