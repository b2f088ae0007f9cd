//! Live capture: load and attach the kernel programs, follow ports and interfaces, drain the
//! ring buffer into segment batches.
