//! The rule of comparison of the differential test, written once: what of an SMP answer is
//! compared between a real Zephyr server and the virtual device, and what is left out because
//! it depends on the build.
//!
//! Compared:
//! - whether there is an answer at all, and how many frames came back;
//! - the header's op, version, group, command id and sequence number;
//! - the values of [`VALUE_KEYS`] (`rc`, `off`) and of `err`'s `group` and `rc`;
//! - which keys the body map has, recursively for nested maps; for an array, the shape of its
//!   first element (when both arrays have one);
//! - the CBOR type of every other value (text, bytes, integer, bool, …) — never the value
//!   itself: hashes, versions, task names, counters, `output` text and echoed text differ by
//!   build and are not compared.
//!
//! Maps whose keys are data (thread names under `tasks`, counter names under `fields`) are
//! compared as "a map of" the shape of their first value: the keys themselves are build
//! dependent ([`DATA_KEYED_MAPS`]).

use ciborium::Value;

/// Integer values compared by value wherever they appear: the protocol's own numbers that the
/// same request sequence makes the same on both sides.
pub const VALUE_KEYS: [&str; 2] = ["rc", "off"];

/// Maps keyed by build-dependent names (os taskstat's `tasks`, stat's `fields`).
pub const DATA_KEYED_MAPS: [&str; 2] = ["tasks", "fields"];

/// `op`, `version` bits, `group`, `id`, `seq` of a header.
pub type HeaderFields = (u8, u8, u16, u8, u8);

/// What of one answer frame is compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shape {
    /// Not an SMP frame (or its body is not CBOR): compared as the error text.
    Undecodable(String),
    /// A frame.
    Frame {
        /// `op`, `version`, `group`, `id`, `seq` of the header.
        header: HeaderFields,
        /// The body's shape.
        body: Node,
    },
}

/// The shape of a CBOR value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A value compared by value (see [`VALUE_KEYS`] and `err`).
    Value(i128),
    /// A value compared by CBOR type only.
    Type(&'static str),
    /// A map: its text keys, each with its value's shape (non-text keys as their type).
    Map(Vec<(String, Node)>),
    /// A map keyed by data: the shape of its first value.
    MapOf(Option<Box<Node>>),
    /// An array: the shape of its first element.
    Array(Option<Box<Node>>),
}

/// The header fields (`op`, `version`, `group`, `id`, `seq`) and the body of a frame, read as
/// Zephyr's `smp_read_hdr` does (no check of the reserved bits); `None` when the frame is
/// shorter than its header or its header's length disagrees with the bytes.
pub fn split(bytes: &[u8]) -> Option<(HeaderFields, &[u8])> {
    let b = bytes.get(..8)?;
    let len = u16::from_be_bytes([b[2], b[3]]) as usize;
    if bytes.len() != 8 + len {
        return None;
    }
    let header = (b[0] & 7, (b[0] >> 3) & 3, u16::from_be_bytes([b[4], b[5]]), b[7], b[6]);
    Some((header, &bytes[8..]))
}

/// The shape of one answer frame.
pub fn of_frame(bytes: &[u8]) -> Shape {
    let Some((header, body)) = split(bytes) else {
        return Shape::Undecodable(format!("{} bytes, not a frame", bytes.len()));
    };
    match ciborium::from_reader::<Value, _>(body) {
        Ok(v) => Shape::Frame { header, body: node(&v, None, false) },
        Err(e) => Shape::Undecodable(format!("body is not CBOR: {e}")),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Integer(_) => "int",
        Value::Bytes(_) => "bytes",
        Value::Float(_) => "float",
        Value::Text(_) => "text",
        Value::Bool(_) => "bool",
        Value::Null => "null",
        Value::Tag(..) => "tag",
        Value::Array(_) => "array",
        Value::Map(_) => "map",
        _ => "other",
    }
}

