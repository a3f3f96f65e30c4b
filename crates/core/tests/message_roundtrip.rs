//! Every message survives encode -> decode, and no byte sequence makes the decoders panic.

use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use serde_bytes::ByteBuf;
use smpflash_core::cbor;
use smpflash_core::command::image::*;
use smpflash_core::command::os::*;
use smpflash_core::command::{decode_response, Command};
use smpflash_core::frame::Frame;
use smpflash_core::ImageHash;

fn bytes(max: usize) -> impl Strategy<Value = ByteBuf> {
    vec(any::<u8>(), 0..max).prop_map(ByteBuf::from)
}

fn round_trip<T>(value: &T) -> Result<(), TestCaseError>
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let encoded = cbor::to_vec(value, "test").unwrap();
    prop_assert_eq!(encoded.len(), cbor::encoded_len(value).unwrap());
    let decoded: T = cbor::from_slice(&encoded, "test").unwrap();
    prop_assert_eq!(&decoded, value);
    Ok(())
}

fn slot_state() -> impl Strategy<Value = SlotState> {
    (any::<u32>(), 0u32..4, "[0-9.]{0,24}", option::of(bytes(33)), any::<[bool; 5]>()).prop_map(
        |(image, slot, version, hash, f)| SlotState {
            image,
            slot,
            version,
            hash: hash.map(|h| ImageHash::from(h.into_vec())),
            bootable: f[0],
            pending: f[1],
            confirmed: f[2],
            active: f[3],
            permanent: f[4],
        },
    )
}

proptest! {
    #[test]
    fn os_messages(d in ".{0,40}", force in option::of(any::<u8>()), boot_mode in option::of(any::<u8>()), format in option::of("[a-z]{0,8}"),
                   size in any::<u32>(), count in any::<u32>(), mode in any::<i32>(), nd in any::<bool>()) {
        round_trip(&Echo { d: d.clone() })?;
        round_trip(&EchoResponse { r: d.clone() })?;
        round_trip(&Reset { force, boot_mode })?;
        round_trip(&McumgrParams {})?;
        round_trip(&McumgrParamsResponse { buf_size: size, buf_count: count })?;
        round_trip(&AppInfo { format })?;
        round_trip(&AppInfoResponse { output: d.clone() })?;
        round_trip(&BootloaderInfo {})?;
        round_trip(&BootloaderInfoResponse { bootloader: d })?;
        round_trip(&BootloaderMode::default())?;
        round_trip(&BootloaderModeResponse { mode, no_downgrade: nd })?;
    }

    #[test]
    fn image_messages(images in vec(slot_state(), 0..4), split in option::of(any::<i64>()),
                      hash in option::of(bytes(40)), confirm in any::<bool>(),
                      image in option::of(any::<u32>()), len in option::of(any::<u64>()),
                      off in any::<u64>(), sha in option::of(bytes(33)), data in bytes(600),
                      upgrade in option::of(any::<bool>()), matched in option::of(any::<bool>()),
                      slot in option::of(any::<u32>()), size in any::<u64>(),
                      max in option::of(any::<u64>()), uid in option::of(any::<u32>())) {
        round_trip(&ImageStateRead {})?;
        round_trip(&ImageStateWrite { hash, confirm })?;
        round_trip(&ImageStateResponse { images, split_status: split })?;
        round_trip(&ImageUpload { image, len, off, sha, data, upgrade })?;
        round_trip(&ImageUploadResponse { off, matched })?;
        round_trip(&ImageErase { slot })?;
        round_trip(&SlotInfo {})?;
        let slots = vec![SlotInfoSlot { slot: slot.unwrap_or(0), size, upload_image_id: uid }];
        round_trip(&SlotInfoResponse { images: vec![SlotInfoImage { image: 0, slots, max_image_size: max }] })?;
    }

    #[test]
    fn decoders_never_panic(raw in vec(any::<u8>(), 0..200)) {
        let _ = cbor::device_error(&raw, 1);
        let _ = cbor::diagnostic(&raw);
        if let Ok(frame) = Frame::decode(&raw) {
            try_all(&frame);
        }
    }

    #[test]
    fn response_decoders_never_panic_on_any_body(group in 0u16..2, id in 0u8..9, resp_op in prop_oneof![Just(1u8), Just(3u8)],
                                                 body in vec(any::<u8>(), 0..200)) {
        let mut raw = vec![0x08 | resp_op, 0, 0, body.len() as u8, 0, group as u8, 0, id];
        raw.extend_from_slice(&body);
        let frame = Frame::decode(&raw).unwrap();
        try_all(&frame);
    }
}

fn try_all(frame: &Frame) {
    fn one<C: Command>(f: &Frame) {
        let _ = decode_response::<C>(f);
    }
    one::<Echo>(frame);
    one::<Reset>(frame);
    one::<McumgrParams>(frame);
    one::<AppInfo>(frame);
    one::<BootloaderInfo>(frame);
    one::<BootloaderMode>(frame);
    one::<ImageStateRead>(frame);
    one::<ImageStateWrite>(frame);
    one::<ImageUpload>(frame);
    one::<ImageErase>(frame);
    one::<SlotInfo>(frame);
}
