//! The kernel side as the controller sees it: load the embedded XDP object, write lists and
//! switches into its maps, attach it, read its counters, and run frames through it.

mod attach;
mod coarse;
mod counters;
mod dns;
mod error;
mod generation;
mod install;
mod mmap;
mod names;
pub mod object;
mod stop_page;
mod testrun;

use aya::Ebpf;
use blocker_common::{
    config::{Config, FLAG_BYPASS, FLAG_TCP_RESET},
    name::HashKey,
};

pub use attach::{AttachMode, Attachment};
pub use coarse::Bitmap;
pub use counters::{CounterRow, Counters};
pub use dns::{BlockedBecause, DnsPolicy, DnsReply};
pub use error::DatapathError;
pub use install::InstallReport;
pub use stop_page::{StopPageError, StopPageResponse};
pub use names::{name_hash, random_key};
pub use testrun::{RunOutcome, XdpAction};

/// Names of the programs and maps in the object; the object check test asserts all exist.
pub const PROGRAM: &str = "blocker";
pub const PASS_PROGRAM: &str = "blocker_pass";
pub const MAPS: &[&str] = &[
    "CONFIG", "COUNTERS", "COARSE_V4", "COARSE_V6", "BLOCK_V4", "BLOCK_V6", "ALLOW_V4", "ALLOW_V6",
    "HASH_KEYS", "NAMES", "NAME_SCRATCH", "FLOWS", "FLOW_FILTER", "TLS_SCRATCH", "DNS_CONFIG",
    "ENTRY_HITS", "EXT_WALK", "PACKET", "STOP_PAGE",
];

/// How blocked traffic is answered, and the secret that keys name hashes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// Send a TCP reset to the client for blocked TCP (otherwise drop).
    pub tcp_reset: bool,
    /// The per-deployment name-hash key; None draws a fresh random one.
    pub hash_key: Option<HashKey>,
}

impl Default for Options {
    fn default() -> Self {
        Options { tcp_reset: true, hash_key: None }
    }
}

/// The loaded program and its maps. Dropping it detaches and unloads everything.
pub struct Datapath {
    ebpf: Ebpf,
    config: Config,
    hash_key: HashKey,
    /// What each list slot holds whole (None: empty, or an install into it did not finish).
    slots: [Option<generation::SlotState>; 2],
}

impl Datapath {
    /// Loads the embedded object into the kernel (programs verified, maps created, nothing
    /// attached). Lists start empty: everything passes.
    pub fn load(options: Options) -> Result<Self, DatapathError> {
        let ebpf = object::load()?;
        let hash_key = match options.hash_key {
            Some(k) => k,
            None => names::random_key().map_err(|source| DatapathError::Io { name: "HASH_KEYS", what: "reading /dev/urandom", source })?,
        };
        let mut dp = Datapath { ebpf, config: Config::default(), hash_key, slots: [None, None] };
        dp.config.flags = if options.tcp_reset { FLAG_TCP_RESET } else { 0 };
        dp.write_config()?;
        Ok(dp)
    }

    /// Turns the global bypass on or off: with it on every frame passes untouched.
    pub fn set_bypass(&mut self, on: bool) -> Result<(), DatapathError> {
        if on {
            self.config.flags |= FLAG_BYPASS;
        } else {
            self.config.flags &= !FLAG_BYPASS;
        }
        self.write_config()
    }

    pub fn config(&self) -> Config {
        self.config
    }

    fn write_config(&mut self) -> Result<(), DatapathError> {
        let config = self.config;
        let mut map: aya::maps::Array<_, Config> = self.map_mut("CONFIG")?;
        map.set(0, config, 0).map_err(|e| DatapathError::map("CONFIG", e))
    }

    fn map_mut<'a, T>(&'a mut self, name: &'static str) -> Result<T, DatapathError>
    where
        T: TryFrom<&'a mut aya::maps::Map, Error = aya::maps::MapError>,
    {
        let map = self.ebpf.map_mut(name).ok_or(DatapathError::MissingMap(name))?;
        T::try_from(map).map_err(|e| DatapathError::map(name, e))
    }

    fn map_ref<'a, T>(&'a self, name: &'static str) -> Result<T, DatapathError>
    where
        T: TryFrom<&'a aya::maps::Map, Error = aya::maps::MapError>,
    {
        let map = self.ebpf.map(name).ok_or(DatapathError::MissingMap(name))?;
        T::try_from(map).map_err(|e| DatapathError::map(name, e))
    }

    fn program_mut(&mut self, name: &'static str) -> Result<&mut aya::programs::Xdp, DatapathError> {
        let prog = self.ebpf.program_mut(name).ok_or(DatapathError::MissingProgram(name))?;
        prog.try_into().map_err(|e| DatapathError::Program { name, source: e })
    }

    fn program(&self, name: &'static str) -> Result<&aya::programs::Xdp, DatapathError> {
        let prog = self.ebpf.program(name).ok_or(DatapathError::MissingProgram(name))?;
        prog.try_into().map_err(|e| DatapathError::Program { name, source: e })
    }
}
