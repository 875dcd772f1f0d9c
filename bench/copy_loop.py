"""Issue 2's baseline: ``python copy_loop.py SRC TARGET BACKUP``.

What the old code did: for each file, ``shutil.copy2`` the old target aside and the new
one over it; no temp file, no fsync, no index.
"""

import os
import shutil
import sys


def main(src: str, tgt: str, bak: str) -> None:
    os.makedirs(bak, exist_ok=True)
    for name in sorted(os.listdir(src)):
        old = os.path.join(tgt, name)
        if os.path.exists(old):
            shutil.copy2(old, os.path.join(bak, name + ".backup"))
        shutil.copy2(os.path.join(src, name), old)


if __name__ == "__main__":
    main(*sys.argv[1:4])
