#!/usr/bin/env python3
"""The sandbox's memory under peers that ask for maximal replies and never read them.

Starts a sandbox (the CLI's JIT build, or XEN_LIVEPATCH=path for the published one), opens CLIENTS connections
that each send a LIST whose out-buffers add up to the most one reply carries and then never read, and meanwhile
checks that another client's GET is still answered. Samples the sandbox's RSS until the hostile peers have been
dropped or SECONDS pass, closes them, and samples again. Prints the peak and the RSS after; exits 0 when the peak is
at most 512 MiB, the RSS after at most 256 MiB, and every GET was answered.
  usage: bench/hostile-clients.py [CLIENTS=64] [SECONDS=45]
"""
import os, socket, struct, subprocess, sys, tempfile, time

clients = int(sys.argv[1]) if len(sys.argv) > 1 else 64
seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 45
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
cli = os.environ.get("XEN_LIVEPATCH")
cmd = [cli] if cli else ["dotnet", os.path.join(root, "artifacts/bin/XenLivepatch.Cli/release/xen-livepatch-full.dll")]
work = tempfile.mkdtemp(prefix="xlp-hostile.")
sock = os.path.join(work, "s.sock")
server = subprocess.Popen(cmd + ["sandbox", "--socket", sock, "--vcpus", "2"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

SYSCTL = 136
MAX_MESSAGE = 4 * 1024 * 1024
MAX_OUT = MAX_MESSAGE - 16 - SYSCTL - 16 * 12

def sysctl(cmd, body):
    # xen_sysctl: cmd 72 (livepatch_op), interface 0x15 (Xen 4.17); the livepatch op: cmd, pad, then the sub-op.
    s = struct.pack("<II", 72, 0x15) + struct.pack("<II", cmd, 0) + body
    return s + bytes(SYSCTL - len(s))

def request(cmd, body, buffers):
    m = struct.pack("<IIII", 0x51504C58, 1, SYSCTL, len(buffers)) + sysctl(cmd, body)
    for address, data, length, flags in buffers:
        m += struct.pack("<QII", address, length, flags) + (data if flags & 1 else b"")
    return struct.pack("<I", len(m)) + m

def rss():
    with open(f"/proc/{server.pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) // 1024
    return 0

# LIST (2): idx, nr, status, name, len, metadata, metadata_len handles; one out-buffer of MAX_OUT bytes at the status handle.
big = request(2, struct.pack("<IIIIQQQQQ", 0, 0, 1, 0, 0x10000, 0, 0, 0, 0), [(0x10000, b"", MAX_OUT, 2)])
# GET (1) of "foo": name handle, size 4.
get = request(1, struct.pack("<QHHI", 0x20000, 4, 0, 0), [(0x20000, b"foo\0", 4, 1)])

def call_get():
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(5)
    s.connect(sock)
    s.sendall(get)
    b = b""
    while len(b) < 12:
        c = s.recv(64)
        if not c:
            break
        b += c
    s.close()
    return len(b) >= 12 and b[:4] != b""

try:
    for _ in range(200):
        if os.path.exists(sock):
            break
        time.sleep(0.1)
    time.sleep(0.5)
    print(f"sandbox pid {server.pid}: RSS {rss()} MiB at start; {clients} peers ask for {MAX_OUT} bytes each and never read")
    hostile = []
    for _ in range(clients):
        s = socket.socket(socket.AF_UNIX)
        s.connect(sock)
        s.sendall(big)
        hostile.append(s)
    peak, gets, answered, start = 0, 0, 0, time.time()
    while time.time() - start < seconds:
        peak = max(peak, rss())
        gets += 1
        answered += call_get()
        time.sleep(0.2)
    for s in hostile:
        s.close()
    time.sleep(3)
    after = rss()
    print(f"peak RSS {peak} MiB while they were connected ({seconds:.0f} s); {answered}/{gets} GETs answered meanwhile; RSS {after} MiB 3 s after they closed")
    ok = peak <= 512 and after <= 256 and answered == gets
    sys.exit(0 if ok else 1)
finally:
    server.send_signal(2)
    try:
        server.wait(10)
    except subprocess.TimeoutExpired:
        server.kill()
