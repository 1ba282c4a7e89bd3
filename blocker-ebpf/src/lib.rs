//! Empty library target: it lets blocker-user declare a build-dependency on this crate, so cargo
//! rebuilds the controller when the kernel program's sources change.
#![no_std]
