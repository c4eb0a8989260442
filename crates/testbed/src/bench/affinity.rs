//! Keeping the server and its load apart (`[cpus]` in a scenario, Linux): the server started on
//! some cores, the testbed's clients (and the raw baseline) on others, as when the load comes from
//! other machines. Sharing cores, the clients may take the server's time slices and evict its
//! caches, and its CPU per packet read higher than the server's own work.

use std::process::Command;

use anyhow::{Context, Result, ensure};
use nix::sched::{CpuSet, sched_setaffinity};
use nix::unistd::Pid;

/// A CPU set of `cpus`, each checked against the machine.
pub fn cpu_set(cpus: &[usize]) -> Result<CpuSet> {
    let online = super::procstat::online_cpus();
    ensure!(!cpus.is_empty(), "an empty CPU list");
    let mut set = CpuSet::new();
    for &c in cpus {
        ensure!(c < online, "CPU {c}: this machine has {online}");
        set.set(c).with_context(|| format!("CPU {c}"))?;
    }
    Ok(set)
}

/// Moves every thread of this process onto `cpus`; threads started later inherit it.
pub fn pin_self(cpus: &[usize]) -> Result<()> {
    let set = cpu_set(cpus)?;
    let tasks = std::fs::read_dir("/proc/self/task").context("listing /proc/self/task")?;
    for task in tasks.flatten() {
        let Some(tid) = task.file_name().to_str().and_then(|t| t.parse::<i32>().ok()) else { continue };
        // A thread may have ended since the listing: only the calling thread must succeed.
        let pinned = sched_setaffinity(Pid::from_raw(tid), &set);
        if tid == nix::unistd::gettid().as_raw() {
            pinned.context("sched_setaffinity")?;
        }
    }
    Ok(())
}

/// Makes `cmd` start on `cpus` (set in the child before it runs, so all its threads inherit it).
pub fn pin_command(cmd: &mut Command, cpus: &[usize]) -> Result<()> {
    use std::os::unix::process::CommandExt;
    let set = cpu_set(cpus)?;
    // SAFETY: the closure runs in the forked child before exec and only makes one system call
    // (no allocation, no locks).
    unsafe {
        cmd.pre_exec(move || sched_setaffinity(Pid::from_raw(0), &set).map_err(std::io::Error::from));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pinned_command_runs_only_on_its_cores() {
        let mut cmd = Command::new("grep");
        cmd.args(["Cpus_allowed_list", "/proc/self/status"]);
        pin_command(&mut cmd, &[0]).unwrap();
        let out = String::from_utf8(cmd.output().unwrap().stdout).unwrap();
        assert_eq!(out.split_whitespace().nth(1), Some("0"), "{out}");
    }

    #[test]
    fn a_core_the_machine_lacks_is_refused() {
        assert!(cpu_set(&[usize::MAX / 2]).is_err());
        assert!(cpu_set(&[]).is_err());
    }
}
