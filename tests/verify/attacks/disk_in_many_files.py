"""Writes many files, each under the file-size limit, past the candidate's disk limit; right only if all were written."""

CLASS = 'limits per candidate'


def target(n):
    from attack_params import DISK, FILE_SIZE
    size = FILE_SIZE // 2
    written = 0
    try:
        for i in range(2 * DISK // size + 2):
            with open(f"fill-{i}", "wb") as handle:
                handle.write(b"x" * size)
            written += size
    except OSError:
        pass
    return n * 2 if written > DISK else n
