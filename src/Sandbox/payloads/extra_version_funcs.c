/*
 * The function entry of the samples that replace xen_extra_version, written in C for the gcc/objcopy/ld
 * recipe (tools/payload/build-payload.sh), which is the tests' oracle for 'xen-livepatch build': build
 * writes this entry itself from the sample alone. The recipe's --cflags choose the variant:
 *   -DRESOLVED       old_addr holds the address (build --resolve), as xen_bye_world's does
 *   -DEXPECT_HERE    expects the first 8 bytes of the function as they are (build --expect FUNC:8)
 *   -DEXPECT_WRONG   expects de ad c0 de ba be, which are not there (build --expect FUNC=deadc0debabe)
 */
#include "livepatch.h"

const char *xen_extra_version(void);

static const char patch_this_fnc[] __attribute__((section(".livepatch.strings"))) = "xen_extra_version";

LIVEPATCH_FUNC(livepatch_xen_extra_version) = {
    .version = LIVEPATCH_PAYLOAD_VERSION,
    .name = patch_this_fnc,
    .new_addr = xen_extra_version,
#ifdef RESOLVED
    .old_addr = (void *)ADDR_xen_extra_version,
#else
    .old_addr = 0,
#endif
    .new_size = SZ_xen_extra_version,
    .old_size = OLD_SZ_xen_extra_version,
#if defined(EXPECT_HERE)
    .expect = { .enabled = 1, .len = 8, .data = { BYTES8_xen_extra_version } },
#elif defined(EXPECT_WRONG)
    .expect = { .enabled = 1, .len = 6, .data = { 0xde, 0xad, 0xc0, 0xde, 0xba, 0xbe } },
#endif
};
