//! A bounded, namespace-aware element tree over `quick-xml`'s reader.
//!
//! Receipts are small (a few KiB), so the whole document becomes a tree
//! first and the typed extraction in [`crate::receipt`] walks it. The reader
//! is where every refusal about *XML* lives: size, depth, DOCTYPE (no entity
//! can ever be defined, so there is no XXE and no billion laughs), unknown
//! entities, undeclared prefixes, mismatched tags, text outside the root.

use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;

use crate::receipt::{ParseError, DEPTH_MAX};

/// The CEB namespace (跨境电商统一版).
pub const CEB_NS: &str = "http://www.chinaport.gov.cn/ceb";
/// The DXP envelope namespace.
pub const DXP_NS: &str = "http://www.chinaport.gov.cn/dxp";

/// Which namespace an element is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ns {
    Ceb,
    Dxp,
    /// No namespace (no prefix and no default namespace in scope).
    None,
    /// Any other namespace, e.g. `ds:` for XML-DSig.
    Other,
}

#[derive(Debug)]
pub struct Node {
    pub ns: Ns,
    pub name: String,
    /// The `guid` attribute, if any (the root of a CEB message carries it).
    pub guid_attr: Option<String>,
    /// All text and CDATA directly inside, concatenated.
    pub text: String,
    pub children: Vec<Node>,
}

impl Node {
    /// The children named `name` in the CEB/DXP namespace `ns` or in no
    /// namespace (some senders leave children unqualified).
    pub fn children_named<'a>(&'a self, ns: Ns, name: &'a str) -> impl Iterator<Item = &'a Node> {
        self.children
            .iter()
            .filter(move |c| (c.ns == ns || c.ns == Ns::None) && c.name == name)
    }
}

fn malformed(reader: &NsReader<&[u8]>, detail: impl std::fmt::Display) -> ParseError {
    ParseError::Malformed {
        position: reader.buffer_position(),
        detail: detail.to_string(),
    }
}

/// The namespace of a resolved name, or the undeclared prefix.
fn classify(res: ResolveResult) -> Result<Ns, String> {
    match res {
        ResolveResult::Bound(ns) if ns.as_ref() == CEB_NS.as_bytes() => Ok(Ns::Ceb),
        ResolveResult::Bound(ns) if ns.as_ref() == DXP_NS.as_bytes() => Ok(Ns::Dxp),
        ResolveResult::Bound(_) => Ok(Ns::Other),
        ResolveResult::Unbound => Ok(Ns::None),
        ResolveResult::Unknown(prefix) => {
            Err(String::from_utf8_lossy(&prefix).chars().take(40).collect())
        }
    }
}

fn open(
    reader: &NsReader<&[u8]>,
    ns: Result<Ns, String>,
    e: &BytesStart,
) -> Result<Node, ParseError> {
    let ns = ns.map_err(|prefix| {
        malformed(
            reader,
            format_args!("undeclared namespace prefix {prefix:?}"),
        )
    })?;
    let name = std::str::from_utf8(e.local_name().as_ref())
        .map_err(|_| malformed(reader, "element name is not UTF-8"))?
        .to_owned();
    let mut guid_attr = None;
    // Unknown attributes are tolerated, but every attribute must be well
    // formed and use only the predefined entities.
    for attr in e.attributes() {
        let attr = attr.map_err(|err| malformed(reader, format_args!("in <{name}>: {err}")))?;
        let value = attr
            .unescape_value()
            .map_err(|err| malformed(reader, format_args!("in <{name}>: {err}")))?;
        if attr.key.as_ref() == b"guid" {
            guid_attr = Some(value.trim().to_owned());
        }
    }
    Ok(Node {
        ns,
        name,
        guid_attr,
        text: String::new(),
        children: Vec::new(),
    })
}

/// Reads a whole document into its root element. The caller has already
/// checked the size.
pub fn read_tree(bytes: &[u8]) -> Result<Node, ParseError> {
    let mut reader = NsReader::from_reader(bytes);
    reader.config_mut().check_end_names = true;
    reader.config_mut().check_comments = true;
    let mut stack: Vec<Node> = Vec::new();
    let mut root: Option<Node> = None;

    loop {
        let (res, event) = match reader.read_resolved_event() {
            Ok((res, event)) => (classify(res), event),
            Err(err) => return Err(malformed(&reader, err)),
        };
        match event {
            Event::DocType(_) => return Err(ParseError::DocType),
            Event::Decl(decl) => {
                if let Some(enc) = decl.encoding() {
                    let enc = enc.map_err(|err| malformed(&reader, err))?;
                    if !enc.eq_ignore_ascii_case(b"utf-8") {
                        return Err(ParseError::UnsupportedEncoding(
                            String::from_utf8_lossy(&enc).chars().take(40).collect(),
                        ));
                    }
                }
            }
            Event::Start(e) => {
                if root.is_some() {
                    return Err(malformed(&reader, "a second root element"));
                }
                if stack.len() >= DEPTH_MAX {
                    return Err(ParseError::TooDeep { max: DEPTH_MAX });
                }
                let node = open(&reader, res, &e)?;
                stack.push(node);
            }
            Event::Empty(e) => {
                if root.is_some() {
                    return Err(malformed(&reader, "a second root element"));
                }
                if stack.len() >= DEPTH_MAX {
                    return Err(ParseError::TooDeep { max: DEPTH_MAX });
                }
                let node = open(&reader, res, &e)?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(node),
                    None => root = Some(node),
                }
            }
            Event::End(_) => {
                // quick-xml has checked that the name matches the open tag.
                let node = stack
                    .pop()
                    .ok_or_else(|| malformed(&reader, "a closing tag with nothing open"))?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(node),
                    None => root = Some(node),
                }
            }
            Event::Text(t) => {
                let text = t.unescape().map_err(|err| malformed(&reader, err))?;
                match stack.last_mut() {
                    Some(node) => node.text.push_str(&text),
                    None if text.trim().is_empty() => {}
                    None => return Err(malformed(&reader, "text outside the root element")),
                }
            }
            Event::CData(c) => {
                let text = std::str::from_utf8(&c)
                    .map_err(|_| malformed(&reader, "CDATA is not UTF-8"))?;
                match stack.last_mut() {
                    Some(node) => node.text.push_str(text),
                    None => return Err(malformed(&reader, "CDATA outside the root element")),
                }
            }
            Event::Comment(_) | Event::PI(_) => {}
            Event::Eof => break,
        }
    }
    if let Some(open) = stack.last() {
        return Err(malformed(
            &reader,
            format_args!("the document ends inside <{}>", open.name),
        ));
    }
    root.ok_or(ParseError::NoRoot)
}
