//! Dialogs that hold the window until answered: a modal with a heading,
//! Enter as its default button and Esc (or a click beside it) as Cancel.
//!
//! Invariant: a dialog answers through what it returns; Enter and Esc
//! are read only by the topmost dialog.

/// What the keyboard (or a click beside the dialog) asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    Nothing,
    /// Enter: the default button.
    Enter,
    /// Esc, or a click beside the dialog: cancel.
    Cancel,
}

/// Shows a modal dialog titled `title`; `body` draws it.
pub fn modal<R>(
    ctx: &egui::Context,
    id: &str,
    title: &str,
    body: impl FnOnce(&mut egui::Ui) -> R,
) -> (R, Key) {
    let shown = egui::Modal::new(egui::Id::unique(("coffer-dialog", id))).show(ctx, |ui| {
        ui.set_max_width(520.0);
        ui.heading(title);
        ui.add_space(4.0);
        body(ui)
    });
    let key = if shown.should_close() {
        Key::Cancel
    } else if shown.is_top_modal
        && ctx.input_mut(|i| i.consume_key(egui::Modifiers::NONE, egui::Key::Enter))
    {
        Key::Enter
    } else {
        Key::Nothing
    };
    (shown.inner, key)
}
