//! Attaching the program to an interface: native (driver) XDP when the driver supports it,
//! generic (skb) XDP otherwise, with a warning, since generic mode runs after the kernel has
//! allocated an skb and costs far more per packet.

use aya::programs::XdpMode;

use super::{Datapath, DatapathError, PROGRAM, WIRE_PROGRAM};

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum AttachMode {
    Native,
    Generic,
}

impl AttachMode {
    pub fn name(self) -> &'static str {
        match self {
            AttachMode::Native => "native",
            AttachMode::Generic => "generic",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attachment {
    pub iface: String,
    pub mode: AttachMode,
    /// Why native mode was not used, when it was not.
    pub native_error: Option<String>,
}

impl Datapath {
    /// Attaches the blocking program to `iface`. With `force_generic` skips the native attempt.
    pub fn attach(&mut self, iface: &str, force_generic: bool) -> Result<Attachment, DatapathError> {
        self.attach_program(PROGRAM, iface, force_generic)
    }

    /// Inline mode: attaches the forwarding program (`blocker_wire`) to the internet port
    /// `iface`; it sends every frame that port receives to the subscriber port in `PORTS`
    /// (`set_ports`). Native mode, falling back to generic like `attach`.
    pub fn attach_wire(&mut self, iface: &str, force_generic: bool) -> Result<Attachment, DatapathError> {
        self.load_wire()?;
        self.attach_program(WIRE_PROGRAM, iface, force_generic)
    }

    /// Loads `blocker_wire` into the kernel if it is not yet: router mode never needs it.
    pub(super) fn load_wire(&mut self) -> Result<(), DatapathError> {
        let prog = self.program_mut(WIRE_PROGRAM)?;
        if prog.fd().is_err() {
            prog.load().map_err(|source| DatapathError::Program { name: WIRE_PROGRAM, source })?;
        }
        Ok(())
    }

    /// Attaches program `name` (one of [`super::PROGRAMS`], loaded) to `iface`. `attach` and
    /// `attach_wire` are the daemon's uses; the micro benchmark attaches the empty program too,
    /// which keeps its test runs off the kernel's XDP dispatcher rebuild.
    pub fn attach_program(&mut self, name: &'static str, iface: &str, force_generic: bool) -> Result<Attachment, DatapathError> {
        let prog = self.program_mut(name)?;
        let mut native_error = None;
        if !force_generic {
            match prog.attach(iface, XdpMode::Driver) {
                Ok(id) => {
                    self.last_link = Some(id);
                    return Ok(Attachment { iface: iface.to_string(), mode: AttachMode::Native, native_error });
                }
                Err(aya::programs::ProgramError::UnknownInterface { name }) => {
                    return Err(DatapathError::Attach {
                        iface: iface.to_string(),
                        source: aya::programs::ProgramError::UnknownInterface { name },
                    });
                }
                Err(e) => {
                    log::warn!("{iface}: native XDP not available ({e}); falling back to generic mode, which costs more per packet");
                    native_error = Some(e.to_string());
                }
            }
        }
        let id = prog.attach(iface, XdpMode::Skb).map_err(|source| DatapathError::Attach { iface: iface.to_string(), source })?;
        self.last_link = Some(id);
        Ok(Attachment { iface: iface.to_string(), mode: AttachMode::Generic, native_error })
    }
}
