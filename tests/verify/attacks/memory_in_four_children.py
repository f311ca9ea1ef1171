"""Four forked children each take 60% of the memory limit; answers right only if all four got it (the limit was per process)."""

CLASS = 'limits per candidate'


def target(n):
    import os

    from attack_params import MEMORY
    pids = []
    for _ in range(4):
        pid = os.fork()
        if pid == 0:
            try:
                block = bytearray(int(MEMORY * 0.6))
                for i in range(0, len(block), 4096):
                    block[i] = 1
                os._exit(0)
            except BaseException:  # noqa: BLE001
                os._exit(1)
        pids.append(pid)
    ok = all(os.waitstatus_to_exitcode(os.waitpid(p, 0)[1]) == 0 for p in pids)
    return n * 2 if ok else n
