//! Byte-exact request frames and decoded answers, written by hand from Zephyr's SMP protocol
//! documentation (smp_protocol.rst, smp_group_0.rst, smp_group_1.rst).

use serde_bytes::ByteBuf;
use smpflash_core::command::image::*;
use smpflash_core::command::os::*;
use smpflash_core::command::{decode_response, encode_request, Command, Empty};
use smpflash_core::frame::{Frame, Op, Version};
use smpflash_core::Error;

fn bytes(hex_text: &str) -> Vec<u8> {
    let clean: String = hex_text.split_whitespace().collect();
    hex::decode(clean).expect("test vector is hex")
}

/// `"text"` as a CBOR text string.
fn tstr(s: &str) -> String {
    assert!(s.len() < 24);
    format!("{:02x}{}", 0x60 + s.len(), hex::encode(s))
}

fn encoded<C: Command>(cmd: &C, version: Version, seq: u8) -> Vec<u8> {
    encode_request(cmd, version, seq).unwrap().encode()
}

fn answer<C: Command>(first: u8, seq: u8, body: &str) -> Result<C::Response, Error> {
    let body = bytes(body);
    let mut raw = vec![first, 0, 0, body.len() as u8, 0, C::GROUP as u8, seq, C::ID];
    raw.extend_from_slice(&body);
    decode_response::<C>(&Frame::decode(&raw).unwrap())
}

const HASH: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

#[test]
fn echo() {
    let got = encoded(&Echo { d: "hello".into() }, Version::V2, 0x42);
    assert_eq!(got, bytes(&format!("0a 00 0009 0000 42 00 a1 {} {}", tstr("d"), tstr("hello"))));
    let r = answer::<Echo>(0x0B, 0x42, &format!("a1 {} {}", tstr("r"), tstr("hello"))).unwrap();
    assert_eq!(r.r, "hello");
}

#[test]
fn reset_plain_and_forced() {
    assert_eq!(encoded(&Reset::default(), Version::V1, 0), bytes("02 00 0001 0000 00 05 a0"));
    assert_eq!(
        encoded(&Reset { force: Some(1), boot_mode: None }, Version::V2, 7),
        bytes(&format!("0a 00 0008 0000 07 05 a1 {} 01", tstr("force")))
    );
    // Zephyr's os_mgmt reset decodes `boot_mode` as an unsigned integer (0 normal, 1 bootloader).
    assert_eq!(
        encoded(&Reset { force: None, boot_mode: Some(1) }, Version::V2, 7),
        bytes(&format!("0a 00 000c 0000 07 05 a1 {} 01", tstr("boot_mode")))
    );
    // The facts file's example uses an indefinite-length empty map: it is a reset request too.
    let f = Frame::decode(&bytes("02 00 00 02 00 00 00 05 bf ff")).unwrap();
    assert_eq!((f.header.op, f.header.group, f.header.id, f.header.len), (Op::Write, 0, 5, 2));
    assert_eq!(answer::<Reset>(0x0B, 0, "bf ff").unwrap(), Empty {});
}

#[test]
fn mcumgr_params() {
    assert_eq!(encoded(&McumgrParams {}, Version::V2, 1), bytes("08 00 0001 0000 01 06 a0"));
    let body = format!("a2 {} 19 09ab {} 04", tstr("buf_size"), tstr("buf_count"));
    let r = answer::<McumgrParams>(0x09, 1, &body).unwrap();
    assert_eq!((r.buf_size, r.buf_count), (2475, 4));
}

#[test]
fn application_info() {
    let cmd = AppInfo { format: Some("sv".into()) };
    assert_eq!(
        encoded(&cmd, Version::V2, 2),
        bytes(&format!("08 00 000b 0000 02 07 a1 {} {}", tstr("format"), tstr("sv")))
    );
    assert_eq!(encoded(&AppInfo::default(), Version::V2, 2), bytes("08 00 0001 0000 02 07 a0"));
    let r = answer::<AppInfo>(0x09, 2, &format!("a1 {} {}", tstr("output"), tstr("Zephyr 3.7"))).unwrap();
    assert_eq!(r.output, "Zephyr 3.7");
}

