#!/usr/bin/env python3
# The mechanism alone: a 4 KiB pwrite + fdatasync loop on a "log" file (as one append
# after another) while a helper thread prepares a 64 MiB "spare" the old way (1 MiB zero
# writes into the page cache, then one fsync) or the new way (256 KiB writes, each written
# back and waited for with sync_file_range before the next, then fsync). Prints the
# appends' sync latency while the spare was being prepared.
import ctypes, os, sys, threading, time
libc = ctypes.CDLL("libc.so.6", use_errno=True)
WAIT_BEFORE, WRITE, WAIT_AFTER = 1, 2, 4
d = sys.argv[1]; mode = sys.argv[2]; rounds = int(sys.argv[3])
SEG = 64 << 20
def spare(path, chunk, pace):
    fd = os.open(path, os.O_CREAT | os.O_RDWR | os.O_TRUNC, 0o644)
    os.posix_fallocate(fd, 0, SEG)
    z = bytes(chunk)
    for off in range(0, SEG, chunk):
        os.pwrite(fd, z, off)
        if pace:
            libc.sync_file_range(fd, ctypes.c_int64(off), ctypes.c_int64(chunk), WAIT_BEFORE | WRITE | WAIT_AFTER)
    os.fsync(fd); os.close(fd); os.unlink(path)
log = os.open(os.path.join(d, "log"), os.O_CREAT | os.O_RDWR | os.O_TRUNC, 0o644)
os.posix_fallocate(log, 0, SEG); os.pwrite(log, bytes(SEG), 0); os.fsync(log)
rec = bytes(4096); lat = []; spare_s = []
for r in range(rounds):
    done = threading.Event()
    def helper():
        t = time.perf_counter()
        spare(os.path.join(d, "spare"), (1 << 20) if mode == "old" else (256 << 10), mode == "new")
        spare_s.append(time.perf_counter() - t); done.set()
    th = threading.Thread(target=helper); th.start()
    off = (r * 4096 * 4000) % (SEG - 4096 * 4000)
    while not done.is_set():
        t = time.perf_counter(); os.pwrite(log, rec, off); os.fdatasync(log)
        lat.append((time.perf_counter() - t) * 1000); off += 4096
    th.join()
lat.sort(); n = len(lat)
print(f"{mode}: {rounds} spares, each {sum(spare_s)/len(spare_s)*1000:.0f} ms; {n} appends during them: "
      f"p50 {lat[n//2]:.2f} p99 {lat[int(n*.99)]:.2f} p99.9 {lat[int(n*.999)]:.2f} max {lat[-1]:.2f} ms, >10 ms: {sum(1 for x in lat if x > 10)}")
