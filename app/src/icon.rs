//! Coffer's icon for the window (title bar, task switcher): the 256 px PNG
//! rendered from `icons/coffer.svg` by `icons/render.sh`, built into the
//! binary so the window has it wherever the binary is run from.

/// The icon as PNG bytes, for eframe's `ViewportBuilder::with_icon`
/// (decode with `eframe::icon_data::from_png_bytes`).
pub fn icon_png() -> &'static [u8] {
    include_bytes!("../../icons/hicolor/256x256/apps/coffer.png")
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_icon_is_a_256_px_png() {
        let png = super::icon_png();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        // The IHDR chunk holds width and height, big-endian, at 16..24.
        assert_eq!(
            u32::from_be_bytes([png[16], png[17], png[18], png[19]]),
            256
        );
        assert_eq!(
            u32::from_be_bytes([png[20], png[21], png[22], png[23]]),
            256
        );
    }
}
