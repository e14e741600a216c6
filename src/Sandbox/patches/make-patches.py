#!/usr/bin/env python3
"""Writes the sandbox's sample source patches (<name>.patch, -p1 paths relative to src/Sandbox/image), one per
kind of change a live patch made from source can or cannot carry. Run it after changing the image's sources
(the patches' line numbers follow them), then review the patches' diff."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', '..', '..', 'tools'))
source_patches = __import__('source-patches')


def patch(name, note, *edits):
    source_patches.write_patch(os.path.join(HERE, name + '.patch'), note, os.path.join(HERE, '..', 'image'), edits)


V, L = 'version.c', 'limits.c'
patch('extra-version', 'A string: XENVER_extraversion says the hypervisor was patched from source (the demo\'s patch).',
      (V, 'static const char extra_version[] = "-sandbox";\n', ''),
      (V, '    return extra_version;\n}', '    return "-patched";\n}'))
patch('clamp-fix', 'Logic in a static function (with a WARN): clamp() lets the limit itself through no more.',
      (L, '    if ( value > limit )', '    if ( value >= limit )'),
      (L, '        return limit;\n    }', '        return limit - 1;\n    }'))
patch('new-function', 'A new function: the query hypercall learns QUERY_twice (4).',
      (L, 'long sandbox_query(long cmd, long arg, long unused)\n{', 'static noinline long twice(long value)\n{\n    return clamp(value, 7) * 2;\n}\n\nlong sandbox_query(long cmd, long arg, long unused)\n{'),
      (L, '    case QUERY_threshold:\n        return sandbox_threshold;', '    case QUERY_threshold:\n        return sandbox_threshold;\n    case 4: /* QUERY_twice */\n        return twice(arg);'))
patch('new-variable', 'A new variable: clamp() remembers the last value it clamped, QUERY_last_clamped (5) reads it.',
      (L, 'static long limits[8];', 'static long limits[8];\nstatic long last_clamped;'),
      (L, '    if ( value > limit )\n    {', '    if ( value > limit )\n    {\n        last_clamped = value;'),
      (L, '    case QUERY_threshold:\n        return sandbox_threshold;', '    case QUERY_threshold:\n        return sandbox_threshold;\n    case 5: /* QUERY_last_clamped */\n        return last_clamped;'))
patch('static-local', 'A static local: queries count ten at a time; the count goes on from the running hypervisor\'s.',
      (L, '    served++;', '    served += 10;'))
patch('lines-only', 'Only line numbers move (a comment at the top): nothing to patch, though every WARN moves.',
      (L, '#include "xen.h"\n', '#include "xen.h"\n\n/*\n * (A comment that moves every line below it.)\n */\n'))
patch('two-files', 'Two files: a new version string and the clamp fix together.',
      (V, 'static const char extra_version[] = "-sandbox";\n', ''),
      (V, '    return extra_version;\n}', '    return "-two-files";\n}'),
      (L, '    if ( value > limit )', '    if ( value >= limit )'),
      (L, '        return limit;\n    }', '        return limit - 1;\n    }'))
patch('hooks', 'Hooks, with Xen\'s macros: the payload logs when it is applied and reverted.',
      (L, 'long sandbox_query(long cmd, long arg, long unused)\n{',
       'static void limits_patched(void)\n{\n    sandbox_log("limits: live patch applied");\n}\n\nstatic void limits_unpatched(void)\n{\n    sandbox_log("limits: live patch reverted");\n}\n\nLIVEPATCH_LOAD_HOOK(limits_patched);\nLIVEPATCH_UNLOAD_HOOK(limits_unpatched);\n\nlong sandbox_query(long cmd, long arg, long unused)\n{'),
      (L, '    served++;', '    served += 2;'))
patch('init-code', 'Refused: __init code (the limits the boot computes).',
      (L, 'limits[i] = (i + 1) * boot_scale;', 'limits[i] = (i + 2) * boot_scale;'))
patch('init-data', 'Refused: __init data (the scale the boot used).',
      (L, 'static int __initdata boot_scale = 10;', 'static int __initdata boot_scale = 20;'))
patch('threshold', 'Refused: the initial value of a variable that holds live state.',
      (L, 'long __read_mostly sandbox_threshold = 1000;', 'long __read_mostly sandbox_threshold = 2000;'))
