//! The kernel side as the controller sees it: load the embedded XDP object, write lists and
//! switches into its maps, attach it, read its counters, and run frames through it.

mod attach;
mod batch;
mod coarse;
mod counters;
mod dns;
mod error;
mod flows;
mod forward;
mod freeing;
mod generation;
mod install;
mod mmap;
mod names;
pub mod object;
mod pin;
mod ports;
pub mod quic;
mod route_cache;
pub mod route_events;
mod shared;
mod slot;
mod stop_page;
mod testrun;
pub mod xdp_features;

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
pub use forward::{ForwardCountsSum, ForwardPort};
pub use flows::{FlowBitsCheck, FlowUpkeep, UpkeepReport};
pub use stop_page::{StopPageError, StopPageResponse};
pub use names::{name_hash, random_key};
pub use pin::{Adoption, DEFAULT_PIN_DIR, Detached, PINNED_MAPS, detach_all, fingerprint, pinned_links};
pub use ports::Ports;
pub use quic::QuicMaps;
pub use route_cache::RouteGeneration;
pub use testrun::{RunOutcome, XdpAction};

/// Names of the programs and maps in the object; the object check test asserts all exist.
pub const PROGRAM: &str = "blocker";
pub const PASS_PROGRAM: &str = "blocker_pass";
/// Inline mode's program on the internet port: forwards every frame to the subscriber port.
pub const WIRE_PROGRAM: &str = "blocker_wire";
/// The TCP name reader (ClientHello, HTTP request), which `blocker` tail-calls through
/// `TCP_JUDGE` for the segments that need it; never attached.
pub const TCP_PROGRAM: &str = "blocker_tcp";
pub const PROGRAMS: &[&str] = &[PROGRAM, PASS_PROGRAM, WIRE_PROGRAM, TCP_PROGRAM];
pub const MAPS: &[&str] = &[
    "CONFIG", "COUNTERS", "COARSE_V4", "COARSE_V6", "BLOCK_V4", "BLOCK_V6", "ALLOW_V4", "ALLOW_V6",
    "HASH_KEYS", "NAMES", "NAME_FILTER", "NAME_SCRATCH", "FLOWS", "FLOW_FILTER", "FLOW_BITS", "HEADS", "WAITS", "NAME_WAITS", "TLS_SCRATCH", "DNS_CONFIG",
    "ENTRY_HITS", "EXT_WALK", "PACKET", "STOP_PAGE", "PORTS", "QUIC_CONFIG", "QUIC_VERDICTS", "QUIC_RING",
    "QUIC_BUCKET", "FORWARD_PORTS", "PORT_MAC", "FORWARD_COUNTS", "ROUTE_CACHE", "ROUTE_GEN", "TCP_JUDGE",
];

/// How blocked traffic is answered, and the secret that keys name hashes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// Send a TCP reset to the client for blocked TCP (otherwise drop).
    pub tcp_reset: bool,
    /// The per-deployment name-hash key; None draws a fresh random one. Adopted maps keep
    /// the key they were filled with.
    pub hash_key: Option<HashKey>,
    /// Pin the state maps (and, on attach, the link) here, adopting what a previous daemon of
    /// this build pinned. None: nothing outlives the process.
    pub pin_dir: Option<std::path::PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Options { tcp_reset: true, hash_key: None, pin_dir: None }
    }
}

/// The loaded program and its maps. Dropping it detaches and unloads everything.
pub struct Datapath {
    ebpf: Ebpf,
    config: Config,
    hash_key: HashKey,
    /// Each list slot as this process knows it (`generation::SlotState`); None: untouched by
    /// this process.
    slots: [Option<generation::SlotState>; 2],
    pin_root: Option<std::path::PathBuf>,
    adoption: Option<Adoption>,
    /// Links this process holds (pinned ones stay attached when it exits).
    links: Vec<(std::path::PathBuf, aya::programs::links::FdLink)>,
    last_link: Option<aya::programs::xdp::XdpLinkId>,
    /// The return of the last install's freed elements, still running (freeing.rs): the next
    /// write into the list maps stops it first.
    freeing: Option<freeing::Freeing>,
    /// The QUIC maps, once taken out of `ebpf` for the QUIC thread (`take_quic`): kept here
    /// too so that pins removed under the daemon are made again (`repin_missing`).
    quic_pins: Vec<(&'static str, aya::maps::MapData)>,
}

impl Datapath {
    /// Loads the embedded object into the kernel (programs verified, maps created, nothing
    /// attached). Lists start empty: everything passes.
    pub fn load(options: Options) -> Result<Self, DatapathError> {
        let (ebpf, adoption) = match &options.pin_dir {
            Some(root) => {
                let (e, a) = Self::load_pinned_object(root)?;
                (e, Some(a))
            }
            None => (object::load(object::bytes())?, None),
        };
        Self::with_object(ebpf, adoption, options)
    }

    /// Loads another build's object instead of the embedded one, unpinned: for benchmarks that
    /// time two builds of the program in one run (its maps must be the ones this controller
    /// writes).
    pub fn load_object(object: &[u8], options: Options) -> Result<Self, DatapathError> {
        let ebpf = object::load(object)?;
        Self::with_object(ebpf, None, Options { pin_dir: None, ..options })
    }

    fn with_object(ebpf: Ebpf, adoption: Option<Adoption>, options: Options) -> Result<Self, DatapathError> {
        let hash_key = match options.hash_key {
            Some(k) => k,
            None => names::random_key().map_err(|source| DatapathError::Io { name: "HASH_KEYS", what: "reading /dev/urandom", source })?,
        };
        let mut dp = Datapath {
            ebpf,
            config: Config::default(),
            hash_key,
            slots: [None, None],
            pin_root: options.pin_dir.clone(),
            adoption,
            links: Vec::new(),
            last_link: None,
            freeing: None,
            quic_pins: Vec::new(),
        };
        if adoption == Some(Adoption::Adopted) {
            dp.adopt(options.tcp_reset)?;
        } else {
            dp.config.flags = if options.tcp_reset { FLAG_TCP_RESET } else { 0 };
            dp.write_config()?;
        }
        Ok(dp)
    }

    /// Takes over the switches and the live generation of pinned maps: the live slot keeps
    /// blocking until the next install, and names keep the key they were hashed with. Inline
    /// mode (`FLAG_INLINE`, `PORTS`) is kept too, so an inline appliance keeps forwarding until
    /// the new daemon attaches (which sets or clears it).
    fn adopt(&mut self, tcp_reset: bool) -> Result<(), DatapathError> {
        let config = {
            let map: aya::maps::Array<_, Config> = self.map_ref("CONFIG")?;
            map.get(&0, 0).map_err(|e| DatapathError::map("CONFIG", e))?
        };
        self.config = config;
        let live = config.slot & 1;
        let key = {
            let map: aya::maps::Array<_, HashKey> = self.map_ref("HASH_KEYS")?;
            map.get(&live, 0).map_err(|e| DatapathError::map("HASH_KEYS", e))?
        };
        if key != HashKey::default() {
            self.hash_key = key;
        }
        self.slots[live as usize] = Some(generation::SlotState::from_flags(config.flags));
        if tcp_reset {
            self.config.flags |= FLAG_TCP_RESET;
        } else {
            self.config.flags &= !FLAG_TCP_RESET;
        }
        self.write_config()
    }

    /// Whether the maps were adopted from a previous daemon (None: not pinned).
    pub fn adoption(&self) -> Option<Adoption> {
        self.adoption
    }

    /// The key names are hashed with (to keep in the state directory).
    pub fn hash_key(&self) -> HashKey {
        self.hash_key
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
