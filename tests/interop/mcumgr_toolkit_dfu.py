#!/usr/bin/env python3
"""A whole firmware update of an SMP device with Finomnis' mcumgr-toolkit (the Python binding
of the Rust crate), a client written independently of smpflash: proof that the smpflash
simulator answers as Zephyr does where that client relies on it (it sends echo as a read).

    python3 tests/interop/mcumgr_toolkit_dfu.py --udp 127.0.0.1:1337 --image app.bin
    python3 tests/interop/mcumgr_toolkit_dfu.py --serial /dev/pts/5 --image app.bin

Steps: connect (the toolkit's echo), MCUmgr parameters, image state, the toolkit's own
`firmware_update` (bootloader detection, upload, mark for test, reset), wait for the device,
check the new image runs under test (active, not confirmed) with the previous one in slot 1.
The new image is left unconfirmed, as `firmware_update` leaves it. Each step is printed; any
mismatch ends the run with a message on stderr and exit status 1.

Needs `pip install -r tests/requirements.txt`.
"""

from __future__ import annotations

import argparse
import time
import traceback
from typing import Any

from mcumgr_toolkit import MCUmgrClient

from interop_common import Failure, check, fail, mcuboot_hash, step

# How long the device may take to reboot before the run gives up on it.
REBOOT_TIMEOUT_S = 30.0


def connect(args: argparse.Namespace) -> MCUmgrClient:
    timeout_ms = int(args.timeout * 1000)
    if args.udp:
        host, _, port = args.udp.rpartition(":")
        return MCUmgrClient.udp(host, int(port), timeout_ms=timeout_ms)
    return MCUmgrClient.serial(args.serial, 115200, timeout_ms=timeout_ms)


def describe(images: list[Any]) -> str:
    flags = ("bootable", "pending", "confirmed", "active", "permanent")
    return "; ".join(
        f"image {s.image} slot {s.slot} v{s.version} {s.hash.hex()[:16] if s.hash else '-'} "
        + ",".join(f for f in flags if getattr(s, f))
        for s in images
    )


def slot(images: list[Any], number: int) -> Any:
    for s in images:
        if s.image == 0 and s.slot == number:
            return s
    raise Failure(f"image state lists no slot {number}: {describe(images)}")


def read_state(client: MCUmgrClient) -> list[Any]:
    images = client.image_get_state()
    print(f"    {describe(images)}", flush=True)
    return images


def wait_for_reboot(client: MCUmgrClient) -> None:
    """Returns once the device answers again after its reset. The same client is kept: a
    serial port stays open across a device reset (and is opened exclusively), and a UDP
    socket has nothing to reconnect."""
    deadline = time.monotonic() + REBOOT_TIMEOUT_S
    while True:
        time.sleep(0.2)
        try:
            client.check_connection()
            return
        except Exception as e:  # noqa: BLE001 - the device is still rebooting
            if time.monotonic() > deadline:
                raise Failure(f"the device did not answer within {REBOOT_TIMEOUT_S}s of its reset: {e}")


def run(args: argparse.Namespace) -> None:
    image = open(args.image, "rb").read()
    new_hash = mcuboot_hash(image)

    step(f"connect to {args.udp or args.serial}")
    client = connect(args)
    # The toolkit's liveness check is an echo sent as a read (Zephyr registers echo for read
    # and write).
    client.check_connection()
    check(client.os_echo("mcumgr-toolkit interop") == "mcumgr-toolkit interop", "echo mismatch")

    step("MCUmgr parameters")
    params = client.os_mcumgr_parameters()
    print(f"    buf_size={params.buf_size} buf_count={params.buf_count}", flush=True)
    check(params.buf_size > 0 and params.buf_count > 0, "implausible parameters")
    client.use_auto_frame_size()

    step("image state")
    images = read_state(client)
    running = slot(images, 0)
    check(running.active and running.confirmed, "slot 0 is not the active, confirmed image")
    check(running.hash != new_hash, "the device already runs the image to upload")
    old_hash = running.hash

    step(f"firmware_update {args.image} ({len(image)} bytes)")
    started = time.monotonic()
    last_step = [""]

    def progress(what: str, done: tuple[int, int] | None) -> None:
        if what != last_step[0]:
            print(f"    {what}", flush=True)
            last_step[0] = what

    client.firmware_update(image, progress=progress)
    print(f"    done in {time.monotonic() - started:.2f}s", flush=True)

    step("wait for the device after its reset")
    wait_for_reboot(client)

    step("image state after the reboot")
    images = read_state(client)
    running = slot(images, 0)
    check(running.hash == new_hash, "slot 0 does not hold the new image after the reboot")
    check(running.active, "the new image is not active")
    check(not running.confirmed, "the new image is confirmed though firmware_update only tests it")
    previous = slot(images, 1)
    check(previous.hash == old_hash, "slot 1 does not hold the previous image (swap)")
    step("update complete")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--udp", metavar="HOST:PORT", help="SMP over UDP")
    target.add_argument("--serial", metavar="PATH", help="SMP over a serial port or pty")
    parser.add_argument("--image", required=True, help="signed MCUboot image to install")
    parser.add_argument("--timeout", type=float, default=5.0, help="per-request timeout (s)")
    args = parser.parse_args()
    try:
        run(args)
    except Failure as e:
        fail(str(e))
    except Exception as e:  # noqa: BLE001 - anything the toolkit raises is a failed step
        traceback.print_exc()
        fail(f"{type(e).__name__}: {e}")


if __name__ == "__main__":
    main()
