"""The MCUmgr groups beside image and OS from Python: shell, statistics, settings and files,
blocking and through asyncio, against the virtual device (shaped like Zephyr's smp_svr)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import zlib

import pytest
import smpflash


def test_shell_stat_settings_and_files(virtual_device: smpflash.VirtualDevice) -> None:
    with smpflash.connect(udp=virtual_device.udp_address) as dev:
        version = dev.shell_exec("kernel", "version")
        assert version.ret == 0 and "Zephyr version" in version.output
        unknown = dev.shell_exec("no-such-command")
        assert unknown.ret != 0 and unknown.to_dict()["ret"] == unknown.ret

        assert "smp_svr_stats" in dev.stat_list()
        assert "ticks" in dev.stat_read("smp_svr_stats")

        dev.settings_set("app/threshold", b"\x01\xff")
        assert dev.settings_get("app/threshold") == b"\x01\xff"
        dev.settings_save()

        data = os.urandom(20_000)
        up: list[smpflash.Event] = []
        report = dev.fs_upload(data, "/lfs1/blob.bin", progress=up.append)
        assert report.remote == "/lfs1/blob.bin" and report.bytes == len(data)
        assert report.verified is not None, "the virtual device offers a hash: the upload is checked"
        assert report.attempts == 1
        assert dev.fs_stat("/lfs1/blob.bin") == len(data)
        down: list[smpflash.Event] = []
        assert dev.fs_download("/lfs1/blob.bin", progress=down.append) == data
        # Both directions report progress as an image upload does, up to the whole file.
        for events in (up, down):
            kinds = [e.kind for e in events]
            assert kinds[0] == "upload_started" and kinds[-1] == "upload_finished", kinds
            last = [e for e in events if e.kind == "progress"][-1]
            assert last.acked == last.total == len(data)


def test_group_errors_carry_the_groups_own_code(virtual_device: smpflash.VirtualDevice) -> None:
    with smpflash.connect(udp=virtual_device.udp_address) as dev:
        # A name under a root key nobody registered: the settings group's own error.
        with pytest.raises(smpflash.DeviceError) as settings:
            dev.settings_get("nosuchroot/key")
        assert settings.value.name == "SETTINGS_MGMT_ERR_ROOT_KEY_NOT_FOUND"
        with pytest.raises(smpflash.DeviceError) as fs:
            dev.fs_download("/lfs1/missing.bin")
        assert fs.value.name == "FS_MGMT_ERR_FILE_NOT_FOUND"
        # Zephyr's stat_mgmt_show answers an unknown group with "invalid stat name" (it counts
        # the group's entries first); the real servers do, and so does the virtual device.
        with pytest.raises(smpflash.DeviceError) as stat:
            dev.stat_read("no_such_group")
        assert stat.value.name == "STAT_MGMT_ERR_INVALID_STAT_NAME"


def test_the_groups_through_asyncio(virtual_device: smpflash.VirtualDevice) -> None:
    async def main() -> tuple[smpflash.ShellResult, bytes, list[str]]:
        async with await smpflash.AsyncDevice.connect(udp=virtual_device.udp_address) as dev:
            shell = await dev.shell_exec("kernel", "version")
            await dev.fs_upload(b"hello from asyncio", "/lfs1/a.txt")
            assert await dev.fs_stat("/lfs1/a.txt") == 18
            data = await dev.fs_download("/lfs1/a.txt")
            # A file of several chunks, its events iterated before the result is awaited.
            await dev.fs_upload(bytes(range(256)) * 40, "/lfs1/big.bin")
            transfer = dev.fs_download("/lfs1/big.bin")
            kinds = [event.kind async for event in transfer]
            assert kinds[0] == "upload_started" and "progress" in kinds, kinds
            assert await transfer == bytes(range(256)) * 40
            await dev.settings_set("app/x", b"\x07")
            assert await dev.settings_get("app/x") == b"\x07"
            return shell, data, await dev.stat_list()

    shell, data, groups = asyncio.run(main())
    assert shell.ret == 0 and data == b"hello from asyncio" and groups


def test_info_groups_os_settings_storage_and_hashes(virtual_device: smpflash.VirtualDevice) -> None:
    with smpflash.connect(udp=virtual_device.udp_address) as dev:
        assert "Zephyr" in dev.info()
        assert dev.info("s") == "Zephyr"

        groups = {g.group: g for g in dev.groups()}
        assert {0, 1, 8, 9}.issubset(groups), groups
        assert groups[9].name == "shell mgmt" and groups[9].handlers == 1
        assert groups[9].to_dict() == {"group": 9, "name": "shell mgmt", "handlers": 1}

        tasks = dev.os_tasks()
        assert isinstance(tasks["main"], smpflash.TaskStat) and tasks["main"].stksiz
        # Zephyr's smp_svr has no memory pools: the device says "not supported".
        with pytest.raises(smpflash.DeviceError) as mempool:
            dev.os_mempool()
        assert mempool.value.name == "MGMT_ERR_ENOTSUP"

        # The clock is unset until someone sets it, then runs from there.
        with pytest.raises(smpflash.DeviceError) as unset:
            dev.datetime_get()
        assert unset.value.name == "OS_MGMT_ERR_RTC_NOT_SET"
        dev.datetime_set("2030-01-02T03:04:05")
        assert dev.datetime_get().startswith("2030-01-02T03:04:0")
        with pytest.raises(smpflash.DeviceError) as bad:
            dev.datetime_set("soon")
        assert bad.value.name == "MGMT_ERR_EINVAL"

        slots = dev.image_slots()
        assert [s["slot"] for s in slots[0]["slots"]] == [0, 1]

        dev.settings_set("app/level", b"\x2a")
        dev.settings_commit()
        dev.settings_save()
        dev.settings_load()
        assert dev.settings_get("app/level") == b"\x2a"
        # Zephyr's delete is settings_delete(): storage only. The handler keeps the value until
        # the next load from storage, and a second delete finds nothing stored.
        dev.settings_delete("app/level")
        assert dev.settings_get("app/level") == b"\x2a"
        with pytest.raises(smpflash.DeviceError) as deleted:
            dev.settings_delete("app/level")
        assert deleted.value.name == "SETTINGS_MGMT_ERR_KEY_NOT_FOUND"

        data = b"checked by the device"
        dev.fs_upload(data, "/lfs1/h.txt")
        sha = dev.fs_hash("/lfs1/h.txt", "sha256")
        assert sha == smpflash.FileHash(type="sha256", len=len(data), output=hashlib.sha256(data).hexdigest())
        crc = dev.fs_hash("/lfs1/h.txt", "crc32")
        assert int(crc.output, 16) == zlib.crc32(data)
        with pytest.raises(ValueError, match="not a hash type"):
            dev.fs_hash("/lfs1/h.txt", "md5")

        # Erasing storage takes the files with it.
        dev.storage_erase()
        with pytest.raises(smpflash.DeviceError) as gone:
            dev.fs_stat("/lfs1/h.txt")
        assert gone.value.name == "FS_MGMT_ERR_FILE_NOT_FOUND"


def test_the_other_groups_through_asyncio(virtual_device: smpflash.VirtualDevice) -> None:
    async def main() -> tuple[str, list[smpflash.Group], dict[str, smpflash.TaskStat], smpflash.FileHash]:
        async with await smpflash.AsyncDevice.connect(udp=virtual_device.udp_address) as dev:
            await dev.datetime_set("2031-05-06T07:08:09")
            await dev.fs_upload(b"x" * 5000, "/lfs1/x.bin")
            return (await dev.datetime_get(), await dev.groups(), await dev.os_tasks(),
                    await dev.fs_hash("/lfs1/x.bin"))

    clock, groups, tasks, digest = asyncio.run(main())
    assert clock.startswith("2031-05-06T07:08:0") and any(g.group == 8 for g in groups) and "main" in tasks
    assert digest.len == 5000 and digest.type in ("sha256", "crc32")