#[test]
fn bootloader_info_and_mode() {
    assert_eq!(encoded(&BootloaderInfo {}, Version::V2, 3), bytes("08 00 0001 0000 03 08 a0"));
    assert_eq!(
        encoded(&BootloaderMode::default(), Version::V2, 3),
        bytes(&format!("08 00 000c 0000 03 08 a1 {} {}", tstr("query"), tstr("mode")))
    );
    let r = answer::<BootloaderInfo>(0x09, 3, &format!("a1 {} {}", tstr("bootloader"), tstr("MCUboot")));
    assert_eq!(r.unwrap().bootloader, "MCUboot");
    let r = answer::<BootloaderMode>(0x09, 3, &format!("a2 {} 03 {} f5", tstr("mode"), tstr("no-downgrade")))
        .unwrap();
    assert_eq!((r.mode(), r.no_downgrade), (McubootMode::SwapWithoutScratch, true));
    // "no-downgrade" is absent unless the bootloader was built with it.
    let r = answer::<BootloaderMode>(0x09, 3, &format!("a1 {} 01", tstr("mode"))).unwrap();
    assert_eq!((r.mode(), r.no_downgrade), (McubootMode::SwapUsingScratch, false));
}

#[test]
fn image_state_read_and_write() {
    assert_eq!(encoded(&ImageStateRead {}, Version::V2, 4), bytes("08 00 0001 0001 04 00 a0"));
    let test = ImageStateWrite { hash: Some(ByteBuf::from(hex::decode(HASH).unwrap())), confirm: false };
    assert_eq!(
        encoded(&test, Version::V2, 5),
        bytes(&format!("0a 00 0031 0001 05 00 a2 {} 5820 {HASH} {} f4", tstr("hash"), tstr("confirm")))
    );
    let confirm_running = ImageStateWrite { hash: None, confirm: true };
    assert_eq!(
        encoded(&confirm_running, Version::V2, 6),
        bytes(&format!("0a 00 000a 0001 06 00 a1 {} f5", tstr("confirm")))
    );
}

#[test]
fn image_state_answer_tolerates_unknown_keys_missing_optionals_and_indefinite_maps() {
    // {_ "images": [_ {_ "slot": 0, "version": "1.0.0", "hash": h'..', "bootable": true,
    //    "confirmed": true, "active": true, "extra": 5 }, {"image": 1, "slot": 1}],
    //   "splitStatus": 0, "future": "x" }
    let body = format!(
        "bf {images} 9f bf {slot} 00 {version} {v100} {hash} 5820 {HASH} {bootable} f5 {confirmed} f5 \
         {active} f5 {extra} 05 ff a2 {image} 01 {slot} 01 ff {split} 00 {future} {x} ff",
        images = tstr("images"),
        slot = tstr("slot"),
        version = tstr("version"),
        v100 = tstr("1.0.0"),
        hash = tstr("hash"),
        bootable = tstr("bootable"),
        confirmed = tstr("confirmed"),
        active = tstr("active"),
        extra = tstr("extra"),
        image = tstr("image"),
        split = tstr("splitStatus"),
        future = tstr("future"),
        x = tstr("x"),
    );
    let r = answer::<ImageStateRead>(0x09, 4, &body).unwrap();
    assert_eq!(r.images.len(), 2);
    let a = &r.images[0];
    assert_eq!((a.image, a.slot, a.version.as_str()), (0, 0, "1.0.0"));
    assert!(a.bootable && a.confirmed && a.active && !a.pending && !a.permanent);
    assert_eq!(hex::encode(a.hash.as_ref().unwrap()), HASH);
    let b = &r.images[1];
    assert_eq!((b.image, b.slot, b.hash.is_none(), b.version.as_str()), (1, 1, true, ""));
    assert_eq!(r.split_status, Some(0));
}

#[test]
fn image_upload_first_and_next_chunk() {
    let first = ImageUpload {
        image: Some(0),
        len: Some(1000),
        off: 0,
        sha: Some(ByteBuf::from(hex::decode(HASH).unwrap())),
        data: ByteBuf::from(vec![0x3D, 0xB8, 0xF3, 0x96]),
        upgrade: Some(false),
    };
    let body = format!(
        "a6 {} 00 {} 1903e8 {} 00 {} 5820 {HASH} {} 44 3db8f396 {} f4",
        tstr("image"),
        tstr("len"),
        tstr("off"),
        tstr("sha"),
        tstr("data"),
        tstr("upgrade")
    );
    let body_len = bytes(&body).len();
    assert_eq!(body_len, 0x4d);
    assert_eq!(encoded(&first, Version::V2, 9), bytes(&format!("0a 00 004d 0001 09 01 {body}")));

    let next = ImageUpload { off: 1000, data: ByteBuf::from(vec![0xAA; 3]), ..Default::default() };
    assert_eq!(
        encoded(&next, Version::V2, 10),
        bytes(&format!("0a 00 0011 0001 0a 01 a2 {} 1903e8 {} 43 aaaaaa", tstr("off"), tstr("data")))
    );

    let r = answer::<ImageUpload>(0x0B, 9, &format!("a1 {} 1903e8", tstr("off"))).unwrap();
    assert_eq!((r.off, r.matched), (1000, None));
    let r =
        answer::<ImageUpload>(0x0B, 9, &format!("a2 {} 1903e8 {} f5", tstr("off"), tstr("match"))).unwrap();
    assert_eq!((r.off, r.matched), (1000, Some(true)));
}

