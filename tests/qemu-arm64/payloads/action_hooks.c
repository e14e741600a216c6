/* xen_action_hooks: apply and revert action hooks replace Xen's patching: they only flip each function's
 * state, so nothing is patched and the extraversion does not change. */
#include "livepatch.h"

static int apply_cnt, revert_cnt;

const char *xen_extra_version(void)
{
    return "Hello World";
}

static int apply_hook(livepatch_payload_t *p)
{
    for (unsigned int i = 0; i < p->nfuncs; i++) {
        p->fstate[i].applied = LIVEPATCH_FUNC_APPLIED;
        apply_cnt++;
    }
    printk("xen_action_hooks: apply_hook: %u functions marked applied.\n", p->nfuncs);
    return 0;
}

static int revert_hook(livepatch_payload_t *p)
{
    for (unsigned int i = 0; i < p->nfuncs; i++) {
        p->fstate[i].applied = LIVEPATCH_FUNC_NOT_APPLIED;
        revert_cnt++;
    }
    printk("xen_action_hooks: revert_hook: %u functions marked reverted.\n", p->nfuncs);
    return 0;
}

static void post_revert_hook(livepatch_payload_t *p)
{
    (void)p;
    if (apply_cnt != 1 || revert_cnt != 1)
        printk("xen_action_hooks: post_revert_hook: BUG: unexpected counts\n");
    else
        printk("xen_action_hooks: post_revert_hook: counts as expected.\n");
}

LIVEPATCH_APPLY_HOOK(apply_hook);
LIVEPATCH_REVERT_HOOK(revert_hook);
LIVEPATCH_POSTREVERT_HOOK(post_revert_hook);
