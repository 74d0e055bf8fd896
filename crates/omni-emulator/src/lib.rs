//! omni-emulator
