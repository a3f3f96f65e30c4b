"""The blocking API against the virtual device: a whole DFU, the image commands, and every
exception kind provoked for real."""

from __future__ import annotations

import _thread
import builtins
import json
import socket
import struct
import threading
import time
import zipfile
from pathlib import Path

import pytest
import smpflash
from conftest import SLOW_UPLOAD, digest, image


def echo_when_idle(dev: smpflash.Device, within: float = 20.0) -> str:
    deadline = time.monotonic() + within
    while True:
        try:
            return dev.echo("still here")
        except smpflash.Timeout:
            assert time.monotonic() < deadline, "the device never answered again"


def untouched(state: list[smpflash.ImageState]) -> bool:
    """Nothing marked, nothing reset: the old image runs and no slot is pending."""
    return running(state).hash != digest("ecdsa-p256.bin") and not any(s.pending for s in state)


def running(state: list[smpflash.ImageState], image_no: int = 0) -> smpflash.ImageState:
    return next(s for s in state if s.image == image_no and s.active)


def test_dfu_against_smpflash_sim_process_runs_and_confirms_the_new_image(cli_sim: str) -> None:
    events: list[smpflash.Event] = []
    with smpflash.connect(udp=cli_sim) as dev:
        assert dev.echo("hi") == "hi"
        before = running(dev.image_state())
        assert before.hash != digest("ecdsa-p256.bin")
        report = dev.dfu(image("ecdsa-p256.bin"), mode="test-and-confirm", progress=events.append)
        now = running(dev.image_state())
    assert report.mode == "test-and-confirm" and report.reset
    assert now.hash == digest("ecdsa-p256.bin") and now.confirmed and now.version == "1.2.3.4"
    assert running(report.after).hash == now.hash
    assert running(report.before).hash == before.hash
    [upload] = report.uploads
    assert upload.bytes == image("ecdsa-p256.bin").stat().st_size
    # The steps the CLI shows, in order, with its sentences.
    steps = [e.step["step"] for e in events if e.kind == "step"]
    assert steps == ["inspect", "upload", "verify_upload", "mark", "reset", "verify_running", "confirm"]
    assert events[0].message == "reading image state, buffers and bootloader"
    progress = [e for e in events if e.kind == "progress"]
    assert progress and progress[-1].acked == progress[-1].total == upload.bytes
    assert report.to_dict()["after"][0]["hash"] == now.hash


def test_image_commands_and_results_as_objects(virtual_device: smpflash.VirtualDevice) -> None:
    with smpflash.connect(udp=virtual_device.udp_address, timeout=1) as dev:
        limits = dev.params()
        assert limits.reported and limits.buf_size > 0 and limits.buf_count > 0
        [upload] = dev.upload(image("ecdsa-p256.bin"))
        assert upload.image == 0 and upload.bytes == image("ecdsa-p256.bin").stat().st_size
        state = dev.image_state()
        new = next(s for s in state if s.slot == 1)
        assert new.hash == digest("ecdsa-p256.bin") and not new.pending
        # A prefix of the hash is enough, as on the command line.
        state = dev.image_test(new.hash[:8])
        assert next(s for s in state if s.slot == 1).pending
        assert set(state[0].to_dict()) == {
            "image", "slot", "version", "hash", "active", "confirmed", "pending", "permanent", "bootable"}
        dev.reset()
        deadline = time.monotonic() + 10
        while True:
            try:
                state = dev.image_state()
                break
            except (smpflash.Timeout, smpflash.ConnectionError):
                assert time.monotonic() < deadline, "the device did not come back after the reset"
        assert running(state).hash == digest("ecdsa-p256.bin") and not running(state).confirmed
        state = dev.image_confirm()
        assert running(state).confirmed


def test_bad_state_write_raises_device_error_with_the_devices_rc(cli_sim: str) -> None:
    with smpflash.connect(udp=cli_sim) as dev:
        with pytest.raises(smpflash.DeviceError) as caught:
            dev.image_test("ab" * 32)
    e = caught.value
    # Zephyr's img_mgmt answers a state write for a hash no slot holds with
    # IMG_MGMT_ERR_HASH_NOT_FOUND in the image group (SMP v2).
    assert (e.group, e.rc, e.name) == (1, 8, "IMG_MGMT_ERR_HASH_NOT_FOUND")
    assert e.kind == "device" and "rc 8" in str(e)
    assert isinstance(e, smpflash.Error)


