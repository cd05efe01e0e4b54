//! The master playlist model: every line in written order. Reading is in [`reader`](super::reader),
//! writing in [`writer`](super::writer).

use crate::tags::MasterTag;
use crate::tags::attribute::{
    ContentSteering, Define, IFrameStreamInf, Key, Rendition, SessionData, Start, Variant,
};

/// A master (multivariant) playlist: every line in written order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct MasterPlaylist<'a> {
    pub(super) tags: Vec<MasterTag<'a>>,
}

impl<'a> MasterPlaylist<'a> {
    /// An empty playlist, to build one by hand.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every tag in written order.
    pub fn tags(&self) -> &[MasterTag<'a>] {
        &self.tags
    }

    /// The tags, for changing them.
    pub fn tags_mut(&mut self) -> &mut Vec<MasterTag<'a>> {
        &mut self.tags
    }

    /// The variants (EXT-X-STREAM-INF), in order.
    pub fn variants(&self) -> impl Iterator<Item = &Variant<'a>> {
        self.tags.iter().filter_map(|t| if let MasterTag::Variant(v) = t { Some(v) } else { None })
    }

    /// The I-frame variants, in order.
    pub fn i_frame_variants(&self) -> impl Iterator<Item = &IFrameStreamInf<'a>> {
        self.tags.iter().filter_map(|t| if let MasterTag::IFrameVariant(v) = t { Some(v) } else { None })
    }

    /// The renditions (EXT-X-MEDIA), in order.
    pub fn renditions(&self) -> impl Iterator<Item = &Rendition<'a>> {
        self.tags.iter().filter_map(|t| if let MasterTag::Rendition(v) = t { Some(v) } else { None })
    }

    /// The EXT-X-SESSION-DATA tags.
    pub fn session_data(&self) -> impl Iterator<Item = &SessionData<'a>> {
        self.tags.iter().filter_map(|t| if let MasterTag::SessionData(v) = t { Some(v) } else { None })
    }

    /// The EXT-X-SESSION-KEY tags.
    pub fn session_keys(&self) -> impl Iterator<Item = &Key<'a>> {
        self.tags.iter().filter_map(|t| if let MasterTag::SessionKey(v) = t { Some(v) } else { None })
    }

    /// The EXT-X-DEFINE tags.
    pub fn defines(&self) -> impl Iterator<Item = &Define<'a>> {
        self.tags.iter().filter_map(|t| if let MasterTag::Define(v) = t { Some(v) } else { None })
    }

    /// EXT-X-CONTENT-STEERING.
    pub fn content_steering(&self) -> Option<&ContentSteering<'a>> {
        self.tags.iter().find_map(|t| if let MasterTag::ContentSteering(v) = t { Some(v) } else { None })
    }

    /// EXT-X-VERSION.
    pub fn version(&self) -> Option<u64> {
        self.tags.iter().find_map(|t| if let MasterTag::Version(v) = t { Some(*v) } else { None })
    }

    /// Whether EXT-X-INDEPENDENT-SEGMENTS is present.
    pub fn has_independent_segments(&self) -> bool {
        self.tags.iter().any(|t| matches!(t, MasterTag::IndependentSegments))
    }

    /// EXT-X-START.
    pub fn start(&self) -> Option<&Start<'a>> {
        self.tags.iter().find_map(|t| if let MasterTag::Start(v) = t { Some(v) } else { None })
    }

    /// Keeps only the variants for which `keep` is true (the other tags stay).
    pub fn retain_variants(&mut self, mut keep: impl FnMut(&Variant<'a>) -> bool) {
        self.tags.retain(|t| if let MasterTag::Variant(v) = t { keep(v) } else { true });
    }

    /// Keeps only the I-frame variants for which `keep` is true.
    pub fn retain_i_frame_variants(&mut self, mut keep: impl FnMut(&IFrameStreamInf<'a>) -> bool) {
        self.tags.retain(|t| if let MasterTag::IFrameVariant(v) = t { keep(v) } else { true });
    }

    /// Keeps only the renditions for which `keep` is true.
    pub fn retain_renditions(&mut self, mut keep: impl FnMut(&Rendition<'a>) -> bool) {
        self.tags.retain(|t| if let MasterTag::Rendition(v) = t { keep(v) } else { true });
    }

    /// A copy that borrows nothing.
    pub fn into_owned(self) -> MasterPlaylist<'static> {
        MasterPlaylist { tags: self.tags.into_iter().map(MasterTag::into_owned).collect() }
    }
}
