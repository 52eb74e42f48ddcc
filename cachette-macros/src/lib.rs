//! Procedural macros of cachette (`#[cached]`, `#[invalidates]`): not written yet, see issue 3.
