//! One module per oracle of `spec/differential.md`.
