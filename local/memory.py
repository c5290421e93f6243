"""Peak memory of this process, measured the same way by the benchmark and the reliability runs."""

from __future__ import annotations

import resource


def peak_rss_kb() -> int:
    """This process's peak RSS in KB: VmHWM, the high-water mark of its own address space.

    Not `ru_maxrss`: Linux carries that over execve from the address space the process had before, i.e.
    from the (larger) benchmark process that spawned it, which would hide this program's own peak.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)  # elsewhere: the best there is
