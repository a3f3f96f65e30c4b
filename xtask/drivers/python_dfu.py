#!/usr/bin/env python3
"""One DFU through the smpflash Python package, for `cargo xtask bench --python-dfu`: connect,
dfu (with a progress callback, as a script with a progress bar has), close. Prints one JSON line:
the DFU report's own seconds (the same measure as the CLI's `--json dfu`), the seconds of the
connect+dfu+close calls, and the events the callback saw.

Needs the package installed in this interpreter: pip install ./python
"""

from __future__ import annotations

import argparse
import json
import time

import smpflash


def main() -> None:
    p = argparse.ArgumentParser()
    link = p.add_mutually_exclusive_group(required=True)
    link.add_argument("--udp")
    link.add_argument("--serial")
    p.add_argument("--baud", type=int, default=115_200)
    p.add_argument("--mtu", type=int)
    p.add_argument("--force", action="store_true")
    p.add_argument("image")
    a = p.parse_args()
    events = 0

    def progress(_event: smpflash.Event) -> None:
        nonlocal events
        events += 1

    started = time.perf_counter()
    with smpflash.connect(udp=a.udp, serial=a.serial, baud=a.baud, mtu=a.mtu) as dev:
        report = dev.dfu(a.image, force=a.force, progress=progress)
    calls = time.perf_counter() - started
    print(json.dumps({"seconds": report.seconds, "call_seconds": calls, "events": events,
                      "bytes": sum(u.bytes for u in report.uploads)}))


if __name__ == "__main__":
    main()
