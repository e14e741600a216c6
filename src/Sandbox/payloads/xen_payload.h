/*
 * What the samples need from a real Xen 4.17 hypervisor (LP64: arm64, x86-64 alike), for -DLIVEPATCH_XEN:
 * the part of Xen's struct payload that hooks read (xen/livepatch_payload.h), the per-function state, and
 * the hypervisor's printk for the samples' log lines. Written for this project from Xen 4.17's headers'
 * description of the layout.
 */
#ifndef XEN_PAYLOAD_H
#define XEN_PAYLOAD_H

#include <stddef.h>
#include <stdint.h>

/* The hypervisor's console (a hypervisor symbol the payload's relocations resolve). */
void printk(const char *format, ...);

#define sample_log(message) printk("livepatch sample: %s\n", message)
#define sample_log_number(prefix, value) printk("livepatch sample: %s%ld\n", prefix, (long)(value))
#define sample_bug(message) printk("livepatch sample: %s\n", message)

/* Per-function state Xen keeps beside the payload (struct livepatch_fstate). */
struct livepatch_fstate {
    unsigned int patch_offset;
    unsigned int applied;          /* LIVEPATCH_FUNC_NOT_APPLIED 0, LIVEPATCH_FUNC_APPLIED 1 */
    uint8_t insn_buffer[31];
};
#define LIVEPATCH_FUNC_NOT_APPLIED 0
#define LIVEPATCH_FUNC_APPLIED 1

/* The leading members of Xen 4.17's struct payload, which hooks receive; the samples read up to nfuncs. */
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

#endif
