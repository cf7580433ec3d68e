//! The memory plan is what the backend allocates (issue 10): on a host
//! stand-in for a device that counts live bytes (and runs nothing), the
//! backend's memory after an epoch and a validation pass is exactly the
//! plan's total, for the lab model at batch 1, 256 and 65,536, a 224×224
//! input with 2048,512,128, and the split-K plans of 132 SMs and none of 2;
//! driven as a GPU (`MemoryPlan::device`) and as the CPU is driven (data in
//! place, `MemoryPlan::cpu`); with Adam and with LAMB (its table and
//! scratch).

use dae_core::ops::Op;
use dae_core::{KernelDevice, Precision, Result};
use dae_data::{Dataset, Pixels};
use dae_model::{
    Architecture, Backend, DeviceBackend, MemoryPlan, Optimizer, Silent, TrainConfig, TrainState,
};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Host memory posing as device memory; its drop gives the bytes back.
struct Mem {
    bytes: Vec<u8>,
    live: Arc<AtomicUsize>,
}

impl Drop for Mem {
    fn drop(&mut self) {
        self.live.fetch_sub(self.bytes.len(), Ordering::SeqCst);
    }
}

struct Counting {
    sms: usize,
    live: Arc<AtomicUsize>,
    /// Driven as the CPU is (`runs_in_host_memory`).
    host: bool,
}

impl KernelDevice for Counting {
    type Memory = Mem;
    type Graph = ();
    fn describe(&self) -> String {
        "counting".into()
    }
    fn sm_count(&self) -> usize {
        self.sms
    }
    fn runs_in_host_memory(&self) -> bool {
        self.host
    }
    fn alloc(&self, bytes: usize) -> Result<Mem> {
        self.live.fetch_add(bytes, Ordering::SeqCst);
        Ok(Mem {
            bytes: vec![0; bytes],
            live: self.live.clone(),
        })
    }
    fn address(&self, mem: &Mem) -> u64 {
        mem.bytes.as_ptr() as u64
    }
    fn write(&self, mem: &mut Mem, data: &[u8]) -> Result<()> {
        mem.bytes[..data.len()].copy_from_slice(data);
        Ok(())
    }
    fn read(&self, mem: &Mem, len: usize) -> Result<Vec<u8>> {
        Ok(mem.bytes[..len].to_vec())
    }
    fn run(&self, _: &Op) -> Result<()> {
        Ok(())
    }
    fn synchronize(&self) -> Result<()> {
        Ok(())
    }
    fn record(&self, _: &[Op]) -> Result<()> {
        Ok(())
    }
    fn replay(&self, _: &()) -> Result<()> {
        Ok(())
    }
    fn timed<R, E: From<dae_core::Error>>(
        &self,
        work: impl FnOnce() -> Result<R, E>,
    ) -> Result<(R, Option<f64>), E> {
        Ok((work()?, None))
    }
}

fn data(rows: usize, dim: usize) -> Dataset {
    Dataset {
        name: "d".into(),
        rows,
        dim,
        pixels: Pixels::U8(vec![7; rows * dim].into()),
        labels: None,
        image_shape: None,
    }
}

/// (input, encoder, batch, SMs, train rows, validation rows)
type Case = (usize, &'static [usize], usize, usize, usize, usize);

#[test]
fn the_device_plan_equals_its_allocations() {
    let cases: [Case; 6] = [
        (784, &[128, 64, 32], 256, 132, 1000, 300),
        (784, &[128, 64, 32], 256, 2, 1000, 300),
        (784, &[128, 64, 32], 1, 132, 20, 10),
        (784, &[128, 64, 32], 65_536, 132, 300, 100),
        (784, &[32], 37, 132, 500, 5000),
        (50_176, &[2048, 512, 128], 1, 132, 2, 2),
    ];
    let runs = cases
        .into_iter()
        .flat_map(|c| [Optimizer::Adam, Optimizer::Lamb].map(|o| (c, o)));
    for ((input, encoder, batch, sms, train_rows, val_rows), optimizer) in runs {
        let arch = Architecture::new(input, encoder.to_vec()).unwrap();
        let cfg = TrainConfig {
            batch,
            ..TrainConfig::lab()
        };
        let (train, val) = (data(train_rows, input), data(val_rows, input));
        let data_bytes = train.bytes() + val.bytes();
        let plan =
            MemoryPlan::device(&arch, optimizer, batch, sms, train_rows, data_bytes).unwrap();
        let live = Arc::new(AtomicUsize::new(0));
        let dev = Counting {
            sms,
            live: live.clone(),
            host: false,
        };
        let state = TrainState::initialize(&arch, 1);
        let mut backend = DeviceBackend::on(dev, &arch, cfg.adam(), Precision::Fp32, batch, state)
            .and_then(|b| b.with_optimizer(optimizer))
            .unwrap();
        let perm: Vec<u32> = (0..train_rows as u32).collect();
        backend
            .train_epoch(&train, &perm, batch, &mut Silent)
            .unwrap();
        backend.evaluate(&val, true).unwrap();
        backend.reconstruct(&val, &[0]).unwrap();
        assert_eq!(
            live.load(Ordering::SeqCst),
            plan.total(),
            "{} {optimizer} batch {batch}, {sms} SMs, {train_rows}/{val_rows} rows: {}",
            arch.describe(),
            plan.describe()
        );
    }
}

#[test]
fn the_cpu_plan_equals_its_allocations() {
    // (input, encoder, batch, train rows, validation rows)
    let cases: [(usize, &[usize], usize, usize, usize); 5] = [
        (784, &[128, 64, 32], 256, 2000, 500),
        (784, &[128, 64, 32], 1, 40, 16),
        (784, &[128, 64, 32], 65_536, 3000, 2000),
        (784, &[128, 64, 32], 64, 100, 5000),
        (12_544, &[2048, 512, 128], 1, 2, 3),
    ];
    let runs = cases
        .into_iter()
        .flat_map(|c| [Optimizer::Adam, Optimizer::Lamb].map(|o| (c, o)));
    for ((input, encoder, batch, train_rows, val_rows), optimizer) in runs {
        let arch = Architecture::new(input, encoder.to_vec()).unwrap();
        let cfg = TrainConfig {
            batch,
            ..TrainConfig::lab()
        };
        let (train, val) = (data(train_rows, input), data(val_rows, input));
        let in_place = train.bytes() + val.bytes();
        let plan = MemoryPlan::cpu(&arch, optimizer, batch, train_rows, in_place).unwrap();
        let live = Arc::new(AtomicUsize::new(0));
        let dev = Counting {
            sms: dae_model::HOST_SM_COUNT,
            live: live.clone(),
            host: true,
        };
        let state = TrainState::initialize(&arch, 1);
        let mut backend = DeviceBackend::on(dev, &arch, cfg.adam(), Precision::Fp32, batch, state)
            .and_then(|b| b.with_optimizer(optimizer))
            .unwrap();
        let perm: Vec<u32> = (0..train_rows as u32).collect();
        backend
            .train_epoch(&train, &perm, batch, &mut Silent)
            .unwrap();
        backend.evaluate(&val, true).unwrap();
        backend.reconstruct(&val, &[0]).unwrap();
        // The data is used in place: the plan counts it, the device holds none.
        assert_eq!(
            live.load(Ordering::SeqCst) + in_place,
            plan.total(),
            "{} {optimizer} batch {batch}, {train_rows}/{val_rows} rows: {}",
            arch.describe(),
            plan.describe()
        );
    }
}
