//! The shared-memory race detector (csrc/runtime.cpp): a write and another
//! thread's access of the same word between two barriers fail the launch,
//! in either thread order, naming the kernel, the variable and word, and
//! both threads; ordered accesses pass.

use dae_core::ops::{Arg, Launch};
use dae_core::Buffer;
use dae_emu::Emulator;

fn run(emu: &Emulator, kernel: &'static str, threads: u32, sync: i32) -> Result<Vec<f32>, String> {
    let out = Buffer::<_, f32>::zeros(emu, threads as usize).unwrap();
    let l = Launch {
        kernel,
        grid: (2, 1, 1),
        block: (threads, 1, 1),
        args: vec![Arg::Ptr(out.ptr()), Arg::I32(sync)],
    };
    emu.launch(&l).map_err(|e| e.to_string())?;
    Ok(out.download(emu, threads as usize).unwrap())
}

/// Each launch of a kernel alternates the thread order (see `Emulator`):
/// two launches see both orders, and both must report the race.
fn race_in_both_orders(kernel: &'static str, threads: u32) -> Vec<String> {
    let emu = Emulator::new(132);
    let errors: Vec<String> = (0..2)
        .map(|_| run(&emu, kernel, threads, 0).expect_err("the race is reported"))
        .collect();
    for e in &errors {
        assert!(e.contains("shared-memory race in barrier interval"), "{e}");
        assert!(
            e.contains(&format!("emulated {kernel}: {kernel} block (0,0,0)")),
            "{e}"
        );
    }
    // With the barrier, both orders pass.
    for _ in 0..2 {
        run(&emu, kernel, threads, 1).unwrap();
    }
    errors
}

#[test]
fn read_after_write_without_a_barrier_is_a_race() {
    let errors = race_in_both_orders("emu_test_raw", 64);
    // In thread order, thread 0 reads word 1 before thread 1 writes it;
    // reversed, thread 63 writes word 63 before thread 62 reads it.
    assert!(
        errors[0].contains(
            "emu_test_raw::s word 1 (byte 4 of 256) read by thread 0 (warp 0, threadIdx (0,0,0)) at emu_test_raw+"
        ) && errors[0].contains("then written by thread 1 (warp 0, threadIdx (1,0,0))"),
        "{errors:#?}"
    );
    assert!(
        errors[1].contains("emu_test_raw::s word 63 (byte 252 of 256) written by thread 63 (warp 1, threadIdx (63,0,0))")
            && errors[1].contains("then read by thread 62 (warp 1,"),
        "{errors:#?}"
    );
    assert!(
        errors
            .iter()
            .all(|e| e.contains("race in barrier interval 0 of the block")
                && e.contains("with no __syncthreads() between")),
        "{errors:#?}"
    );
}

#[test]
fn write_after_read_without_a_barrier_is_a_race() {
    let errors = race_in_both_orders("emu_test_war", 64);
    assert!(
        errors
            .iter()
            .all(|e| e.contains("race in barrier interval 1 of the block")),
        "{errors:#?}"
    );
    assert!(
        errors.iter().all(|e| e.contains("emu_test_war::s word ")),
        "{errors:#?}"
    );
}

#[test]
fn a_template_tile_written_as_float4_across_warps_is_tracked() {
    let errors = race_in_both_orders("emu_test_template", 128);
    for e in &errors {
        assert!(
            e.contains("tile_exchange<256>(...)::t word 255 (byte 1020 of 1024)"),
            "{e}"
        );
        assert!(
            e.contains("thread 0 (warp 0") && e.contains("thread 63 (warp 1"),
            "{e}"
        );
        // The site is named: a function and an offset for addr2line.
        assert!(e.contains("[addr2line 0x"), "{e}");
    }
    let emu = Emulator::new(132);
    let out = run(&emu, "emu_test_template", 128, 1).unwrap();
    assert_eq!(out[63], 1.0);
    assert_eq!(out[5], 10.0);
}
