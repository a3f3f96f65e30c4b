#!/usr/bin/env python3
"""Uploads one image with Finomnis' mcumgr-toolkit (a Rust core with Python bindings) and
prints what the upload took, for `cargo xtask bench`:

    python3 xtask/drivers/mcumgr_toolkit_upload.py --udp 127.0.0.1:1337 --image app.bin
    python3 xtask/drivers/mcumgr_toolkit_upload.py --serial /dev/pts/5 --baud 115200 --image app.bin

Prints one JSON line: {"seconds", "bytes", "chunk", "window", "version"}. `seconds` covers
`image_upload` only, not connecting or reading parameters.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from importlib.metadata import version

from mcumgr_toolkit import MCUmgrClient


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--udp", metavar="HOST:PORT")
    target.add_argument("--serial", metavar="PATH")
    parser.add_argument("--baud", type=int, default=115200)
    parser.add_argument("--image", required=True)
    # One timeout for every request, the first included: it must outlast the slot erase.
    parser.add_argument("--timeout", type=float, default=120.0, help="per-request timeout (s)")
    args = parser.parse_args()
    image = open(args.image, "rb").read()
    timeout_ms = int(args.timeout * 1000)
    if args.udp:
        host, _, port = args.udp.rpartition(":")
        client = MCUmgrClient.udp(host, int(port), timeout_ms=timeout_ms)
    else:
        client = MCUmgrClient.serial(args.serial, args.baud, timeout_ms=timeout_ms)
    with client:
        # Frames as large as the device's buffer (the parameters command), as its docs advise.
        client.use_auto_frame_size()
        chunk = 0
        previous = 0

        def progress(done: int, _total: int) -> None:
            nonlocal chunk, previous
            chunk = max(chunk, done - previous)
            previous = done

        started = time.perf_counter()
        client.image_upload(image, progress=progress)
        seconds = time.perf_counter() - started
    result = {
        "seconds": seconds,
        "bytes": len(image),
        "chunk": chunk,
        # The toolkit does not say how many requests it keeps in flight.
        "window": None,
        "version": version("mcumgr-toolkit"),
    }
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001 - any failure is reported to the bench as text
        print(f"mcumgr-toolkit upload failed: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
