pub mod bench;
pub mod compare;
pub mod cv;
pub mod encode;
pub mod eval;
pub mod figure;
pub mod summary;
pub mod train;
