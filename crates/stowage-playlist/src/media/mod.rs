//! Media playlists: the model ([`model`]), its reader ([`reader`]) and its writer ([`writer`]).

mod model;
mod reader;
mod writer;

pub use model::{MediaPlaylist, Segment, SegmentTags};
