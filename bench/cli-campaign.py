#!/usr/bin/env python3
"""Process-per-file campaign of the CLI over mutated inputs: each mutant is a fresh `xen-livepatch` process
(the NativeAOT binary ./build.sh publishes), so a crash is an exit code of 128 or more (a signal: 134 is an
unhandled exception's abort, 137 the OOM killer) or a hang, which the in-process tests cannot see.

Targets: check, info, info --target (on mutants of the sandbox's sample payloads) and build (on mutants of an
object gcc makes from a replacement of xen_extra_version). Mutations: byte flips, random 1/2/4/8-byte fields
set to 0, all ones or a random value (header and section-table fields above all), truncation. Every process
runs with a 20 s timeout and a 1 GiB address-space limit. Prints per target the count, the exit codes seen and
the time; keeps each crashing input under artifacts/campaign/; exits 1 when any crashed or hung.
  usage: bench/cli-campaign.py [N=10000 per target] [SEED=1]
"""
import collections, os, random, resource, shutil, struct, subprocess, sys, tempfile, time

n = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
seed = int(sys.argv[2]) if len(sys.argv) > 2 else 1
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
xlp = os.environ.get("XEN_LIVEPATCH", os.path.join(root, "artifacts/publish/xen-livepatch/xen-livepatch"))
image = os.path.join(root, "artifacts/sandbox/xen-syms")
payloads = os.path.join(root, "artifacts/sandbox/payloads")
if not (os.access(xlp, os.X_OK) and os.path.exists(image)):
    sys.exit("cli-campaign.py: run ./build.sh first")
crashes_dir = os.path.join(root, "artifacts/campaign")
work = tempfile.mkdtemp(prefix="xlp-campaign.")
rng = random.Random(seed)

obj, src = os.path.join(work, "hello.o"), os.path.join(work, "hello.c")
with open(src, "w") as f:
    f.write('static const char text[] = "Hello";\nconst char *xen_extra_version(void) { return text; }\n')
subprocess.run(["gcc", "-c", "-O2", "-ffunction-sections", "-fdata-sections", "-fno-pic", "-mcmodel=large", "-o", obj, src], check=True)
seeds = [open(os.path.join(payloads, f), "rb").read() for f in sorted(os.listdir(payloads)) if f.endswith(".livepatch")]
obj_seed = open(obj, "rb").read()

def fields(data):
    # Offsets worth hitting: the ELF header and every section header's fields.
    if len(data) < 64:
        return []
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shnum, = struct.unpack_from("<H", data, 0x3c)
    offs = list(range(0, 64, 2))
    for i in range(min(shnum, 256)):
        base = shoff + i * 64
        if base + 64 <= len(data):
            offs += [base + k for k in (0, 4, 8, 16, 24, 32, 40, 44, 48, 56)]
    return offs

def mutate(data):
    b = bytearray(data)
    offs = fields(data)
    for _ in range(rng.choice((1, 1, 2, 3, 8))):
        r = rng.random()
        if r < 0.45 and offs:
            at, width = rng.choice(offs), rng.choice((1, 2, 4, 8))
            if at + width > len(b):
                continue
            v = rng.choice((0, (1 << (8 * width)) - 1, rng.getrandbits(8 * width), rng.getrandbits(8 * width) & 0xffff, 1 << rng.randrange(8 * width)))
            b[at:at + width] = v.to_bytes(width, "little")
        elif r < 0.9 and b:
            at = rng.randrange(len(b))
            b[at] ^= 1 << rng.randrange(8)
        elif b:
            b = b[:rng.randrange(len(b))]
    return bytes(b)

def limit():
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

targets = [
    ("check", lambda f: [xlp, "check", f, "--target", image], seeds),
    ("info", lambda f: [xlp, "info", f], seeds),
    ("info --target", lambda f: [xlp, "info", "--target", image, f], seeds),
    ("build", lambda f: [xlp, "build", "--target", image, "-o", os.path.join(work, "out.livepatch"), f], [obj_seed]),
]
bad = 0
try:
    for name, argv, corpus in targets:
        codes, start = collections.Counter(), time.time()
        for i in range(n):
            data = mutate(rng.choice(corpus))
            f = os.path.join(work, "input")
            with open(f, "wb") as out:
                out.write(data)
            try:
                rc = subprocess.run(argv(f), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=20, preexec_fn=limit).returncode
            except subprocess.TimeoutExpired:
                rc = "hang"
            if rc == "hang" or rc < 0 or rc >= 128:
                bad += 1
                os.makedirs(crashes_dir, exist_ok=True)
                kept = os.path.join(crashes_dir, f"{name.replace(' ', '-')}-{seed}-{i}.bin")
                shutil.copy(f, kept)
                print(f"  {name}: exit {rc} on {kept}", flush=True)
            codes[rc] += 1
            if (i + 1) % 1000 == 0:
                print(f"  {name}: {i + 1}/{n}", file=sys.stderr, flush=True)
        print(f"{name}: {n} mutants in {time.time() - start:.0f} s, exit codes {dict(sorted(codes.items(), key=str))}", flush=True)
finally:
    shutil.rmtree(work, ignore_errors=True)
sys.exit(1 if bad else 0)
