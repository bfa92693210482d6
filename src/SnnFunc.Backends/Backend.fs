/// The backend interface: what runs a network's forward pass (software model or chip emulator).
namespace SnnFunc.Backends

/// A backend names itself; the forward-pass contract arrives with the backend issue.
type IBackend =
    /// A short human-readable name, e.g. "software" or "bss2-emulator".
    abstract Name: string
