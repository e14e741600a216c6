namespace XenLivepatch.Abi.Tests;

/// <summary>
/// The livepatch structures as C declares them, in both layouts, written for this test from the public
/// header's definitions (sysctl.h of Xen 4.7 for the seed's form, of Xen 4.17 for today's) and compiled by gcc.
/// </summary>
internal static class CStructs
{
    public const string Common = """
        #include <stddef.h>
        #include <stdint.h>
        #include <stdio.h>
        #include <string.h>
        typedef uint64_t uint64_aligned_t __attribute__((aligned(8)));
        #define XEN_GUEST_HANDLE_64(type) union { type *p; uint64_aligned_t q; }

        struct xen_sysctl_readconsole {
            uint8_t clear;
            uint8_t incremental;
            uint8_t pad0, pad1;
            uint32_t index;
            XEN_GUEST_HANDLE_64(char) buffer;
            uint32_t count;
        };
        struct xen_sysctl_debug_keys {
            XEN_GUEST_HANDLE_64(const char) keys;
            uint32_t nr_keys;
        };
        struct xen_build_id {
            uint32_t len;
            unsigned char buf[];
        };
        struct xen_livepatch_name {
            XEN_GUEST_HANDLE_64(char) name;
            uint16_t size;
            uint16_t pad[3];
        };
        struct xen_livepatch_status {
            uint32_t state;
            int32_t rc;
        };
        struct xen_sysctl_livepatch_upload {
            struct xen_livepatch_name name;
            uint64_t size;
            XEN_GUEST_HANDLE_64(uint8_t) payload;
        };
        struct xen_sysctl_livepatch_get {
            struct xen_livepatch_name name;
            struct xen_livepatch_status status;
        };
        struct livepatch_expectation {
            uint8_t enabled : 1;
            uint8_t len : 5;
            uint8_t rsv : 2;
            uint8_t data[31];
        } __attribute__((packed));
        struct livepatch_func_v1 {
            const char *name;
            void *new_addr;
            void *old_addr;
            uint32_t new_size;
            uint32_t old_size;
            uint8_t version;
            uint8_t opaque[31];
        };
        struct livepatch_func_v2 {
            const char *name;
            void *new_addr;
            void *old_addr;
            uint32_t new_size;
            uint32_t old_size;
            uint8_t version;
            uint8_t _pad[39];
            struct livepatch_expectation expect;
        };
        """;

    /// <summary>The layout-dependent structures; <c>L</c> is the suffix of the layout.</summary>
    public static string Layout(bool seed2016) => seed2016 ? """
        struct xen_sysctl_livepatch_list_L {
            uint32_t version;
            uint32_t idx;
            uint32_t nr;
            uint32_t pad;
            XEN_GUEST_HANDLE_64(struct xen_livepatch_status) status;
            XEN_GUEST_HANDLE_64(char) name;
            XEN_GUEST_HANDLE_64(uint32_t) len;
        };
        struct xen_sysctl_livepatch_action_L {
            struct xen_livepatch_name name;
            uint32_t cmd;
            uint32_t timeout;
        };
        struct xen_sysctl_livepatch_op_L {
            uint32_t cmd;
            uint32_t pad;
            union {
                struct xen_sysctl_livepatch_upload upload;
                struct xen_sysctl_livepatch_list_L list;
                struct xen_sysctl_livepatch_get get;
                struct xen_sysctl_livepatch_action_L action;
            } u;
        };
        struct xen_sysctl_L {
            uint32_t cmd;
            uint32_t interface_version;
            union {
                struct xen_sysctl_livepatch_op_L livepatch;
                uint8_t pad[128];
            } u;
        };
        """ : """
        struct xen_sysctl_livepatch_list_L {
            uint32_t version;
            uint32_t idx;
            uint32_t nr;
            uint32_t pad;
            uint32_t name_total_size;
            uint32_t metadata_total_size;
            XEN_GUEST_HANDLE_64(struct xen_livepatch_status) status;
            XEN_GUEST_HANDLE_64(char) name;
            XEN_GUEST_HANDLE_64(uint32_t) len;
            XEN_GUEST_HANDLE_64(char) metadata;
            XEN_GUEST_HANDLE_64(uint32_t) metadata_len;
        };
        struct xen_sysctl_livepatch_action_L {
            struct xen_livepatch_name name;
            uint32_t cmd;
            uint32_t timeout;
            uint32_t flags;
            uint32_t pad;
        };
        struct xen_sysctl_livepatch_op_L {
            uint32_t cmd;
            uint32_t flags;
            union {
                struct xen_sysctl_livepatch_upload upload;
                struct xen_sysctl_livepatch_list_L list;
                struct xen_sysctl_livepatch_get get;
                struct xen_sysctl_livepatch_action_L action;
            } u;
        };
        struct xen_sysctl_L {
            uint32_t cmd;
            uint32_t interface_version;
            union {
                struct xen_sysctl_livepatch_op_L livepatch;
                uint8_t pad[128];
            } u;
        };
        """;
}
