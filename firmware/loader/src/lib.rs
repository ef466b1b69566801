//! Pure logic of the firmware stage (host-tested).
#![cfg_attr(not(test), no_std)]
