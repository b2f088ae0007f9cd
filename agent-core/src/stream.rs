//! One direction of a connection as the application protocols receive it: the reassembled byte
//! stream in order, with the holes and the end marked. Reassembly (`flow::reassembly`) produces
//! [`Piece`]s; HTTP/1.x (and any other protocol behind a flow) consumes them.

/// A run of one direction's stream, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Piece<'a> {
    Data(&'a [u8]),
    /// `len` bytes of stream whose content is unknown: lost (never seen) or not copied.
    Missing {
        len: u32,
        lost: bool,
    },
    /// FIN reached in sequence: the direction is over.
    End,
}
