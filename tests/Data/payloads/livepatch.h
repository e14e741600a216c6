/* The test payloads share the sandbox payloads' header. */
#include "../../../src/Sandbox/payloads/livepatch.h"
