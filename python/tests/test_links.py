"""The same API over the other links: a pty (the serial console framing) and BLE through
``smpflash sim --bluez`` (btleplug on a private D-Bus)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import pytest

import smpflash
from conftest import REPO, digest, image


def test_dfu_over_a_pty() -> None:
    with smpflash.VirtualDevice(profile="zephyr-default", udp=None, pty=True, time_scale=0) as sim:
        with smpflash.connect(serial=sim.pty_path) as dev:
            assert dev.transport.startswith("serial")
            assert dev.echo("over serial") == "over serial"
            report = dev.dfu(image("ecdsa-p256.bin"))
    after = next(s for s in report.after if s.active)
    assert after.hash == digest("ecdsa-p256.bin") and after.confirmed


def test_dfu_over_ble_through_bluez(bluez_sim: str) -> None:
    events: list[smpflash.Event] = []
    with smpflash.connect(ble=bluez_sim) as dev:
        assert dev.echo("over the air") == "over the air"
        report = dev.dfu(image("ecdsa-p256.bin"), progress=events.append)
        after = next(s for s in dev.image_state() if s.active)
    assert after.hash == digest("ecdsa-p256.bin") and after.confirmed
    # The reset dropped the BLE link; the session found the device again and reconnected.
    assert report.reset and any(e.kind == "step" and e.step["step"] == "verify_running" for e in events)


def test_scan_finds_the_device_and_its_address_connects(bluez_sim: str) -> None:
    found = smpflash.scan(1.0)
    device = next(d for d in found if d.name == bluez_sim)
    assert device.address == "C0:53:4D:50:00:01" and isinstance(device.rssi, int)
    strengths = [d.rssi if d.rssi is not None else -999 for d in found]
    assert strengths == sorted(strengths, reverse=True)
    assert device.to_dict() == {"name": bluez_sim, "address": device.address, "rssi": device.rssi}
    # What scan lists is what connect takes.
    with smpflash.connect(ble=device.address) as dev:
        assert dev.echo("found by address") == "found by address"
    again = asyncio.run(smpflash.scan_async(1.0))
    assert device.address in {d.address for d in again}


def test_scan_rejects_a_duration_it_cannot_use() -> None:
    for seconds in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="scan seconds"):
            smpflash.scan(seconds)


NO_ADAPTER = """
import json, smpflash
try:
    smpflash.scan(0.5)
except smpflash.ConnectionError as e:
    print(json.dumps({"kind": e.kind, "message": str(e)}))
"""


def test_scan_without_a_bluetooth_stack_says_so() -> None:
    # libdbus reads the bus address once per process: a process of its own, pointed at no bus.
    env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS="unix:path=/nonexistent/smpflash-test-bus")
    done = subprocess.run([sys.executable, "-c", NO_ADAPTER], capture_output=True, text=True, timeout=60,
                          env=env)
    assert done.returncode == 0, done.stderr
    error = json.loads(done.stdout.strip().splitlines()[-1])
    assert error["kind"] == "no_adapter" and "no Bluetooth adapter found" in error["message"], error


def test_nrf5340_multi_image_package_over_the_simulated_ble_link() -> None:
    # The first example: an NCS dfu_application.zip (application and network core) to
    # an nRF5340, here the in-process virtual one behind the simulated phone BLE link.
    package = REPO / "examples" / "dfu_application.zip"
    with smpflash.connect(sim="nrf5340", sim_time_scale=0) as dev:
        assert dev.transport.startswith("simulated ble")
        before = {s.image: s.hash for s in dev.image_state() if s.active}
        report = dev.dfu(package)
    assert report.mode == "confirm-only" and sorted(u.image for u in report.uploads) == [0, 1]
    running = {s.image: s for s in report.after if s.active}
    assert set(running) == {0, 1}
    for n, slot in running.items():
        assert slot.version == "1.1.0" and slot.confirmed and slot.hash != before[n]


# btleplug keeps its first D-Bus connection for the life of the process, so a process talks to
# one bus: this test (whose bus is its own) runs in a process of its own.
IN_PROCESS_BLUEZ = """
import json, os, sys, smpflash
with smpflash.VirtualDevice(profile="zephyr-default", udp=None, time_scale=0, bluez="ble-phone-slow",
                            ble_name="my-test-device") as sim:
    os.environ["DBUS_SYSTEM_BUS_ADDRESS"] = sim.dbus_address
    with smpflash.connect(ble=sim.ble_name) as dev:
        transport = dev.transport
        report = dev.dfu(sys.argv[1])
print(json.dumps({"transport": transport, "after": [s.to_dict() for s in report.after]}))
"""


def test_the_virtual_device_serves_bluez_in_process() -> None:
    # No smpflash binary: the fixture a user's own BLE tests write.
    done = subprocess.run([sys.executable, "-c", IN_PROCESS_BLUEZ, str(image("ed25519.bin"))],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["transport"].startswith("ble ") and "my-test-device" in result["transport"]
    after = next(s for s in result["after"] if s["active"])
    assert after["hash"] == digest("ed25519.bin") and after["confirmed"]
