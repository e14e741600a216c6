/*
 * The sandbox hypervisor's interface: what payloads built for it may call, and the structure its hooks
 * receive. Our own ABI, shaped like Xen's (livepatch_payload.h): the payload, its functions and their state.
 */
#ifndef SANDBOX_H
#define SANDBOX_H

#pragma GCC visibility push(hidden)

typedef unsigned char uint8_t;
typedef unsigned short uint16_t;
typedef unsigned int uint32_t;
typedef int int32_t;
typedef unsigned long uint64_t;
typedef long int64_t;
typedef unsigned long size_t;

/* Hypercall numbers (the sandbox's hypercall table). */
#define HYPERCALL_xen_version   0
#define HYPERCALL_hold          1
#define HYPERCALL_count         2
#define HYPERCALL_query         3

/* query sub-ops (limits.c). */
#define QUERY_clamp     0   /* arg clamped to limits[arg >> 8] */
#define QUERY_limit     1   /* limits[arg & 7] */
#define QUERY_served    2   /* queries answered so far */
#define QUERY_threshold 3   /* sandbox_threshold */

/* xen_version sub-ops, as Xen numbers them. */
#define XENVER_version      0
#define XENVER_extraversion 1
#define XEN_EXTRAVERSION_LEN 16

/* Per-function state the core keeps outside the payload (Xen's struct livepatch_fstate). */
struct livepatch_fstate {
    uint32_t patch_offset;
    uint32_t applied;              /* LIVEPATCH_FUNC_NOT_APPLIED 0, LIVEPATCH_FUNC_APPLIED 1 */
    uint8_t insn_buffer[31];
    uint8_t _pad;
};
#define LIVEPATCH_FUNC_NOT_APPLIED 0
#define LIVEPATCH_FUNC_APPLIED 1

struct livepatch_func;

/* What the core passes to pre/post/action hooks. */
typedef struct payload {
    const char *name;
    struct livepatch_func *funcs;
    struct livepatch_fstate *fstate;
    uint32_t nfuncs;
    int32_t rc;                    /* the action's result, for post hooks */
    uint32_t state;                /* LIVEPATCH_STATE_CHECKED 1, APPLIED 2 */
    uint32_t reverted;
} livepatch_payload_t;

/* Services the image offers payloads. */
void sandbox_log(const char *message);      /* a line in the sandbox's log */
void sandbox_bug(const char *message);      /* a failed assertion: logged, and counted as a bug */
long sandbox_log_number(const char *prefix, long value);

#endif
