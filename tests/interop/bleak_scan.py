#!/usr/bin/env python3
"""Scan with Bleak (a BlueZ client) for a device advertising the SMP service and report whether
the one named by --address was seen: a device still connected to a central does not
advertise, so this tells whether the previous tool disconnected before it exited.

    python3 tests/interop/bleak_scan.py --address C0:53:4D:50:00:01 --timeout 5

Prints `==> found ADDRESS` and exits 0, or says what it saw and exits 1.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from bleak import BleakScanner
from interop_common import Failure, step

SMP_SERVICE = "8d53dc1d-1db7-4cd3-868b-8a527460aa84"


async def run(address: str, timeout: float) -> None:
    step(f"scan for {address}")
    device = await BleakScanner.find_device_by_filter(
        lambda d, _adv: d.address.upper() == address.upper(),
        timeout=timeout,
        service_uuids=[SMP_SERVICE],
    )
    if device is None:
        raise Failure(f"{address} was not seen advertising within {timeout}s")
    step(f"found {device.address}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", required=True)
    parser.add_argument("--timeout", type=float, default=5.0)
    args = parser.parse_args()
    try:
        asyncio.run(run(args.address, args.timeout))
    except Failure as e:
        print(f"FAILED: {e}", file=sys.stderr, flush=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
