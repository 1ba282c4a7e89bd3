#[derive(Debug, thiserror::Error)]
pub enum DatapathError {
    #[error("loading the XDP object failed (are you root, with CAP_BPF and CAP_NET_ADMIN?): {0}")]
    Load(#[source] Box<aya::EbpfError>),
    #[error("the XDP object has no program {0:?}: the binary was built from a different program")]
    MissingProgram(&'static str),
    #[error("the XDP object has no map {0:?}: the binary was built from a different program")]
    MissingMap(&'static str),
    #[error("program {name}: {source}")]
    Program {
        name: &'static str,
        #[source]
        source: aya::programs::ProgramError,
    },
    #[error("map {name}: {source}")]
    Map {
        name: &'static str,
        #[source]
        source: Box<aya::maps::MapError>,
    },
    #[error("map {name}: {what}: {source}")]
    Io {
        name: &'static str,
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("stop page: {0}")]
    StopPage(#[source] super::StopPageError),
    #[error("{what}: {}: {source}", path.display())]
    Pin {
        what: &'static str,
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Unsupported(String),
    #[error("the program was loaded without a pin directory")]
    NotPinned,
    #[error("cannot attach to {iface}: {source}")]
    Attach {
        iface: String,
        #[source]
        source: aya::programs::ProgramError,
    },
}

impl DatapathError {
    pub(crate) fn map(name: &'static str, e: aya::maps::MapError) -> Self {
        DatapathError::Map { name, source: Box::new(e) }
    }
}
