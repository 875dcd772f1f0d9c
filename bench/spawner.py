"""Run timed commands on request, from a process that stays small: ``python spawner.py``.

Reads one JSON request a line on stdin (``cmd``, ``env``, ``cwd``, ``out``, ``err``),
syncs, runs the command, and answers one JSON line: wall ``seconds``, ``maxrss_kib``
and ``rc``. Why a separate process: Linux carries the parent's peak RSS into a forked
child's ``ru_maxrss`` across ``exec``, so children of the bench itself (which holds
100,000 index rows while it builds them) would all report the bench's peak. Forked from
here they start from this process's few MiB instead.
"""

import json
import os
import subprocess
import sys
import time


def serve() -> None:
    for line in sys.stdin:
        req = json.loads(line)
        os.sync()  # earlier steps' writeback is not billed to this command
        with open(req["out"], "wb") as out, open(req["err"], "wb") as err:
            start = time.perf_counter()
            proc = subprocess.Popen(req["cmd"], env=req["env"], cwd=req["cwd"], stdout=out,
                                    stderr=err, stdin=subprocess.DEVNULL)
            _, status, usage = os.wait4(proc.pid, 0)
            seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        answer = {"seconds": seconds, "maxrss_kib": usage.ru_maxrss, "rc": proc.returncode}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    serve()
