#!/usr/bin/env python3
import sys, re, collections, bisect
# Each slow log fdatasync (>= thr ms) of both servers, put down to one cause, first match:
#  own-spare: the server's own log-helper had writes in the device meanwhile;
#  neighbours: other processes had >= 1 MiB of writes or discards in the device meanwhile;
#  cpu: half of it or more came after the last block completion (the syncing thread
#       waiting for a CPU);
#  device: none of these (its own small requests were slow).
path, thr = sys.argv[1], float(sys.argv[2])
pat = re.compile(r'^\s*(.+?)\s+(\d+)/(\d+)\s+\[\d+\]\s+([\d.]+):\s+(\S+):\s*(.*)$')
enter = {}; syncs = []; issues = {}; reqs = []; comps = []
for line in open(path):
    m = pat.match(line)
    if not m: continue
    comm, p, tid, t, ev, rest = m.groups(); t = float(t)
    if ev == 'ext4:ext4_sync_file_enter': enter[tid] = t
    elif ev == 'ext4:ext4_sync_file_exit' and tid in enter:
        syncs.append((enter.pop(tid), t, comm, p))
    elif ev == 'block:block_rq_issue':
        f = rest.split()
        try: issues[(f[4], f[1])] = (t, comm, p, f[1], int(f[2]))
        except (IndexError, ValueError): pass
    elif ev == 'block:block_rq_complete':
        comps.append(t)
        f = rest.split()
        try: k = (f[3], f[1])
        except IndexError: continue
        if k in issues:
            ti, c, ip, rw, n = issues.pop(k); reqs.append((ti, t, c, ip, rw, n))
reqs.sort(); comps.sort()
starts = [r[0] for r in reqs]
servers = collections.Counter(p for s, e, c, p in syncs if c.startswith('iou-wrk') or c.startswith('SyncThread'))
for pid, _ in servers.most_common(2):
    xs = [(s, e, c) for s, e, c, p in syncs if p == pid and (c.startswith('iou-wrk') or c.startswith('SyncThread'))]
    name = 'ZooKeeper' if any(c.startswith('SyncThread') for _, _, c in xs) else 'ferrokeeper'
    causes = collections.defaultdict(lambda: [0, 0.0])
    slow = [(s, e) for s, e, c in xs if (e - s) * 1000 >= thr]
    for s, e in slow:
        hi = bisect.bisect_right(starts, e)
        lo = bisect.bisect_left(starts, s - 1.0)
        ov = [r for r in reqs[lo:hi] if r[1] > s]
        i = bisect.bisect_left(comps, e) - 1
        last = comps[i] if i >= 0 and comps[i] > s else s
        if any(r[3] == pid and r[2] == 'log-helper' for r in ov): c = 'own-spare'
        elif sum(r[5] for r in ov if r[3] != pid and ('W' in r[4] or 'D' in r[4])) >= (1 << 20): c = 'neighbours'
        elif (e - last) >= 0.5 * (e - s): c = 'cpu'
        else: c = 'device'
        causes[c][0] += 1; causes[c][1] += (e - s) * 1000
    d = sorted((e - s) * 1000 for s, e, c in xs); n = len(d)
    print(f"{name}: {n} log fdatasyncs, p50 {d[n//2]:.2f} p99 {d[int(n*.99)]:.2f} p99.9 {d[int(n*.999)]:.2f} max {d[-1]:.1f} ms; "
          f"{len(slow)} >= {thr:g} ms: " + ', '.join(f"{k} {v[0]} ({v[1]:.0f} ms)" for k, v in sorted(causes.items())))