def test_an_image_that_never_confirms_itself_raises_not_applied_with_the_verdict() -> None:
    with smpflash.VirtualDevice(profile="zephyr-default", time_scale=0, test_image_crashes=True) as sim:
        with smpflash.connect(udp=sim.udp_address) as dev:
            with pytest.raises(smpflash.NotApplied) as caught:
                dev.dfu(image("ecdsa-p256.bin"))
            assert running(dev.image_state()).hash != digest("ecdsa-p256.bin")
    e = caught.value
    assert e.verdict == "not_active" and e.details["image"] == 0 and e.details["slot"] == 1
    assert isinstance(e, smpflash.DfuError) and "not active" in str(e)


def test_a_package_for_an_image_the_device_lacks_is_refused_before_anything_is_written(
    virtual_device: smpflash.VirtualDevice, tmp_path: Path
) -> None:
    # An NCS DFU package whose one file is for image 1 (an nRF5340's network core), for a
    # single-image device.
    package = tmp_path / "dfu_application.zip"
    with zipfile.ZipFile(package, "w") as z:
        z.write(image("ecdsa-p256.bin"), "net.bin")
        z.writestr("manifest.json", json.dumps({"format-version": 1, "files": [{"file": "net.bin", "image_index": "1"}]}))
    with smpflash.connect(udp=virtual_device.udp_address) as dev:
        with pytest.raises(smpflash.Refused) as caught:
            dev.dfu(package)
        assert all(s.slot == 0 for s in dev.image_state())
    e = caught.value
    assert e.refusal == "no_such_image" and e.details["image"] == 1 and e.details["device_images"] == [0]
    assert "network core" in str(e)


def test_files_that_are_not_images_raise_image_error(virtual_device: smpflash.VirtualDevice, tmp_path: Path) -> None:
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x00" * 64)
    with smpflash.connect(udp=virtual_device.udp_address) as dev:
        with pytest.raises(smpflash.ImageError) as caught:
            dev.dfu(junk)
        assert caught.value.kind == "invalid"
        with pytest.raises(smpflash.ImageError) as caught:
            dev.dfu(tmp_path / "missing.bin")
        assert caught.value.kind == "io"


def test_a_port_that_does_not_exist_raises_connection_error() -> None:
    with pytest.raises(smpflash.ConnectionError) as caught:
        smpflash.connect(serial="/dev/smpflash-no-such-port")
    assert isinstance(caught.value, builtins.ConnectionError)
    assert caught.value.kind in ("open", "not_found")


def test_a_device_that_does_not_answer_raises_timeout() -> None:
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    try:
        with smpflash.connect(udp="%s:%d" % silent.getsockname(), timeout=0.3) as dev:
            started = time.monotonic()
            with pytest.raises(smpflash.Timeout) as caught:
                dev.echo("anyone?")
            assert time.monotonic() - started < 3
        assert caught.value.kind == "timeout" and caught.value.details["timeout_ms"] == 300
        assert isinstance(caught.value, builtins.TimeoutError)
    finally:
        silent.close()


