/*
 * The payload side of the livepatch ABI for payloads written in C: struct livepatch_func (version 2, 104
 * bytes; version 1, 64 bytes, with -DLIVEPATCH_V1), the hook sections, and the services the samples use to
 * log: the sandbox's, or with -DLIVEPATCH_XEN a real Xen 4.17's (xen_payload.h; tests/qemu-arm64 builds the
 * samples so for arm64 Xen). Written for this project from the ABI's description (the seed design, Xen
 * 4.17's public/sysctl.h).
 */
#ifndef LIVEPATCH_H
#define LIVEPATCH_H

#ifdef LIVEPATCH_XEN
#include "xen_payload.h"
#else
#include "../image/sandbox.h"
#define sample_log sandbox_log
#define sample_log_number sandbox_log_number
#define sample_bug sandbox_bug
#endif

struct livepatch_expectation {
    uint8_t enabled : 1;
    uint8_t len : 5;
    uint8_t rsv : 2;
    uint8_t data[31];
} __attribute__((packed));

struct livepatch_func {
    const char *name;
    void *new_addr;
    void *old_addr;
    uint32_t new_size;
    uint32_t old_size;
    uint8_t version;
#ifdef LIVEPATCH_V1
    uint8_t opaque[31];
#else
    uint8_t _pad[39];
    struct livepatch_expectation expect;
#endif
};

#ifdef LIVEPATCH_V1
#define LIVEPATCH_PAYLOAD_VERSION 1
#else
#define LIVEPATCH_PAYLOAD_VERSION 2
#endif

#define LIVEPATCH_FUNC(var) struct livepatch_func __attribute__((section(".livepatch.funcs"), used)) var

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
