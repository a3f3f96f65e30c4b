//! Intel HEX files, as imgtool writes them when the output name ends in `.hex`.

use ihex::{ReaderError, Record};

use super::error::ImageError;

/// Largest distance from the lowest to the highest address accepted; a hex file spanning
/// more than any slot could hold is almost certainly a merged build, not one image, and
/// flattening it would only waste memory.
pub const MAX_HEX_SPAN: u64 = 64 * 1024 * 1024;

/// The contents of a hex file as one contiguous block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HexImage {
    /// Address of the first byte of `data`: the lowest address any record wrote.
    pub base_address: u32,
    /// The bytes from `base_address` to the highest address written, gaps filled with 0xFF
    /// (erased flash).
    pub data: Vec<u8>,
}

/// Flattens the hex file `bytes`.
///
/// # Errors
/// [`ImageError::HexBadRecord`] and [`ImageError::HexChecksum`] naming the line for malformed
/// records and bad checksums, [`ImageError::HexOverlap`] naming the line of a record that
/// overlaps earlier ones, [`ImageError::HexNotText`], [`ImageError::HexNoEndOfFile`],
/// [`ImageError::HexNoData`], [`ImageError::HexSpanTooLarge`] for data spanning more than
/// [`MAX_HEX_SPAN`] and [`ImageError::HexAddressTooHigh`].
pub fn parse_hex(bytes: &[u8]) -> Result<HexImage, ImageError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|source| ImageError::HexNotText { valid_up_to: source.valid_up_to(), source })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);

    // Upper part of the address, from the last extended linear or segment address record.
    let mut base: u64 = 0;
    let mut chunks: Vec<(u64, usize, Vec<u8>)> = Vec::new();
    let mut seen_eof = false;
    for (index, line) in text.lines().enumerate() {
        let line_no = index + 1;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let record = Record::from_record_string(line).map_err(|source| record_error(line_no, source))?;
        match record {
            Record::Data { offset, value } => {
                if !value.is_empty() {
                    chunks.push((base + u64::from(offset), line_no, value));
                }
            }
            Record::ExtendedLinearAddress(upper) => base = u64::from(upper) << 16,
            Record::ExtendedSegmentAddress(segment) => base = u64::from(segment) << 4,
            Record::StartLinearAddress(_) | Record::StartSegmentAddress { .. } => {}
            Record::EndOfFile => {
                seen_eof = true;
                break;
            }
        }
    }
    if !seen_eof {
        return Err(ImageError::HexNoEndOfFile);
    }

    chunks.sort_by_key(|(addr, line, _)| (*addr, *line));
    let Some(&(start, _, _)) = chunks.first() else {
        return Err(ImageError::HexNoData);
    };
    let mut end = start;
    for (addr, line, value) in &chunks {
        if *addr < end {
            return Err(ImageError::HexOverlap { line: *line, address: *addr });
        }
        end = addr + value.len() as u64;
    }
    let span = end - start;
    if span > MAX_HEX_SPAN {
        return Err(ImageError::HexSpanTooLarge { span, start, end, max: MAX_HEX_SPAN });
    }
    let base_address = u32::try_from(start).map_err(|_| ImageError::HexAddressTooHigh { start })?;

    let mut data = vec![0xffu8; span as usize];
    for (addr, _, value) in chunks {
        let at = (addr - start) as usize;
        data[at..at + value.len()].copy_from_slice(&value);
    }
    Ok(HexImage { base_address, data })
}

fn record_error(line: usize, source: ReaderError) -> ImageError {
    match source {
        ReaderError::ChecksumMismatch(computed, stored) => {
            ImageError::HexChecksum { line, expected: computed, found: stored, source }
        }
        source => ImageError::HexBadRecord { line, source },
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn bad_hex(text: &str) -> ImageError {
        parse_hex(text.as_bytes()).expect_err("a bad hex file")
    }

    #[test]
    fn linear_addressing_and_gaps() {
        let text = ":020000040001F9\n\
                    :0400000001020304F2\n\
                    :02000800AABB91\n\
                    :00000001FF\n";
        let hex = parse_hex(text.as_bytes()).unwrap();
        assert_eq!(hex.base_address, 0x1_0000);
        assert_eq!(hex.data, [1, 2, 3, 4, 0xff, 0xff, 0xff, 0xff, 0xaa, 0xbb]);
    }

    #[test]
    fn segment_addressing() {
        // Segment 0x1000 puts offset 0x0010 at 0x10010.
        let text = ":020000021000EC\r\n:01001000559A\r\n:00000001FF\r\n";
        let hex = parse_hex(text.as_bytes()).unwrap();
        assert_eq!(hex.base_address, 0x1_0010);
        assert_eq!(hex.data, [0x55]);
    }

    #[test]
    fn records_out_of_order_are_placed_by_address() {
        let text = ":02000800AABB91\n:0400000001020304F2\n:00000001FF\n";
        let hex = parse_hex(text.as_bytes()).unwrap();
        assert_eq!(hex.base_address, 0);
        assert_eq!(hex.data.len(), 10);
    }

    #[test]
    fn errors_name_the_problem_and_line() {
        let err = bad_hex(":020000040001F9\n:0400000001020304F3\n:00000001FF\n");
        assert!(
            matches!(err, ImageError::HexChecksum { line: 2, expected: 0xf2, found: 0xf3, .. }),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(msg.contains("line 2") && msg.contains("checksum"), "{msg}");

        let err = bad_hex(":0400000001020304F2\n");
        assert!(matches!(err, ImageError::HexNoEndOfFile), "{err:?}");
        assert!(err.to_string().contains("end-of-file"), "{err}");

        let err = bad_hex(":00000001FF\n");
        assert!(matches!(err, ImageError::HexNoData), "{err:?}");
        assert!(err.to_string().contains("no data"), "{err}");

        let err = bad_hex(":0400000001020304F2\n:0400020001020304F0\n:00000001FF\n");
        assert!(matches!(err, ImageError::HexOverlap { line: 2, address: 2 }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains("line 2") && msg.contains("overlaps"), "{msg}");

        let err = bad_hex("hello\n");
        assert!(
            matches!(err, ImageError::HexBadRecord { line: 1, source: ReaderError::MissingStartCode }),
            "{err:?}"
        );
        assert!(err.to_string().contains("line 1"), "{err}");
        assert!(std::error::Error::source(&err).is_some());

        let err = bad_hex(":0100000000FF\n:02000004FFFFFC\n:0100000000FF\n:00000001FF\n");
        assert!(
            matches!(
                err,
                ImageError::HexSpanTooLarge {
                    span: 0xffff_0001,
                    start: 0,
                    end: 0xffff_0001,
                    max: MAX_HEX_SPAN
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("spans"), "{err}");

        let err = parse_hex(&[b':', 0xff, b'\n']).unwrap_err();
        assert!(matches!(err, ImageError::HexNotText { valid_up_to: 1, .. }), "{err:?}");
    }

    proptest! {
        #[test]
        fn arbitrary_text_never_panics(text in "(:[0-9A-F]{0,40}\n){0,8}") {
            let _ = parse_hex(text.as_bytes());
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_hex(&bytes);
        }
    }
}
