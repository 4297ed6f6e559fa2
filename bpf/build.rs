//! Builds the kernel-side crate in `ebpf/` for the BPF target with the nightly
//! toolchain (through aya-build) and leaves the object in `OUT_DIR`, where
//! `src/probe.rs` embeds it. Before that it checks that nightly's LLVM and
//! bpf-linker's LLVM are the same major version.

use std::{
    env,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{anyhow, bail, Context as _, Result};
use aya_build::{Package, Toolchain};

/// The toolchain that builds the eBPF crate: BPF needs `-Z build-std=core`.
const TOOLCHAIN: &str = "nightly";
/// The kernel-side package (and, by aya-build's convention, its binary).
const EBPF_PACKAGE: &str = "stockade-bpf-ebpf";

fn main() {
    if let Err(err) = run() {
        // Cargo prints a failed build script's stderr; say plainly what to fix.
        eprintln!("error: {err:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").context("CARGO_MANIFEST_DIR not set")?);
    let ebpf_dir = manifest_dir.join("ebpf");

    // Printing any rerun-if-changed stops cargo from rerunning this script on
    // every change to this package, so list exactly what the eBPF object is
    // made from: the kernel crate (aya-build prints that one), the shared
    // types, this script, and the two compilers (see check_llvm_majors).
    println!("cargo:rerun-if-changed=build.rs");
    println!(
        "cargo:rerun-if-changed={}",
        manifest_dir.join("common").display()
    );

    let linker = find_in_path("bpf-linker").context(
        "bpf-linker not found in PATH; install it with \
         `cargo install bpf-linker --locked` (see bpf/build.rs)",
    )?;
    println!("cargo:rerun-if-changed={}", linker.display());
    check_llvm_majors(&linker)?;

    // aya-build runs `cargo build --package stockade-bpf-ebpf` in the current
    // directory. The eBPF crate is its own workspace (the host workspace
    // excludes it), so that command must run from inside it.
    env::set_current_dir(&ebpf_dir)
        .with_context(|| format!("cannot enter {}", ebpf_dir.display()))?;
    let root_dir = ebpf_dir.to_str().context("eBPF crate path is not UTF-8")?;
    // aya-build relays every line the nested cargo prints as a cargo warning;
    // keep only its errors. (Safe to set: this script has a single thread.)
    env::set_var("CARGO_TERM_QUIET", "true");
    aya_build::build_ebpf(
        [Package {
            name: EBPF_PACKAGE,
            root_dir,
            ..Default::default()
        }],
        Toolchain::Custom(TOOLCHAIN),
    )
    .context("building the eBPF crate failed (see the cargo:warning lines above)")
}

/// Fails with a clear message unless nightly rustc and bpf-linker use the same
/// LLVM major version.
///
/// rustc does not emit BPF machine code: for the BPF target it hands LLVM
/// bitcode to bpf-linker, which reads, links and compiles it with its own LLVM.
/// Bitcode from a newer LLVM cannot be read by an older one, and mixing majors
/// otherwise fails late with obscure linker errors, so require them equal.
fn check_llvm_majors(linker: &Path) -> Result<()> {
    // aya-build compiles with `rustup run nightly`, i.e. this rustc (the same
    // one `rustc +nightly -vV` reports on). A `rustup update` replaces the
    // file, which reruns this script.
    let install_hint =
        format!("install it with `rustup toolchain install {TOOLCHAIN} --component rust-src`");
    let rustc =
        run_stdout(Command::new("rustup").args(["which", "--toolchain", TOOLCHAIN, "rustc"]))
            .with_context(|| format!("no `{TOOLCHAIN}` toolchain; {install_hint}"))?;
    let rustc = PathBuf::from(rustc.trim());
    println!("cargo:rerun-if-changed={}", rustc.display());
    let rustc = run_stdout(Command::new(&rustc).arg("-vV")).with_context(|| {
        format!(
            "cannot ask {} for its version; {install_hint}",
            rustc.display()
        )
    })?;
    let rustc_llvm = rustc
        .lines()
        .find_map(|line| line.strip_prefix("LLVM version:"))
        .and_then(llvm_major)
        .ok_or_else(|| anyhow!("no `LLVM version:` line in `rustc -vV` output:\n{rustc}"))?;

    // `bpf-linker --version` names only the crate version. Instead we pass
    // `--version` to LLVM's own option parser: bpf-linker initialises LLVM
    // with `--llvm-args` before it opens any input, and LLVM answers with the
    // version of the library actually linked into the process, then exits 0.
    // That is right whether LLVM is linked dynamically (libLLVM.so.22, which
    // `ldd` would also show) or statically (which `ldd` would not). The
    // /dev/null input and output are never opened.
    let probe = run_stdout(Command::new(linker).args([
        "--llvm-args=--version",
        "--output",
        "/dev/null",
        "/dev/null",
    ]))
    .with_context(|| format!("cannot ask {} for its LLVM version", linker.display()))?;
    let linker_llvm = probe
        .lines()
        .find_map(|line| line.split_once("LLVM version").map(|(_, rest)| rest))
        .and_then(llvm_major)
        .ok_or_else(|| anyhow!("no `LLVM version` line in bpf-linker's answer:\n{probe}"))?;

    if rustc_llvm != linker_llvm {
        bail!(
            "LLVM mismatch: `{TOOLCHAIN}` rustc uses LLVM {rustc_llvm} but {} was built \
             against LLVM {linker_llvm}. rustc hands LLVM {rustc_llvm} bitcode to bpf-linker, \
             which must read it with the same LLVM major. Rebuild bpf-linker for LLVM \
             {rustc_llvm} (needs llvm-{rustc_llvm}-dev): `LLVM_PREFIX=/usr/lib/llvm-{rustc_llvm} \
             cargo install bpf-linker --locked --no-default-features --features llvm-{rustc_llvm}`, \
             or use a nightly whose LLVM is {linker_llvm}.",
            linker.display()
        );
    }
    Ok(())
}

/// Major number of a version such as ` 22.1.4`.
fn llvm_major(version: &str) -> Option<u32> {
    version.trim().split('.').next()?.parse().ok()
}

/// Runs `cmd` and returns its stdout, failing on a non-zero exit.
fn run_stdout(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .output()
        .with_context(|| format!("cannot run {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// First executable called `name` in PATH, as the nested cargo will find it.
fn find_in_path(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt as _;
    let path = env::var_os("PATH")?;
    env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| {
            candidate
                .metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}