/// `key` is the map key the value sits under; `in_err` says the value is inside `err`.
fn node(v: &Value, key: Option<&str>, in_err: bool) -> Node {
    match v {
        Value::Integer(i) if key.is_some_and(|k| VALUE_KEYS.contains(&k) || (in_err && k == "group")) => {
            Node::Value(i128::from(*i))
        }
        Value::Map(entries) if key.is_some_and(|k| DATA_KEYED_MAPS.contains(&k)) => {
            Node::MapOf(entries.first().map(|(_, v)| Box::new(node(v, None, false))))
        }
        Value::Map(entries) => {
            let inner_err = key == Some("err");
            let mut out: Vec<(String, Node)> = entries
                .iter()
                .map(|(k, v)| match k {
                    Value::Text(t) => (t.clone(), node(v, Some(t), inner_err)),
                    other => (format!("<{} key>", type_name(other)), node(v, None, false)),
                })
                .collect();
            out.sort_by(|a, b| a.0.cmp(&b.0));
            Node::Map(out)
        }
        Value::Array(items) => Node::Array(items.first().map(|v| Box::new(node(v, None, false)))),
        other => Node::Type(type_name(other)),
    }
}

/// One difference between two answers, with where it is.
pub fn differences(real: &Shape, sim: &Shape) -> Vec<String> {
    let mut out = Vec::new();
    match (real, sim) {
        (Shape::Frame { header: a, body: x }, Shape::Frame { header: b, body: y }) => {
            let names = ["op", "version", "group", "id", "seq"];
            let av = [a.0 as u32, a.1 as u32, a.2 as u32, a.3 as u32, a.4 as u32];
            let bv = [b.0 as u32, b.1 as u32, b.2 as u32, b.3 as u32, b.4 as u32];
            for i in 0..5 {
                if av[i] != bv[i] {
                    out.push(format!("header.{}: {} vs {}", names[i], av[i], bv[i]));
                }
            }
            compare_nodes("body", x, y, &mut out);
        }
        (a, b) if a == b => {}
        (a, b) => out.push(format!("frame: {} vs {}", short(a), short(b))),
    }
    out
}

fn short(s: &Shape) -> String {
    match s {
        Shape::Undecodable(e) => e.clone(),
        Shape::Frame { .. } => "a frame".into(),
    }
}

fn describe(n: &Node) -> String {
    match n {
        Node::Value(v) => v.to_string(),
        Node::Type(t) => (*t).to_string(),
        Node::Map(_) => "map".into(),
        Node::MapOf(_) => "map".into(),
        Node::Array(_) => "array".into(),
    }
}

fn compare_nodes(path: &str, a: &Node, b: &Node, out: &mut Vec<String>) {
    match (a, b) {
        (Node::Map(x), Node::Map(y)) => {
            let only_real: Vec<&str> =
                x.iter().filter(|(k, _)| !y.iter().any(|(k2, _)| k2 == k)).map(|(k, _)| k.as_str()).collect();
            let only_sim: Vec<&str> =
                y.iter().filter(|(k, _)| !x.iter().any(|(k2, _)| k2 == k)).map(|(k, _)| k.as_str()).collect();
            if !only_real.is_empty() || !only_sim.is_empty() {
                out.push(format!(
                    "{path} keys: only real {{{}}}, only sim {{{}}}",
                    only_real.join(", "),
                    only_sim.join(", ")
                ));
            }
            for (k, v) in x {
                if let Some((_, w)) = y.iter().find(|(k2, _)| k2 == k) {
                    compare_nodes(&format!("{path}.{k}"), v, w, out);
                }
            }
        }
        (Node::Array(Some(x)), Node::Array(Some(y))) | (Node::MapOf(Some(x)), Node::MapOf(Some(y))) => {
            compare_nodes(&format!("{path}[0]"), x, y, out)
        }
        (Node::Array(_), Node::Array(_)) | (Node::MapOf(_), Node::MapOf(_)) => {}
        (x, y) if x == y => {}
        (x, y) => out.push(format!("{path}: {} vs {}", describe(x), describe(y))),
    }
}