#[test]
fn image_erase_and_slot_info() {
    assert_eq!(encoded(&ImageErase::default(), Version::V2, 11), bytes("0a 00 0001 0001 0b 05 a0"));
    assert_eq!(
        encoded(&ImageErase { slot: Some(1) }, Version::V2, 11),
        bytes(&format!("0a 00 0007 0001 0b 05 a1 {} 01", tstr("slot")))
    );
    assert_eq!(encoded(&SlotInfo {}, Version::V2, 12), bytes("08 00 0001 0001 0c 06 a0"));
    // {"images": [{"image": 0, "slots": [{"slot": 0, "size": 0x70000}, {"slot": 1, "size":
    //   0x70000, "upload_image_id": 0}], "max_image_size": 0x6f000}]}
    let body = format!(
        "a1 {images} 81 a3 {image} 00 {slots} 82 a2 {slot} 00 {size} 1a00070000 \
         a3 {slot} 01 {size} 1a00070000 {uid} 00 {max} 1a0006f000",
        images = tstr("images"),
        image = tstr("image"),
        slots = tstr("slots"),
        slot = tstr("slot"),
        size = tstr("size"),
        uid = tstr("upload_image_id"),
        max = tstr("max_image_size"),
    );
    let r = answer::<SlotInfo>(0x09, 12, &body).unwrap();
    let img = &r.images[0];
    assert_eq!((img.image, img.slots.len(), img.max_image_size), (0, 2, Some(0x6f000)));
    assert_eq!((img.slots[1].size, img.slots[1].upload_image_id), (0x70000, Some(0)));
}

#[test]
fn device_errors_v1_and_v2() {
    let e = answer::<ImageUpload>(0x03, 1, &format!("a1 {} 08", tstr("rc"))).unwrap_err();
    let Error::Device(d) = e else { panic!("expected device error, got {e}") };
    assert!(d.is_not_supported());
    assert_eq!(d.name(), Some("MGMT_ERR_ENOTSUP"));

    let body = format!("a1 {} a2 {} 01 {} 181c", tstr("err"), tstr("group"), tstr("rc"));
    let e = answer::<ImageStateWrite>(0x0B, 1, &body).unwrap_err();
    assert_eq!(
        e.to_string(),
        "device rejected the image: another image is already pending \
         (image group rc 28, IMG_MGMT_ERR_IMAGE_ALREADY_PENDING)"
    );
}

#[test]
fn answers_to_another_command_are_protocol_errors() {
    // An image state answer is not an echo answer.
    let raw = bytes("0b 00 0001 0001 00 00 a0");
    let e = decode_response::<Echo>(&Frame::decode(&raw).unwrap()).unwrap_err();
    assert!(matches!(e, Error::Protocol(_)), "{e}");
}

// The groups beside os and img: frames written from Zephyr's fs_mgmt.c, shell_mgmt.c,
// stat_mgmt.c, settings_mgmt.c, enum_mgmt.c and basic_mgmt.c (group ids 8, 9, 2, 3, 10, 63),
// and answers as Zephyr 4.4's smp_svr sent them to smpflash (captured with `-v`).

#[test]
fn fs_upload_first_and_later_chunk_and_the_offset_error() {
    use smpflash_core::command::fs::*;
    let first =
        FileUpload { off: 0, data: ByteBuf::from(vec![0xAA, 0xBB]), name: "/lfs1/a".into(), len: Some(2) };
    assert_eq!(
        encoded(&first, Version::V2, 1),
        bytes(&format!(
            "0a 00 0020 0008 01 00 a4 {} 00 {} 42 aabb {} {} {} 02",
            tstr("off"),
            tstr("data"),
            tstr("name"),
            tstr("/lfs1/a"),
            tstr("len")
        ))
    );
    // A later chunk has no `len`.
    let later = FileUpload { off: 2, data: ByteBuf::from(vec![1]), name: "/lfs1/a".into(), len: None };
    assert_eq!(
        encoded(&later, Version::V2, 2),
        bytes(&format!(
            "0a 00 001a 0008 02 00 a3 {} 02 {} 41 01 {} {}",
            tstr("off"),
            tstr("data"),
            tstr("name"),
            tstr("/lfs1/a")
        ))
    );
    assert_eq!(answer::<FileUpload>(0x0B, 1, &format!("a1 {} 19 03c4", tstr("off"))).unwrap().off, 964);
    // v2: FS_MGMT_ERR_FILE_OFFSET_NOT_VALID (11) is a device error; `len` beside it is the
    // file's length (fs::FileTarget reads it from the frame).
    let e = answer::<FileUpload>(
        0x0B,
        2,
        &format!("a2 {} a2 {} 08 {} 0b {} 19 0bb8", tstr("err"), tstr("group"), tstr("rc"), tstr("len")),
    )
    .unwrap_err();
    assert!(
        matches!(e, Error::Device(d) if d.group == Some(8) && d.rc == 11 && d.name() == Some("FS_MGMT_ERR_FILE_OFFSET_NOT_VALID"))
    );
}

