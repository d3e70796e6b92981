"""The disk's file-create cost: create + write + close of 2,000 3 KB files in a new folder.

The hub writes ~4 outbox files per message, so this cost moves the end-to-end figure; round 3
measured it before every run. Usage: python benchmarks/create_cost.py [PARENT_FOLDER]
"""

import os
import shutil
import sys
import tempfile
import time

FILES = 2000


def main() -> None:
    folder = tempfile.mkdtemp(dir=sys.argv[1] if len(sys.argv) > 1 else None)
    body = b"x" * 3000
    start = time.perf_counter()
    for i in range(FILES):
        with open(os.path.join(folder, f"f{i}.xml"), "wb") as f:
            f.write(body)
    print(f"create {(time.perf_counter() - start) / FILES * 1e6:.0f} us/file")
    shutil.rmtree(folder)


if __name__ == "__main__":
    main()
