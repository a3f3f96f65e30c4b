"""Fixtures of the smpflash Python test suite: the virtual device in-process
(:class:`smpflash.VirtualDevice`, the way a user's own tests get a device), and ``smpflash sim``
processes (UDP, and BlueZ on a private D-Bus) started from the CLI binary.

The CLI binary comes from ``SMPFLASH_BIN``, or ``$CARGO_TARGET_DIR/debug/smpflash``, or the
workspace's ``target/debug/smpflash`` (``cargo build -p smpflash-cli`` builds it)."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import smpflash

REPO = Path(__file__).resolve().parents[2]
IMAGES = REPO / "tests" / "fixtures" / "images"
EXPECTED = json.loads((IMAGES / "expected.json").read_text())


# Profile overrides that make the fixture image's upload take about 2.4 s (0.5 ms a byte, no
# erase time): a Ctrl-C, a cancel or a callback's exception lands mid-upload, before anything is
# marked or reset.
SLOW_UPLOAD = ["erase_ms=0", "program_ns_per_byte=500000"]


def image(name: str) -> Path:
    return IMAGES / name


def digest(name: str) -> str:
    """The image hash of a fixture, from the fixtures' own record of it (made by imgtool)."""
    return str(EXPECTED[name]["digest"])


def smpflash_bin() -> Path:
    candidates = [os.environ.get("SMPFLASH_BIN")]
    if os.environ.get("CARGO_TARGET_DIR"):
        candidates.append(os.path.join(os.environ["CARGO_TARGET_DIR"], "debug", "smpflash"))
    candidates.append(str(REPO / "target" / "debug" / "smpflash"))
    for c in candidates:
        if c and os.access(c, os.X_OK):
            return Path(c)
    pytest.fail("no smpflash binary: set SMPFLASH_BIN or run `cargo build -p smpflash-cli` first")


class SimProcess:
    """``smpflash sim ...`` in a child process, with what it printed."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [str(smpflash_bin()), "sim", *args], stdout=subprocess.PIPE, text=True, bufsize=1
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, prefix: str, timeout: float = 30.0) -> str:
        """The rest of the first line starting with ``prefix``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            self.output.append(line)
            if line.startswith(prefix):
                return line[len(prefix):]
        self.stop()
        pytest.fail(f"smpflash sim printed no {prefix!r} line:\n" + "\n".join(self.output))

    def stop(self) -> None:
        if self.proc.poll() is None:
            # As Ctrl-C: the sim stops its private bus before it exits.
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def virtual_device() -> Iterator[smpflash.VirtualDevice]:
    """A fresh virtual device for each test, without flash delays: the fixture a user writes."""
    with smpflash.VirtualDevice(profile="zephyr-default", udp="127.0.0.1:0", time_scale=0) as sim:
        yield sim


@pytest.fixture
def cli_sim() -> Iterator[str]:
    """``smpflash sim --udp``: the address it serves on."""
    sim = SimProcess("--profile", "zephyr-default", "--udp", "127.0.0.1:0", "--time-scale", "0")
    try:
        yield sim.wait_for("SMP over UDP: ").split()[0]
    finally:
        sim.stop()


@pytest.fixture(scope="session")
def bluez_sim() -> Iterator[str]:
    """``smpflash sim --bluez`` on a private D-Bus: the name the device advertises. btleplug
    reaches it through DBUS_SYSTEM_BUS_ADDRESS, set for this process."""
    sim = SimProcess("--profile", "zephyr-default", "--udp", "127.0.0.1:0", "--time-scale", "0", "--bluez")
    try:
        os.environ["DBUS_SYSTEM_BUS_ADDRESS"] = sim.wait_for("export DBUS_SYSTEM_BUS_ADDRESS=")
        yield "smpflash-sim"
    finally:
        sim.stop()
