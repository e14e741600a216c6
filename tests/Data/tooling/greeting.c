/*
 * The payload of the 'xen-livepatch info' golden tests: a replacement of xen_extra_version that reads data
 * and a string, and a load hook. make-fixtures.sh builds it for the test hypervisor (tests/Data/hypervisor).
 */
#pragma GCC visibility push(hidden)

typedef void (*hook_t)(void);

static int greeted;

static void greet(void)
{
    greeted++;
}

static hook_t __attribute__((section(".livepatch.hooks.load"), used)) greet_hook = greet;

const char *xen_extra_version(void)
{
    return greeted ? "greetings" : "hello";
}
