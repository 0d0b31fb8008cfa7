//! One module per oracle of `spec/differential.md`.

pub mod b;
pub mod l;
pub mod g;
pub mod r;
pub mod c;
pub mod sq;
