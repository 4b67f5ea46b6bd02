#!/bin/bash
# One `compare --quick` run with every fsync/fdatasync (ext4_sync_file enter/exit, of any
# thread: syscalls, io_uring workers) and every block request traced system-wide, then
# decoded for causes.py. Usage: trace.sh SERVER_BINARY OUT_DIR WORKLOADS
set -e
BIN=$1; OUT=$2; WL=${3:-durability}
mkdir -p "$OUT"
perf record -q -a -o "$OUT/perf.data" -e ext4:ext4_sync_file_enter -e ext4:ext4_sync_file_exit \
    -e block:block_rq_issue -e block:block_rq_complete > "$OUT/perf.log" 2>&1 &
PERF=$!
sleep 1
target/release/ferrokeeper-bench compare --quick --workloads "$WL" --keep-dirs \
    --ferrokeeper-bin "$BIN" --out "$OUT" > "$OUT/bench.log" 2>&1 || true
kill -INT $PERF; wait $PERF || true
perf script -i "$OUT/perf.data" -F comm,pid,tid,cpu,time,event,trace > "$OUT/trace.txt" 2>/dev/null
python3 "$(dirname "$0")/causes.py" "$OUT/trace.txt" 10
