#!/usr/bin/env python3
"""Run one command and measure what it cost, for the bench/ scripts.

    measure.py OUT.json [--watch PID,...] [--stdout F] [--stderr F] -- CMD ARGS...

Writes OUT.json: {"user_s", "sys_s", "cpu_s", "wall_s", "maxrss_kb", "tree_rss_kb",
"exit", "watched_cpu_s"} and exits with the command's status.

- user_s/sys_s: os.wait4 on the command (µs resolution): its own CPU plus that of every
  descendant it waited for (Linux reports RUSAGE_BOTH of the child). Multi-process
  tools (AIPerf) are fully counted this way as long as they reap their workers, which
  they do. /usr/bin/time's own ~1 ms is included, the same in every run (it cancels
  where a 1-request run is subtracted).
- maxrss_kb: the largest single process of the tree, from GNU time's %M. The command
  runs under /usr/bin/time because a child forked from this Python process would
  carry Python's ~10 MB into its own ru_maxrss (the kernel records the old image's
  high-water mark at exec); time is a small C program.
- tree_rss_kb: the largest *sum* of RSS over the command and all its descendants,
  sampled every 20 ms from /proc: the memory a multi-process tool really holds; never
  less than maxrss_kb (sampling can miss a short peak), so for a one-process tool it
  is maxrss_kb.
- watched_cpu_s: CPU used meanwhile by other processes (the server), from
  /proc/PID/stat (clock ticks: 10 ms resolution), to show whether the server or the
  client was the bottleneck.
- load_start/load_end: the 1-minute load average before and after: on a shared
  machine, wall-clock figures (lag, startup) mean little without it.
"""

import json
import os
import sys
import threading
import time

CLK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def children_map():
    kids = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # The command name may hold spaces or parentheses: split after the last ')'.
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        kids.setdefault(ppid, []).append(int(name))
    return kids


def tree_rss_kb(root):
    kids = children_map()
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        todo.extend(kids.get(pid, []))
        try:
            with open(f"/proc/{pid}/statm") as f:
                total += int(f.read().split()[1]) * PAGE_KB
        except OSError:
            pass
    return total


def own_rss_kb(pid):
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * PAGE_KB
    except OSError:
        return 0


def cpu_s(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
        fields = stat[stat.rindex(")") + 2 :].split()
        return (int(fields[11]) + int(fields[12])) / CLK
    except (OSError, ValueError, IndexError):
        return 0.0


def load_avg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def main():
    args = sys.argv[1:]
    if "--" not in args or not args or args[0] == "--":
        sys.exit(__doc__)
    cut = args.index("--")
    out, opts, cmd = args[0], args[1:cut], args[cut + 1 :]
    watch, stdout, stderr = [], None, None
    while opts:
        flag, value = opts[0], opts[1]
        opts = opts[2:]
        if flag == "--watch":
            watch = [int(p) for p in value.split(",") if p]
        elif flag == "--stdout":
            stdout = value
        elif flag == "--stderr":
            stderr = value
        else:
            sys.exit(f"unknown option {flag}")
    watched_before = sum(cpu_s(p) for p in watch)
    load_start = load_avg()
    rss_file = f"{out}.maxrss"
    cmd = ["/usr/bin/time", "-f", "%M", "-o", rss_file, "--"] + cmd
    t0 = time.monotonic()
    pid = os.fork()
    if pid == 0:
        if stdout:
            fd = os.open(stdout, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(fd, 1)
        if stderr:
            fd = os.open(stderr, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(fd, 2)
        try:
            os.execvp(cmd[0], cmd)
        except OSError as e:
            print(f"measure.py: cannot run {cmd[0]}: {e}", file=sys.stderr)
            os._exit(127)
    peak = [0]
    done = threading.Event()

    def sample():
        while not done.is_set():
            # The tree below /usr/bin/time: the command and its descendants.
            peak[0] = max(peak[0], tree_rss_kb(pid) - own_rss_kb(pid))
            done.wait(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, status, ru = os.wait4(pid, 0)
    wall = time.monotonic() - t0
    done.set()
    sampler.join()
    code = os.waitstatus_to_exitcode(status)
    try:
        # GNU time puts "Command exited with non-zero status N" first when it did.
        with open(rss_file) as f:
            maxrss = int(f.read().split()[-1])
        os.unlink(rss_file)
    except (OSError, ValueError, IndexError):
        maxrss = ru.ru_maxrss
    result = {
        "user_s": ru.ru_utime,
        "sys_s": ru.ru_stime,
        "cpu_s": ru.ru_utime + ru.ru_stime,
        "wall_s": wall,
        "maxrss_kb": maxrss,
        # The largest single process bounds the tree's peak from below (and is exact
        # for one process); a run shorter than the sampling interval is missed by it.
        "tree_rss_kb": max(peak[0], maxrss),
        "exit": code,
        "watched_cpu_s": sum(cpu_s(p) for p in watch) - watched_before,
        "load_start": load_start,
        "load_end": load_avg(),
    }
    with open(out, "w") as f:
        json.dump(result, f)
    sys.exit(code if code >= 0 else 128 - code)


if __name__ == "__main__":
    main()
