"""The asyncio API: the same calls as coroutines, a DFU's events as an async iterator,
exceptions, and cancellation."""

from __future__ import annotations

import asyncio

import pytest
import smpflash
from conftest import SLOW_UPLOAD, digest, image


def test_async_dfu_with_events_as_an_async_iterator(cli_sim: str) -> None:
    async def main() -> tuple[smpflash.DfuReport, list[smpflash.Event], list[smpflash.ImageState]]:
        async with await smpflash.AsyncDevice.connect(udp=cli_sim) as dev:
            assert await dev.echo("async hi") == "async hi"
            run = dev.dfu(image("ecdsa-p256.bin"))
            events = [event async for event in run]
            report = await run
            return report, events, await dev.image_state()

    report, events, state = asyncio.run(main())
    now = next(s for s in state if s.active)
    assert now.hash == digest("ecdsa-p256.bin") and now.confirmed
    assert report.after == state
    kinds = {e.kind for e in events}
    assert {"step", "upload_started", "progress", "upload_finished"} <= kinds


def test_async_errors_are_the_same_exceptions(cli_sim: str) -> None:
    async def main() -> smpflash.DeviceError:
        async with await smpflash.AsyncDevice.connect(udp=cli_sim) as dev:
            with pytest.raises(smpflash.DeviceError) as caught:
                await dev.image_test("cd" * 32)
            return caught.value

    e = asyncio.run(main())
    assert (e.group, e.rc, e.name) == (1, 8, "IMG_MGMT_ERR_HASH_NOT_FOUND")


def test_progress_callback_runs_on_the_event_loop_and_the_loop_stays_free() -> None:
    async def main() -> tuple[int, list[smpflash.Event], smpflash.DfuReport]:
        with smpflash.VirtualDevice(profile="zephyr-default", time_scale=0.2) as sim:
            async with await smpflash.AsyncDevice.connect(udp=sim.udp_address) as dev:
                events: list[smpflash.Event] = []
                ticks = 0

                async def tick() -> None:
                    nonlocal ticks
                    while True:
                        ticks += 1
                        await asyncio.sleep(0.01)

                ticker = asyncio.create_task(tick())
                report = await dev.dfu(image("ecdsa-p256.bin"), progress=events.append)
                ticker.cancel()
                return ticks, events, report

    ticks, events, report = asyncio.run(main())
    assert report.uploads and events[0].kind == "step"
    # The loop ran other tasks all along (a DFU with scaled flash time takes a while).
    assert ticks > 10


def test_cancelling_an_async_dfu_stops_it() -> None:
    async def main() -> str:
        with smpflash.VirtualDevice(profile="zephyr-default", time_scale=1, set=SLOW_UPLOAD) as sim:
            async with await smpflash.AsyncDevice.connect(udp=sim.udp_address, timeout=1) as dev:
                task = asyncio.ensure_future(dev.dfu(image("ecdsa-p256.bin")))
                await asyncio.sleep(0.5)
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
                # The session is free again; the device answers once it is done with the upload
                # requests it had taken (see the blocking API's Ctrl-C test).
                loop = asyncio.get_running_loop()
                deadline = loop.time() + 20
                while True:
                    try:
                        return await dev.echo("after cancel")
                    except smpflash.Timeout:
                        assert loop.time() < deadline, "the device never answered again"

    assert asyncio.run(main()) == "after cancel"


def test_cancelling_while_iterating_events_stops_the_dfu_too() -> None:
    async def main() -> tuple[int, bool]:
        with smpflash.VirtualDevice(profile="zephyr-default", time_scale=1, set=SLOW_UPLOAD) as sim:
            async with await smpflash.AsyncDevice.connect(udp=sim.udp_address, timeout=1) as dev:
                run = dev.dfu(image("ecdsa-p256.bin"))
                seen = 0

                async def watch() -> None:
                    nonlocal seen
                    async for _ in run:
                        seen += 1

                task = asyncio.ensure_future(watch())
                await asyncio.sleep(0.5)
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
                # The DFU itself was cancelled with the task, not left running: it marks
                # nothing and resets nothing.
                with pytest.raises(asyncio.CancelledError):
                    await run
                await asyncio.sleep(1)
                deadline = asyncio.get_running_loop().time() + 20
                while True:
                    try:
                        state = await dev.image_state()
                        break
                    except smpflash.Timeout:
                        assert asyncio.get_running_loop().time() < deadline
                running = next(s for s in state if s.active)
                return seen, running.hash != digest("ecdsa-p256.bin") and not any(s.pending for s in state)

    seen, untouched = asyncio.run(main())
    assert seen >= 1 and untouched


def test_async_upload_then_test_and_confirm_by_hand(virtual_device: smpflash.VirtualDevice) -> None:
    async def main() -> list[smpflash.ImageState]:
        async with await smpflash.AsyncDevice.connect(udp=virtual_device.udp_address, timeout=1) as dev:
            events: list[smpflash.Event] = []
            [upload] = await dev.upload(image("ed25519.bin"), progress=events.append)
            assert upload.bytes == image("ed25519.bin").stat().st_size
            assert events[0].kind == "upload_started" and events[-1].kind == "upload_finished"
            state = await dev.image_test(digest("ed25519.bin"))
            assert next(s for s in state if s.slot == 1).pending
            await dev.reset()
            deadline = asyncio.get_running_loop().time() + 10
            while True:
                try:
                    await dev.image_state()
                    break
                except (smpflash.Timeout, smpflash.ConnectionError):
                    assert asyncio.get_running_loop().time() < deadline
            return await dev.image_confirm()

    state = asyncio.run(main())
    now = next(s for s in state if s.active)
    assert now.hash == digest("ed25519.bin") and now.confirmed
