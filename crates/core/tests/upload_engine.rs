//! The pipelined upload engine over the loopback, against the minimal image-upload server in
//! `support`: clean uploads, lost, duplicated and reordered answers, a device that resets or
//! reports another offset, a dropped link, the window and frame limits, and uploads that
//! cannot progress. Time is paused: latencies and timeouts run in virtual time.
//!
//! The end-to-end check against the virtual device over UDP is
//! `crates/sim/tests/upload_engine.rs`.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use smpflash_core::loopback::LoopbackConnector;
use smpflash_core::progress::{Event, Note, UploadStart};
use smpflash_core::session::Session;
use smpflash_core::upload::{self, BufSize, Limits, UploadOptions, UploadReport};
use smpflash_core::Error;
use support::{image, Fate, ImgDevice, LATENCY};

/// 1024-byte buffers, 4 of them: about 1000 bytes a chunk, 3 in flight.
const LIMITS: Limits = Limits { buf_size: 1024, buf_count: 4, reported: true };

/// 48 KiB: about 50 chunks at [`LIMITS`].
const SIZE: usize = 48 * 1024;

fn opts() -> UploadOptions {
    UploadOptions {
        timeout: Duration::from_millis(200),
        first_timeout: Duration::from_millis(500),
        ..Default::default()
    }
}

struct Run {
    result: Result<UploadReport, Error>,
    events: Vec<Event>,
    session: Session,
    connector: LoopbackConnector,
}

async fn run_with(
    dev: &Arc<ImgDevice>,
    image: &[u8],
    limits: &Limits,
    opts: &UploadOptions,
    link: impl FnOnce(LoopbackConnector) -> LoopbackConnector,
) -> Run {
    let connector = link(LoopbackConnector::new(dev.responder()));
    let mut session = Session::open(Box::new(connector.clone()), Duration::from_secs(1)).await.unwrap();
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let progress = move |e: &Event| sink.lock().unwrap().push(e.clone());
    let result = upload::upload(&mut session, image, limits, opts, &progress).await;
    let events = events.lock().unwrap().clone();
    Run { result, events, session, connector }
}

async fn run(dev: &Arc<ImgDevice>, image: &[u8]) -> Run {
    run_with(dev, image, &LIMITS, &opts(), |c| c).await
}

/// The device completed the upload, its flash holds exactly `image`, and it said so.
fn assert_holds(dev: &ImgDevice, image: &[u8], report: &UploadReport) {
    let st = dev.state();
    assert_eq!(st.off, image.len() as u64, "the device's offset");
    assert_eq!(st.flash.len(), image.len());
    assert!(st.flash == image, "the device's flash differs from the image");
    assert_eq!(report.matched, Some(true), "{report:?}");
    assert_eq!(report.bytes, image.len() as u64);
}

#[tokio::test(start_paused = true)]
async fn clean_uploads_at_window_one_and_pipelined_send_each_byte_once() {
    let bytes = image(SIZE);
    for (window, expected) in [(Some(1), 1), (None, 3)] {
        let dev = ImgDevice::new();
        let r = run_with(&dev, &bytes, &LIMITS, &UploadOptions { window, ..opts() }, |c| c).await;
        let report = r.result.unwrap();
        assert_holds(&dev, &bytes, &report);
        assert_eq!((report.retransmits, report.resent_bytes), (0, 0), "{report:?}");
        assert_eq!(report.window, expected, "{report:?}");
        assert_eq!(dev.state().max_inflight, expected, "requests outstanding at the device");
        // Every chunk follows the one before: nothing sent twice, nothing skipped.
        let seen = dev.state().seen.clone();
        assert!(seen[0].first && seen[0].off == 0);
        for pair in seen.windows(2) {
            assert_eq!(pair[1].off, pair[0].off + pair[0].len as u64, "{pair:?}");
            assert!(!pair[1].first);
        }
        assert!(
            matches!(r.events.first(), Some(Event::UploadStarted { resumed_at: 0, .. })),
            "{:?}",
            r.events
        );
        assert!(matches!(r.events.last(), Some(Event::UploadFinished { retransmits: 0, reconnects: 0, .. })));
        assert_eq!(r.connector.connects(), 1);
        assert_eq!(r.session.client().describe(), "loopback");
    }
}

