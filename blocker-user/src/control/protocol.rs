//! Requests and responses on the control socket.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Request {
    /// The lists, the live generation and each list's last update.
    ListsShow,
    /// Pull and compare with the live set; install nothing.
    ListsDiff {
        #[serde(default)]
        lists: Vec<String>,
    },
    /// Pull now and install what changed (the guards apply unless forced).
    ListsReload {
        #[serde(default)]
        lists: Vec<String>,
        #[serde(default)]
        force: bool,
    },
    /// Make the previous generation live again.
    ListsRollback,
    /// What runs where: interfaces, attach mode, pinning, bypass, generation.
    Status,
    /// Packets and bytes by reason and action; hits per list.
    Stats,
    /// Which live entry a name or address meets, and why.
    Lookup { query: String },
    /// Let every packet through untouched (on), or judge again (off).
    Bypass { on: bool },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// The request was carried out (a refused update is carried out: it answers `ok` with the
    /// refusal in `result`, and `problem` set).
    pub ok: bool,
    /// Something the operator should look at (a refused or failed list): the CLI exits 1.
    #[serde(default)]
    pub problem: bool,
    #[serde(default)]
    pub result: serde_json::Value,
    /// The result for people.
    #[serde(default)]
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Response {
    pub fn ok<T: Serialize>(result: &T, text: String) -> Response {
        Response { ok: true, problem: false, result: serde_json::to_value(result).unwrap_or_default(), text, error: None }
    }

    pub fn error(message: String) -> Response {
        Response { ok: false, problem: true, result: serde_json::Value::Null, text: String::new(), error: Some(message) }
    }

    pub fn with_problem(mut self, problem: bool) -> Response {
        self.problem = problem;
        self
    }
}
