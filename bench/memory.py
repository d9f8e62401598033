"""Peak resident memory of *this* process.

``resource.getrusage(...).ru_maxrss`` survives ``fork``+``exec`` on Linux (a child starts
with its parent's high-water mark), so a probe child started by a benchmark process that
already used gigabytes would report the parent's peak. ``VmHWM`` in ``/proc/self/status``
belongs to the process's own address space and starts fresh at ``exec``.
"""

from __future__ import annotations

import resource


def peak_rss_mb() -> float:
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
