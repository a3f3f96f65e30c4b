//! What the tests against the emulated BlueZ share.

use std::future::Future;

use smpflash_sim::bluez::PrivateBus;

/// Runs `test` on a fresh multi-threaded runtime with the process's system bus pointed at a
/// private `dbus-daemon`, whose address it is given.
///
/// `DBUS_SYSTEM_BUS_ADDRESS` is set before the first btleplug `Manager`, because libdbus reads
/// it once per process; that is also why each such test has a binary of its own. The runtime
/// ends before the bus, since btleplug's background tasks talk to the bus until then.
pub fn on_private_bus<F, Fut>(test: F)
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = ()>,
{
    let bus = PrivateBus::start().unwrap_or_else(|e| panic!("{e}"));
    std::env::set_var("DBUS_SYSTEM_BUS_ADDRESS", bus.address());
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(test(bus.address().to_string()));
    drop(runtime);
    drop(bus);
}
