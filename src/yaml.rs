//! YAML read as a located tree, for the files whose errors must name a line: `--slo`
//! files and study files. Keys and values keep where they were written, mappings keep
//! their order (and repeated keys, so the reader can name both places).

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

/// Any YAML value, located.
#[derive(Debug)]
pub enum Node {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Seq(Vec<Spanned<Node>>),
    Map(Vec<(Spanned<String>, Spanned<Node>)>),
}

impl Node {
    /// For error messages: short, never a whole document.
    pub fn describe(&self) -> String {
        match self {
            Node::Null => "nothing (null)".into(),
            Node::Bool(b) => b.to_string(),
            Node::Num(v) => v.to_string(),
            Node::Str(s) if s.chars().count() <= 40 => format!("the string {s:?}"),
            Node::Str(_) => "a string".into(),
            Node::Seq(_) => "a list".into(),
            Node::Map(_) => "a mapping".into(),
        }
    }

    /// A number, string or boolean as the text a flag would take; `None` otherwise.
    pub fn scalar_text(&self) -> Option<String> {
        match self {
            Node::Bool(b) => Some(b.to_string()),
            // f64's Display writes 4.0 as "4" and 0.4 as "0.4", as a user would.
            Node::Num(v) => Some(v.to_string()),
            Node::Str(s) => Some(s.clone()),
            _ => None,
        }
    }
}

/// Parse a document; `file` names it in the error ("FILE:LINE:COLUMN: message").
pub fn parse(file: &str, text: &str) -> Result<Node, YamlError> {
    // Non-finite numbers and repeated keys reach the caller's checks, whose messages
    // say more than the parser's (which suggest changing its options).
    use serde_saphyr::options::{DuplicateKeyPolicy, NonFiniteFloatPolicy};
    // The files read here hold tens of nodes; a small budget keeps an alias bomb cheap
    // (each node is kept in the tree).
    let options = serde_saphyr::options! {
        budget: serde_saphyr::budget! { max_nodes: MAX_NODES },
        non_finite_float_policy: NonFiniteFloatPolicy::PassThrough,
        duplicate_keys: DuplicateKeyPolicy::PassThrough,
    };
    serde_saphyr::from_str_with_options(text, options).map_err(|e| yaml_error(file, &e))
}

/// Deserialize a whole document into `T` with the same limits as [`parse`] (repeated
/// keys refused); errors located as "FILE:LINE:COLUMN" (a typed section read with
/// serde: a study's `server:`).
pub fn from_str<T: serde::de::DeserializeOwned>(file: &str, text: &str) -> Result<T, YamlError> {
    let options = serde_saphyr::options! {
        budget: serde_saphyr::budget! { max_nodes: MAX_NODES },
    };
    serde_saphyr::from_str_with_options(text, options).map_err(|e| yaml_error(file, &e))
}

/// A YAML syntax error, located.
#[derive(Debug)]
pub struct YamlError {
    pub location: String,
    pub message: String,
}

/// "FILE:LINE" of a located node (just FILE when the parser gave no line).
pub fn at_line<T>(file: &str, node: &Spanned<T>) -> String {
    match node.referenced.line() {
        0 => file.to_string(),
        line => format!("{file}:{line}"),
    }
}

/// "FILE:LINE:COLUMN" of a located node.
pub fn at<T>(file: &str, node: &Spanned<T>) -> String {
    match node.referenced.line() {
        0 => file.to_string(),
        line => format!("{file}:{line}:{}", node.referenced.column()),
    }
}

/// The parser's message without its source snippet, located as "FILE:LINE:COLUMN".
fn yaml_error(file: &str, e: &serde_saphyr::Error) -> YamlError {
    let mut message = e.without_snippet().to_string();
    let location = match e.location() {
        Some(l) if l.line() > 0 => {
            // The location leads the message, so the parser's copy of it would repeat.
            let suffix = format!(" at line {}, column {}", l.line(), l.column());
            if let Some(head) = message.strip_suffix(&suffix) {
                message.truncate(head.len());
            }
            format!("{file}:{}:{}", l.line(), l.column())
        }
        _ => file.to_string(),
    };
    YamlError { location, message }
}

/// Nodes a document may have (a study file has a few hundred).
const MAX_NODES: usize = 20_000;

/// No file servescope reads nests deeper; each level costs several KB of stack in the
/// parser's generic code, so a hostile document would otherwise overflow it (the
/// parser's own limits allow 255 flow levels).
const MAX_DEPTH: usize = 32;

thread_local! {
    static DEPTH: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Node, D::Error> {
        let depth = DEPTH.with(|c| c.get());
        if depth >= MAX_DEPTH {
            return Err(de::Error::custom(format!(
                "nested deeper than {MAX_DEPTH} levels"
            )));
        }
        DEPTH.with(|c| c.set(depth + 1));
        let node = d.deserialize_any(NodeVisitor);
        DEPTH.with(|c| c.set(depth));
        node
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        Node::deserialize(d)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Num(v as f64))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node, E> {
        Ok(Node::Num(v as f64))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Num(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Str(v.to_string()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Node>>()? {
            items.push(item);
        }
        Ok(Node::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<String>>()? {
            entries.push((key, map.next_value::<Spanned<Node>>()?));
        }
        Ok(Node::Map(entries))
    }
}
