//! A study's errors, and the rewriting of clap's and the settings' messages about a
//! generated flag into the study key that gave it, with its file, line and column.

use super::argv::Origin;

#[derive(Debug, thiserror::Error)]
pub enum StudyError {
    #[error("{file}: cannot read the study file: {error}")]
    Read { file: String, error: std::io::Error },
    #[error("{location}: not valid YAML: {message}")]
    Yaml { location: String, message: String },
    /// A key or value of the file: where, which key, what was expected.
    #[error("{location}: {path}: {message}")]
    Key {
        location: String,
        path: String,
        message: String,
    },
    #[error("{file}: {message}")]
    File { file: String, message: String },
    /// The flags typed after the study file.
    #[error("{0}")]
    Flags(String),
    /// A load's flags refused by clap or the settings, already located.
    #[error("{0}")]
    Load(String),
}

impl From<StudyError> for crate::Error {
    fn from(e: StudyError) -> Self {
        crate::Error::Input(e.to_string())
    }
}

/// clap's complaint about a load's generated argv, told in the study's terms.
pub fn from_clap(e: &clap::Error, load: &str, origins: &[Origin]) -> StudyError {
    let rendered = e.render().to_string();
    // The first paragraph: a missing argument's name is on the line after the reason.
    let text: Vec<&str> = rendered
        .lines()
        .skip_while(|l| l.trim().is_empty())
        .take_while(|l| !l.trim().is_empty())
        .map(str::trim)
        .collect();
    let text = text.join(" ");
    let text = text.strip_prefix("error: ").unwrap_or(&text);
    StudyError::Load(locate(text, load, origins))
}

/// A settings message (which names flags) told in the study's terms: each flag that
/// came from the file becomes its key, and the first one's place leads the message.
pub fn locate(message: &str, load: &str, origins: &[Origin]) -> String {
    let (text, first) = rewrite(message, origins);
    let Some(o) = first else {
        let text = text.replace("<FILE>", "`file` (the trace to replay)");
        return format!("load \"{load}\": {text}");
    };
    // clap's "invalid value 'x' for 'KEY': why" names the key the prefix names already.
    let text = text.replace(&format!(" for '{}'", o.path), "");
    // A settings message that starts with the key: the prefix says it already.
    let text = text.strip_prefix(&format!("{} ", o.path)).unwrap_or(&text);
    let in_load = match o.path.starts_with("loads[") {
        true => String::new(),
        false => format!(" (in load \"{load}\")"),
    };
    match &o.location {
        Some(at) => format!("{at}: {}: {text}{in_load}", o.path),
        None => format!("{} (typed after the study file){in_load}: {text}", o.path),
    }
}

/// Every `--flag` (with clap's ` <VALUE>` after it) that has an origin replaced by its
/// key; the first such origin.
fn rewrite<'o>(message: &str, origins: &'o [Origin]) -> (String, Option<&'o Origin>) {
    let find = |long: &str| origins.iter().rev().find(|o| o.long == long);
    let mut out = String::with_capacity(message.len());
    let mut first = None;
    let mut rest = message;
    while let Some(i) = [rest.find("--"), rest.find("<FILE>")]
        .into_iter()
        .flatten()
        .min()
    {
        let (head, tail) = rest.split_at(i);
        out.push_str(head);
        if let Some(after) = tail.strip_prefix("<FILE>") {
            match find("file") {
                Some(o) => {
                    out.push_str(&o.path);
                    first.get_or_insert(o);
                }
                None => out.push_str("<FILE>"),
            }
            rest = after;
            continue;
        }
        let name_len = tail[2..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
            .unwrap_or(tail.len() - 2);
        let long = &tail[2..2 + name_len];
        let mut end = 2 + name_len;
        match find(long) {
            Some(o) if !long.is_empty() => {
                if tail[end..].starts_with(" <")
                    && let Some(close) = tail[end..].find('>')
                {
                    end += close + 1;
                }
                out.push_str(&o.path);
                first.get_or_insert(o);
            }
            _ => out.push_str(&tail[..end]),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    (out, first)
}
