//! The emulator itself: it must fail loudly where a GPU would fault or
//! where the suite relies on it to catch a kernel's mistake.

use dae_core::ops::Offset;
use dae_core::ops::Op;
use dae_core::ops::{Arg, Launch};
use dae_core::{Buffer, KernelDevice};
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
    assert_eq!(big.download(&emu, 4).unwrap(), vec![2.0; 4]);
}

#[test]
fn launches_must_match_the_kernel_and_its_signature() {
    let emu = Emulator::new(132);
    let step = Buffer::<_, i32>::from_host(&emu, &[0]).unwrap();
    let mut l = Launch {
        kernel: "no_such_kernel",
        grid: (1, 1, 1),
        block: (1, 1, 1),
        args: vec![Arg::Ptr(step.ptr())],
    };
    let err = |l: &Launch| emu.launch(l).unwrap_err().to_string();
    assert!(
        err(&l).contains("no kernel named no_such_kernel"),
        "{}",
        err(&l)
    );
    l.kernel = "step_increment";
    l.args = vec![];
    assert!(
        err(&l).contains("takes 1 parameters, launched with 0"),
        "{}",
        err(&l)
    );
    l.args = vec![Arg::I32(0)];
    assert!(
        err(&l).contains("parameter 0 is p8 (kind, bytes), launched with i4"),
        "{}",
        err(&l)
    );
    l.args = vec![Arg::Ptr(step.ptr())];
    l.block = (2048, 1, 1);
    assert!(err(&l).contains("2048 threads"), "{}", err(&l));
    l.block = (1, 1, 1);
    emu.launch(&l).unwrap();
    assert_eq!(step.download(&emu, 1).unwrap(), vec![1]);
}

/// Every kernel of kernels/ is compiled under its name, and the host
/// compiler's parameter list of each agrees with the signature the build
/// parsed (`ops::signature::KERNELS`): a launch of exactly those kinds gets
/// past the parameter check (refused only for its empty block).
#[test]
fn every_kernel_signature_matches_the_compiled_parameters() {
    use dae_core::ops::signature::{ArgKind, KERNELS};
    let emu = Emulator::new(1);
    for k in KERNELS {
        let l = Launch {
            kernel: k.name,
            grid: (1, 1, 1),
            block: (0, 1, 1),
            args: k
                .args
                .iter()
                .map(|a| match a {
                    ArgKind::Ptr => Arg::Ptr(0),
                    ArgKind::I32 => Arg::I32(0),
                    ArgKind::F32 => Arg::F32(0.0),
                    ArgKind::F64 => Arg::F64(0.0),
                })
                .collect(),
        };
        let err = emu.launch(&l).unwrap_err().to_string();
        assert!(err.contains("block of 0 threads"), "{}: {err}", k.name);
    }
}

/// The f32 gathers (inference on float data), from a value and from a
/// device-held offset, copy rows exactly, vector path (dim % 4 == 0) and
/// scalar path.
#[test]
fn f32_gathers_copy_the_permuted_rows() {
    let emu = Emulator::new(132);
    for dim in [8, 13] {
        let rows = 37;
        let data: Vec<f32> = (0..rows * dim).map(|i| i as f32 * 0.25 - 3.0).collect();
        let perm: Vec<u32> = (0..rows as u32).map(|r| (r * 11) % rows as u32).collect();
        let (offset, take) = (5, 20);
        let want: Vec<f32> = perm[offset..offset + take]
            .iter()
            .flat_map(|&r| data[r as usize * dim..(r as usize + 1) * dim].to_vec())
            .collect();
        let d = Buffer::<_, f32>::from_host(&emu, &data).unwrap();
        let p = Buffer::<_, u32>::from_host(&emu, &perm).unwrap();
        let o = Buffer::<_, i32>::from_host(&emu, &[offset as i32]).unwrap();
        for off in [Offset::Value(offset), Offset::Device(o.ptr())] {
            let out = Buffer::<_, f32>::from_host(&emu, &vec![f32::NAN; take * dim]).unwrap();
            emu.run(&Op::Gather(dae_core::ops::Gather {
                u8_data: false,
                data: d.ptr(),
                index: p.ptr(),
                offset: off,
                rows: take,
                dim,
                out: out.ptr(),
            }))
            .unwrap();
            assert_eq!(
                out.download(&emu, take * dim).unwrap(),
                want,
                "dim {dim}, {off:?}"
            );
        }
    }
}

/// The device-held step counter and batch offset advance as the graph's
/// replay needs.
#[test]
fn bookkeeping_kernels_advance_device_counters() {
    let emu = Emulator::new(132);
    let step = Buffer::<_, i32>::from_host(&emu, &[41]).unwrap();
    let offset = Buffer::<_, i32>::from_host(&emu, &[256]).unwrap();
    emu.run(&Op::StepIncrement(dae_core::ops::StepIncrement {
        step: step.ptr(),
    }))
    .unwrap();
    emu.run(&Op::OffsetAdvance(dae_core::ops::OffsetAdvance {
        offset: offset.ptr(),
        rows: 97,
    }))
    .unwrap();
    assert_eq!(step.download(&emu, 1).unwrap(), vec![42]);
    assert_eq!(offset.download(&emu, 1).unwrap(), vec![353]);
}
