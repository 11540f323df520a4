//! Server discovery and monitoring (SDAM) and server selection, with no I/O.
