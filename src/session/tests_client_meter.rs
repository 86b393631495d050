//! Reading the client's own CPU time and limits from the system.

use super::*;

#[test]
fn stat_fields_are_counted_after_the_name() {
    // A thread name with spaces and a parenthesis; utime 250 and stime 50 ticks.
    let line = "4242 (tokio (w) 1) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 1 0";
    assert_eq!(stat_cpu_s(line), Some(3.0));
    assert_eq!(stat_cpu_s("garbage"), None);
}

#[cfg(target_os = "linux")]
#[test]
fn a_registered_thread_busy_on_the_cpu_is_measured() {
    let threads = Threads::default();
    let reg = threads.clone();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
    let worker = std::thread::spawn(move || {
        reg.register_current();
        ready_tx.send(()).unwrap();
        // Spin until told to stop: CPU time, not sleep.
        while rx.try_recv().is_err() {
            std::hint::spin_loop();
        }
    });
    ready_rx.recv().unwrap();
    let meter = CpuMeter::start(&threads, 1).expect("a registered thread");
    std::thread::sleep(std::time::Duration::from_millis(200));
    let used = meter.stop().unwrap();
    tx.send(()).unwrap();
    worker.join().unwrap();
    assert_eq!(used.cores, 1);
    // A spinning thread on a shared machine: some CPU, never more than the wall time.
    assert!(used.cpu_s > 0.0, "{used:?}");
    assert!(used.cpu_s <= used.wall_s * 1.05, "{used:?}");
}

#[test]
fn no_registered_thread_means_no_figures() {
    assert!(CpuMeter::start(&Threads::default(), 2).is_none());
}

#[cfg(target_os = "linux")]
#[test]
fn the_open_file_limit_is_raised_to_the_hard_one() {
    let limits = conn_limits();
    let (soft, hard) = rlimit::Resource::NOFILE.get().unwrap();
    assert_eq!(limits.open_files, Some(soft));
    assert_eq!(soft, hard.min(1 << 20));
    assert!(limits.ports.is_some_and(|p| p > 0));
}

#[cfg(target_os = "linux")]
#[test]
fn ended_threads_leave_the_list_and_a_thread_registers_once() {
    let threads = Threads::default();
    threads.register_current();
    threads.register_current();
    let reg = threads.clone();
    std::thread::spawn(move || reg.register_current())
        .join()
        .unwrap();
    assert_eq!(threads.0.lock().unwrap().len(), 2);
    // Joined, the thread may linger in /proc for a moment while the kernel reaps it.
    let t0 = std::time::Instant::now();
    while threads.cpu_s().is_some() && threads.0.lock().unwrap().len() > 1 {
        assert!(t0.elapsed().as_secs() < 5, "the ended thread stays listed");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert_eq!(threads.0.lock().unwrap().len(), 1);
}