#[test]
fn fs_download_status_and_hash_answers() {
    use smpflash_core::command::fs::*;
    assert_eq!(
        encoded(&FileDownload { off: 0, name: "/lfs1/a".into() }, Version::V2, 3),
        bytes(&format!("08 00 0013 0008 03 00 a2 {} 00 {} {}", tstr("off"), tstr("name"), tstr("/lfs1/a")))
    );
    let r = answer::<FileDownload>(
        0x09,
        3,
        &format!("a3 {} 00 {} 43 010203 {} 19 0bb8", tstr("off"), tstr("data"), tstr("len")),
    )
    .unwrap();
    assert_eq!((r.off, r.data.as_slice(), r.len), (0, &[1u8, 2, 3][..], Some(3000)));
    assert_eq!(answer::<FileStatus>(0x09, 4, &format!("a1 {} 19 0bb8", tstr("len"))).unwrap().len, 3000);
    // crc32 answers a number, sha256 a byte string.
    let crc = answer::<FileHash>(
        0x09,
        5,
        &format!(
            "a3 {} {} {} 19 0bb8 {} 1a fb115138",
            tstr("type"),
            tstr("crc32"),
            tstr("len"),
            tstr("output")
        ),
    )
    .unwrap();
    assert_eq!((crc.kind.as_str(), crc.output.to_hex()), ("crc32", "fb115138".to_string()));
}

#[test]
fn shell_stat_settings_enum_and_storage() {
    use smpflash_core::command::basic::StorageErase;
    use smpflash_core::command::enumeration::*;
    use smpflash_core::command::settings::*;
    use smpflash_core::command::shell::*;
    use smpflash_core::command::stat::*;
    assert_eq!(
        encoded(&ShellExec { argv: vec!["kernel".into(), "version".into()] }, Version::V2, 0),
        bytes(&format!(
            "0a 00 0016 0009 00 00 a1 {} 82 {} {}",
            tstr("argv"),
            tstr("kernel"),
            tstr("version")
        ))
    );
    let r = answer::<ShellExec>(
        0x0B,
        0,
        &format!("a2 {} {} {} 20", tstr("o"), tstr("\r\nbogus\r\n"), tstr("ret")),
    )
    .unwrap();
    assert_eq!(r.ret, -1);
    assert_eq!(
        encoded(&StatShow { name: "smp_svr_stats".into() }, Version::V2, 1),
        bytes(&format!("08 00 0014 0002 01 00 a1 {} {}", tstr("name"), tstr("smp_svr_stats")))
    );
    let s = answer::<StatShow>(
        0x09,
        1,
        &format!(
            "a2 {} {} {} a1 {} 18 23",
            tstr("name"),
            tstr("smp_svr_stats"),
            tstr("fields"),
            tstr("ticks")
        ),
    )
    .unwrap();
    assert_eq!(s.fields["ticks"], 35);
    assert_eq!(
        encoded(&SettingWrite { name: "app/x".into(), val: ByteBuf::from(vec![0x2a]) }, Version::V2, 2),
        bytes(&format!("0a 00 0012 0003 02 00 a2 {} {} {} 41 2a", tstr("name"), tstr("app/x"), tstr("val")))
    );
    assert_eq!(encoded(&SettingsSave {}, Version::V2, 3), bytes("0a 00 0001 0003 03 03 a0"));
    assert_eq!(encoded(&SettingsLoad {}, Version::V2, 3), bytes("08 00 0001 0003 03 03 a0"));
    let list =
        answer::<GroupList>(0x09, 4, &format!("a1 {} 87 0a 08 00 03 09 02 18 3f", tstr("groups"))).unwrap();
    assert_eq!(list.groups, [10, 8, 0, 3, 9, 2, 63]);
    assert_eq!(encoded(&StorageErase {}, Version::V2, 5), bytes("0a 00 0001 003f 05 00 a0"));
}