def test_an_answer_that_breaks_the_protocol_raises_protocol_error() -> None:
    # A server that answers every request with the right header but a body that is a CBOR
    # integer, not a map.
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 0))
    server.settimeout(5)

    def serve() -> None:
        try:
            request, peer = server.recvfrom(2048)
        except OSError:
            return
        flags_op, flags, _len, group, seq, cmd = struct.unpack(">BBHHBB", request[:8])
        body = b"\x01"
        answer = struct.pack(">BBHHBB", (flags_op & ~7) | (flags_op & 7) + 1, flags, len(body), group, seq, cmd)
        server.sendto(answer + body, peer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        with smpflash.connect(udp="%s:%d" % server.getsockname(), timeout=2) as dev:
            with pytest.raises(smpflash.ProtocolError) as caught:
                dev.echo("hi")
        assert caught.value.kind == "decode"
    finally:
        thread.join(5)
        server.close()


def test_bad_arguments_raise_value_error(virtual_device: smpflash.VirtualDevice) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        smpflash.connect(udp=virtual_device.udp_address, serial="/dev/null")
    with pytest.raises(ValueError, match="unknown mode"):
        with smpflash.connect(udp=virtual_device.udp_address) as dev:
            dev.dfu(image("ecdsa-p256.bin"), mode="sometimes")
    with pytest.raises(ValueError, match="profile"):
        smpflash.VirtualDevice(profile="nrf9999")
    with smpflash.connect(udp=virtual_device.udp_address) as dev:
        with pytest.raises(ValueError, match="no image on the device"):
            dev.image_test("ffff")
    dev.close()
    with pytest.raises(ValueError, match="closed"):
        dev.echo("hi")


def test_ctrl_c_stops_a_dfu_and_leaves_the_device_usable() -> None:
    with smpflash.VirtualDevice(profile="zephyr-default", time_scale=1, set=SLOW_UPLOAD) as sim:
        with smpflash.connect(udp=sim.udp_address, timeout=1) as dev:
            timer = threading.Timer(0.5, _thread.interrupt_main)
            started = time.monotonic()
            timer.start()
            with pytest.raises(KeyboardInterrupt):
                dev.dfu(image("ecdsa-p256.bin"))
            stopped = time.monotonic() - started
            assert stopped < 2.0, f"Ctrl-C took {stopped:.1f} s to stop the DFU"
            # The cancelled DFU let go of the session. The device is still busy with the upload
            # requests in its buffers: a request sent meanwhile finds no free buffer and goes
            # unanswered, as on Zephyr; once it is done, one is answered.
            assert echo_when_idle(dev) == "still here"
            assert untouched(dev.image_state())


def test_blocking_calls_release_the_gil(virtual_device: smpflash.VirtualDevice) -> None:
    ticks = 0
    done = threading.Event()

    def count() -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1

    with smpflash.connect(udp=virtual_device.udp_address) as dev:
        counter = threading.Thread(target=count)
        counter.start()
        try:
            before = ticks
            # A request the device leaves unanswered for a while: a reset takes the sim down
            # and image state waits until it is back.
            dev.dfu(image("ecdsa-p256.bin"))
            during = ticks - before
        finally:
            done.set()
            counter.join()
    assert during > 1000, f"another Python thread ran only {during} times during the DFU"


def test_the_in_process_virtual_device_as_a_link(tmp_path: Path) -> None:
    state = tmp_path / "flash.json"
    with smpflash.connect(sim="zephyr-default", sim_link="udp", sim_time_scale=0, sim_state=state) as dev:
        assert dev.transport.startswith("udp ")
        dev.dfu(image("ed25519.bin"))
    # The flash outlives the process's device: a new one reads it back from the state file.
    with smpflash.connect(sim="zephyr-default", sim_link="udp", sim_time_scale=0, sim_state=state) as dev:
        assert running(dev.image_state()).hash == digest("ed25519.bin")


def test_a_dfu_stopped_by_ctrl_c_resumes_where_the_device_stopped() -> None:
    with smpflash.VirtualDevice(profile="zephyr-default", time_scale=1, set=SLOW_UPLOAD) as sim:
        with smpflash.connect(udp=sim.udp_address) as dev:
            acked: list[int] = []

            def progress(event: smpflash.Event) -> None:
                if event.kind == "progress":
                    acked.append(event.acked)

            threading.Timer(1.0, _thread.interrupt_main).start()
            with pytest.raises(KeyboardInterrupt):
                dev.dfu(image("ecdsa-p256.bin"), progress=progress)
            assert acked and acked[-1] < image("ecdsa-p256.bin").stat().st_size
            # Upload only: the swap, at this flash speed, would take half a minute.
            report = dev.dfu(image("ecdsa-p256.bin"), mode="upload-only")
    [upload] = report.uploads
    assert upload.start["kind"] == "resumed" and upload.resumed_at >= acked[-1] > 0
    assert next(s for s in report.after if s.slot == 1).hash == digest("ecdsa-p256.bin")


def test_an_exception_in_the_progress_callback_stops_the_dfu_and_propagates() -> None:
    class Enough(Exception):
        pass

    def progress(event: smpflash.Event) -> None:
        if event.kind == "upload_started":
            raise Enough

    # The callback runs on the calling thread while the DFU goes on: its exception stops the DFU
    # at once, but not before the engine's next step on a device as fast as a time-free sim.
    with smpflash.VirtualDevice(profile="zephyr-default", time_scale=1, set=SLOW_UPLOAD) as sim:
        with smpflash.connect(udp=sim.udp_address, timeout=1) as dev:
            with pytest.raises(Enough):
                dev.dfu(image("ecdsa-p256.bin"), progress=progress)
            assert echo_when_idle(dev) == "still here"
            assert untouched(dev.image_state())
