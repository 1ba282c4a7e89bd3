//! The three namespaces of the lab.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Node {
    /// The subscriber: runs curl, ping, dig, browsers.
    Client,
    /// The box in the middle: forwards between `a0` and `a1`; the blocker attaches to `a0`.
    Appliance,
    /// Servers: HTTP on :80 for every address in `SERVER_ADDRS`.
    Internet,
}

impl Node {
    pub const ALL: [Node; 3] = [Node::Client, Node::Appliance, Node::Internet];

    /// The suffix of the namespace name.
    pub fn role(self) -> &'static str {
        match self {
            Node::Client => "client",
            Node::Appliance => "appliance",
            Node::Internet => "internet",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.role())
    }
}
