# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Throughput and memory of nginx_log.summarize.

1. Generates a 100 000-line log (99 % access lines, 1 % error lines, Kubernetes
   ``timestamps=true`` prefix) and prints lines/s of ``summarize``.
2. Unless ``--skip-big``: writes a ~1 GiB synthetic log to a temporary file, reads only its last
   ``--limit-mib`` MiB (as the log API's ``limitBytes`` would hand them over), summarises
   them as a stream and prints the peak memory (tracemalloc peak of the parse, and the
   process's max RSS). The file is deleted afterwards. ``--full`` also streams the whole
   file (about a minute of CPU) to show the memory stays flat.

Both take about 20 s. Run:
``PYTHONPATH=build/collections .venv/bin/python bench/parse_throughput.py [--skip-big] [--full]``
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import argparse
import os
import resource
import sys
import tempfile
import time
import tracemalloc

from ansible_collections.badgateway.k8s.plugins.module_utils.nginx_log import summarize

ACCESS = (
    '{ts} 10.244.0.{a} - - [25/Nov/2026:02:{m:02d}:{s:02d} +0000] "GET /api/v1/items/{i} '
    'HTTP/1.1" 200 {size} "-" "Mozilla/5.0 (X11; Linux x86_64)" 412 0.004 '
    "[open-webui-open-webui-8080] [] 10.244.1.7:8080 {size} 0.004 200 "
    "5f2c0d9e1b7a4c3e8d6f{i:012d}\n"
)
ERROR = (
    "{ts} 2026/11/25 02:{m:02d}:{s:02d} [error] 31#31: *{i} connect() failed (111: "
    "Connection refused) while connecting to upstream, client: 10.244.0.{a}, server: _, "
    'request: "GET /api/v1/items/{i} HTTP/1.1", upstream: '
    '"http://10.244.1.{b}:8080/api/v1/items/{i}", host: "chat.example.com"\n'
)


def make_line(i):
    """Line ``i`` of the synthetic log: every 100th is an error line."""
    m, s = divmod(i // 50 % 3600, 60)
    ts = "2026-11-25T02:%02d:%02d.%09dZ" % (m, s, i % 1000000000)
    if i % 100 == 99:
        return ERROR.format(ts=ts, m=m, s=s, i=i, a=i % 250, b=3 + i % 7)
    return ACCESS.format(ts=ts, m=m, s=s, i=i, a=i % 250, size=100 + i % 900)


def bench_throughput(count):
    """Summarise ``count`` generated lines; return (wall seconds, CPU seconds, result)."""
    lines = [make_line(i) for i in range(count)]
    start, cpu = time.perf_counter(), time.process_time()
    result = summarize(lines)
    return time.perf_counter() - start, time.process_time() - cpu, result


def write_big(path, size):
    """Write about ``size`` bytes of synthetic log to ``path``."""
    block = "".join(make_line(i) for i in range(20000)).encode()
    with open(path, "wb") as handle:
        written = 0
        while written < size:
            handle.write(block)
            written += len(block)
    return written


def tail_lines(path, limit):
    """Yield the lines of the last ``limit`` bytes of ``path`` (first partial line dropped)."""
    with open(path, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        handle.seek(max(0, size - limit))
        if size > limit:
            handle.readline()
        yield from handle


def all_lines(path):
    with open(path, "rb") as handle:
        yield from handle


def measure(lines):
    """Summarise ``lines`` under tracemalloc; return (seconds, peak bytes, result)."""
    tracemalloc.start()
    start = time.perf_counter()
    result = summarize(lines)
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return seconds, peak, result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--lines", type=int, default=100000)
    parser.add_argument("--skip-big", action="store_true", help="skip the ~1 GiB byte-limited read")
    parser.add_argument("--big-mib", type=int, default=1024)
    parser.add_argument("--limit-mib", type=int, default=4)
    parser.add_argument(
        "--full", action="store_true", help="also stream the whole ~1 GiB file (about 2 minutes)"
    )
    args = parser.parse_args(argv)

    seconds, cpu, result = bench_throughput(args.lines)
    print(
        "throughput: %d lines (%d error, %d access) in %.2f s wall = %d lines/s "
        "(%.2f s CPU = %d lines/s per core)"
        % (
            result["lines_read"],
            result["error_lines"],
            result["access_lines"],
            seconds,
            result["lines_read"] / seconds,
            cpu,
            result["lines_read"] / cpu,
        )
    )
    if args.skip_big:
        return 0
    handle, path = tempfile.mkstemp(prefix="badgateway-bench-", suffix=".log")
    os.close(handle)
    try:
        start = time.perf_counter()
        written = write_big(path, args.big_mib * 1024 * 1024)
        print(
            "wrote %.0f MiB synthetic log in %.1f s"
            % (written / 1048576.0, time.perf_counter() - start)
        )
        seconds, peak, result = measure(tail_lines(path, args.limit_mib * 1024 * 1024))
        print(
            "last %d MiB: %d lines, %d bytes in %.2f s; tracemalloc peak %.1f MiB"
            % (
                args.limit_mib,
                result["lines_read"],
                result["bytes_read"],
                seconds,
                peak / 1048576.0,
            )
        )
        if args.full:
            # no tracemalloc here (it would triple the time): max RSS before and after
            before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            start = time.perf_counter()
            result = summarize(all_lines(path))
            seconds = time.perf_counter() - start
            after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            print(
                "whole file streamed: %d lines in %.1f s (%d lines/s); max RSS %.1f MiB "
                "before, %.1f MiB after"
                % (
                    result["lines_read"],
                    seconds,
                    result["lines_read"] / seconds,
                    before / 1024.0,
                    after / 1024.0,
                )
            )
    finally:
        os.unlink(path)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        "process max RSS: %.1f MiB (includes the 100 000 generated lines held for step 1)"
        % (rss / 1024.0)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