#[tokio::test(start_paused = true)]
async fn the_window_never_exceeds_what_the_limits_allow() {
    let bytes = image(SIZE);
    let cases = [
        (Limits { buf_count: 2, ..LIMITS }, None, 1),
        (Limits { buf_count: 3, ..LIMITS }, None, 2),
        (Limits { buf_count: 6, ..LIMITS }, None, 5),
        (Limits { buf_count: 9, ..LIMITS }, Some(4), 4),
        // A device that did not report its buffers gets one request at a time.
        (Limits { buf_count: 9, reported: false, ..LIMITS }, None, 1),
    ];
    for (limits, window, expected) in cases {
        let dev = ImgDevice::new();
        let r = run_with(&dev, &bytes, &limits, &UploadOptions { window, ..opts() }, |c| c).await;
        let report = r.result.unwrap();
        assert_holds(&dev, &bytes, &report);
        let max = dev.state().max_inflight;
        assert_eq!((max, report.window), (expected, expected), "{limits:?} window {window:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn frames_never_exceed_the_link_or_the_device_buffer() {
    let bytes = image(SIZE);
    // (link max_frame, frame_overhead, piece_len, device buf_size, largest frame allowed)
    let cases = [
        (512, 0, 1, 1024, 512),
        (4096, 0, 1, 700, 700),
        // Serial keeps its framing in the device's buffer.
        (4096, 4, 1, 600, 596),
        // BLE pieces: 2475-byte buffers in 244-byte values carry 2440-byte frames.
        (2475, 0, 244, 2475, 2440),
    ];
    for (max_frame, overhead, piece, buf_size, allowed) in cases {
        let dev = ImgDevice::new();
        let limits = Limits { buf_size, ..LIMITS };
        let r = run_with(&dev, &bytes, &limits, &opts(), |c| {
            c.with_max_frame(max_frame).with_frame_overhead(overhead).with_piece_len(piece)
        })
        .await;
        let report = r.result.unwrap();
        assert_holds(&dev, &bytes, &report);
        let largest = dev.state().seen.iter().map(|s| s.frame_len).max().unwrap();
        // Chunks fill the frame: at most a CBOR length byte or two short of the limit.
        assert!(
            largest <= allowed && largest + 4 >= allowed,
            "{largest} vs {allowed} for {max_frame}/{overhead}/{piece}/{buf_size}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn chunks_keep_the_alignment_and_the_chunk_option() {
    let bytes = image(20_000);
    for (align, chunk, most) in [(8, None, 384 - 8), (16, Some(100), 96), (1, Some(333), 333)] {
        let dev = ImgDevice::new();
        let limits = Limits { buf_size: 384, ..LIMITS };
        let r = run_with(&dev, &bytes, &limits, &UploadOptions { align, chunk, ..opts() }, |c| c).await;
        let report = r.result.unwrap();
        assert_holds(&dev, &bytes, &report);
        assert!(report.chunk <= most, "{report:?}");
        let seen = dev.state().seen.clone();
        let (last, rest) = seen.split_last().unwrap();
        assert!(last.off + last.len as u64 == bytes.len() as u64);
        for s in rest {
            assert!(s.len <= most && s.len % align == 0, "align {align} chunk {chunk:?}: {s:?}");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn lost_answers_are_retransmitted_and_the_image_is_still_exact() {
    let bytes = image(SIZE);
    let dev =
        ImgDevice::twisted(|_, s| if [1, 5, 17, 18, 30].contains(&s.n) { Fate::Drop } else { Fate::Answer });
    let r = run(&dev, &bytes).await;
    let report = r.result.unwrap();
    assert_holds(&dev, &bytes, &report);
    assert!(report.retransmits > 0, "lost answers must cost retransmits: {report:?}");
    // Lost answers are noticed by their timeout (several lost at once by one of them).
    assert!(r.session.client().stats().timed_out >= 2, "{:?}", r.session.client().stats());
}

#[tokio::test(start_paused = true)]
async fn duplicated_and_reordered_answers_cost_nothing() {
    let bytes = image(SIZE);
    let dev = ImgDevice::twisted(|_, s| match s.n {
        n if n % 5 == 0 => Fate::Twice,
        // Late enough to be overtaken by the next two answers, well inside the timeout.
        n if n % 7 == 3 => Fate::Late(LATENCY * 4),
        _ => Fate::Answer,
    });
    let r = run(&dev, &bytes).await;
    let report = r.result.unwrap();
    assert_holds(&dev, &bytes, &report);
    assert_eq!(report.retransmits, 0, "{report:?}");
    let stats = r.session.client().stats();
    assert!(stats.duplicate >= 5, "the second copies reach the client as duplicates: {stats:?}");
    assert_eq!(stats.timed_out, 0, "{stats:?}");
}

#[tokio::test(start_paused = true)]
async fn a_device_that_loses_the_upload_makes_the_engine_start_over() {
    let bytes = image(SIZE);
    let dev = ImgDevice::twisted(|st, s| {
        if s.n == 20 {
            st.forget();
        }
        Fate::Answer
    });
    let r = run(&dev, &bytes).await;
    let report = r.result.unwrap();
    assert_holds(&dev, &bytes, &report);
    assert!(r.events.iter().any(|e| matches!(e, Event::Restarted { .. })), "{:?}", r.events);
    assert_eq!(report.resumed_at, 0);
    // The engine asked the device again from the start, with len and sha.
    let seen = dev.state().seen.clone();
    assert!(seen.iter().any(|s| s.n > 20 && s.off == 0 && s.first), "{seen:?}");
}

#[tokio::test(start_paused = true)]
async fn the_engine_follows_an_offset_the_device_moved_back() {
    let bytes = image(SIZE);
    // On the 15th request the device loses its last 1500 bytes.
    let dev = ImgDevice::twisted(|st, s| {
        if s.n == 15 {
            st.off -= 1500;
        }
        Fate::Answer
    });
    let r = run(&dev, &bytes).await;
    let report = r.result.unwrap();
    assert_holds(&dev, &bytes, &report);
    assert!(report.retransmits > 0, "{report:?}");
    let seen = dev.state().seen.clone();
    let to = seen[14].off - 1500;
    // Requests after the 15th that went out before its answer came are stale (beyond `to`).
    // From the answer on, the engine sends from exactly where the device is, never from an
    // offset of its own: not further back, and on in order from there.
    let after = &seen[15..];
    assert_eq!(after.iter().map(|s| s.off).min(), Some(to), "{seen:?}");
    let from = after.iter().position(|s| s.off == to).unwrap();
    for pair in after[from..].windows(2) {
        assert_eq!(pair[1].off, pair[0].off + pair[0].len as u64, "{pair:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn the_engine_resumes_where_a_device_holding_part_of_the_image_is() {
    let bytes = image(SIZE);
    let dev = ImgDevice::new();
    dev.preload(&bytes, 20_000);
    let r = run(&dev, &bytes).await;
    let report = r.result.unwrap();
    assert_holds(&dev, &bytes, &report);
    assert_eq!(report.resumed_at, 20_000, "{report:?}");
    assert!(matches!(r.events.first(), Some(Event::UploadStarted { resumed_at: 20_000, .. })));
    let seen = dev.state().seen.clone();
    // Only the first request asks about offset 0; the next one carries the device's offset.
    assert_eq!(seen.iter().filter(|s| s.off < 20_000).count(), 1, "{seen:?}");
    assert_eq!(seen[1].off, 20_000);
}

#[tokio::test(start_paused = true)]
async fn a_dropped_link_is_reconnected_and_the_upload_resumed() {
    let bytes = image(SIZE);
    let dev = ImgDevice::twisted(|_, s| if s.n == 25 { Fate::Close } else { Fate::Answer });
    let r = run(&dev, &bytes).await;
    let report = r.result.unwrap();
    assert_holds(&dev, &bytes, &report);
    assert_eq!(report.reconnects, 1, "{report:?}");
    assert_eq!(r.connector.connects(), 2);
    assert_eq!(r.session.reconnects(), 1);
    assert!(r.events.iter().any(|e| matches!(e, Event::Reconnecting { .. })), "{:?}", r.events);
    assert!(!r.events.iter().any(|e| matches!(e, Event::Restarted { .. })), "{:?}", r.events);
    // The new link asked to resume with a short first chunk, and the device went on from
    // where it was: nothing before that point was sent again.
    let seen = dev.state().seen.clone();
    let probe = seen.iter().position(|s| s.n > 25 && s.off == 0).expect("a resume request");
    assert!(seen[probe].first && seen[probe].len <= 32, "{:?}", seen[probe]);
    assert!(report.resumed_at > 0, "{report:?}");
    assert!(seen[probe + 1..].iter().all(|s| s.off >= report.resumed_at), "{seen:?}");
}

#[tokio::test(start_paused = true)]
async fn an_upload_that_never_progresses_stalls() {
    let bytes = image(SIZE);
    // The device answers every chunk with its own offset: it never takes anything.
    let never = ImgDevice::twisted(|_, s| Fate::Say(s.off));
    // The device takes half the image, then answers with the same offset forever.
    let stuck =
        ImgDevice::twisted(|st, _| if st.off > 20_000 { Fate::Say(st.off - 1000) } else { Fate::Answer });
    // The device never answers at all.
    let silent = ImgDevice::twisted(|_, _| Fate::Drop);
    // The device loses the upload every fourth request.
    let amnesiac = ImgDevice::twisted(|st, s| {
        if s.n % 4 == 0 {
            st.forget();
        }
        Fate::Answer
    });
    for (name, dev) in [("never", never), ("stuck", stuck), ("silent", silent), ("amnesiac", amnesiac)] {
        let r = run(&dev, &bytes).await;
        match r.result {
            // It gives up after `max_attempts` tries without progress, not later.
            Err(Error::UploadStalled { attempts, .. }) => {
                assert_eq!(attempts, opts().max_attempts + 1, "{name}")
            }
            other => panic!("{name}: {other:?}"),
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_corrupted_image_on_the_device_is_a_mismatch() {
    let bytes = image(SIZE);
    let dev = ImgDevice::twisted(|st, s| {
        if s.n == 10 {
            st.flash[100] ^= 1;
        }
        Fate::Answer
    });
    let r = run(&dev, &bytes).await;
    assert!(matches!(r.result, Err(Error::UploadMismatch)), "{:?}", r.result);
}

/// What a device without the params command gets: Zephyr's default buffer, one at a time.
const UNREPORTED: Limits = Limits { buf_size: 384, buf_count: 1, reported: false };

fn largest_frame(dev: &ImgDevice) -> usize {
    dev.state().seen.iter().map(|s| s.frame_len).max().unwrap()
}

#[tokio::test(start_paused = true)]
async fn an_explicit_chunk_sizes_the_frame_of_a_device_that_did_not_report_its_buffers() {
    let bytes = image(20_000);
    // Before: chunks stayed at the assumed 384-byte buffer's 304 bytes whatever --chunk said.
    let dev = ImgDevice::new();
    let r = run_with(&dev, &bytes, &UNREPORTED, &UploadOptions { chunk: Some(900), ..opts() }, |c| c).await;
    let report = r.result.unwrap();
    assert_holds(&dev, &bytes, &report);
    assert_eq!(report.chunk, 900, "{report:?}");
    assert!(dev.state().seen.iter().skip(1).rev().skip(1).all(|s| s.len == 900));
    assert_eq!(report.window, 1, "an unknown buffer count keeps one request in flight");
    // Reported (or given) buffers still cap the chunk: the device would drop larger frames.
    for limits in [Limits { buf_size: 384, ..LIMITS }] {
        let dev = ImgDevice::new();
        let r = run_with(&dev, &bytes, &limits, &UploadOptions { chunk: Some(900), ..opts() }, |c| c).await;
        let report = r.result.unwrap();
        assert_holds(&dev, &bytes, &report);
        assert!(largest_frame(&dev) <= 384 && report.chunk < 384, "{report:?}");
    }
    let dev = ImgDevice::new();
    let given = Some(BufSize { size: 512, count: None });
    let o = UploadOptions { chunk: Some(900), buf_size: given, ..opts() };
    let report = run_with(&dev, &bytes, &UNREPORTED, &o, |c| c).await.result.unwrap();
    assert!(largest_frame(&dev) <= 512 && largest_frame(&dev) + 4 >= 512, "{report:?}");
}

#[tokio::test(start_paused = true)]
async fn given_buffers_stand_in_for_unreported_ones_and_win_over_reported_ones() {
    let bytes = image(SIZE);
    // (device's limits, --buf-size, largest frame, window, a note that it exceeds the report)
    let cases = [
        (UNREPORTED, "1024", 1024, 1, false),
        (UNREPORTED, "1024x4", 1024, 3, false),
        (Limits { buf_size: 512, buf_count: 2, reported: true }, "1024", 1024, 1, true),
        (Limits { buf_size: 512, buf_count: 2, reported: true }, "1024x4", 1024, 3, true),
        (Limits { buf_size: 2048, buf_count: 4, reported: true }, "600", 600, 3, false),
    ];
    for (limits, given, frame, window, note) in cases {
        let dev = ImgDevice::new();
        let o = UploadOptions { buf_size: Some(given.parse().unwrap()), ..opts() };
        let r = run_with(&dev, &bytes, &limits, &o, |c| c).await;
        let report = r.result.unwrap();
        assert_holds(&dev, &bytes, &report);
        let largest = largest_frame(&dev);
        assert!(largest <= frame && largest + 4 >= frame, "{given} on {limits:?}: {largest}");
        assert_eq!((report.window, dev.state().max_inflight), (window, window), "{given} on {limits:?}");
        let noted =
            r.events.iter().any(|e| matches!(e, Event::Note { note: Note::BuffersAboveReported { .. } }));
        assert_eq!(noted, note, "{given} on {limits:?}: {:?}", r.events);
    }
}

#[test]
fn buffer_sizes_parse_as_bytes_and_an_optional_count() {
    assert_eq!("1024".parse::<BufSize>().unwrap(), BufSize { size: 1024, count: None });
    assert_eq!("1024x4".parse::<BufSize>().unwrap(), BufSize { size: 1024, count: Some(4) });
    assert_eq!("0x400X2".parse::<BufSize>().unwrap(), BufSize { size: 1024, count: Some(2) });
    assert_eq!("0x400".parse::<BufSize>().unwrap(), BufSize { size: 1024, count: None });
    for bad in ["", "x4", "1024x", "1024x0", "big", "16"] {
        assert!(bad.parse::<BufSize>().is_err(), "{bad:?}");
    }
    assert_eq!(BufSize { size: 1024, count: Some(4) }.to_string(), "1024x4");
}

#[tokio::test(start_paused = true)]
async fn a_device_taking_part_of_the_first_chunk_is_neither_resumed_nor_retransmitted_to() {
    // MCUboot's serial recovery writes whole 4-byte units: of a first chunk of 306 bytes it
    // takes 304 and asks for offset 304 (seen as "resuming at 304 ... 1 retransmits").
    let bytes = image(4096);
    let dev = ImgDevice::new();
    dev.state().write_align = 4;
    let r = run_with(&dev, &bytes, &LIMITS, &UploadOptions { chunk: Some(306), ..opts() }, |c| c).await;
    let report = r.result.unwrap();
    assert_holds(&dev, &bytes, &report);
    assert_eq!(report.start, UploadStart::PartialFirstChunk { accepted: 304, sent: 306 });
    assert_eq!((report.resumed_at, report.retransmits, report.resent_bytes), (0, 0, 0), "{report:?}");
    assert!(
        matches!(
            r.events.first(),
            Some(Event::UploadStarted {
                resumed_at: 0,
                start: UploadStart::PartialFirstChunk { accepted: 304, sent: 306 },
                ..
            })
        ),
        "{:?}",
        r.events
    );
    // Later chunks are sized to whole units: the device takes each one whole.
    assert_eq!(report.partial_accepts, 1, "{report:?}");
    let seen = dev.state().seen.clone();
    assert!(seen[1..seen.len() - 1].iter().all(|s| s.len % 4 == 0), "{seen:?}");
}

#[tokio::test(start_paused = true)]
async fn partial_acceptance_later_in_the_upload_costs_no_retransmits() {
    // A device that starts writing in 8-byte units after the first chunk: the unit is learned
    // from the first later chunk it takes only part of.
    let bytes = image(SIZE);
    for window in [Some(1), None] {
        let dev = ImgDevice::twisted(|st, s| {
            if s.n == 2 {
                st.write_align = 8;
            }
            Fate::Answer
        });
        let o = UploadOptions { chunk: Some(901), window, ..opts() };
        let r = run_with(&dev, &bytes, &LIMITS, &o, |c| c).await;
        let report = r.result.unwrap();
        assert_holds(&dev, &bytes, &report);
        assert_eq!(report.start, UploadStart::Fresh, "{report:?}");
        assert!((1..=2).contains(&report.partial_accepts), "{report:?}");
        if window == Some(1) {
            assert_eq!(report.retransmits, 0, "{report:?}");
        }
    }
}