/// CBOR diagnostic notation of a frame (header, then the body), for the report.
pub fn diagnostic(bytes: &[u8]) -> String {
    let Some(((op, version, group, id, seq), body)) = split(bytes) else {
        return format!("{} bytes, not a frame: {}", bytes.len(), hex(bytes));
    };
    // The version bits: 0 is SMP v1, 1 is v2.
    let head = format!("op {op} v{} group {group} id {id} seq {seq}", version + 1);
    match ciborium::from_reader::<Value, _>(body) {
        Ok(v) => format!("[{head}] {}", diag(&v)),
        Err(_) => format!("[{head}] body not CBOR: {}", hex(body)),
    }
}

fn hex(b: &[u8]) -> String {
    let s: String = b.iter().take(48).map(|x| format!("{x:02x}")).collect();
    if b.len() > 48 {
        format!("h'{s}…'")
    } else {
        format!("h'{s}'")
    }
}

/// RFC 8949 diagnostic notation (long texts and byte strings shortened).
pub fn diag(v: &Value) -> String {
    match v {
        Value::Integer(i) => i128::from(*i).to_string(),
        Value::Bytes(b) => hex(b),
        Value::Float(f) => f.to_string(),
        Value::Text(t) if t.chars().count() > 60 => {
            format!("{:?}", format!("{}…", t.chars().take(60).collect::<String>()))
        }
        Value::Text(t) => format!("{t:?}"),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".into(),
        Value::Tag(t, inner) => format!("{t}({})", diag(inner)),
        Value::Array(items) => format!("[{}]", items.iter().map(diag).collect::<Vec<_>>().join(", ")),
        Value::Map(entries) => format!(
            "{{{}}}",
            entries.iter().map(|(k, v)| format!("{}: {}", diag(k), diag(v))).collect::<Vec<_>>().join(", ")
        ),
        _ => "?".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(body: &Value) -> Vec<u8> {
        let mut b = Vec::new();
        ciborium::into_writer(body, &mut b).unwrap();
        let mut out = vec![0x0b, 0, 0, b.len() as u8, 0, 0, 1, 0];
        out.extend(b);
        out
    }

    fn m(entries: Vec<(&str, Value)>) -> Value {
        Value::Map(entries.into_iter().map(|(k, v)| (Value::Text(k.into()), v)).collect())
    }

    #[test]
    fn build_dependent_values_are_compared_by_type_and_rc_by_value() {
        let a = frame(&m(vec![("output", Value::Text("zephyr 1".into())), ("rc", Value::Integer(0.into()))]));
        let b = frame(&m(vec![("output", Value::Text("sim".into())), ("rc", Value::Integer(0.into()))]));
        assert!(differences(&of_frame(&a), &of_frame(&b)).is_empty());
        let c = frame(&m(vec![("output", Value::Text("sim".into())), ("rc", Value::Integer(3.into()))]));
        assert_eq!(differences(&of_frame(&a), &of_frame(&c)), vec!["body.rc: 0 vs 3"]);
        let d = frame(&m(vec![("output", Value::Integer(1.into()))]));
        let diffs = differences(&of_frame(&a), &of_frame(&d));
        assert_eq!(diffs, vec!["body keys: only real {rc}, only sim {}", "body.output: text vs int"]);
    }

    #[test]
    fn err_group_and_rc_are_values_arrays_compare_their_first_element() {
        let err = |g: i32| {
            m(vec![("err", m(vec![("group", Value::Integer(g.into())), ("rc", Value::Integer(2.into()))]))])
        };
        assert_eq!(
            differences(&of_frame(&frame(&err(1))), &of_frame(&frame(&err(0)))),
            vec!["body.err.group: 1 vs 0"]
        );
        let list = |k: &str| m(vec![("images", Value::Array(vec![m(vec![(k, Value::Bool(true))])]))]);
        assert_eq!(
            differences(&of_frame(&frame(&list("active"))), &of_frame(&frame(&list("pending")))),
            vec!["body.images[0] keys: only real {active}, only sim {pending}"]
        );
        let tasks = |k: &str| m(vec![("tasks", m(vec![(k, m(vec![("prio", Value::Integer(1.into()))]))]))]);
        assert!(differences(&of_frame(&frame(&tasks("main"))), &of_frame(&frame(&tasks("idle")))).is_empty());
    }
}
