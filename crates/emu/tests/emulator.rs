//! The emulator itself: it must fail loudly where a GPU would fault or
//! where the suite relies on it to catch a kernel's mistake.

use dae_core::cuda::ops::Op;
use dae_core::cuda::plan::{Arg, Launch};
use dae_core::cuda::{Buffer, KernelDevice};
use dae_emu::Emulator;

#[test]
fn a_write_past_an_allocation_fails_the_launch() {
    let emu = Emulator::new(132);
    let partial = Buffer::<_, f32>::from_host(&emu, &[1.0; 8]).unwrap();
    let out = Buffer::<_, f32>::zeros(&emu, 3).unwrap();
    // reduce_splits of 2 splits × 4 elements into an output of only 3.
    let l = Launch {
        kernel: "reduce_splits",
        grid: (1, 1, 1),
        block: (256, 1, 1),
        args: vec![
            Arg::Ptr(partial.ptr()),
            Arg::Ptr(out.ptr()),
            Arg::I32(2),
            Arg::I32(4),
        ],
    };
    let err = emu.launch(&l).unwrap_err().to_string();
    assert!(
        err.contains("wrote outside an allocation: after the 12 bytes"),
        "{err}"
    );
    // The same launch into a large enough output passes and sums the splits.
    let big = Buffer::<_, f32>::zeros(&emu, 4).unwrap();
    let mut ok = l.clone();
    ok.args[1] = Arg::Ptr(big.ptr());
    emu.launch(&ok).unwrap();
    assert_eq!(big.download(4).unwrap(), vec![2.0; 4]);
}

#[test]
fn unknown_kernels_and_bad_blocks_are_errors() {
    let emu = Emulator::new(132);
    let mut l = Launch {
        kernel: "no_such_kernel",
        grid: (1, 1, 1),
        block: (32, 1, 1),
        args: vec![],
    };
    assert!(emu
        .launch(&l)
        .unwrap_err()
        .to_string()
        .contains("no kernel named no_such_kernel"));
    l.kernel = "step_increment";
    l.block = (2048, 1, 1);
    assert!(emu
        .launch(&l)
        .unwrap_err()
        .to_string()
        .contains("2048 threads"));
}

/// Every kernel a plan can name exists in kernels/ with that name.
#[test]
fn every_planned_kernel_is_compiled() {
    let emu = Emulator::new(1);
    for name in dae_core::cuda::plan::kernel_names() {
        // A zero-sized grid is refused after the name is found.
        let l = Launch {
            kernel: name,
            grid: (0, 1, 1),
            block: (1, 1, 1),
            args: vec![],
        };
        let err = emu.launch(&l).unwrap_err().to_string();
        assert!(err.contains("grid dimensions"), "{name}: {err}");
    }
}

/// The device-held step counter and batch offset advance as the graph's
/// replay needs.
#[test]
fn bookkeeping_kernels_advance_device_counters() {
    let emu = Emulator::new(132);
    let step = Buffer::<_, i32>::from_host(&emu, &[41]).unwrap();
    let offset = Buffer::<_, i32>::from_host(&emu, &[256]).unwrap();
    emu.run(&Op::StepIncrement { step: step.ptr() }).unwrap();
    emu.run(&Op::OffsetAdvance {
        offset: offset.ptr(),
        rows: 97,
    })
    .unwrap();
    assert_eq!(step.download(1).unwrap(), vec![42]);
    assert_eq!(offset.download(1).unwrap(), vec![353]);
}
