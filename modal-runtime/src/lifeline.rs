//! A container's lifeline: its process tree ends when the process that
//! started it ends, however that process ends (SIGKILL included).
//!
//! The local-process backend opens one pipe and keeps its write end to
//! itself; each container it starts inherits the read end and names it in
//! [`FD_ENV`]. Nobody ever writes to the pipe, so a read blocks until the
//! write end closes: when the backend is dropped, or when the kernel closes
//! it because the backend's process is gone. The container watches the read end on a thread of its
//! own and then kills its process group: itself and everything the user's
//! code started (the backend makes each container the leader of a group of
//! its own, and children stay in their parent's group).
//!
//! Why not `PR_SET_PDEATHSIG`: it fires when the *thread* that forked the
//! container exits, not its process, so a control plane thread ending would
//! kill a healthy container; and its signal, if deadly, kills the container
//! alone, leaving its children to init. A pipe belongs to the process, works
//! on every Unix, and needs nothing between fork and exec (which also lets
//! the container start by `posix_spawn`, the fast way).
//!
//! Why a thread and not a task: user code may starve the container's
//! runtime; a thread parked in `read(2)` costs nothing and always wakes.
//!
//! Not covered: a descendant that leaves the process group (`setsid`, as
//! daemons do). Keeping such descendants would take a cgroup or a reaper
//! that scans for them; a subreaper alone only re-parents them, and the
//! container would then have to reap zombies it cannot tell from those of
//! the user's own `Child` handles.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};

/// Names the read end's descriptor in a container's environment.
pub(crate) const FD_ENV: &str = "MODAL_LIFELINE_FD";

/// Set once this process watches a lifeline (and so leads its own group).
static WATCHING: AtomicBool = AtomicBool::new(false);

/// The backend's side: the pipe whose write end only this process holds.
pub(crate) struct Lifeline {
    read: OwnedFd,
    /// Never written; closing it (by dropping, or by dying) is the signal.
    _write: OwnedFd,
}

impl Lifeline {
    pub(crate) fn new() -> io::Result<Lifeline> {
        let mut fds = [0; 2];
        // SAFETY: pipe2 writes two descriptors into the array we own.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: both descriptors were just opened and belong to nobody else.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        // The write end stays close-on-exec: no other process may hold it,
        // or the pipe would outlive us. The read end is inherited by every
        // child (harmless: readers keep nothing alive), so that containers
        // get it without code between fork and exec.
        // SAFETY: fcntl on a descriptor we own.
        if unsafe { libc::fcntl(read.as_raw_fd(), libc::F_SETFD, 0) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Lifeline {
            read,
            _write: write,
        })
    }

    /// The environment entry that tells a container where its lifeline is.
    pub(crate) fn env(&self) -> (&'static str, String) {
        (FD_ENV, self.read.as_raw_fd().to_string())
    }
}

/// The container's side: if started with a lifeline, watches it and ends
/// this process group when it breaks. Call before any user code runs, so
/// that nothing the user starts can escape.
pub(crate) fn watch() -> Result<(), String> {
    let Ok(value) = std::env::var(FD_ENV) else {
        return Ok(());
    };
    let fd: RawFd = value
        .parse()
        .map_err(|_| format!("{FD_ENV}={value:?} is not a file descriptor number"))?;
    // SAFETY: fstat writes into a zeroed struct we own; a bad descriptor
    // only makes it fail.
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(fd, &mut stat) } != 0 || stat.st_mode & libc::S_IFMT != libc::S_IFIFO {
        return Err(format!(
            "{FD_ENV}={fd} does not name an open pipe; containers are started by the control plane, \
             which passes it"
        ));
    }
    // Killing "our" group is only safe when the group is ours alone.
    // SAFETY: plain queries of this process's ids.
    if unsafe { libc::getpgrp() != libc::getpid() } {
        return Err(format!(
            "{FD_ENV} is set but this container does not lead its own process group, so it \
             cannot end its processes safely; the control plane starts containers that way"
        ));
    }
    // SAFETY: the descriptor is open (fstat said so), and this process
    // inherited it for this use alone.
    let read = unsafe { OwnedFd::from_raw_fd(fd) };
    // The user's programs need not inherit it.
    // SAFETY: fcntl on a descriptor we own.
    unsafe { libc::fcntl(read.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) };
    WATCHING.store(true, Ordering::SeqCst);
    std::thread::Builder::new()
        .name("modal-lifeline".into())
        .stack_size(64 << 10)
        .spawn(move || {
            wait_for_end_of_file(&read);
            end_process_group();
        })
        .map_err(|e| format!("cannot watch the control plane's lifeline: {e}"))?;
    Ok(())
}

/// Blocks until the write end is closed everywhere.
fn wait_for_end_of_file(read: &OwnedFd) {
    let mut byte = 0_u8;
    loop {
        // SAFETY: reads at most one byte into a local.
        let n = unsafe { libc::read(read.as_raw_fd(), (&raw mut byte).cast(), 1) };
        match n {
            0 => return,
            // Nobody writes; if someone did, it means nothing.
            1.. => continue,
            _ if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted => continue,
            // The pipe cannot be watched any more: treat it as broken rather
            // than risk outliving the control plane.
            _ => return,
        }
    }
}

/// Ends this container and every process in its group, if it was started
/// with a lifeline (and so leads a group of its own); otherwise does
/// nothing. For when the control plane is gone: nothing may outlive it.
pub(crate) fn end_process_group() {
    if WATCHING.load(Ordering::SeqCst) {
        // SAFETY: kill(2) on our own process group; touches no memory.
        unsafe {
            libc::kill(0, libc::SIGKILL);
        }
    }
}
