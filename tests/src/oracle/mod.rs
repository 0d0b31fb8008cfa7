//! One module per oracle of `spec/differential.md`.

pub mod b;
pub mod c;
pub mod g;
pub mod l;
pub mod r;
pub mod sq;
