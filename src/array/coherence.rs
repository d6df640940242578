//! The coherence record of an array's part: one MSI state per copy (host, device),
//! as StarPU keeps per handle. Derived from which copies a part holds, so it is
//! consistent by construction; this module is what callers are shown.

/// The state of one copy of an array's part (MSI).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// The only valid copy.
    Modified,
    /// A valid copy, and the other location holds one too.
    Shared,
    /// No valid copy here.
    Invalid,
}

/// Where a part's valid copies are: the host's and the device's states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Coherence {
    /// The host copy.
    pub host: State,
    /// The device copy (a GPU's memory).
    pub device: State,
}

impl Coherence {
    /// Only the host holds the part.
    pub(crate) const HOST: Coherence = Coherence {
        host: State::Modified,
        device: State::Invalid,
    };
    /// Only a device holds the part.
    pub(crate) const DEVICE: Coherence = Coherence {
        host: State::Invalid,
        device: State::Modified,
    };
    /// Both hold it.
    pub(crate) const SHARED: Coherence = Coherence {
        host: State::Shared,
        device: State::Shared,
    };

    /// Whether the host holds a valid copy.
    pub fn on_host(self) -> bool {
        self.host != State::Invalid
    }

    /// Whether the device holds a valid copy.
    pub fn on_device(self) -> bool {
        self.device != State::Invalid
    }

    /// The MSI invariant: at least one valid copy; a `Modified` copy is the only
    /// valid one; `Shared` comes in pairs.
    #[cfg(test)]
    pub(crate) fn is_consistent(self) -> bool {
        use State::*;
        matches!(
            (self.host, self.device),
            (Modified, Invalid) | (Invalid, Modified) | (Shared, Shared)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use State::*;

    #[test]
    fn only_the_three_msi_pairs_are_consistent() {
        let all = [Modified, Shared, Invalid];
        let mut ok = Vec::new();
        for host in all {
            for device in all {
                let c = Coherence { host, device };
                if c.is_consistent() {
                    ok.push(c);
                    assert!(c.on_host() || c.on_device(), "{c:?} has no copy");
                }
            }
        }
        assert_eq!(ok.len(), 3);
        for c in [Coherence::HOST, Coherence::DEVICE, Coherence::SHARED] {
            assert!(ok.contains(&c), "{c:?}");
        }
        assert!(Coherence::HOST.on_host() && !Coherence::HOST.on_device());
        assert!(!Coherence::DEVICE.on_host() && Coherence::DEVICE.on_device());
    }
}
