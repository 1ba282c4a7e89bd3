//! The controller's side of XDP forwarding's route cache (blocker-common route_cache.rs): the
//! switch, and the generation the daemon's follower moves on with every routing change
//! (route_events.rs), from its own thread through its own handle on `ROUTE_GEN`, so a list
//! being installed under the datapath's lock never delays it.

use aya::maps::{Array, MapData};
use blocker_common::config::FLAG_ROUTE_CACHE;

use super::{Datapath, DatapathError, quic::duplicate};

const ROUTE_GEN: &str = "ROUTE_GEN";

/// A handle on `ROUTE_GEN`, for the one thread that moves it on.
pub struct RouteGeneration {
    map: Array<MapData, u32>,
}

impl RouteGeneration {
    /// Makes every answer the program cached so far stale; returns the new generation.
    pub fn bump(&mut self) -> Result<u32, DatapathError> {
        let next = self.get()?.wrapping_add(1);
        self.map
            .set(0, next, 0)
            .map_err(|e| DatapathError::map(ROUTE_GEN, e))?;
        Ok(next)
    }

    pub fn get(&self) -> Result<u32, DatapathError> {
        self.map
            .get(&0, 0)
            .map_err(|e| DatapathError::map(ROUTE_GEN, e))
    }
}

impl Datapath {
    /// A second handle on `ROUTE_GEN`, to move it on from another thread.
    pub fn route_generation(&self) -> Result<RouteGeneration, DatapathError> {
        let map = self
            .ebpf
            .map(ROUTE_GEN)
            .ok_or(DatapathError::MissingMap(ROUTE_GEN))?;
        let data = duplicate(ROUTE_GEN, map)?;
        let map = Array::try_from(aya::maps::Map::Array(data))
            .map_err(|e| DatapathError::map(ROUTE_GEN, e))?;
        Ok(RouteGeneration { map })
    }

    /// The route cache on or off (it acts only with XDP forwarding on). Turned on, everything
    /// cached before is stale: a cache is only used while someone follows the kernel's changes.
    pub fn set_route_cache(&mut self, on: bool) -> Result<(), DatapathError> {
        if on {
            self.route_generation()?.bump()?;
            self.config.flags |= FLAG_ROUTE_CACHE;
        } else {
            self.config.flags &= !FLAG_ROUTE_CACHE;
        }
        self.write_config()
    }

    pub fn is_route_caching(&self) -> bool {
        self.config.flags & FLAG_ROUTE_CACHE != 0
    }
}
