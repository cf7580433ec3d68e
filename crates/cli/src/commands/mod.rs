pub mod bench;
pub mod encode;
pub mod eval;
pub mod figure;
pub mod summary;
pub mod train;
